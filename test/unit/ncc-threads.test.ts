// NCC template matching on worker threads (bench/ncc-threads.ts) against nccMatch in this thread on a
// synthetic pair made from a real CT: the same answers exactly (points split among the threads, start
// points, a point without a start), the same after a call with other options (new search levels sent
// to threads that already hold the images), cancellation and disposal reject pending calls.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeSyntheticPair } from '../../main/engine/bench/synthetic-pair.ts';
import { nccMatch } from '../../main/engine/bench/ncc-match.ts';
import { NccThreads } from '../../main/engine/bench/ncc-threads.ts';
import { CancelledError } from '../../main/engine/errors.ts';
import { readVolume } from '../../main/engine/volume/io/index.ts';
import { bodyMask } from '../../main/engine/volume/mask.ts';
import { gridPointsInMask } from '../../main/engine/register/grid-points.ts';
import type { Vec3 } from '../../main/engine/volume/volume.ts';
import { EXAMPLE_CT } from './embed-fixtures.ts';

async function pairAndPoints() {
  const source = await readVolume(EXAMPLE_CT);
  const pair = makeSyntheticPair(source, { seed: 5, spacingMm: 3, maxDeformationMm: 6 });
  const points = gridPointsInMask(bodyMask(pair.fixed), { spacingMm: 30, maxPoints: 40 });
  return { pair, points };
}

test('NCC matching on worker threads gives nccMatch answers exactly', async (t) => {
  const { pair, points } = await pairAndPoints();
  assert.ok(points.length >= 20, `${points.length} points`);
  const threads = NccThreads.start(3);
  assert.ok(threads, 'three threads started');
  try {
    // starts near the truth, one point without a start (NaN: no answer)
    const initial: Vec3[] = points.map((p, n) => (n === 4 ? [NaN, NaN, NaN] : pair.truth(p)));
    const options = { templateRadiusMm: 12, searchRadiusMm: 12, coarseSpacingMm: 4, fineSpacingMm: 3, initial };
    const here = nccMatch(pair.fixed, pair.moving, points, options);
    const there = await threads.match(pair.fixed, pair.moving, points, options);
    assert.deepEqual(there, here);
    assert.ok(Number.isNaN(there[4].score), 'no start, no answer');
    const found = here.filter((m) => Number.isFinite(m.score)).length;
    // not vacuous: the matches land near the truth
    const near = here.filter((m, n) => {
      const q = pair.truth(points[n]);
      return Math.hypot(m.location[0] - q[0], m.location[1] - q[1], m.location[2] - q[2]) < 6;
    }).length;
    t.diagnostic(
      `${points.length} points on ${threads.size} threads: ${found} answers, ${near} within 6 mm of the truth`,
    );
    assert.ok(near >= 0.7 * points.length, `${near} near the truth`);
    // other options (other levels of the same images, sent to threads that hold them) and the
    // images' roles swapped (the fixed image searched: its levels)
    const other = { templateRadiusMm: 9, searchRadiusMm: 9, coarseSpacingMm: 3, fineSpacingMm: 3 };
    assert.deepEqual(
      await threads.match(pair.fixed, pair.moving, points, other),
      nccMatch(pair.fixed, pair.moving, points, other),
    );
    const back = here.filter((m) => Number.isFinite(m.score)).map((m) => m.location);
    assert.deepEqual(
      await threads.match(pair.moving, pair.fixed, back, other),
      nccMatch(pair.moving, pair.fixed, back, other),
    );
  } finally {
    threads.dispose();
  }
});

test('NCC threads: a cancelled call and a call after dispose are rejected', async () => {
  const { pair, points } = await pairAndPoints();
  const threads = NccThreads.start(2)!;
  const controller = new AbortController();
  const pending = threads.match(pair.fixed, pair.moving, points, { searchRadiusMm: 30 }, controller.signal);
  controller.abort();
  await assert.rejects(pending, CancelledError);
  await assert.rejects(threads.match(pair.fixed, pair.moving, points), CancelledError);
  const other = NccThreads.start(2)!;
  other.dispose();
  await assert.rejects(other.match(pair.fixed, pair.moving, points), /stopped/);
  assert.equal(NccThreads.start(1), null, 'one thread: matching stays in the caller');
});
