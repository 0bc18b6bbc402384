/**
 * Index <-> world conversions and geometry checks. Every such conversion in the product goes
 * through this file. Convention (see volume.ts): world LPS mm = origin + D * diag(spacing) * index,
 * D row-major with columns = index axes.
 */
import type { Mat3, Vec3, Volume } from './volume.ts';

export interface Geometry {
  size: Vec3;
  spacing: Vec3;
  origin: Vec3;
  direction: Mat3;
}

/** 3x4 affine (row-major, last column = translation) mapping continuous index to world mm. */
export type Affine3x4 = [
  number,
  number,
  number,
  number,
  number,
  number,
  number,
  number,
  number,
  number,
  number,
  number,
];

export function indexToWorldMatrix(g: Geometry): Affine3x4 {
  const d = g.direction;
  const s = g.spacing;
  const o = g.origin;
  return [
    d[0] * s[0],
    d[1] * s[1],
    d[2] * s[2],
    o[0],
    d[3] * s[0],
    d[4] * s[1],
    d[5] * s[2],
    o[1],
    d[6] * s[0],
    d[7] * s[1],
    d[8] * s[2],
    o[2],
  ];
}

/** World mm -> continuous index; direction is orthonormal so its inverse is its transpose. */
export function worldToIndexMatrix(g: Geometry): Affine3x4 {
  const d = g.direction;
  const s = g.spacing;
  const o = g.origin;
  // index_c = (D^T (x - o))_c / s_c
  const m: number[] = [];
  for (let c = 0; c < 3; c++) {
    const r0 = d[c] / s[c];
    const r1 = d[3 + c] / s[c];
    const r2 = d[6 + c] / s[c];
    m.push(r0, r1, r2, -(r0 * o[0] + r1 * o[1] + r2 * o[2]));
  }
  return m as Affine3x4;
}

export function applyAffine(m: Affine3x4, p: Vec3): Vec3 {
  return [
    m[0] * p[0] + m[1] * p[1] + m[2] * p[2] + m[3],
    m[4] * p[0] + m[5] * p[1] + m[6] * p[2] + m[7],
    m[8] * p[0] + m[9] * p[1] + m[10] * p[2] + m[11],
  ];
}

/** Continuous index (i, j, k) to world LPS mm. */
export function indexToWorld(g: Geometry, ijk: Vec3): Vec3 {
  return applyAffine(indexToWorldMatrix(g), ijk);
}

/** World LPS mm to continuous index (i, j, k). */
export function worldToIndex(g: Geometry, xyz: Vec3): Vec3 {
  return applyAffine(worldToIndexMatrix(g), xyz);
}

export function geometryOf(v: Volume): Geometry {
  return { size: [...v.size], spacing: [...v.spacing], origin: [...v.origin], direction: [...v.direction] } as Geometry;
}

/** Axis-aligned world bounding box of the voxel centres: [min, max]. */
export function worldBounds(g: Geometry): [Vec3, Vec3] {
  const lo: Vec3 = [Infinity, Infinity, Infinity];
  const hi: Vec3 = [-Infinity, -Infinity, -Infinity];
  for (const p of worldCorners(g)) {
    for (let a = 0; a < 3; a++) {
      lo[a] = Math.min(lo[a], p[a]);
      hi[a] = Math.max(hi[a], p[a]);
    }
  }
  return [lo, hi];
}

/** The world positions of the grid's 8 corner voxel centres. */
export function worldCorners(g: Geometry): Vec3[] {
  return [0, 1, 2, 3, 4, 5, 6, 7].map((c) =>
    indexToWorld(g, [c & 1 ? g.size[0] - 1 : 0, c & 2 ? g.size[1] - 1 : 0, c & 4 ? g.size[2] - 1 : 0]),
  );
}

export function det3(m: Mat3): number {
  return m[0] * (m[4] * m[8] - m[5] * m[7]) - m[1] * (m[3] * m[8] - m[5] * m[6]) + m[2] * (m[3] * m[7] - m[4] * m[6]);
}

/** The inverse of a 3x3 matrix (row-major), by cofactors; Infinity/NaN entries when singular. */
export function invert3(m: Mat3): Mat3 {
  const [a, b, c, d, e, f, g, h, i] = m;
  const A = e * i - f * h;
  const B = -(d * i - f * g);
  const C = d * h - e * g;
  const det = a * A + b * B + c * C;
  return [
    A,
    -(b * i - c * h),
    b * f - c * e,
    B,
    a * i - c * g,
    -(a * f - c * d),
    C,
    -(a * h - b * g),
    a * e - b * d,
  ].map((x) => x / det) as Mat3;
}

export function transpose3(m: Mat3): Mat3 {
  return [m[0], m[3], m[6], m[1], m[4], m[7], m[2], m[5], m[8]];
}

export function mul3(a: Mat3, b: Mat3): Mat3 {
  const r = new Array(9).fill(0) as Mat3;
  for (let i = 0; i < 3; i++)
    for (let j = 0; j < 3; j++) r[i * 3 + j] = a[i * 3] * b[j] + a[i * 3 + 1] * b[3 + j] + a[i * 3 + 2] * b[6 + j];
  return r;
}

