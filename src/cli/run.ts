import type { Command } from './command.js';
import { UsageError } from '../errors.js';

export const command: Command = {
  name: 'run',
  summary: 'not implemented yet',
  usage: 'repmlp run',
  example: 'repmlp run',
  options: {},
  positionals: [0, Infinity],
  async run() {
    throw new UsageError('run: not implemented yet');
  },
};
