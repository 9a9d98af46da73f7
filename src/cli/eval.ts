import type { Command } from './command.js';
import { UsageError } from '../errors.js';

export const command: Command = {
  name: 'eval',
  summary: 'not implemented yet',
  usage: 'repmlp eval',
  example: 'repmlp eval',
  options: {},
  positionals: [0, Infinity],
  async run() {
    throw new UsageError('eval: not implemented yet');
  },
};
