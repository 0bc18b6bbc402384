/**
 * The cascade's last dense step on the GPU: the whole map as one displacement field on the fixed grid
 * (stage-field.ts: u(x) = A x - x + Σ_s v_s(x), each correction read trilinearly with the 'border'
 * rule) and the moving image warped by it (field/warp.ts: trilinear, `fill` outside the moving
 * image's physical extent, the voxel centres +- half a voxel), in one WGSL dispatch per slab of fixed
 * slices on tfjs' WebGPU backend, read back as the host functions' Field and Volume. float32 on the
 * device: positions agree with the host's float64 to about 1e-4 mm, so a point within that of the
 * extent's faces may be sampled where the host fills it or the reverse.
 * Returns null when the moving image does not fit one device buffer (the caller warps on the host).
 */
import * as tf from '@tensorflow/tfjs-core';
import { affineUniforms, FlatProgram, readAndDispose, TRILINEAR_WGSL } from './flat-program.ts';
import { runWebgpuProgram } from '../../compute/run-webgpu-program.ts';
import { maxTensorBytes } from '../../compute/tf-backend.ts';
import { INTEGER_RANGE } from '../../volume/interpolate.ts';
import {
  indexToWorldMatrix,
  sameGrid,
  worldToIndexMatrix,
  type Affine3x4,
  type Geometry,
} from '../../volume/geometry.ts';
import { allocateVoxels, makeVolume, voxelTypeOf, type Vec3, type Volume } from '../../volume/volume.ts';
import { checkMask, type Field } from '../field/field.ts';
import { voxelsOnDevice, type DeviceImages } from '../../compute/device-images.ts';
import { maskOnDevice, type MaskOnDevice } from './mask-on-device.ts';
import { NccMoments } from './masked-ncc-on-device.ts';
import { OverlapMoments } from './overlap-ncc-on-device.ts';
import type { OverlapNcc } from '../overlap-ncc.ts';
import { JacobianStats, type JacobianSummary } from './jacobian-stats-on-device.ts';
import { jacobianSlab } from './jacobian-on-device.ts';
import { profiler } from '../../util/profile.ts';

/**
 * What a slab program writes per voxel: 'field' u (3); 'warp' u and the warped moving value (4);
 * 'warp+unwarped' those and the moving value at the voxel's own world point (5); 'image' the warped
 * moving value alone (1).
 */
export type SlabOutputs = 'field' | 'warp' | 'warp+unwarped' | 'image';

const SLAB_CHANNELS: Record<SlabOutputs, number> = { field: 3, warp: 4, 'warp+unwarped': 5, image: 1 };

const SAMPLE_MOVING = `
      // the moving image at world point y (trilinear; the border values up to half a voxel beyond the
      // outermost centres; fill outside that physical extent, as field/warp.ts)
      fn sampleMoving(y : vec3<f32>) -> f32 {
        let yw = vec4<f32>(y, 1.0);
        let p = vec3<f32>(dot(uniforms.m0, yw), dot(uniforms.m1, yw), dot(uniforms.m2, yw));
        let hi = vec3<f32>(uniforms.mdims - vec3<i32>(1));
        if (any(p < vec3<f32>(-0.5)) || any(p > hi + vec3<f32>(0.5))) {
          return uniforms.fill;
        }
        let f0 = clamp(floor(p), vec3<f32>(0.0), max(hi - vec3<f32>(1.0), vec3<f32>(0.0)));
        let fr = clamp(p - f0, vec3<f32>(0.0), vec3<f32>(1.0));
        let i0 = vec3<i32>(f0);
        let d = vec3<i32>(select(0, 1, uniforms.mdims.x > 1), select(0, uniforms.mdims.x, uniforms.mdims.y > 1),
          select(0, uniforms.mdims.x * uniforms.mdims.y, uniforms.mdims.z > 1));
        let q = i0.x + uniforms.mdims.x * (i0.y + uniforms.mdims.y * i0.z);
        return trilinear(M[q], M[q + d.x], M[q + d.y], M[q + d.y + d.x], M[q + d.z], M[q + d.z + d.x],
          M[q + d.z + d.y], M[q + d.z + d.y + d.x], fr);
      }`;

