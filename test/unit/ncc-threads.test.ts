// NCC template matching on worker threads (bench/ncc-threads.ts) against nccMatch in this thread on a
// synthetic pair made from a real CT: the same answers exactly (points split among the threads, start
// points, a point without a start), the same after a call with other options (new search levels sent
// to threads that already hold the images), the threads using the shared levels (making none); the
// cascade's affine and coarse stages equal on one thread and on two; cancellation (also before the
// call) and disposal reject and stop the threads; threads that fail to load leave the answers to the
// caller's thread.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { tempDir } from '../helpers.ts';
import { makeSyntheticPair } from '../../main/engine/bench/synthetic-pair.ts';
import { nccMatch } from '../../main/engine/bench/ncc-match.ts';
import { NccThreads } from '../../main/engine/bench/ncc-threads.ts';
import { CancelledError } from '../../main/engine/errors.ts';
import { registerVolumes } from '../../main/engine/register/cascade.ts';
import { cropIndex } from '../../main/engine/volume/crop.ts';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
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
    assert.equal(threads.levelsMadeInThreads, 0, 'the threads use the levels made once and shared');
  } finally {
    threads.dispose();
  }
});

/** Resolves when `threads` has no running thread left (fails after 5 s). */
async function allStopped(threads: NccThreads): Promise<void> {
  for (let t = 0; t < 100 && threads.running > 0; t++) await new Promise((r) => setTimeout(r, 50));
  assert.equal(threads.running, 0, 'threads still running');
}

test('NCC threads: a cancelled call and a call after dispose are rejected, the threads stop', async () => {
  const { pair, points } = await pairAndPoints();
  const threads = NccThreads.start(2)!;
  const controller = new AbortController();
  const pending = threads.match(pair.fixed, pair.moving, points, { searchRadiusMm: 30 }, controller.signal);
  controller.abort();
  await assert.rejects(pending, CancelledError);
  await assert.rejects(threads.match(pair.fixed, pair.moving, points), CancelledError);
  await allStopped(threads);
  // a signal aborted before the call
  const again = NccThreads.start(2)!;
  await assert.rejects(again.match(pair.fixed, pair.moving, points, {}, AbortSignal.abort()), CancelledError);
  await allStopped(again);
  const other = NccThreads.start(2)!;
  other.dispose();
  await assert.rejects(other.match(pair.fixed, pair.moving, points), /stopped/);
  await allStopped(other);
  assert.equal(NccThreads.start(1), null, 'one thread: matching stays in the caller');
});

test('NCC threads that fail to load leave the matching to the caller, same answers', async () => {
  const { pair, points } = await pairAndPoints();
  const tmp = tempDir('ncc-thread-');
  after(tmp.cleanup);
  const entry = join(tmp.dir, 'broken.mjs');
  writeFileSync(entry, "throw new Error('this thread cannot load');\n");
  const threads = NccThreads.start(2, entry)!;
  try {
    const options = { templateRadiusMm: 9, searchRadiusMm: 9, coarseSpacingMm: 3, fineSpacingMm: 3 };
    assert.deepEqual(
      await threads.match(pair.fixed, pair.moving, points, options),
      nccMatch(pair.fixed, pair.moving, points, options),
    );
    await allStopped(threads);
    // and later calls too
    const some = points.slice(0, 10);
    assert.deepEqual(await threads.match(pair.fixed, pair.moving, some), nccMatch(pair.fixed, pair.moving, some));
  } finally {
    threads.dispose();
  }
});

test('the NCC cascade (affine + coarse, then the dense tail) on two threads equals one thread', async (t) => {
  const { pair } = await pairAndPoints();
  // a block of the pair (speed): one side of the body, with air beside it (the CT check wants some)
  const fixed = cropIndex(pair.fixed, [0, 10, 30], [70, 90, 80]);
  const run = (threads: number) =>
    registerVolumes(fixed, pair.moving, { stages: ['affine', 'coarse'], matcher: 'ncc', gridMm: 24, threads });
  const one = await run(1);
  const two = await run(2);
  t.diagnostic(
    `affine pairs ${one.affine.pairs.length}, coarse pairs ${one.coarse!.pairs.length}; ` +
      `seconds: one thread ${JSON.stringify(one.qa.secondsPerStage)}, two ${JSON.stringify(two.qa.secondsPerStage)}`,
  );
  assert.deepEqual(two.affine.affine, one.affine.affine);
  assert.deepEqual(two.affine.pairs, one.affine.pairs);
  assert.deepEqual(two.coarse!.pairs, one.coarse!.pairs);
  assert.deepEqual(two.coarse!.grid.data, one.coarse!.grid.data);
  assert.ok(one.coarse!.stats.kept >= 20, `${one.coarse!.stats.kept} coarse pairs kept`);
  // the dense tail (field, warp, Jacobian, the QA's NCC) on the threads too
  assert.ok('warp + Jacobian (threads)' in two.qa.secondsPerStage && 'warp' in one.qa.secondsPerStage);
  assert.ok(Buffer.from(two.field.data.buffer).equals(Buffer.from(one.field.data.buffer)), 'field');
  assert.ok(Buffer.from(two.warped.data.buffer).equals(Buffer.from(one.warped.data.buffer)), 'warped');
  assert.deepEqual(two.qa.jacobian, one.qa.jacobian);
  assert.deepEqual(two.qa.nccInFixedBody, one.qa.nccInFixedBody);
});
