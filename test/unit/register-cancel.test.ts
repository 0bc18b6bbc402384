/**
 * Cancelling the cascade with the NCC matcher: NCC matches synchronously, so the affine stage matches
 * in small chunks and yields to the event loop between them; an abort sent from an event (as the
 * workstation's worker receives Cancel) is seen within a chunk, not after the whole stage.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeSyntheticPair } from '../../main/engine/bench/synthetic-pair.ts';
import { CancelledError } from '../../main/engine/errors.ts';
import { registerVolumes } from '../../main/engine/register/cascade.ts';
import { readVolume } from '../../main/engine/volume/io/index.ts';
import { dataPath } from '../helpers.ts';

test('NCC cascade: affine matching reports progress per chunk and an abort from a timer cancels it mid-stage', async (t) => {
  const ct = await readVolume(dataPath('TotalSegmentator/tests/reference_files/example_ct.nii.gz'));
  const pair = makeSyntheticPair(ct, { seed: 3, bumps: 0, maxDeformationMm: 0, noiseHu: 5 });
  const controller = new AbortController();
  const matchEvents: number[] = [];
  let abortedAt = 0;
  const run = registerVolumes(pair.fixed, pair.moving, {
    matcher: 'ncc',
    stages: ['affine', 'coarse', 'deform'],
    signal: controller.signal,
    onProgress: (stage, done) => {
      if (stage === 'affine: match') {
        matchEvents.push(done);
        // abort from a macrotask, as a message from the UI would arrive, after the second chunk
        if (matchEvents.length === 2)
          setImmediate(() => {
            abortedAt = performance.now();
            controller.abort();
          });
      }
    },
  });
  await assert.rejects(run, (e) => e instanceof CancelledError);
  const latency = performance.now() - abortedAt;
  t.diagnostic(`cancelled ${latency.toFixed(0)} ms after the abort; match progress at ${matchEvents.join(', ')}`);
  assert.ok(abortedAt > 0, 'the abort timer ran while the affine stage was matching');
  assert.ok(
    matchEvents.length <= 4,
    `stopped within a chunk or two of the abort (${matchEvents.length} progress events)`,
  );
});