/**
 * WGSL: `fn mapPoint(xw : vec4<f32>) -> array<f32, 3>`, the cascade's map of a fixed world point (x, 1):
 * the affine (uniforms a0..a2) plus each correction F<c> read trilinearly at the point with the 'border'
 * rule (its world-to-index rows c<c>0..c<c>2 and size c<c>dims: correctionUniforms). Needs TRILINEAR_WGSL.
 */
function cascadeMapWgsl(corrections: number): string {
  const corr = Array.from(
    { length: corrections },
    (_, c) => `
        {
          let p = vec3<f32>(dot(uniforms.c${c}0, xw), dot(uniforms.c${c}1, xw), dot(uniforms.c${c}2, xw));
          let hi = vec3<f32>(uniforms.c${c}dims - vec3<i32>(1));
          let f0 = clamp(floor(p), vec3<f32>(0.0), max(hi - vec3<f32>(1.0), vec3<f32>(0.0)));
          let fr = clamp(p - f0, vec3<f32>(0.0), vec3<f32>(1.0));
          let i0 = vec3<i32>(f0);
          let d = vec3<i32>(select(0, 3, uniforms.c${c}dims.x > 1), select(0, 3 * uniforms.c${c}dims.x, uniforms.c${c}dims.y > 1),
            select(0, 3 * uniforms.c${c}dims.x * uniforms.c${c}dims.y, uniforms.c${c}dims.z > 1));
          let b = 3 * (i0.x + uniforms.c${c}dims.x * (i0.y + uniforms.c${c}dims.y * i0.z));
          for (var a = 0; a < 3; a = a + 1) {
            let q = b + a;
            let v = trilinear(F${c}[q], F${c}[q + d.x], F${c}[q + d.y], F${c}[q + d.y + d.x], F${c}[q + d.z],
              F${c}[q + d.z + d.x], F${c}[q + d.z + d.y], F${c}[q + d.z + d.y + d.x], fr);
            y[a] = y[a] + v;
          }
        }`,
  ).join('');
  return `
      fn mapPoint(xw : vec4<f32>) -> array<f32, 3> {
        var y = array<f32, 3>(dot(uniforms.a0, xw), dot(uniforms.a1, xw), dot(uniforms.a2, xw));
        ${corr}
        return y;
      }`;
}

/** The uniform declarations of cascadeMapWgsl's corrections (after a0..a2, declared by the program). */
function correctionUniforms(corrections: number): string {
  return Array.from(
    { length: corrections },
    (_, c) => `c${c}0 : vec4<f32>, c${c}1 : vec4<f32>, c${c}2 : vec4<f32>, c${c}dims : vec3<i32>, `,
  ).join('');
}

/** The values of correctionUniforms for the corrections' grids. */
function correctionUniformValues(corrections: Geometry[]): { type: string; data: number[] }[] {
  return corrections.flatMap((c) => [...affineUniforms(worldToIndexMatrix(c)), { type: 'int32', data: [...c.size] }]);
}

class CascadeWarpProgram extends FlatProgram {
  variableNames: string[];
  uniforms: string;
  outputShape: number[];
  shaderKey: string;

  constructor(
    voxels: number,
    private readonly corrections: number,
    private readonly outputs: SlabOutputs,
  ) {
    super(voxels);
    this.variableNames = [
      ...(outputs === 'field' ? [] : ['M']),
      ...Array.from({ length: corrections }, (_, c) => `F${c}`),
    ];
    this.uniforms =
      'g0 : vec4<f32>, g1 : vec4<f32>, g2 : vec4<f32>, a0 : vec4<f32>, a1 : vec4<f32>, a2 : vec4<f32>, ' +
      'm0 : vec4<f32>, m1 : vec4<f32>, m2 : vec4<f32>, mdims : vec3<i32>, fixedDims : vec3<i32>, k0 : i32, voxels : i32, fill : f32, ' +
      correctionUniforms(corrections);
    this.outputShape = [voxels, SLAB_CHANNELS[outputs]];
    this.shaderKey = `samCascadeWarp_${corrections}_${outputs}`;
  }

