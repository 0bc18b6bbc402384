// Point matching on a pair related by a known pure translation (two overlapping blocks of a real CT,
// offset by a multiple of the network's total stride, the query moved in world space): matched points
// land within one local embedding voxel of the truth; the cycle check keeps them and rejects points
// placed outside the query's field of view; the similarity map peaks at the match.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { exampleCt2mm, tinyEngine } from './embed-fixtures.ts';
import { embedVolume, type EmbeddedVolume } from '../../main/engine/sam/embed-volume.ts';
import { matchPoints } from '../../main/engine/sam/match.ts';
import { cropIndex } from '../../main/engine/volume/crop.ts';
import { indexToWorld, worldToIndex } from '../../main/engine/volume/geometry.ts';
import type { Vec3, Volume } from '../../main/engine/volume/volume.ts';
import { createRng } from '../../main/engine/train/rng.ts';

/** World translation of the query: the anatomy at template point p is at p + SHIFT in the query. */
const SHIFT: Vec3 = [6, -10, 14];

interface Setup {
  a: Volume;
  b: Volume;
  ta: EmbeddedVolume;
  tb: EmbeddedVolume;
}
let setup: Promise<Setup> | undefined;

/**
 * Template A: 128 x 112 x 112 voxels (x, y, z) of the 2 mm CT; query B: the same in-plane box, its
 * top 64 slices (z offset 48 = 12 global strides), with its origin moved by SHIFT. Both end at the
 * same slice and share their in-plane borders, so equivariance makes A's and B's embeddings
 * identical wherever B's lower border is out of reach (more than the receptive field, 40 mm, above it).
 */
function getSetup(): Promise<Setup> {
  setup ??= (async () => {
    const ct = await exampleCt2mm();
    const a = cropIndex(ct, [24, 0, 0], [152, 112, 112]);
    const b0 = cropIndex(ct, [24, 0, 48], [152, 112, 112]);
    const b = { ...b0, origin: b0.origin.map((v, i) => v + SHIFT[i]) as Vec3 };
    const engine = await tinyEngine(3);
    return { a, b, ta: await embedVolume(a, engine), tb: await embedVolume(b, engine) };
  })();
  return setup;
}

const huAt = (v: Volume, p: Vec3) => {
  const i = worldToIndex(v, p).map(Math.round);
  return v.data[i[0] + v.size[0] * (i[1] + v.size[1] * i[2])];
};

/** Points at template local-voxel centres inside the body, with z index (of A) in [zlo, zhi). */
function bodyPoints(s: Setup, n: number, zlo: number, zhi: number, seed: number): Vec3[] {
  const rng = createRng(seed);
  const out: Vec3[] = [];
  while (out.length < n) {
    const ijk: Vec3 = [rng.int(4, 60), rng.int(4, 52), rng.int(zlo / 2, zhi / 2)];
    const p = indexToWorld(s.ta.local, ijk);
    if (huAt(s.a, p) > -200) out.push(p);
  }
  return out;
}

// A random-initialised network's global embedding is not discriminative (cosine ~0.97 between any
// two voxels): a few global candidates miss the truth, so these tests search every global voxel
// (the official exhaustive search). The default top-k is tested on smooth embedding fields in
// match-coarse-to-fine.test.ts.
const TOPK = Infinity;

test('a known pure translation: matches land within one local voxel of the truth', async (t) => {
  const s = await getSetup();
  const pts = bodyPoints(s, 40, 70, 110, 1);
  const t0 = performance.now();
  const m = await matchPoints(s.ta, s.tb, pts, { topK: TOPK });
  t.diagnostic(`${pts.length} points matched in ${(performance.now() - t0).toFixed(1)} ms`);
  const errs = m.map((r, n) => Math.hypot(...r.location.map((v, a) => v - pts[n][a] - SHIFT[a])));
  t.diagnostic(
    `errors (mm): max ${Math.max(...errs).toFixed(2)}, mean ${(errs.reduce((x, y) => x + y) / errs.length).toFixed(2)}`,
  );
  for (let n = 0; n < m.length; n++) {
    assert.ok(errs[n] <= 4, `point ${n}: error ${errs[n].toFixed(2)} mm`);
    assert.ok(m[n].score > 0.999 && m[n].score <= 1 + 1e-5, `score ${m[n].score}`);
    assert.ok(m[n].inTemplate && m[n].accepted);
  }
  // without refinement the match is the truth's voxel itself
  const raw = await matchPoints(s.ta, s.tb, pts, { topK: TOPK, refine: false, backend: 'js' });
  raw.forEach((r, n) => assert.ok(Math.hypot(...r.location.map((v, a) => v - pts[n][a] - SHIFT[a])) < 1e-3));
});

test('cycle check: keeps consistent matches, rejects points outside the query field of view', async (t) => {
  const s = await getSetup();
  const inside = bodyPoints(s, 20, 70, 110, 2);
  // 24 to 80 mm below the query's lower border (z index 48 of A)
  const outside = bodyPoints(s, 10, 8, 36, 3);
  const m = await matchPoints(s.ta, s.tb, [...inside, ...outside], {
    topK: TOPK,
    cycleCheck: true,
    cycleThresholdMm: 10,
  });
  const ins = m.slice(0, inside.length);
  const outs = m.slice(inside.length);
  t.diagnostic(`cycle errors inside: ${ins.map((r) => r.cycleErrorMm!.toFixed(1)).join(' ')}`);
  t.diagnostic(`cycle errors outside: ${outs.map((r) => r.cycleErrorMm!.toFixed(1)).join(' ')}`);
  for (const r of ins) assert.ok(r.accepted && r.cycleErrorMm! <= 4, `inside: cycle error ${r.cycleErrorMm}`);
  for (const r of outs) assert.ok(!r.accepted && r.cycleErrorMm! > 10, `outside: cycle error ${r.cycleErrorMm}`);
});

test('similarity map of one point: on the query local grid, peaks at the exhaustive match', async () => {
  const s = await getSetup();
  const [p] = bodyPoints(s, 1, 40, 60, 4); // in B's border zone: not an exact copy
  const [m] = await matchPoints(s.ta, s.tb, [p], { topK: Infinity, returnMap: true, refine: false });
  const map = m.map!;
  assert.deepEqual(map.size, s.tb.local.size);
  assert.deepEqual(map.origin, s.tb.local.origin);
  let best = 0;
  for (let n = 1; n < map.data.length; n++) if (map.data[n] > map.data[best]) best = n;
  assert.ok(Math.abs(map.data[best] - m.score) < 1e-5);
  const at = worldToIndex(map, m.location).map(Math.round);
  assert.equal(at[0] + map.size[0] * (at[1] + map.size[1] * at[2]), best);
});
