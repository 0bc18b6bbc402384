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
import { applyAffine, indexToWorldMatrix, insideExtent, sameGrid, worldToIndexMatrix } from '../volume/geometry.ts';
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
  const toWorld = indexToWorldMatrix(fixed);
  const toMoving = worldToIndexMatrix(moving);
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
        const x = applyAffine(toWorld, [i, j, k]);
        const f = fixed.data[v];
        const m = applyAffine(toMoving, x);
        // ('extent': false outside the moving extent, as the warp decides)
        if (trilinearAt(moving.data, moving.size, 1, m[0], m[1], m[2], 'extent', out)) before.add(f, out[0]);
        const y = applyAffine(toMoving, [x[0] + u[3 * v], x[1] + u[3 * v + 1], x[2] + u[3 * v + 2]]);
        if (insideExtent(moving.size, y[0], y[1], y[2])) after.add(f, warped.data[v]);
      }
  const percent = (n: number) => (body ? (100 * n) / body : 0);
  return {
    before: before.ncc(),
    after: after.ncc(),
    beforePercent: percent(before.n),
    afterPercent: percent(after.n),
  };
}