  getUserCode(): string {
    return `
      ${TRILINEAR_WGSL}
      ${cascadeMapWgsl(this.corrections)}
${this.outputs === 'field' ? '' : SAMPLE_MOVING}
      fn main(index : i32) {
        if (index >= uniforms.voxels) {
          return;
        }
        let ni = uniforms.fixedDims.x;
        let nj = uniforms.fixedDims.y;
        let i = index % ni;
        let j = (index / ni) % nj;
        let k = index / (ni * nj) + uniforms.k0;
        let iw = vec4<f32>(f32(i), f32(j), f32(k), 1.0);
        let xw3 = vec3<f32>(dot(uniforms.g0, iw), dot(uniforms.g1, iw), dot(uniforms.g2, iw));
        let xw = vec4<f32>(xw3, 1.0);
        let y = mapPoint(xw);
${this.outputs === 'image' ? '        setOutputAtIndex(index, sampleMoving(vec3<f32>(y[0], y[1], y[2])));' : this.fieldAndWarp()}
      }
    `;
  }

  private fieldAndWarp(): string {
    return `
        let nc = ${SLAB_CHANNELS[this.outputs]};
        setOutputAtIndex(index * nc, y[0] - xw3.x);
        setOutputAtIndex(index * nc + 1, y[1] - xw3.y);
        setOutputAtIndex(index * nc + 2, y[2] - xw3.z);
        ${this.outputs === 'field' ? '' : 'setOutputAtIndex(index * nc + 3, sampleMoving(vec3<f32>(y[0], y[1], y[2])));'}
        ${this.outputs === 'warp+unwarped' ? 'setOutputAtIndex(index * nc + 4, sampleMoving(xw3));' : ''}`;
  }
}

/**
 * Warped values as the moving image's integer type holds them (`range`: INTEGER_RANGE of that type;
 * none for a float type): rounded by Math.round's rule, half up, as the host's warp (tf.round rounds
 * half to even), and clamped.
 */
function asVoxelType<T extends tf.Tensor>(x: T, range: readonly [number, number] | undefined): T {
  return range ? (tf.clipByValue(tf.floor(tf.add(x, 0.5)), range[0], range[1]) as T) : x;
}

/**
 * One slab (fixed slices from k0, `voxels` voxels) of the map and the warp: [voxels, 4] = u (mm, LPS)
 * and the moving value, `M` the moving image's voxels on the device (its geometry from `moving`);
 * 'warp+unwarped': [voxels, 5], the moving value at the fixed voxel's own world point last; 'field':
 * [voxels, 3], u alone (M and `moving` unused); 'image': [voxels, 1], the moving value alone.
 */
export function warpSlab(
  fixedGrid: Geometry,
  M: tf.Tensor | null,
  moving: Geometry,
  affine: Affine3x4,
  F: tf.Tensor[],
  corrections: Geometry[],
  fill: number,
  k0: number,
  voxels: number,
  outputs: SlabOutputs = 'warp',
): tf.Tensor2D {
  const program = new CascadeWarpProgram(voxels, corrections.length, outputs);
  const uniforms = [
    ...affineUniforms(indexToWorldMatrix(fixedGrid)),
    ...affineUniforms(affine),
    ...affineUniforms(worldToIndexMatrix(moving)),
    { type: 'int32', data: [...moving.size] },
    { type: 'int32', data: [...fixedGrid.size] },
    { type: 'int32', data: [k0] },
    { type: 'int32', data: [voxels] },
    { type: 'float32', data: [fill] },
    ...correctionUniformValues(corrections),
  ];
  if (outputs !== 'field' && !M) throw new Error(`warpSlab: '${outputs}' needs the moving image`);
  return runWebgpuProgram(program, outputs === 'field' ? F : [M!, ...F], uniforms) as tf.Tensor2D;
}

export interface CascadeWarp {
  field: Field;
  warped: Volume;
  /** With `unwarped`: the moving image on the fixed grid, untransformed (resample(moving, fixedGrid)), its voxel type. */
  unwarped?: Volume;
  /** With `ncc`: the fixed image's NCC with the unwarped ('before') and warped ('after') moving image in the mask. */
  ncc?: { before: number; after: number };
  /** With `ncc.overlap`: overlap-ncc.ts overlapNcc's numbers (where the moving image has data). */
  overlap?: OverlapNcc;
  /** With `jacobian`: jacobianDeterminant(field, { mask })'s numbers. */
  jacobian?: JacobianSummary;
}

