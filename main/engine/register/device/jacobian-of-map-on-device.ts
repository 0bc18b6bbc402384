/**
 * The cascade's folding statistics on the GPU without its field: the Jacobian determinant of the whole
 * map x -> A x + Σ_c v_c(x) (stage-field.ts; the field that cascadeWarpOnDevice reads back) on the fixed
 * grid, each voxel's u and its neighbours' evaluated from the affine and the corrections where they
 * are needed (warp-on-device.ts cascadeMapWgsl), with all 11 variants of field/jacobian.ts
 * (jacobian-on-device.ts JACOBIAN_AT_WGSL), then reduced per row of the grid inside the mask
 * (count, Welford mean and M2, min, max, folded voxels, non-positive voxels per variant) and the rows
 * combined on the host in float64. Nothing of the size of the volume crosses the bus: the mask goes up
 * packed one bit per voxel (volume/bit-mask.ts) and 17 numbers per row come back. It replaces reading the
 * field back, uploading it again and reading two numbers per voxel (jacobianOnDevice) when only the
 * statistics are needed (the cascade's qa.json). float32 on the device: u as the warp computes it;
 * a determinant within float32 rounding of 0 may be counted differently from the host's float64.
 */
import * as tf from '@tensorflow/tfjs-core';
import { affineUniforms, FlatProgram, readAndDispose, runProgram, TRILINEAR_WGSL } from './flat-program.ts';
import { maxTensorBytes } from '../../compute/tf-backend.ts';
import { indexToWorldMatrix, type Affine3x4, type Geometry } from '../../volume/geometry.ts';
import type { Volume } from '../../volume/volume.ts';
import { packMask } from '../../volume/bit-mask.ts';
import { checkMask, type Field } from '../field/field.ts';
import { JACOBIAN_VARIANTS, type JacobianReport, type JacobianVariant } from '../field/jacobian.ts';
import { JACOBIAN_AT_WGSL, jacobianRotation } from './jacobian-on-device.ts';
import { cascadeMapWgsl, correctionUniforms, correctionUniformValues } from './warp-on-device.ts';

/** A JacobianReport's numbers (no per-voxel volumes). */
export type JacobianSummary = Omit<JacobianReport, 'det' | 'foldedMask'>;

/**
 * Per-row statistics: voxels counted, finite determinants, their mean, M2, min, max, folded voxels,
 * then the 11 variants' non-positive counts.
 */
const ROW_STATS = 7 + JACOBIAN_VARIANTS.length;

class JacobianOfMapProgram extends FlatProgram {
  variableNames: string[];
  uniforms: string;
  outputShape: number[];
  shaderKey: string;

  constructor(
    voxels: number,
    private readonly corrections: number,
  ) {
    super(voxels);
    this.variableNames = Array.from({ length: corrections }, (_, c) => `F${c}`);
    this.uniforms =
      'g0 : vec4<f32>, g1 : vec4<f32>, g2 : vec4<f32>, a0 : vec4<f32>, a1 : vec4<f32>, a2 : vec4<f32>, ' +
      'r0 : vec4<f32>, r1 : vec4<f32>, r2 : vec4<f32>, dims : vec3<i32>, k0 : i32, voxels : i32, ' +
      correctionUniforms(corrections);
    this.outputShape = [voxels, 2];
    this.shaderKey = `samJacobianOfMap_${corrections}`;
  }

  getUserCode(): string {
    return `
      ${TRILINEAR_WGSL}
      ${cascadeMapWgsl(this.corrections)}
      // u at a voxel of the fixed grid: the map minus the voxel's world point (as the warp's field)
      fn uAt(v : vec3<i32>) -> vec3<f32> {
        let iw = vec4<f32>(f32(v.x), f32(v.y), f32(v.z), 1.0);
        let xw3 = vec3<f32>(dot(uniforms.g0, iw), dot(uniforms.g1, iw), dot(uniforms.g2, iw));
        let y = mapPoint(vec4<f32>(xw3, 1.0));
        return vec3<f32>(y[0] - xw3.x, y[1] - xw3.y, y[2] - xw3.z);
      }
      ${JACOBIAN_AT_WGSL}
      fn main(index : i32) {
        if (index >= uniforms.voxels) {
          return;
        }
        let ni = uniforms.dims.x;
        let nj = uniforms.dims.y;
        let idx = vec3<i32>(index % ni, (index / ni) % nj, index / (ni * nj) + uniforms.k0);
        let r = jacobianAt(idx);
        setOutputAtIndex(index * 2, r.x);
        setOutputAtIndex(index * 2 + 1, r.y);
      }
    `;
  }
}

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
          if (uniforms.hasMask != 0) {
            let word = MB[row * uniforms.wordsPerRow + i / 32];
            if (((word >> u32(i % 32)) & 1) == 0) {
              continue;
            }
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
 * jacobianDeterminant(stageField(grid, affine, corrections), { mask })'s numbers on WebGPU (see the
 * header), one slab of whole slices per pair of dispatches; null when a correction does not fit one
 * device buffer.
 */
export async function jacobianOfMapOnDevice(
  grid: Geometry,
  affine: Affine3x4,
  corrections: Field[],
  options: { mask?: Volume; /** slices per dispatch (default: as the buffer cap allows) */ slabSlices?: number } = {},
): Promise<JacobianSummary | null> {
  if (tf.getBackend() !== 'webgpu')
    throw new Error(`jacobianOfMapOnDevice needs the webgpu backend (active: ${tf.getBackend()})`);
  const cap = Math.min(maxTensorBytes() ?? 2 ** 31, 2 ** 28);
  if (corrections.some((c) => c.data.length * 4 > cap)) return null;
  const mask = options.mask;
  if (mask) checkMask(mask, { ...grid, components: 3 } as Volume);
  const [ni, nj, nk] = grid.size;
  const slice = ni * nj;
  // the [voxels, 2] determinants of a slab under the cap
  const slabSlices = options.slabSlices ?? Math.max(1, Math.min(nk, Math.floor(cap / (8 * slice))));
  const packed = mask ? packMask(mask.data as Uint8Array, grid.size) : null;
  const MB = tf.tensor1d(packed ? packed.bits : new Int32Array(1), 'int32');
  const F = corrections.map((c) => tf.tensor1d(c.data));
  const rowStats: Float32Array[] = [];
  try {
    for (let k0 = 0; k0 < nk; k0 += slabSlices) {
      const slices = Math.min(slabSlices, nk - k0);
      const voxels = slices * slice;
      const J = runProgram(new JacobianOfMapProgram(voxels, corrections.length), F, [
        ...affineUniforms(indexToWorldMatrix(grid)),
        ...affineUniforms(affine),
        ...jacobianRotation(grid),
        { type: 'int32', data: [ni, nj, nk] },
        { type: 'int32', data: [k0] },
        { type: 'int32', data: [voxels] },
        ...correctionUniformValues(corrections),
      ]);
      try {
        const rows = slices * nj;
        const stats = runProgram(
          new JacobianRowStatsProgram(rows),
          [J, MB],
          [
            { type: 'int32', data: [ni, nj, nk] },
            { type: 'int32', data: [k0] },
            { type: 'int32', data: [rows] },
            { type: 'int32', data: [packed ? packed.wordsPerRow : 0] },
            { type: 'int32', data: [packed ? 1 : 0] },
          ],
        );
        rowStats.push(await readAndDispose(stats));
      } finally {
        J.dispose();
      }
    }
  } finally {
    tf.dispose([MB, ...F]);
  }
  return combineRowStats(rowStats);
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
