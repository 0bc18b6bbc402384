/**
 * masked-ncc.ts on the GPU for the cascade's QA, from the warp's slab output (warp-on-device.ts
 * 'warp+unwarped': channel 3 the warped moving image, 4 the unwarped one) and the fixed image on the
 * device: one thread per row of the fixed grid accumulates, over the row's voxels inside the mask
 * (packed one bit per voxel, volume/bit-mask.ts), the count, the three means and the centred second
 * moments and co-moments (Welford's update, float32 over at most one row); the rows are combined on the
 * host in float64 (Chan et al.'s pairwise update). So the unwarped image need not come back at all,
 * and the NCC sums are not host loops over the volume. Values are the warp's float32 samples, not
 * rounded to the moving image's voxel type as the read-back images are (a difference of about 1e-7
 * in the NCC).
 */
import * as tf from '@tensorflow/tfjs-core';
import { FlatProgram, readAndDispose } from './flat-program.ts';
import { runWebgpuProgram } from '../../compute/run-webgpu-program.ts';
import { MASK_BIT_WGSL, SLAB_ROW_UNIFORMS, slabRowUniforms, type MaskOnDevice } from './mask-on-device.ts';

/** Per row: n, means of f, a, b, then Sff, Saa, Sbb, Sfa, Sfb. */
const ROW_MOMENTS = 9;

class NccRowMomentsProgram extends FlatProgram {
  variableNames = ['O', 'FX', 'MB'];
  uniforms = SLAB_ROW_UNIFORMS;
  outputShape: number[];
  shaderKey = 'samNccRowMoments';

  constructor(rows: number) {
    super(rows);
    this.outputShape = [rows, ROW_MOMENTS];
  }

  getUserCode(): string {
    return `
      ${MASK_BIT_WGSL}
      fn main(index : i32) {
        if (index >= uniforms.rows) {
          return;
        }
        let ni = uniforms.dims.x;
        let nc = uniforms.channels;
        // the row in the whole grid (mask, fixed image) and in the slab (O)
        let row = index + uniforms.dims.y * uniforms.k0;
        var n = 0.0;
        var mf = 0.0;
        var ma = 0.0;
        var mb = 0.0;
        var sff = 0.0;
        var saa = 0.0;
        var sbb = 0.0;
        var sfa = 0.0;
        var sfb = 0.0;
        for (var i = 0; i < ni; i = i + 1) {
          if (!inMask(row, i)) {
            continue;
          }
          let f = FX[row * ni + i];
          let v = ((index + uniforms.rowOffset) * ni + i) * nc;
          let a = O[v + 3];
          let b = O[v + 4];
          n = n + 1.0;
          let df = f - mf;
          let da = a - ma;
          let db = b - mb;
          mf = mf + df / n;
          ma = ma + da / n;
          mb = mb + db / n;
          sff = sff + df * (f - mf);
          saa = saa + da * (a - ma);
          sbb = sbb + db * (b - mb);
          sfa = sfa + df * (a - ma);
          sfb = sfb + df * (b - mb);
        }
        let o = index * ${ROW_MOMENTS};
        setOutputAtIndex(o, n);
        setOutputAtIndex(o + 1, mf);
        setOutputAtIndex(o + 2, ma);
        setOutputAtIndex(o + 3, mb);
        setOutputAtIndex(o + 4, sff);
        setOutputAtIndex(o + 5, saa);
        setOutputAtIndex(o + 6, sbb);
        setOutputAtIndex(o + 7, sfa);
        setOutputAtIndex(o + 8, sfb);
      }
    `;
  }
}

/** Running co-moments of the fixed image f, the warped image a and the unwarped image b. */
export class NccMoments {
  private n = 0;
  private m = [0, 0, 0];
  // Sff, Saa, Sbb, Sfa, Sfb
  private s = [0, 0, 0, 0, 0];

  /**
   * Adds a slab's rows: `slab` the warp's [voxels, channels] output whose row `rowOffset` is the first
   * row of fixed slice k0 (whole rows), `fixed` the fixed image's voxels on the device, `mask` the
   * body mask on the device.
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
    const out = runWebgpuProgram(
      new NccRowMomentsProgram(rows),
      [slab, fixed, mask.bits],
      slabRowUniforms(mask, k0, rows, channels, rowOffset),
    );
    const r = await readAndDispose(out);
    for (let o = 0; o < r.length; o += ROW_MOMENTS) {
      const nb = r[o];
      if (nb === 0) continue;
      const n = this.n + nb;
      const d = [r[o + 1] - this.m[0], r[o + 2] - this.m[1], r[o + 3] - this.m[2]];
      const w = (this.n * nb) / n;
      this.s[0] += r[o + 4] + d[0] * d[0] * w;
      this.s[1] += r[o + 5] + d[1] * d[1] * w;
      this.s[2] += r[o + 6] + d[2] * d[2] * w;
      this.s[3] += r[o + 7] + d[0] * d[1] * w;
      this.s[4] += r[o + 8] + d[0] * d[2] * w;
      for (let c = 0; c < 3; c++) this.m[c] += (d[c] * nb) / n;
      this.n = n;
    }
  }

  /** NCC of the fixed image with the warped ('after') and the unwarped ('before') moving image. */
  result(): { before: number; after: number } {
    const [ff, aa, bb, fa, fb] = this.s;
    // (an empty mask: NaN, as masked-ncc.ts)
    if (this.n === 0) return { before: NaN, after: NaN };
    return { before: fb / Math.sqrt(ff * bb || 1), after: fa / Math.sqrt(ff * aa || 1) };
  }
}
