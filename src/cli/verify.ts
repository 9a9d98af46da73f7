import type { Command } from './command.js';
import { UsageError } from '../errors.js';

export const command: Command = {
  name: 'verify',
  summary: 'not implemented yet',
  usage: 'repmlp verify',
  example: 'repmlp verify',
  options: {},
  positionals: [0, Infinity],
  async run() {
    throw new UsageError('verify: not implemented yet');
  },
};
