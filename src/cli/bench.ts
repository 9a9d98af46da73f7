import type { Command } from './command.js';
import { UsageError } from '../errors.js';

export const command: Command = {
  name: 'bench',
  summary: 'not implemented yet',
  usage: 'repmlp bench',
  example: 'repmlp bench',
  options: {},
  positionals: [0, Infinity],
  async run() {
    throw new UsageError('bench: not implemented yet');
  },
};
