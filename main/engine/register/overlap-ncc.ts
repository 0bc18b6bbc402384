/**
 * The QA's similarity where the moving image has data. qa.json's nccInFixedBody counts every voxel of
 * the fixed body, those that the moving image does not cover at the warp's fill value (-1024 HU): a
 * moving scan shorter than the fixed one then scores low however well it is registered (the demo's
 * pair, 0.17 mm from the truth: 0.24 there, 0.88 where the moving image has data). This is the
 * normalised cross-correlation of the fixed image and the moving one, before registration (the
 * moving image read at the same world point) and after (the warped image), over the fixed-body
 * voxels whose point (before: x; after: x + u(x)) lies inside the moving image's extent, as the warp
 * decides (field/warp.ts: voxel centres +- half a voxel), on every `step`-th voxel along each axis;
 * with the share of the body's voxels counted.
 */
import { indexToWorldMatrix, insideExtent, sameGrid, worldToIndexMatrix } from '../volume/geometry.ts';
import { affineCompose } from './affine3x4.ts';
import { trilinearAt } from '../volume/interpolate.ts';
import type { Volume } from '../volume/volume.ts';

export interface OverlapNcc {
  before: number;
  after: number;
  /** % of the fixed body's (sampled) voxels where the moving image has data, before and after. */
  beforePercent: number;
  afterPercent: number;
}

/** Float64 co-moments of pairs (a, b), and their correlation (also map-ncc.ts). */
export class Moments {
  n = 0;
  private sa = 0;
  private sb = 0;
  private saa = 0;
  private sbb = 0;
  private sab = 0;
  add(a: number, b: number): void {
    this.n++;
    this.sa += a;
    this.sb += b;
    this.saa += a * a;
    this.sbb += b * b;
    this.sab += a * b;
  }
  ncc(): number {
    if (!this.n) return NaN;
    const n = this.n;
    const ab = this.sab - (this.sa * this.sb) / n;
    const aa = this.saa - (this.sa * this.sa) / n;
    const bb = this.sbb - (this.sb * this.sb) / n;
    return ab / Math.sqrt(aa * bb || 1);
  }
}

export function overlapNcc(
  fixed: Volume,
  moving: Volume,
  field: Volume,
  warped: Volume,
  mask: Uint8Array,
  step = 2,
): OverlapNcc {
  const [ni, nj, nk] = fixed.size;
  for (const [name, v] of [
    ['field', field],
    ['warped image', warped],
  ] as const)
    if (!sameGrid(v, fixed, 0.01)) throw new RangeError(`overlapNcc: the ${name} is not on the fixed grid`);
  // fixed index -> moving index through world (the affine's entries inlined: no arrays per voxel)
  const W = indexToWorldMatrix(fixed);
  const M = worldToIndexMatrix(moving);
  const toMovingIndex = affineCompose(M, W);
  const before = new Moments();
  const after = new Moments();
  const u = field.data;
  const out = [0];
  let body = 0;
  for (let k = 0; k < nk; k += step)
    for (let j = 0; j < nj; j += step)
      for (let i = 0; i < ni; i += step) {
        const v = i + ni * (j + nj * k);
        if (!mask[v]) continue;
        body++;
        const f = fixed.data[v];
        const T = toMovingIndex;
        const m0 = T[0] * i + T[1] * j + T[2] * k + T[3];
        const m1 = T[4] * i + T[5] * j + T[6] * k + T[7];
        const m2 = T[8] * i + T[9] * j + T[10] * k + T[11];
        // ('extent': false outside the moving extent, as the warp decides)
        if (trilinearAt(moving.data, moving.size, 1, m0, m1, m2, 'extent', out)) before.add(f, out[0]);
        // the displaced point x + u in moving indices: the same map plus M's linear part times u
        const u0 = u[3 * v];
        const u1 = u[3 * v + 1];
        const u2 = u[3 * v + 2];
        const y0 = m0 + M[0] * u0 + M[1] * u1 + M[2] * u2;
        const y1 = m1 + M[4] * u0 + M[5] * u1 + M[6] * u2;
        const y2 = m2 + M[8] * u0 + M[9] * u1 + M[10] * u2;
        if (insideExtent(moving.size, y0, y1, y2)) after.add(f, warped.data[v]);
      }
  const percent = (n: number) => (body ? (100 * n) / body : 0);
  return {
    before: before.ncc(),
    after: after.ncc(),
    beforePercent: percent(before.n),
    afterPercent: percent(after.n),
  };
}
