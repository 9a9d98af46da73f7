import type { Command } from './command.js';
import { UsageError } from '../errors.js';

export const command: Command = {
  name: 'demo',
  summary: 'not implemented yet',
  usage: 'repmlp demo',
  example: 'repmlp demo',
  options: {},
  positionals: [0, Infinity],
  async run() {
    throw new UsageError('demo: not implemented yet');
  },
};
