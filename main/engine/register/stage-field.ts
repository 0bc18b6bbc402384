/**
 * The cascade's transform as one displacement field: u(x) = A x - x + Σ_s v_s(x) on any grid, where A
 * is the affine (fixed -> moving, LPS mm) and each v_s a correction field added in moving space (the
 * SAM-coarse control grid, the SAM-deform field), read trilinearly in its own grid with the 'border'
 * rule of field.ts. Conventions: see field/field.ts (3 components, mm, LPS, fixed point x -> x + u(x)).
 */
import { indexToWorldMatrix, type Geometry } from '../volume/geometry.ts';
import type { Affine3x4 } from './affine-fit.ts';
import { fieldFromAffine, fieldSampler, type Field } from './field/field.ts';

export function stageField(grid: Geometry, affine: Affine3x4, corrections: Field[] = []): Field {
  const out = fieldFromAffine(grid, affine);
  out.meta.description = 'displacement field (cascade)';
  if (!corrections.length) return out;
  const samplers = corrections.map((c) => fieldSampler(c, 'border'));
  const m = indexToWorldMatrix(grid);
  const [ni, nj, nk] = grid.size;
  const d = out.data;
  const v = new Float64Array(3);
  let n = 0;
  for (let k = 0; k < nk; k++)
    for (let j = 0; j < nj; j++)
      for (let i = 0; i < ni; i++, n += 3) {
        const x = m[0] * i + m[1] * j + m[2] * k + m[3];
        const y = m[4] * i + m[5] * j + m[6] * k + m[7];
        const z = m[8] * i + m[9] * j + m[10] * k + m[11];
        for (const s of samplers) {
          s.sample(x, y, z, v);
          d[n] += v[0];
          d[n + 1] += v[1];
          d[n + 2] += v[2];
        }
      }
  return out;
}
