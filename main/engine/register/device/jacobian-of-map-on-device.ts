/**
 * The cascade's folding statistics on the GPU without its field: the Jacobian determinant of the whole
 * map x -> A x + Σ_c v_c(x) (stage-field.ts; the field that cascadeWarpOnDevice reads back) on the fixed
 * grid, each voxel's u and its neighbours' evaluated from the affine and the corrections where they
 * are needed (cascade-map-wgsl.ts), with all 11 variants of field/jacobian.ts
 * (jacobian-on-device.ts JACOBIAN_AT_WGSL), then reduced per row of the grid inside the mask
 * (jacobian-stats-on-device.ts). Nothing of the size of the volume crosses the bus. The cascade's warp
 * computes the statistics from its own field when the fixed grid is one slab (warp-on-device.ts); this
 * is its path for larger grids (13 evaluations of the map per voxel: cheap on a GPU, slow on lavapipe).
 * float32 on the device: u as the warp computes it; a determinant within float32 rounding of 0 may be
 * counted differently from the host's float64.
 */
import * as tf from '@tensorflow/tfjs-core';
import { affineUniforms, FlatProgram, runProgram, TRILINEAR_WGSL } from './flat-program.ts';
import { maxTensorBytes } from '../../compute/tf-backend.ts';
import { indexToWorldMatrix, type Affine3x4, type Geometry } from '../../volume/geometry.ts';
import type { Volume } from '../../volume/volume.ts';
import { checkMask, type Field } from '../field/field.ts';
import { JacobianStats, type JacobianSummary } from './jacobian-stats-on-device.ts';
import { JACOBIAN_AT_WGSL, jacobianRotation } from './jacobian-on-device.ts';
import { cascadeMapWgsl, correctionUniforms, correctionUniformValues } from './cascade-map-wgsl.ts';

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
  const stats = new JacobianStats(grid, mask);
  const F = corrections.map((c) => tf.tensor1d(c.data));
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
        await stats.add(J, k0, slices);
      } finally {
        J.dispose();
      }
    }
    return stats.result();
  } finally {
    stats.dispose();
    tf.dispose(F);
  }
}
