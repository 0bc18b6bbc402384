/**
 * field/jacobian.ts on the GPU: the same determinants (central, the 8 one-sided, the two star
 * tetrahedra; variants skipped where a neighbour is missing) of x -> x + u(x), per voxel in one WGSL
 * dispatch per slab of slices (each slab uploaded with one slice of halo on either side, so any field
 * fits the device's buffers), read back as the central determinant and an 11-bit mask of the variants
 * that are <= 0; the statistics and counts are then made on the host exactly as jacobianDeterminant
 * makes them. float32 on the device: a determinant within float32 rounding of 0 may be counted
 * differently from the host's float64.
 */
import * as tf from '@tensorflow/tfjs-core';
import { FlatProgram } from './flat-program.ts';
import { runWebgpuProgram } from '../../compute/run-webgpu-program.ts';
import { maxTensorBytes } from '../../compute/tf-backend.ts';
import { voxelCount, type Volume } from '../../volume/volume.ts';
import { checkField, checkMask } from '../field/field.ts';
import { JACOBIAN_VARIANTS, jacobianReport, type JacobianReport, type JacobianVariant } from '../field/jacobian.ts';
import { JacobianStats, type JacobianSummary } from './jacobian-stats-on-device.ts';
import { maskOnDevice } from './mask-on-device.ts';

/**
 * WGSL: `fn jacobianAt(idx) -> vec2<f32>`, the central determinant and the bits of the variants that are
 * <= 0 (bit 0 central, 1-8 the one-sided in JACOBIAN_VARIANTS' order, 9-10 the stars) of x -> x + u(x)
 * at voxel idx of a grid of `dims`, from the program's `fn uAt(idx : vec3<i32>) -> vec3<f32>` (u at a
 * voxel, LPS mm; called for the voxel and its 12 neighbours that exist) and the rows r0..r2 of
 * R = S^-1 D^T (uniforms).
 */
const JACOBIAN_AT_WGSL = `
      // R (u[p] - u[q]) in index units
      fn rot(d : vec3<f32>) -> vec3<f32> {
        return vec3<f32>(dot(uniforms.r0.xyz, d), dot(uniforms.r1.xyz, d), dot(uniforms.r2.xyz, d));
      }
      fn det3(a : vec3<f32>, b : vec3<f32>, c : vec3<f32>) -> f32 {
        return dot(a, cross(b, c));
      }
      fn jacobianAt(idx : vec3<i32>) -> vec2<f32> {
        let ni = uniforms.dims.x;
        let nj = uniforms.dims.y;
        let nk = uniforms.dims.z;
        // u at the voxel and the neighbours that exist, from one call site of uAt (a small shader
        // when uAt evaluates a map): 0 the voxel, 1-3 +i +j +k, 4-6 -i -j -k, 7-9 star 1, 10-12 star 2
        var offsets = array<vec3<i32>, 13>(vec3<i32>(0, 0, 0), vec3<i32>(1, 0, 0), vec3<i32>(0, 1, 0),
          vec3<i32>(0, 0, 1), vec3<i32>(-1, 0, 0), vec3<i32>(0, -1, 0), vec3<i32>(0, 0, -1), vec3<i32>(-1, -1, 0),
          vec3<i32>(-1, 0, -1), vec3<i32>(0, -1, -1), vec3<i32>(1, 1, 0), vec3<i32>(0, 1, 1), vec3<i32>(1, 0, 1));
        var u : array<vec3<f32>, 13>;
        for (var n = 0; n < 13; n = n + 1) {
          let v = idx + offsets[n];
          if (all(v >= vec3<i32>(0)) && all(v < uniforms.dims)) {
            u[n] = uAt(v);
          }
        }
        let up = u[0];
        var fwd : array<vec3<f32>, 3>;
        var bwd : array<vec3<f32>, 3>;
        var cen : array<vec3<f32>, 3>;
        var hasPrev = vec3<bool>(false);
        var hasNext = vec3<bool>(false);
        for (var a = 0; a < 3; a = a + 1) {
          var e = vec3<f32>(0.0);
          e[a] = 1.0;
          let prev = idx[a] > 0;
          let next = idx[a] < uniforms.dims[a] - 1;
          hasPrev[a] = prev;
          hasNext[a] = next;
          var back = vec3<f32>(0.0);
          if (prev) {
            back = rot(up - u[4 + a]);
          }
          var w = vec3<f32>(0.0);
          if (next) {
            w = rot(u[1 + a] - up);
          } else if (prev) {
            w = back;
          }
          fwd[a] = e + w;
          if (prev) {
            bwd[a] = e + back;
          } else {
            bwd[a] = fwd[a];
          }
          cen[a] = (fwd[a] + bwd[a]) * 0.5;
        }
        let central = det3(cen[0], cen[1], cen[2]);
        var bits = 0;
        if (central <= 0.0) {
          bits = bits | 1;
        }
        for (var v = 0; v < 8; v = v + 1) {
          let bi = (v >> 2u) & 1;
          let bj = (v >> 1u) & 1;
          let bk = v & 1;
          if (!select(hasNext.x, hasPrev.x, bi == 1) && ni > 1) { continue; }
          if (!select(hasNext.y, hasPrev.y, bj == 1) && nj > 1) { continue; }
          if (!select(hasNext.z, hasPrev.z, bk == 1) && nk > 1) { continue; }
          let d = det3(select(fwd[0], bwd[0], bi == 1), select(fwd[1], bwd[1], bj == 1), select(fwd[2], bwd[2], bk == 1));
          if (d <= 0.0) {
            bits = bits | (1 << u32(v + 1));
          }
        }
        let full = ni > 1 && nj > 1 && nk > 1;
        if (full && all(hasPrev)) {
          // star 1: edges -(1,1,0), -(1,0,1), -(0,1,1); each edge matrix has determinant 2
          let a = vec3<f32>(-1.0, -1.0, 0.0) + rot(u[7] - up);
          let b = vec3<f32>(-1.0, 0.0, -1.0) + rot(u[8] - up);
          let c = vec3<f32>(0.0, -1.0, -1.0) + rot(u[9] - up);
          if (det3(a, b, c) / 2.0 <= 0.0) {
            bits = bits | (1 << 9u);
          }
        }
        if (full && all(hasNext)) {
          let a = vec3<f32>(1.0, 1.0, 0.0) + rot(u[10] - up);
          let b = vec3<f32>(0.0, 1.0, 1.0) + rot(u[11] - up);
          let c = vec3<f32>(1.0, 0.0, 1.0) + rot(u[12] - up);
          if (det3(a, b, c) / 2.0 <= 0.0) {
            bits = bits | (1 << 10u);
          }
        }
        return vec2<f32>(central, f32(bits));
      }`;

