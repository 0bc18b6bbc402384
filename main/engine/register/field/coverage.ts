/**
 * Where a warp has data: the fixed voxels whose mapped point x + u(x) lies inside the moving volume,
 * by warp.ts's outside rule (within its physical extent: index [-0.5, n - 0.5] on every axis). The
 * rest of a warped image holds the warp's fill value, which a display must not show as anatomy (a
 * difference image would paint it as a 1000 HU error, a checkerboard as black air).
 */
import { insideExtent, worldToIndexMatrix, type Geometry } from '../../volume/geometry.ts';
import type { Volume } from '../../volume/volume.ts';
import { checkField, gridToGridAffine } from './field.ts';

/** 1 where the fixed voxel maps inside the moving volume, 0 elsewhere (one byte per fixed voxel). */
export function movingCoverage(field: Volume, moving: Geometry): Uint8Array {
  checkField(field);
  // moving index = P * (fixed index) + M * u: P maps fixed indices to moving indices, M world to index
  const p = gridToGridAffine(field, moving);
  const m = worldToIndexMatrix(moving);
  const u = field.data;
  const [ni, nj, nk] = field.size;
  const out = new Uint8Array(ni * nj * nk);
  for (let k = 0, v = 0; k < nk; k++)
    for (let j = 0; j < nj; j++) {
      const bx = p[1] * j + p[2] * k + p[3];
      const by = p[5] * j + p[6] * k + p[7];
      const bz = p[9] * j + p[10] * k + p[11];
      for (let i = 0; i < ni; i++, v++) {
        const ux = u[3 * v];
        const uy = u[3 * v + 1];
        const uz = u[3 * v + 2];
        const x = bx + p[0] * i + m[0] * ux + m[1] * uy + m[2] * uz;
        const y = by + p[4] * i + m[4] * ux + m[5] * uy + m[6] * uz;
        const z = bz + p[8] * i + m[8] * ux + m[9] * uy + m[10] * uz;
        out[v] = insideExtent(moving.size, x, y, z) ? 1 : 0;
      }
    }
  return out;
}
