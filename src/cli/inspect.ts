import type { Command } from './command.js';
import { UsageError } from '../errors.js';

export const command: Command = {
  name: 'inspect',
  summary: 'not implemented yet',
  usage: 'repmlp inspect',
  example: 'repmlp inspect',
  options: {},
  positionals: [0, Infinity],
  async run() {
    throw new UsageError('inspect: not implemented yet');
  },
};