/**
 * stageField(fixedGrid, affine, corrections) and warpVolume(moving, field, { fill }) on WebGPU (see
 * the header), and with `unwarped` the cascade's "before" image for its QA in the same dispatch; null
 * when the moving image or a correction does not fit one device buffer.
 */
export async function cascadeWarpOnDevice(
  fixedGrid: Geometry,
  moving: Volume,
  affine: Affine3x4,
  corrections: Field[],
  fill: number,
  options: {
    unwarped?: boolean;
    images?: DeviceImages;
    /**
     * The QA's NCC of the fixed image with the warped and the unwarped moving image inside `mask`; with
     * `overlap`, also over the mask's voxels where the moving image has data (overlap-ncc-on-device.ts).
     */
    ncc?: { fixed: Volume; mask: Volume; overlap?: boolean };
    /**
     * The Jacobian's statistics of the field inside `mask` (all voxels without one), from each slab's
     * field on the device (the slabs then carry one more slice on either side).
     */
    jacobian?: { mask?: Volume };
    /** Fixed slices per dispatch (default: as many as the buffer cap allows). */
    slabSlices?: number;
  } = {},
): Promise<CascadeWarp | null> {
  if (tf.getBackend() !== 'webgpu')
    throw new Error(`cascadeWarpOnDevice needs the webgpu backend (active: ${tf.getBackend()})`);
  if (moving.components !== 1) return null;
  const cap = maxTensorBytes() ?? 2 ** 31;
  if (moving.data.length * 4 > cap || corrections.some((c) => c.data.length * 4 > cap)) return null;
  const [ni, nj, nk] = fixedGrid.size;
  const slice = ni * nj;
  // output slabs of whole slices: [voxels, 4 or 5] float32 under the buffer cap (and 256 MB per read-back)
  const ncc = options.ncc;
  if (options.jacobian?.mask) checkMask(options.jacobian.mask, fixedGrid);
  if (ncc) {
    checkMask(ncc.mask, fixedGrid);
    if (!sameGrid(ncc.fixed, fixedGrid)) throw new Error('cascadeWarpOnDevice: the NCC image is not on the fixed grid');
  }
  const outputs: SlabOutputs = options.unwarped || ncc ? 'warp+unwarped' : 'warp';
  const nc = SLAB_CHANNELS[outputs];
  // channels read back: the unwarped image (the fifth) only when asked for
  const readChannels = options.unwarped ? nc : 4;
  // the Jacobian's finite differences need one slice beyond the slab on either side
  const halo = options.jacobian ? 1 : 0;
  const slabSlices =
    options.slabSlices ?? Math.max(1, Math.min(nk, Math.floor(Math.min(cap, 2 ** 28) / (4 * nc * slice)) - 2 * halo));
  // (from the registration's cache when given: not disposed here)
  const M = voxelsOnDevice(moving, options.images);
  const F = corrections.map((c) => tf.tensor1d(c.data));
  // (one slab: a view onto the read-back itself, no copy of the field)
  let fieldData: Float32Array | undefined;
  const outType = voxelTypeOf(moving.data);
  const warpedData = allocateVoxels(outType, slice * nk);
  const range = INTEGER_RANGE[outType];
  // the unwarped image in the moving image's voxel type, rounded and clamped as the host's resample
  const unwarpedData = options.unwarped ? allocateVoxels(outType, slice * nk) : null;
  // each mask on the device once (the cascade gives both reductions the same body mask)
  const masks = new Map<Volume, MaskOnDevice>();
  const onDevice = (m: Volume) => masks.get(m) ?? masks.set(m, maskOnDevice(m)).get(m)!;
  const nccMask = ncc ? onDevice(ncc.mask) : null;
  const jacobianMask = options.jacobian?.mask ? onDevice(options.jacobian.mask) : null;
  const FX = ncc ? voxelsOnDevice(ncc.fixed, options.images) : null;
  const moments = new NccMoments();
  const overlap = ncc?.overlap ? new OverlapMoments(fixedGrid, moving) : null;
  const jacobianStats = options.jacobian ? new JacobianStats(fixedGrid, jacobianMask) : null;
  const prof = profiler('cascade warp on device');
  try {
    for (let k0 = 0; k0 < nk; k0 += slabSlices) {
      const slices = Math.min(slabSlices, nk - k0);
      const voxels = slices * slice;
      // computed: slices s0 .. s1 - 1 (the halo); kept: k0 .. k0 + slices - 1
      const s0 = Math.max(0, k0 - halo);
      const s1 = Math.min(nk, k0 + slices + halo);
      const out = warpSlab(fixedGrid, M, moving, affine, F, corrections, fill, s0, (s1 - s0) * slice, outputs);
      prof.mark('uploads + warp dispatch');
      try {
        if (ncc) await moments.addSlab(out, nc, FX!, nccMask!, k0, slices * nj, (k0 - s0) * nj);
        if (overlap) await overlap.addSlab(out, nc, FX!, nccMask!, k0, slices * nj, (k0 - s0) * nj);
        prof.mark('warp + NCC moments (waited for)');
        if (jacobianStats) {
          // u is the first 3 of nc numbers per voxel of the slab from s0
          const J = jacobianSlab(out, nc, fixedGrid, s0, k0, voxels);
          try {
            await jacobianStats.add(J, k0, slices);
          } finally {
            J.dispose();
          }
          prof.mark('Jacobian statistics');
        }
      } catch (e) {
        out.dispose();
        throw e;
      }
      // repacked on the device: u (3 numbers a voxel), then the warped values (rounded and clamped to
      // the moving image's integer type, as the host's warp), then the unwarped ones when asked for,
      // so that the host copies whole blocks instead of picking channels voxel by voxel
      const packed = tf.tidy(() => {
        const kept = s0 !== k0 || s1 !== k0 + slices ? tf.slice(out, [(k0 - s0) * slice, 0], [voxels, nc]) : out;
        const channel = (c: number) => asVoxelType(tf.reshape(tf.slice(kept, [0, c], [voxels, 1]), [voxels]), range);
        const parts = [tf.reshape(tf.slice(kept, [0, 0], [voxels, 3]), [3 * voxels]), channel(3)];
        if (readChannels > 4) parts.push(channel(4));
        return tf.concat(parts);
      });
      out.dispose();
      const d = await readAndDispose(packed);
      prof.mark('read-back');
      const o = k0 * slice;
      if (slices === nk) fieldData = d.subarray(0, 3 * voxels);
      else (fieldData ??= new Float32Array(3 * slice * nk)).set(d.subarray(0, 3 * voxels), 3 * o);
      // (integers within the type's range: the typed array's conversion keeps them exactly)
      warpedData.set(d.subarray(3 * voxels, 4 * voxels), o);
      if (unwarpedData) unwarpedData.set(d.subarray(4 * voxels, 5 * voxels), o);
      prof.mark('field + warped to host arrays');
    }
    prof.done(`${nk} slices, ${Math.ceil(nk / slabSlices)} slab(s)`);
  } finally {
    tf.dispose(options.images ? F : [M, ...F]);
    jacobianStats?.dispose();
    for (const m of masks.values()) m.dispose();
    if (FX && !options.images) FX.dispose();
  }
  const geometry = {
    size: [...fixedGrid.size] as Vec3,
    spacing: [...fixedGrid.spacing] as Vec3,
    origin: [...fixedGrid.origin] as Vec3,
    direction: [...fixedGrid.direction] as Geometry['direction'],
  };
  const field = makeVolume({
    ...geometry,
    components: 3,
    data: fieldData!,
    meta: { description: 'displacement field (cascade)' },
  }) as Field;
  const warped = makeVolume({
    ...geometry,
    components: 1,
    data: warpedData,
    meta: {
      ...moving.meta,
      warnings: [...moving.meta.warnings],
      description: `${moving.meta.description ?? 'volume'} (warped, displacement field, linear)`,
    },
  });
  const unwarped = unwarpedData
    ? makeVolume({ ...geometry, components: 1, data: unwarpedData, meta: { description: 'moving, unwarped' } })
    : undefined;
  return {
    field,
    warped,
    unwarped,
    ...(ncc ? { ncc: moments.result() } : {}),
    ...(overlap ? { overlap: overlap.result() } : {}),
    ...(jacobianStats ? { jacobian: jacobianStats.result() } : {}),
  };
}

