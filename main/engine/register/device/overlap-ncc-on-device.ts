/**
 * overlap-ncc.ts on the GPU for the cascade's QA, from the warp's slab output (warp-on-device.ts
 * 'warp+unwarped': channels 0-2 the field u, 3 the warped moving image, 4 the unwarped one) and the
 * fixed image on the device: the NCC before and after registration over the fixed body's voxels where
 * the moving image has data, on every second voxel along each axis as the host samples them. One
 * thread per grid row (rows of odd j or k contribute nothing) accumulates, over the row's sampled
 * mask voxels, the body count and two sets of Welford co-moments: (fixed, unwarped) where x lies inside
 * the moving image's extent, and (fixed, warped) where x + u(x) does (voxel centres +- half a voxel,
 * as the warp decides; field/warp.ts). The rows are combined on the host in float64 (Chan et al.).
 * It replaces the host's pass over the volume (overlapNcc: 0.05-0.11 s of an H200 machine's cascade,
 * "qa numbers"), which also needed the warped image and the field on the host first. float32 indices
 * and samples: a point within about 1e-4 voxel of the extent may count differently, and the values
 * are the warp's float32 samples, not rounded to the moving image's voxel type.
 */
import * as tf from '@tensorflow/tfjs-core';
import { affineUniforms, FlatProgram, readAndDispose } from './flat-program.ts';
import { runWebgpuProgram } from '../../compute/run-webgpu-program.ts';
import { MASK_BIT_WGSL, SLAB_ROW_UNIFORMS, slabRowUniforms, type MaskOnDevice } from './mask-on-device.ts';
import { indexToWorldMatrix, worldToIndexMatrix, type Geometry } from '../../volume/geometry.ts';
import { affineCompose } from '../affine3x4.ts';
import type { Affine3x4 } from '../affine-fit.ts';
import type { OverlapNcc } from '../overlap-ncc.ts';

/** Per row: the body count, then per pair (before, after): n, mean f, mean m, Sff, Smm, Sfm. */
const ROW_VALUES = 13;

class OverlapRowMomentsProgram extends FlatProgram {
  variableNames = ['O', 'FX', 'MB'];
  uniforms =
    't0 : vec4<f32>, t1 : vec4<f32>, t2 : vec4<f32>, w0 : vec4<f32>, w1 : vec4<f32>, w2 : vec4<f32>, mdims : vec3<f32>, ' +
    SLAB_ROW_UNIFORMS;
  outputShape: number[];
  shaderKey = 'samOverlapRowMoments';

  constructor(rows: number) {
    super(rows);
    this.outputShape = [rows, ROW_VALUES];
  }

  getUserCode(): string {
    return `
      ${MASK_BIT_WGSL}
      // running count, means and centred (co-)moments of pairs (f, m): Welford's update
      struct Pair {
        n : f32, mf : f32, mm : f32, sff : f32, smm : f32, sfm : f32,
      }
      fn addPair(p : ptr<function, Pair>, f : f32, m : f32) {
        (*p).n = (*p).n + 1.0;
        let df = f - (*p).mf;
        let dm = m - (*p).mm;
        (*p).mf = (*p).mf + df / (*p).n;
        (*p).mm = (*p).mm + dm / (*p).n;
        (*p).sff = (*p).sff + df * (f - (*p).mf);
        (*p).smm = (*p).smm + dm * (m - (*p).mm);
        (*p).sfm = (*p).sfm + df * (m - (*p).mm);
      }
      fn putPair(o : i32, p : Pair) {
        setOutputAtIndex(o, p.n);
        setOutputAtIndex(o + 1, p.mf);
        setOutputAtIndex(o + 2, p.mm);
        setOutputAtIndex(o + 3, p.sff);
        setOutputAtIndex(o + 4, p.smm);
        setOutputAtIndex(o + 5, p.sfm);
      }
      fn inside(p : vec3<f32>) -> bool {
        return all(p >= vec3<f32>(-0.5)) && all(p <= uniforms.mdims - vec3<f32>(0.5));
      }
      fn main(index : i32) {
        if (index >= uniforms.rows) {
          return;
        }
        let ni = uniforms.dims.x;
        let nj = uniforms.dims.y;
        let nc = uniforms.channels;
        // the row in the whole grid (mask, fixed image) and in the slab (O)
        let row = index + nj * uniforms.k0;
        let j = row % nj;
        let k = row / nj;
        var body = 0.0;
        // before: the fixed image against the unwarped one; after: against the warped one
        var before = Pair(0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
        var after = Pair(0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
        if (j % 2 == 0 && k % 2 == 0) {
          for (var i = 0; i < ni; i = i + 2) {
            if (!inMask(row, i)) {
              continue;
            }
            body = body + 1.0;
            let f = FX[row * ni + i];
            let v = ((index + uniforms.rowOffset) * ni + i) * nc;
            // x in moving indices, then x + u(x): the same plus the moving world -> index map's linear
            // part times u (mm)
            let x = vec4<f32>(f32(i), f32(j), f32(k), 1.0);
            let m = vec3<f32>(dot(uniforms.t0, x), dot(uniforms.t1, x), dot(uniforms.t2, x));
            let u = vec4<f32>(O[v], O[v + 1], O[v + 2], 0.0);
            let y = m + vec3<f32>(dot(uniforms.w0, u), dot(uniforms.w1, u), dot(uniforms.w2, u));
            if (inside(m)) {
              addPair(&before, f, O[v + 4]);
            }
            if (inside(y)) {
              addPair(&after, f, O[v + 3]);
            }
          }
        }
        let o = index * ${ROW_VALUES};
        setOutputAtIndex(o, body);
        putPair(o + 1, before);
        putPair(o + 7, after);
      }
    `;
  }
}

