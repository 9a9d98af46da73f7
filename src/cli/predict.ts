import type { Command } from './command.js';
import { UsageError } from '../errors.js';

export const command: Command = {
  name: 'predict',
  summary: 'not implemented yet',
  usage: 'repmlp predict',
  example: 'repmlp predict',
  options: {},
  positionals: [0, Infinity],
  async run() {
    throw new UsageError('predict: not implemented yet');
  },
};