/**
 * stageField(grid, affine, corrections) on WebGPU (the map alone, one dispatch per slab), read back as
 * the host's Field; null when a correction does not fit one device buffer.
 */
export async function stageFieldOnDevice(
  grid: Geometry,
  affine: Affine3x4,
  corrections: Field[],
): Promise<Field | null> {
  if (tf.getBackend() !== 'webgpu')
    throw new Error(`stageFieldOnDevice needs the webgpu backend (active: ${tf.getBackend()})`);
  const cap = maxTensorBytes() ?? 2 ** 31;
  if (corrections.some((c) => c.data.length * 4 > cap)) return null;
  const [ni, nj, nk] = grid.size;
  const slice = ni * nj;
  const slabSlices = Math.max(1, Math.min(nk, Math.floor(Math.min(cap, 2 ** 28) / (12 * slice))));
  const F = corrections.map((c) => tf.tensor1d(c.data));
  const data = new Float32Array(3 * slice * nk);
  try {
    for (let k0 = 0; k0 < nk; k0 += slabSlices) {
      const voxels = Math.min(slabSlices, nk - k0) * slice;
      data.set(
        await readAndDispose(warpSlab(grid, null, grid, affine, F, corrections, 0, k0, voxels, 'field')),
        3 * k0 * slice,
      );
    }
  } finally {
    tf.dispose(F);
  }
  return makeVolume({
    size: [...grid.size] as Vec3,
    spacing: [...grid.spacing] as Vec3,
    origin: [...grid.origin] as Vec3,
    direction: [...grid.direction] as Geometry['direction'],
    components: 3,
    data,
    meta: { description: 'displacement field (cascade)' },
  }) as Field;
}