/** The uniforms R (rows of S^-1 D^T) of JACOBIAN_AT_WGSL for a grid. */
function jacobianRotation(g: { direction: readonly number[]; spacing: readonly number[] }): {
  type: string;
  data: number[];
}[] {
  const D = g.direction;
  const sp = g.spacing;
  return [0, 1, 2].map((a) => ({ type: 'float32', data: [0, 1, 2].map((r) => D[r * 3 + a] / sp[a]).concat(0) }));
}

class JacobianProgram extends FlatProgram {
  variableNames = ['U'];
  uniforms =
    'r0 : vec4<f32>, r1 : vec4<f32>, r2 : vec4<f32>, dims : vec3<i32>, slabStart : i32, k0 : i32, voxels : i32, stride : i32,';
  outputShape: number[];
  shaderKey = 'samJacobianVariants';

  constructor(voxels: number) {
    super(voxels);
    this.outputShape = [voxels, 2];
  }

  getUserCode(): string {
    return `
      // u at a voxel of the slab in U (the first 3 of stride numbers per voxel)
      fn uAt(v : vec3<i32>) -> vec3<f32> {
        let q = v.x + uniforms.dims.x * (v.y + uniforms.dims.y * (v.z - uniforms.slabStart));
        let s = uniforms.stride * q;
        return vec3<f32>(U[s], U[s + 1], U[s + 2]);
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

/**
 * The per-voxel results [voxels, 2] (central determinant, bits of the non-positive variants) for the
 * fixed slices from k0 of a grid, from U: u of slices slabStart.. (at least one slice beyond k0's range
 * on either side where the grid has one), `stride` numbers per voxel with u first.
 */
export function jacobianSlab(
  U: tf.Tensor,
  stride: number,
  grid: { size: readonly number[]; direction: readonly number[]; spacing: readonly number[] },
  slabStart: number,
  k0: number,
  voxels: number,
): tf.Tensor {
  return runWebgpuProgram(
    new JacobianProgram(voxels),
    [U],
    [
      ...jacobianRotation(grid),
      { type: 'int32', data: [...grid.size] },
      { type: 'int32', data: [slabStart] },
      { type: 'int32', data: [k0] },
      { type: 'int32', data: [voxels] },
      { type: 'int32', data: [stride] },
    ],
  );
}

/**
 * The field's Jacobian results slab by slab on the device ([voxels, 2] each, for slices k0 .. k1 - 1,
 * disposed after `each`): a slab's field with one halo slice either side and its output under the
 * buffer cap, unless `slabSlices` says how many slices.
 */
async function jacobianSlabs(
  field: Volume,
  what: string,
  slabSlices: number | undefined,
  each: (J: tf.Tensor, k0: number, k1: number) => Promise<void>,
): Promise<void> {
  if (tf.getBackend() !== 'webgpu') throw new Error(`${what} needs the webgpu backend (active: ${tf.getBackend()})`);
  checkField(field);
  const [ni, nj, nk] = field.size;
  const slice = ni * nj;
  const cap = Math.min(maxTensorBytes() ?? 2 ** 31, 2 ** 28);
  const slabs = slabSlices ?? Math.max(1, Math.min(nk, Math.floor(cap / (12 * slice)) - 2));
  const u = field.data as Float32Array;
  for (let k0 = 0; k0 < nk; k0 += slabs) {
    const k1 = Math.min(nk, k0 + slabs);
    const s0 = Math.max(0, k0 - 1);
    const s1 = Math.min(nk, k1 + 1);
    const U = tf.tensor1d(u.subarray(3 * slice * s0, 3 * slice * s1));
    try {
      const J = jacobianSlab(U, 3, field, s0, k0, (k1 - k0) * slice);
      try {
        await each(J, k0, k1);
      } finally {
        J.dispose();
      }
    } finally {
      U.dispose();
    }
  }
}

/** jacobianDeterminant(field, { mask }) computed on the WebGPU backend (see the header). */
export async function jacobianOnDevice(
  field: Volume,
  options: {
    mask?: Volume;
    /** slices per dispatch (default: as many as the buffer cap allows) */ slabSlices?: number;
  } = {},
): Promise<JacobianReport> {
  const mask = options.mask;
  if (mask) checkMask(mask, field);
  const slice = field.size[0] * field.size[1];
  const nvox = voxelCount(field.size);
  const det = new Float32Array(nvox);
  const bits = new Uint16Array(nvox);
  await jacobianSlabs(field, 'jacobianOnDevice', options.slabSlices, async (J, k0, k1) => {
    const d = (await J.data()) as Float32Array;
    for (let v = 0, o = k0 * slice; v < (k1 - k0) * slice; v++, o++) {
      det[o] = d[2 * v];
      bits[o] = d[2 * v + 1];
    }
  });
  const foldedData = new Uint8Array(nvox);
  const nonPositive = Object.fromEntries(JACOBIAN_VARIANTS.map((v) => [v, 0])) as Record<JacobianVariant, number>;
  let voxelsCounted = 0;
  let folded = 0;
  for (let n = 0; n < nvox; n++) {
    if (mask && mask.data[n] === 0) continue;
    voxelsCounted++;
    const b = bits[n];
    if (!b) continue;
    foldedData[n] = 1;
    folded++;
    for (let v = 0; v < JACOBIAN_VARIANTS.length; v++) if (b & (1 << v)) nonPositive[JACOBIAN_VARIANTS[v]]++;
  }
  return jacobianReport(field, det, foldedData, { voxels: voxelsCounted, folded, nonPositive }, mask);
}

/**
 * jacobianDeterminant(field, { mask })'s numbers alone (no per-voxel volumes), reduced on the device
 * (jacobian-stats-on-device.ts): only per-row statistics come back. The deform stage's fold check
 * reads the folded share of each field it tries this way.
 */
export async function jacobianSummaryOnDevice(
  field: Volume,
  options: {
    mask?: Volume;
    /** slices per dispatch (default: as many as the buffer cap allows) */ slabSlices?: number;
  } = {},
): Promise<JacobianSummary> {
  if (options.mask) checkMask(options.mask, field);
  const mask = options.mask && tf.getBackend() === 'webgpu' ? maskOnDevice(options.mask) : null;
  const stats = new JacobianStats(field, mask);
  try {
    await jacobianSlabs(field, 'jacobianSummaryOnDevice', options.slabSlices, (J, k0, k1) => stats.add(J, k0, k1 - k0));
    return stats.result();
  } finally {
    stats.dispose();
    mask?.dispose();
  }
}
