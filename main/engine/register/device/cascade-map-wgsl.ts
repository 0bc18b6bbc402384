/**
 * The cascade's map in WGSL for the programs that evaluate it per voxel (warp-on-device.ts): the
 * affine plus the corrections read trilinearly with the 'border' rule, as stage-field.ts computes it on
 * the host.
 */
import { affineUniforms } from './flat-program.ts';
import { worldToIndexMatrix, type Geometry } from '../../volume/geometry.ts';

/**
 * WGSL: `fn mapPoint(xw : vec4<f32>) -> array<f32, 3>`, the cascade's map of a fixed world point (x, 1):
 * the affine (uniforms a0..a2) plus each correction F<c> read trilinearly at the point with the 'border'
 * rule (its world-to-index rows c<c>0..c<c>2 and size c<c>dims: correctionUniforms). Needs TRILINEAR_WGSL.
 */
export function cascadeMapWgsl(corrections: number): string {
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
export function correctionUniforms(corrections: number): string {
  return Array.from(
    { length: corrections },
    (_, c) => `c${c}0 : vec4<f32>, c${c}1 : vec4<f32>, c${c}2 : vec4<f32>, c${c}dims : vec3<i32>, `,
  ).join('');
}

/** The values of correctionUniforms for the corrections' grids. */
export function correctionUniformValues(corrections: Geometry[]): { type: string; data: number[] }[] {
  return corrections.flatMap((c) => [...affineUniforms(worldToIndexMatrix(c)), { type: 'int32', data: [...c.size] }]);
}
