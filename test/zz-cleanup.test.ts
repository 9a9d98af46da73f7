/**
 * Runs last (`node --test` takes the files in name order, one at a time): removes this
 * test run's cache of full-preset checkpoints (test/helpers/torch.ts presetCheckpoint,
 * ~350 MB each), so that `npm test` leaves nothing in the temporary folder.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, rmSync } from 'node:fs';
import { presetCacheDir } from './helpers/torch.js';

test('the test run leaves no preset cache behind', () => {
  const dir = presetCacheDir();
  rmSync(dir, { recursive: true, force: true });
  assert.equal(existsSync(dir), false);
});