/**
 * warpWithAffine(moving, grid, affine, { fill }) on WebGPU, left on the device: W(x) = M(A x) on `grid`
 * (trilinear, `fill` outside the moving image's physical extent), rounded and clamped to the moving
 * image's integer type as the host's is, as a float32 tensor [voxels] (i fastest) that the caller
 * disposes. The cascade embeds it again after the affine without a host warp and upload. Null when the
 * moving image or the result does not fit one device buffer (the caller warps on the host).
 */
export function affineWarpOnDevice(
  moving: Volume,
  grid: Geometry,
  affine: Affine3x4,
  fill: number,
  images?: DeviceImages,
): tf.Tensor1D | null {
  if (tf.getBackend() !== 'webgpu')
    throw new Error(`affineWarpOnDevice needs the webgpu backend (active: ${tf.getBackend()})`);
  const cap = maxTensorBytes() ?? 2 ** 31;
  const [ni, nj, nk] = grid.size;
  const slice = ni * nj;
  if (moving.components !== 1 || moving.data.length * 4 > cap || slice * nk * 4 > cap) return null;
  const slabSlices = Math.max(1, Math.min(nk, Math.floor(Math.min(cap, 2 ** 28) / (4 * slice))));
  const range = INTEGER_RANGE[voxelTypeOf(moving.data)];
  const M = voxelsOnDevice(moving, images);
  try {
    return tf.tidy(() => {
      const slabs: tf.Tensor[] = [];
      for (let k0 = 0; k0 < nk; k0 += slabSlices) {
        const voxels = Math.min(slabSlices, nk - k0) * slice;
        slabs.push(warpSlab(grid, M, moving, affine, [], [], fill, k0, voxels, 'image'));
      }
      return asVoxelType(
        tf.reshape(slabs.length === 1 ? slabs[0] : tf.concat(slabs, 0), [slice * nk]) as tf.Tensor1D,
        range,
      );
    });
  } finally {
    if (!images) M.dispose();
  }
}
