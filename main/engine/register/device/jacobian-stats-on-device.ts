/**
 * Folding statistics of per-voxel Jacobian results on the device ([voxels, 2]: the central determinant
 * and the bits of the non-positive variants, jacobian-on-device.ts JACOBIAN_AT_WGSL) without reading
 * them back: one thread per row of the grid sums the row's voxels inside the mask (packed one bit per
 * voxel, volume/bit-mask.ts): count, Welford mean and M2 of the finite determinants, min, max, folded
 * voxels, non-positive voxels per variant; the rows come back (17 numbers each) and are combined on
 * the host in float64 (Chan et al.'s pairwise update) into jacobianDeterminant's numbers.
 */
import * as tf from '@tensorflow/tfjs-core';
import { FlatProgram, readAndDispose } from './flat-program.ts';
import { runWebgpuProgram } from '../../compute/run-webgpu-program.ts';
import { MASK_BIT_WGSL, type MaskOnDevice } from './mask-on-device.ts';
import type { Geometry } from '../../volume/geometry.ts';
import { JACOBIAN_VARIANTS, type JacobianReport, type JacobianVariant } from '../field/jacobian.ts';

/** A JacobianReport's numbers (no per-voxel volumes). */
export type JacobianSummary = Omit<JacobianReport, 'det' | 'foldedMask'>;

/**
 * Per-row statistics: voxels counted, finite determinants, their mean, M2, min, max, folded voxels,
 * then the 11 variants' non-positive counts.
 */
const ROW_STATS = 7 + JACOBIAN_VARIANTS.length;

/** One thread per row (along i) of a slab: the statistics of its voxels inside the packed mask. */
class JacobianRowStatsProgram extends FlatProgram {
  variableNames = ['J', 'MB'];
  uniforms = 'dims : vec3<i32>, k0 : i32, rows : i32, wordsPerRow : i32, hasMask : i32,';
  outputShape: number[];
  shaderKey = 'samJacobianRowStats';

  constructor(rows: number) {
    super(rows);
    this.outputShape = [rows, ROW_STATS];
  }

  getUserCode(): string {
    return `
      ${MASK_BIT_WGSL}
      fn main(index : i32) {
        if (index >= uniforms.rows) {
          return;
        }
        let ni = uniforms.dims.x;
        let nj = uniforms.dims.y;
        // the row in the whole grid (for the mask) and its first voxel in the slab (for J)
        let row = index + nj * uniforms.k0;
        var counted = 0.0;
        var n = 0.0;
        var mean = 0.0;
        var m2 = 0.0;
        var lo = 3.4e38;
        var hi = -3.4e38;
        var folded = 0.0;
        var counts : array<f32, ${JACOBIAN_VARIANTS.length}>;
        for (var i = 0; i < ni; i = i + 1) {
          if (uniforms.hasMask != 0 && !inMask(row, i)) {
            continue;
          }
          counted = counted + 1.0;
          let v = index * ni + i;
          let det = J[2 * v];
          let bits = i32(J[2 * v + 1]);
          if (bits != 0) {
            folded = folded + 1.0;
            for (var b = 0; b < ${JACOBIAN_VARIANTS.length}; b = b + 1) {
              if (((bits >> u32(b)) & 1) != 0) {
                counts[b] = counts[b] + 1.0;
              }
            }
          }
          // (the statistics skip a non-finite determinant, as valueStats does; counts keep it)
          if (((bitcast<u32>(det) >> 23u) & 255u) == 255u) {
            continue;
          }
          n = n + 1.0;
          let d = det - mean;
          mean = mean + d / n;
          m2 = m2 + d * (det - mean);
          lo = min(lo, det);
          hi = max(hi, det);
        }
        let o = index * ${ROW_STATS};
        setOutputAtIndex(o, counted);
        setOutputAtIndex(o + 1, n);
        setOutputAtIndex(o + 2, mean);
        setOutputAtIndex(o + 3, m2);
        setOutputAtIndex(o + 4, lo);
        setOutputAtIndex(o + 5, hi);
        setOutputAtIndex(o + 6, folded);
        for (var b = 0; b < ${JACOBIAN_VARIANTS.length}; b = b + 1) {
          setOutputAtIndex(o + 7 + b, counts[b]);
        }
      }
    `;
  }
}

/**
 * Accumulates slabs' row statistics inside `mask` (all voxels without one; the caller owns the mask);
 * dispose() frees what it made.
 */
export class JacobianStats {
  private readonly maskBits: tf.Tensor;
  /** (a one-word stand-in for the programs' mask input when there is no mask) */
  private readonly noMask: tf.Tensor | null;
  private readonly rows: Float32Array[] = [];

  constructor(
    private readonly grid: Geometry,
    private readonly mask: MaskOnDevice | null,
  ) {
    this.noMask = mask ? null : tf.tensor1d(new Int32Array(1), 'int32');
    this.maskBits = mask ? mask.bits : this.noMask!;
  }

  /** Adds the rows of `J` ([voxels, 2] for fixed slices k0 .. k0 + slices - 1). */
  async add(J: tf.Tensor, k0: number, slices: number): Promise<void> {
    const [ni, nj, nk] = this.grid.size;
    const rows = slices * nj;
    const stats = runWebgpuProgram(
      new JacobianRowStatsProgram(rows),
      [J, this.maskBits],
      [
        { type: 'int32', data: [ni, nj, nk] },
        { type: 'int32', data: [k0] },
        { type: 'int32', data: [rows] },
        { type: 'int32', data: [this.mask ? this.mask.packed.wordsPerRow : 0] },
        { type: 'int32', data: [this.mask ? 1 : 0] },
      ],
    );
    this.rows.push(await readAndDispose(stats));
  }

  result(): JacobianSummary {
    return combineRowStats(this.rows);
  }

  dispose(): void {
    this.noMask?.dispose();
  }
}

/** The rows' statistics combined in float64 (Chan et al.'s pairwise update of the mean and M2). */
function combineRowStats(parts: Float32Array[]): JacobianSummary {
  let voxels = 0;
  let n = 0;
  let mean = 0;
  let m2 = 0;
  let min = Infinity;
  let max = -Infinity;
  let folded = 0;
  const nonPositive = Object.fromEntries(JACOBIAN_VARIANTS.map((v) => [v, 0])) as Record<JacobianVariant, number>;
  for (const s of parts)
    for (let o = 0; o < s.length; o += ROW_STATS) {
      voxels += s[o];
      folded += s[o + 6];
      for (let b = 0; b < JACOBIAN_VARIANTS.length; b++) nonPositive[JACOBIAN_VARIANTS[b]] += s[o + 7 + b];
      const nb = s[o + 1];
      if (nb === 0) continue;
      const delta = s[o + 2] - mean;
      const total = n + nb;
      mean += (delta * nb) / total;
      m2 += s[o + 3] + (delta * delta * n * nb) / total;
      n = total;
      if (s[o + 4] < min) min = s[o + 4];
      if (s[o + 5] > max) max = s[o + 5];
    }
  const none = n === 0;
  return {
    voxels,
    folded,
    foldedPercent: voxels > 0 ? (100 * folded) / voxels : 0,
    min: none ? NaN : min,
    max: none ? NaN : max,
    mean: none ? NaN : mean,
    std: none ? NaN : Math.sqrt(m2 / n),
    nonPositive,
  };
}