/** Float64 co-moments of pairs (f, m) merged from partial ones (count, means, centred sums). */
class PairMoments {
  n = 0;
  private mf = 0;
  private mm = 0;
  private sff = 0;
  private smm = 0;
  private sfm = 0;

  merge(n: number, mf: number, mm: number, sff: number, smm: number, sfm: number): void {
    if (n === 0) return;
    const total = this.n + n;
    const df = mf - this.mf;
    const dm = mm - this.mm;
    const w = (this.n * n) / total;
    this.sff += sff + df * df * w;
    this.smm += smm + dm * dm * w;
    this.sfm += sfm + df * dm * w;
    this.mf += (df * n) / total;
    this.mm += (dm * n) / total;
    this.n = total;
  }

  /** As overlap-ncc.ts Moments.ncc: NaN without pairs. */
  ncc(): number {
    if (!this.n) return NaN;
    return this.sfm / Math.sqrt(this.sff * this.smm || 1);
  }
}

/** overlapNcc's numbers accumulated slab by slab from the warp's output. */
export class OverlapMoments {
  private body = 0;
  private readonly before = new PairMoments();
  private readonly after = new PairMoments();
  /** Fixed index -> moving index. */
  private readonly toMoving: Affine3x4;
  /** Moving world -> moving index (its linear part takes u, mm, to index steps). */
  private readonly movingToIndex: Affine3x4;

  constructor(
    fixedGrid: Geometry,
    private readonly moving: Geometry,
  ) {
    this.movingToIndex = worldToIndexMatrix(moving);
    this.toMoving = affineCompose(this.movingToIndex, indexToWorldMatrix(fixedGrid));
  }

  /**
   * Adds a slab's rows: `slab` the warp's [voxels, channels] output (channels >= 5) whose row
   * `rowOffset` is the first row of fixed slice k0 (whole rows), `fixed` the fixed image's voxels on
   * the device, `mask` the body mask on the device.
   */
  async addSlab(
    slab: tf.Tensor,
    channels: number,
    fixed: tf.Tensor,
    mask: MaskOnDevice,
    k0: number,
    rows: number,
    rowOffset = 0,
  ): Promise<void> {
    if (channels < 5) throw new Error('OverlapMoments: the slab has no unwarped channel');
    const out = runWebgpuProgram(
      new OverlapRowMomentsProgram(rows),
      [slab, fixed, mask.bits],
      [
        ...affineUniforms(this.toMoving),
        ...affineUniforms(this.movingToIndex),
        { type: 'float32', data: [...this.moving.size] },
        ...slabRowUniforms(mask, k0, rows, channels, rowOffset),
      ],
    );
    const r = await readAndDispose(out);
    for (let o = 0; o < r.length; o += ROW_VALUES) {
      this.body += r[o];
      this.before.merge(r[o + 1], r[o + 2], r[o + 3], r[o + 4], r[o + 5], r[o + 6]);
      this.after.merge(r[o + 7], r[o + 8], r[o + 9], r[o + 10], r[o + 11], r[o + 12]);
    }
  }

  result(): OverlapNcc {
    const percent = (n: number) => (this.body ? (100 * n) / this.body : 0);
    return {
      before: this.before.ncc(),
      after: this.after.ncc(),
      beforePercent: percent(this.before.n),
      afterPercent: percent(this.after.n),
    };
  }
}
