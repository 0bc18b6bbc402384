/**
 * Accuracy of a registration against a known truth: target registration error (TRE) on dense
 * correspondences (every `stride`-th voxel of the fixed body: |x + u(x) - truth(x)|, mm) and Dice
 * overlap per label between two label maps on the same grid.
 */
import { indexToWorld } from '../volume/geometry.ts';
import type { Vec3, Volume } from '../volume/volume.ts';
import { fieldSampler } from '../register/field/field.ts';

export interface TreStats {
  points: number;
  mean: number;
  p95: number;
  max: number;
}

export function statsOf(errors: number[]): TreStats {
  const s = [...errors].sort((a, b) => a - b);
  const n = s.length;
  if (!n) return { points: 0, mean: NaN, p95: NaN, max: NaN };
  return {
    points: n,
    mean: s.reduce((a, b) => a + b, 0) / n,
    p95: s[Math.min(n - 1, Math.floor(0.95 * n))],
    max: s[n - 1],
  };
}

/** Fixed-body voxel centres (every stride-th voxel in raster order) as world points. */
export function bodyPoints(mask: Volume, stride = 29): Vec3[] {
  const [ni, nj] = mask.size;
  const out: Vec3[] = [];
  for (let v = 0; v < mask.data.length; v += stride)
    if (mask.data[v]) out.push(indexToWorld(mask, [v % ni, Math.floor(v / ni) % nj, Math.floor(v / (ni * nj))]));
  return out;
}

/** TRE of a map (a displacement field, or any point map) against the truth at the given points. */
export function tre(map: Volume | ((p: Vec3) => Vec3), truth: (p: Vec3) => Vec3, points: Vec3[]): TreStats {
  let f: (p: Vec3) => Vec3;
  if (typeof map === 'function') f = map;
  else {
    const s = fieldSampler(map, 'border');
    const u: Vec3 = [0, 0, 0];
    f = (p) => {
      s.sample(p[0], p[1], p[2], u);
      return [p[0] + u[0], p[1] + u[1], p[2] + u[2]];
    };
  }
  return statsOf(
    points.map((p) => {
      const a = f(p);
      const t = truth(p);
      return Math.hypot(a[0] - t[0], a[1] - t[1], a[2] - t[2]);
    }),
  );
}

/** Dice per label present in `reference` (labels > 0), for two label maps on the same grid. */
export function dicePerLabel(reference: Volume, other: Volume, minVoxels = 1): Map<number, number> {
  const a = reference.data;
  const b = other.data;
  const inA = new Map<number, number>();
  const inB = new Map<number, number>();
  const both = new Map<number, number>();
  for (let v = 0; v < a.length; v++) {
    const la = a[v];
    const lb = b[v];
    if (la > 0) inA.set(la, (inA.get(la) ?? 0) + 1);
    if (lb > 0) inB.set(lb, (inB.get(lb) ?? 0) + 1);
    if (la > 0 && la === lb) both.set(la, (both.get(la) ?? 0) + 1);
  }
  const out = new Map<number, number>();
  for (const [l, n] of [...inA].sort((x, y) => x[0] - y[0]))
    if (n >= minVoxels) out.set(l, (2 * (both.get(l) ?? 0)) / (n + (inB.get(l) ?? 0)));
  return out;
}
