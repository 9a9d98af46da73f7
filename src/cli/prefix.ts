import type { Command } from './command.js';
import { UsageError } from '../errors.js';

export const command: Command = {
  name: 'prefix',
  summary: 'not implemented yet',
  usage: 'repmlp prefix',
  example: 'repmlp prefix',
  options: {},
  positionals: [0, Infinity],
  async run() {
    throw new UsageError('prefix: not implemented yet');
  },
};
