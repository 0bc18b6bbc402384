// The deform stage's box sums on worker threads (register/deform/box-sum-threads.ts) give the numbers
// of the single-threaded code exactly: box sums on an asymmetric grid, the loss and gradient
// (deformLossOn vs deformLoss, with the feature term and zero-weight window centres), and samDeform on
// a real CT pair on one thread and on three (the same field bit for bit). Threads that cannot load
// leave the sums to the caller's thread; arrays not on shared memory are refused; disposed threads stop.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BoxSumThreads } from '../../main/engine/register/deform/box-sum-threads.ts';
import { boxSum, smoothField, smoothFieldOn } from '../../main/engine/register/deform/box-sum.ts';
import { deformLoss, deformLossOn } from '../../main/engine/register/deform/deform-loss.ts';
import { samDeform } from '../../main/engine/register/deform/sam-deform.ts';
import { zeroField } from '../../main/engine/register/field/field.ts';
import { readVolume } from '../../main/engine/volume/io/index.ts';
import { bodyMask } from '../../main/engine/volume/mask.ts';
import { rng, tempDir } from '../helpers.ts';
import { blobProblem, smoothDeformationPair } from './deform-fixtures.ts';
import { EXAMPLE_CT } from './embed-fixtures.ts';

const SIZE = [13, 9, 7];

function randomShared(n: number, seed: number): Float32Array {
  const r = rng(seed);
  const a = new Float32Array(new SharedArrayBuffer(4 * n));
  for (let v = 0; v < n; v++) a[v] = r() * 100 - 30;
  return a;
}

test('box sums, the deform loss and its gradient, and the gradient smoothing on threads equal one thread', async () => {
  const threads = BoxSumThreads.start(3);
  assert.ok(threads, 'threads started');
  try {
    const N = SIZE[0] * SIZE[1] * SIZE[2];
    const srcs = [1, 2, 3, 4, 5].map((s) => randomShared(N, s));
    const outs = srcs.map(() => new Float64Array(new SharedArrayBuffer(8 * N)));
    await threads.sums(srcs, outs, SIZE, 2);
    srcs.forEach((s, n) => assert.deepEqual(outs[n], boxSum(s, SIZE, 2), `sum ${n}`));
    // the loss: an oblique moving grid, features, and window centres of weight 0
    const { problem } = blobProblem(
      rng(8),
      SIZE,
      [15, 12, 8],
      [0.43, 0.12, 0, 1.1, -0.1, 0.5, 0, 0.7, 0, 0.05, 0.33, 0.4],
    );
    for (let v = 0; v < N; v += 5) problem.windows.weight![v] = 0;
    const w = new Float32Array(3 * N).map((_, q) => Math.sin(q) * 0.8);
    const g1 = new Float32Array(3 * N);
    const g2 = new Float32Array(3 * N);
    const a = deformLoss(problem, w, g1);
    const b = await deformLossOn(threads, problem, w, g2);
    assert.deepEqual(b, a, 'loss terms');
    assert.deepEqual(g2, g1, 'gradient');
    // twice: the reused shared arrays hold no state from the call before
    g2.fill(0);
    assert.deepEqual(await deformLossOn(threads, problem, w, g2), a);
    assert.deepEqual(g2, g1, 'gradient, second call');
    const s1 = Float32Array.from(g1);
    smoothField(s1, SIZE);
    await smoothFieldOn(threads, g2, SIZE);
    assert.deepEqual(g2, s1, 'smoothed gradient');
    // not vacuous: the gradient and the smoothing change things
    assert.ok(g1.some((x) => x !== 0) && s1.some((x, q) => x !== g1[q]));
  } finally {
    threads.dispose();
  }
});

test('box-sum threads that cannot load leave the sums here; disposed threads stop', async () => {
  const tmp = tempDir('box-thread-');
  after(tmp.cleanup);
  const entry = join(tmp.dir, 'broken.mjs');
  writeFileSync(entry, "throw new Error('this thread cannot load');\n");
  const broken = BoxSumThreads.start(2, entry)!;
  const N = SIZE[0] * SIZE[1] * SIZE[2];
  const src = randomShared(N, 9);
  const out = new Float64Array(new SharedArrayBuffer(8 * N));
  await broken.sums([src], [out], SIZE, 1);
  assert.deepEqual(out, boxSum(src, SIZE, 1));
  broken.dispose();
  const threads = BoxSumThreads.start(2)!;
  // an output not on shared memory would stay unwritten: refused
  await assert.rejects(threads.sums([src], [new Float64Array(N)], SIZE, 1), /shared memory/);
  threads.dispose();
  await assert.rejects(threads.sums([src], [out], SIZE, 1), /stopped/);
  for (let t = 0; t < 100 && threads.running > 0; t++) await new Promise((r) => setTimeout(r, 50));
  assert.equal(threads.running, 0);
});

test('samDeform on a real CT pair: the same field on one thread and on three', async (t) => {
  const ct = await readVolume(EXAMPLE_CT);
  const pair = smoothDeformationPair(ct);
  const mask = bodyMask(pair.fixed);
  const run = (threads: number) =>
    samDeform(pair.fixed, pair.moving, (g) => zeroField(g), mask, { iterations: 6, threads });
  const one = await run(1);
  const three = await run(3);
  t.diagnostic(
    `grid ${one.stats.grid.size.join('x')}: optimise ${one.stats.seconds.optimise.toFixed(2)} s on one thread, ${three.stats.seconds.optimise.toFixed(2)} s on up to three (one per core)`,
  );
  assert.deepEqual(three.field.data, one.field.data);
  assert.equal(three.stats.lossEnd, one.stats.lossEnd);
  assert.ok(
    one.field.data.some((x) => Math.abs(x) > 0.1),
    'the field moves',
  );
});
