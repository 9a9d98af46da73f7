import type { Command } from './command.js';
import { UsageError } from '../errors.js';

export const command: Command = {
  name: 'convert',
  summary: 'not implemented yet',
  usage: 'repmlp convert',
  example: 'repmlp convert',
  options: {},
  positionals: [0, Infinity],
  async run() {
    throw new UsageError('convert: not implemented yet');
  },
};
