/** Shared fixtures of the displacement-field tests (field-*.test.ts): grids, analytic images and fields. */
import { indexToWorld, type Geometry } from '../../main/engine/volume/geometry.ts';
import { makeVolume, type Mat3, type Vec3, type Volume } from '../../main/engine/volume/volume.ts';
import { zeroField, type Affine, type Field } from '../../main/engine/register/field/field.ts';

/** Rotation by `angle` radians about `axis` (Rodrigues). */
export function rotation(axis: Vec3, angle: number): Mat3 {
  const l = Math.hypot(...axis);
  const [x, y, z] = axis.map((v) => v / l);
  const c = Math.cos(angle);
  const s = Math.sin(angle);
  const t = 1 - c;
  return [
    t * x * x + c,
    t * x * y - s * z,
    t * x * z + s * y,
    t * x * y + s * z,
    t * y * y + c,
    t * y * z - s * x,
    t * x * z - s * y,
    t * y * z + s * x,
    t * z * z + c,
  ];
}

/** A left-handed (det -1) oblique direction: a rotation with its k column negated. */
export function leftHanded(m: Mat3): Mat3 {
  return [m[0], m[1], -m[2], m[3], m[4], -m[5], m[6], m[7], -m[8]];
}

/** The grid whose voxel-centre hull is centred on `center`. */
export function centeredGrid(size: Vec3, spacing: Vec3, direction: Mat3, center: Vec3 = [0, 0, 0]): Geometry {
  const g: Geometry = { size, spacing, origin: [0, 0, 0], direction };
  const mid = indexToWorld(g, [(size[0] - 1) / 2, (size[1] - 1) / 2, (size[2] - 1) / 2]);
  g.origin = [center[0] - mid[0], center[1] - mid[1], center[2] - mid[2]];
  return g;
}

/** A float64 image whose voxel value is f(world position). */
export function worldImage(g: Geometry, f: (p: Vec3) => number): Volume<Float64Array> {
  const data = new Float64Array(g.size[0] * g.size[1] * g.size[2]);
  let n = 0;
  for (let k = 0; k < g.size[2]; k++)
    for (let j = 0; j < g.size[1]; j++) for (let i = 0; i < g.size[0]; i++) data[n++] = f(indexToWorld(g, [i, j, k]));
  return makeVolume({ ...g, data });
}

/** A field with u(x) = fn(x) at every voxel centre x. */
export function fieldOf(g: Geometry, fn: (p: Vec3) => Vec3): Field {
  const field = zeroField(g);
  let n = 0;
  for (let k = 0; k < g.size[2]; k++)
    for (let j = 0; j < g.size[1]; j++)
      for (let i = 0; i < g.size[0]; i++, n++) {
        const u = fn(indexToWorld(g, [i, j, k]));
        field.data.set(u, 3 * n);
      }
  return field;
}

/** An affine [L | t] from a 3x3 linear part and a translation. */
export function affineOf(l: Mat3, t: Vec3): Affine {
  return [l[0], l[1], l[2], t[0], l[3], l[4], l[5], t[1], l[6], l[7], l[8], t[2]];
}

/** Apply an affine to a point. */
export function ap(a: Affine, p: Vec3): Vec3 {
  return [
    a[0] * p[0] + a[1] * p[1] + a[2] * p[2] + a[3],
    a[4] * p[0] + a[5] * p[1] + a[6] * p[2] + a[7],
    a[8] * p[0] + a[9] * p[1] + a[10] * p[2] + a[11],
  ];
}

/** A near-identity affine: small rotation, anisotropic scaling, a shear and a translation of a few mm. */
export const A1: Affine = (() => {
  const r = rotation([0.3, -1, 0.5], 0.08);
  const s = [1.04, 0.97, 1.02];
  const l = r.map((v, n) => v * s[n % 3]) as Mat3;
  l[1] += 0.03;
  return affineOf(l, [2.5, -1.5, 3]);
})();

export const A2: Affine = (() => {
  const r = rotation([1, 0.2, -0.4], -0.1);
  const s = [0.96, 1.05, 1.01];
  return affineOf(r.map((v, n) => v * s[n % 3]) as Mat3, [-1.2, 2, 0.8]);
})();

/** The planted voxel of plantedSwap(). */
export const PLANTED_VOXEL = 3 + 8 * (3 + 7 * 2);

/**
 * A fold central differences miss: voxel PLANTED_VOXEL and its +i neighbour swapped (each displaced
 * onto the other) on an oblique, anisotropic 8x7x6 grid.
 */
export function plantedSwap(): Field {
  const g = centeredGrid([8, 7, 6], [1.5, 0.8, 2], rotation([2, 1, -1], 0.5));
  const u = zeroField(g);
  const stepI: Vec3 = [g.direction[0] * 1.5, g.direction[3] * 1.5, g.direction[6] * 1.5];
  const p0 = PLANTED_VOXEL;
  u.data.set(stepI, 3 * p0);
  u.data.set(
    stepI.map((v) => -v),
    3 * (p0 + 1),
  );
  return u;
}

/**
 * A fold only the central (star) tetrahedra see: displacements in voxel units of the 8 vertices of the
 * middle cube of a 4x4x4 grid (left-handed, oblique, anisotropic), found by a search: every corner
 * tetrahedron of every cube stays positive, a central one is inverted.
 */
export function starFold(): Field {
  const moved: [number, Vec3][] = [
    [21, [-0.506, 0.191, 0.063]],
    [22, [0.126, -0.383, -0.457]],
    [25, [0.324, 0.2, 0.707]],
    [26, [-0.351, 0.026, -0.005]],
    [37, [-0.572, -0.175, -0.306]],
    [38, [-0.298, -0.098, -0.179]],
    [41, [0.23, 0.276, 0.006]],
    [42, [-0.412, 0.077, -0.758]],
  ];
  const g = centeredGrid([4, 4, 4], [1.5, 0.7, 2.2], leftHanded(rotation([1, 3, -2], 0.9)));
  const u = zeroField(g);
  const d = g.direction;
  for (const [n, v] of moved) {
    const s = [v[0] * g.spacing[0], v[1] * g.spacing[1], v[2] * g.spacing[2]];
    for (let r = 0; r < 3; r++) u.data[3 * n + r] = d[3 * r] * s[0] + d[3 * r + 1] * s[1] + d[3 * r + 2] * s[2];
  }
  return u;
}
