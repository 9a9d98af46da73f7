import type { Command } from './command.js';
import { UsageError } from '../errors.js';

export const command: Command = {
  name: 'export',
  summary: 'not implemented yet',
  usage: 'repmlp export',
  example: 'repmlp export',
  options: {},
  positionals: [0, Infinity],
  async run() {
    throw new UsageError('export: not implemented yet');
  },
};