export function column(m: Mat3, c: number): Vec3 {
  return [m[c], m[3 + c], m[6 + c]];
}

/** Matrix whose columns are a, b, c. */
export function fromColumns(a: Vec3, b: Vec3, c: Vec3): Mat3 {
  return [a[0], b[0], c[0], a[1], b[1], c[1], a[2], b[2], c[2]];
}

export function dot(a: Vec3, b: Vec3): number {
  return a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
}

export function cross(a: Vec3, b: Vec3): Vec3 {
  return [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];
}

export function norm(a: Vec3): number {
  return Math.hypot(a[0], a[1], a[2]);
}

export function sub(a: Vec3, b: Vec3): Vec3 {
  return [a[0] - b[0], a[1] - b[1], a[2] - b[2]];
}

export function add(a: Vec3, b: Vec3): Vec3 {
  return [a[0] + b[0], a[1] + b[1], a[2] + b[2]];
}

export function scale(a: Vec3, s: number): Vec3 {
  return [a[0] * s, a[1] * s, a[2] * s];
}

/** Tolerance on |D^T D - I| for a direction to count as orthonormal. */
export const ORTHONORMAL_TOLERANCE = 1e-4;

/**
 * Returns a description of what is wrong with a geometry, or null when it is valid:
 * sizes positive integers, spacing positive and finite, origin finite, direction orthonormal.
 */
export function geometryProblem(g: Geometry): string | null {
  for (let a = 0; a < 3; a++) {
    if (!Number.isInteger(g.size[a]) || g.size[a] < 1) return `invalid size ${g.size.join('x')}`;
    if (!Number.isFinite(g.spacing[a]) || g.spacing[a] <= 0)
      return `invalid spacing ${g.spacing.join(', ')} (must be positive and finite)`;
    if (!Number.isFinite(g.origin[a])) return `invalid origin ${g.origin.join(', ')}`;
  }
  if (!g.direction.every(Number.isFinite)) return `invalid direction ${g.direction.join(', ')}`;
  const dtd = mul3(transpose3(g.direction), g.direction);
  for (let i = 0; i < 3; i++)
    for (let j = 0; j < 3; j++) {
      if (Math.abs(dtd[i * 3 + j] - (i === j ? 1 : 0)) > ORTHONORMAL_TOLERANCE)
        return `direction matrix is not orthonormal (${g.direction.map((x) => +x.toFixed(6)).join(', ')})`;
    }
  return null;
}

/**
 * Re-orthonormalise a direction that is orthonormal up to rounding (as stored with 6 decimals
 * in many headers): Gram-Schmidt on the columns, keeping the handedness.
 */
export function orthonormalize(m: Mat3): Mat3 {
  let a = column(m, 0);
  a = scale(a, 1 / norm(a));
  let b = column(m, 1);
  b = sub(b, scale(a, dot(a, b)));
  b = scale(b, 1 / norm(b));
  let c = cross(a, b);
  if (dot(c, column(m, 2)) < 0) c = scale(c, -1);
  return fromColumns(a, b, c);
}

/**
 * Is continuous index (x, y, z) inside a grid's physical extent, the voxel centres +- half a voxel
 * ([-0.5, n - 0.5] on every axis)? The warp's outside rule (register/field/warp.ts).
 */
export function insideExtent(size: readonly number[], x: number, y: number, z: number): boolean {
  return x >= -0.5 && y >= -0.5 && z >= -0.5 && x <= size[0] - 0.5 && y <= size[1] - 0.5 && z <= size[2] - 0.5;
}

/** True when two geometries describe the same grid within tol mm (positions) and 1e-4 (direction). */
export function sameGrid(a: Geometry, b: Geometry, tolMm = 1e-3): boolean {
  if (a.size.some((n, i) => n !== b.size[i])) return false;
  if (a.direction.some((x, i) => Math.abs(x - b.direction[i]) > 1e-4)) return false;
  const corner = sub(
    indexToWorld(a, [a.size[0] - 1, a.size[1] - 1, a.size[2] - 1]),
    indexToWorld(b, [b.size[0] - 1, b.size[1] - 1, b.size[2] - 1]),
  );
  return norm(sub(a.origin, b.origin)) <= tolMm && norm(corner) <= tolMm;
}

/** Which index axis points most along each world axis, and its sign: e.g. ['L','P','S']-style code. */
export function orientationCode(direction: Mat3): string {
  const pos = ['L', 'P', 'S'];
  const neg = ['R', 'A', 'I'];
  let code = '';
  for (let c = 0; c < 3; c++) {
    const col = column(direction, c);
    let best = 0;
    for (let a = 1; a < 3; a++) if (Math.abs(col[a]) > Math.abs(col[best])) best = a;
    code += col[best] >= 0 ? pos[best] : neg[best];
  }
  return code;
}
