/**
 * SAM matches refined by NCC (register/ncc-refine.ts) on a pair made from the real TotalSegmentator
 * abdomen CT by a known rotation, scale and shift (3 mm, 10 HU noise): matches placed up to 5 mm off
 * their true location in a random direction come back to it, points the matcher did not accept are
 * left alone, and a match outside the moving image scores no NCC (the caller's verdict drops it).
 * Then the cascade: with the refinement the SAM-affine stage's pairs lie closer to the truth than
 * SAM's own, on the same pair and the same embeddings.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rigidExamplePair } from './ct-pair-fixtures.ts';
import { nccRefineMatches, NCC_MIN_SCORE } from '../../main/engine/register/ncc-refine.ts';
import { gridPointsInMask } from '../../main/engine/register/grid-points.ts';
import { registerVolumes } from '../../main/engine/register/cascade.ts';
import { openModel } from '../../main/cli/commands/match.ts';
import { bodyMask } from '../../main/engine/volume/mask.ts';
import type { Vec3 } from '../../main/engine/volume/volume.ts';
import { rng } from '../helpers.ts';

const pairOf = rigidExamplePair;

const dist = (a: Vec3, b: Vec3) => Math.hypot(a[0] - b[0], a[1] - b[1], a[2] - b[2]);

test('NCC refinement brings matches up to 5 mm off back to the truth; unaccepted ones untouched; outside, no score', async () => {
  const pair = await pairOf();
  const points = gridPointsInMask(bodyMask(pair.fixed), { spacingMm: 30, marginMm: 15 });
  assert.ok(points.length >= 20, `${points.length} points`);
  const r = rng(9);
  const found = points.map((p, n) => {
    const t = pair.truth(p);
    // a direction on the sphere, 2-5 mm
    const d = [r() - 0.5, r() - 0.5, r() - 0.5];
    const len = Math.hypot(...d);
    const s = 2 + 3 * r();
    const location = t.map((x, a) => x + (s * d[a]) / len) as Vec3;
    return { location, accepted: n % 7 !== 3 };
  });
  // one accepted match far outside the moving image
  const outside = points.length - 1;
  found[outside] = { location: [1e4, 1e4, 1e4], accepted: true };
  const refined = await nccRefineMatches(pair.fixed, pair.moving, points, found);
  assert.equal(refined.length, points.length);
  const before: number[] = [];
  const after: number[] = [];
  const kept: number[] = [];
  refined.forEach((m, n) => {
    if (n === outside) return;
    if (!found[n].accepted) {
      assert.deepEqual(m.location, found[n].location, 'an unaccepted match is not searched');
      assert.ok(Number.isNaN(m.score) && Number.isNaN(m.cycleErrorMm));
      return;
    }
    const t = pair.truth(points[n]);
    before.push(dist(found[n].location, t));
    after.push(dist(m.location, t));
    // the caller's verdict (SAM-affine's): confident and back within 4 mm
    if (m.score >= NCC_MIN_SCORE && m.cycleErrorMm <= 4) kept.push(dist(m.location, t));
  });
  const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
  const median = (v: number[]) => [...v].sort((a, b) => a - b)[v.length >> 1];
  const within = after.filter((e) => e < 1.5).length / after.length;
  console.log(
    `${after.length} matches: ${mean(before).toFixed(2)} mm off before, after ${mean(after).toFixed(2)} mm mean, ` +
      `${median(after).toFixed(2)} median, ${(within * 100).toFixed(0)} % within 1.5 mm; ${kept.length} kept, ${mean(kept).toFixed(2)} mm mean`,
  );
  assert.ok(median(after) < 0.8, `median error after refinement ${median(after)} mm`);
  assert.ok(within >= 0.85, `${within} within 1.5 mm`);
  assert.ok(kept.length >= 0.7 * after.length && mean(kept) < 1, `${kept.length} kept, ${mean(kept)} mm`);
  // in this thread (no NCC threads) it works in blocks and sees a cancel between them
  const ac = new AbortController();
  ac.abort();
  await assert.rejects(nccRefineMatches(pair.fixed, pair.moving, points, found, { signal: ac.signal }), /cancel/i);
  // a match outside the moving image: no NCC score the verdict would keep
  const o = refined[outside];
  assert.ok(!(o.score >= NCC_MIN_SCORE), `a match outside the moving image scores ${o.score}`);
});

test('cascade: SAM-affine pairs refined by NCC lie closer to the truth than SAM alone', async () => {
  const pair = await pairOf();
  const { engine } = await openModel({ weightsFile: 'resources/sam-small.samw' }, 'onnx');
  try {
    const run = (refine: 'ncc' | 'none') =>
      registerVolumes(pair.fixed, pair.moving, { stages: ['affine'], matcher: 'sam', refine, engine, gridMm: 24 });
    const sam = await run('none');
    const refined = await run('ncc');
    const err = (r: typeof sam) => {
      const kept = r.affine.pairs.filter((p) => p.inlier);
      return { n: kept.length, mean: kept.reduce((a, p) => a + dist(p.moving, pair.truth(p.fixed)), 0) / kept.length };
    };
    const [a, b] = [err(sam), err(refined)];
    console.log(
      `affine inlier pairs: SAM ${a.n}, ${a.mean.toFixed(2)} mm from the truth; refined by NCC ${b.n}, ${b.mean.toFixed(2)} mm`,
    );
    assert.equal(sam.qa.refine, 'none');
    assert.equal(refined.qa.refine, 'ncc');
    assert.ok(b.n >= 12);
    assert.ok(b.mean < 0.6 * a.mean, `refined pairs ${b.mean} mm vs SAM's ${a.mean} mm`);
  } finally {
    await engine.dispose();
  }
});
