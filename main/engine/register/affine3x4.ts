/**
 * Helpers on 3x4 affines [A | t] (row-major, y = A x + t; geometry.ts Affine3x4): apply, compose,
 * invert, determinant, decomposition into rotation, scales and shears for reports (and the inverse,
 * to build test transforms), and the symmetric 3x3 eigen decomposition the fits use.
 * Re-exported by affine-fit.ts.
 */
import { InputError } from '../errors.ts';
import { applyAffine, type Affine3x4 } from '../volume/geometry.ts';
import type { Vec3 } from '../volume/volume.ts';

export const AFFINE_IDENTITY: Affine3x4 = [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0];

/** y = A x + t. */
export function affineApply(m: Affine3x4, p: Vec3): Vec3 {
  return applyAffine(m, p);
}

/** outer ∘ inner: the affine applying `inner` first. */
export function affineCompose(outer: Affine3x4, inner: Affine3x4): Affine3x4 {
  const r = new Array<number>(12);
  for (let i = 0; i < 3; i++) {
    for (let j = 0; j < 4; j++) {
      let s = j === 3 ? outer[i * 4 + 3] : 0;
      for (let k = 0; k < 3; k++) s += outer[i * 4 + k] * inner[k * 4 + j];
      r[i * 4 + j] = s;
    }
  }
  return r as Affine3x4;
}

/** The inverse affine (moving -> fixed); throws when A is singular. */
export function affineInvert(m: Affine3x4): Affine3x4 {
  const [a, b, c, , d, e, f, , g, h, i] = m;
  const co = [e * i - f * h, -(d * i - f * g), d * h - e * g];
  const det = a * co[0] + b * co[1] + c * co[2];
  const scale = Math.max(...[a, b, c, d, e, f, g, h, i].map(Math.abs));
  if (!(Math.abs(det) > 1e-12 * scale ** 3)) throw new InputError('affine', `matrix is singular (det ${det})`);
  // prettier-ignore
  const inv = [
    co[0], -(b * i - c * h), b * f - c * e,
    co[1], a * i - c * g, -(a * f - c * d),
    co[2], -(a * h - b * g), a * e - b * d,
  ].map((x) => x / det);
  const t = [m[3], m[7], m[11]];
  const r: number[] = [];
  for (let row = 0; row < 3; row++) {
    const l = inv.slice(row * 3, row * 3 + 3);
    r.push(...l, -(l[0] * t[0] + l[1] * t[1] + l[2] * t[2]));
  }
  return r as Affine3x4;
}

export interface AffineParts {
  /** Euler angles (degrees) about x, y, z: R = Rz(γ) Ry(β) Rx(α). */
  rotationDeg: Vec3;
  /** Scale along each axis, applied before the rotation (negative z scale: a reflection). */
  scales: Vec3;
  /** Shears [xy, xz, yz] of the unit upper-triangular H. */
  shear: Vec3;
  translation: Vec3;
}

export interface AffineDecomposition extends AffineParts {
  /** Total rotation angle (degrees) about `rotationAxis`. */
  rotationAngleDeg: number;
  rotationAxis: Vec3;
  determinant: number;
  reflection: boolean;
}

/**
 * A = R diag(scales) H, H unit upper triangular (the QR decomposition of A with positive diagonal:
 * unique), R a rotation; a reflection (det A < 0) shows as a negative z scale.
 */
export function affineDecompose(m: Affine3x4): AffineDecomposition {
  const col = (c: number): Vec3 => [m[c], m[4 + c], m[8 + c]];
  const dotv = (p: Vec3, q: Vec3) => p[0] * q[0] + p[1] * q[1] + p[2] * q[2];
  const q: Vec3[] = [];
  const u = [0, 0, 0, 0, 0, 0, 0, 0, 0];
  for (let c = 0; c < 3; c++) {
    const v = col(c);
    for (let k = 0; k < c; k++) {
      u[k * 3 + c] = dotv(q[k], v);
      for (let a = 0; a < 3; a++) v[a] -= u[k * 3 + c] * q[k][a];
    }
    u[c * 3 + c] = Math.hypot(...v);
    q.push(v.map((x) => x / u[c * 3 + c]) as Vec3);
  }
  const det = u[0] * u[4] * u[8] * dotv(q[0], cross(q[1], q[2]));
  if (det < 0) {
    q[2] = q[2].map((x) => -x) as Vec3;
    for (let c = 2; c < 3; c++) u[2 * 3 + c] = -u[2 * 3 + c];
  }
  const R = (r: number, c: number) => q[c][r];
  const beta = Math.asin(Math.max(-1, Math.min(1, -R(2, 0))));
  const gimbal = Math.abs(Math.cos(beta)) < 1e-9;
  const alpha = gimbal ? Math.atan2(-R(1, 2), R(1, 1)) : Math.atan2(R(2, 1), R(2, 2));
  const gamma = gimbal ? 0 : Math.atan2(R(1, 0), R(0, 0));
  const tr = R(0, 0) + R(1, 1) + R(2, 2);
  const angle = Math.acos(Math.max(-1, Math.min(1, (tr - 1) / 2)));
  const ax: Vec3 = [R(2, 1) - R(1, 2), R(0, 2) - R(2, 0), R(1, 0) - R(0, 1)];
  const an = Math.hypot(...ax);
  const deg = (x: number) => (x * 180) / Math.PI;
  const s: Vec3 = [u[0], u[4], u[8]];
  return {
    rotationDeg: [deg(alpha), deg(beta), deg(gamma)],
    rotationAngleDeg: deg(angle),
    rotationAxis: an > 1e-12 ? (ax.map((x) => x / an) as Vec3) : [0, 0, 1],
    scales: s,
    shear: [u[1] / s[0], u[2] / s[0], u[5] / s[1]],
    translation: [m[3], m[7], m[11]],
    determinant: det,
    reflection: det < 0,
  };
}

/** The affine R diag(scales) H (see affineDecompose) about `centre`: y = L (x - c) + c + translation. */
export function affineFromParts(p: Partial<AffineParts> & { centre?: Vec3 }): Affine3x4 {
  const [al, be, ga] = (p.rotationDeg ?? [0, 0, 0]).map((x) => (x * Math.PI) / 180);
  const [ca, sa, cb, sb, cg, sg] = [Math.cos(al), Math.sin(al), Math.cos(be), Math.sin(be), Math.cos(ga), Math.sin(ga)];
  // prettier-ignore
  const R = [
    cg * cb, cg * sb * sa - sg * ca, cg * sb * ca + sg * sa,
    sg * cb, sg * sb * sa + cg * ca, sg * sb * ca - cg * sa,
    -sb, cb * sa, cb * ca,
  ];
  const s = p.scales ?? [1, 1, 1];
  const h = p.shear ?? [0, 0, 0];
  const U = [s[0], s[0] * h[0], s[0] * h[1], 0, s[1], s[1] * h[2], 0, 0, s[2]];
  const c = p.centre ?? [0, 0, 0];
  const tr = p.translation ?? [0, 0, 0];
  const m: number[] = [];
  for (let i = 0; i < 3; i++) {
    const row = [0, 1, 2].map((j) => R[i * 3] * U[j] + R[i * 3 + 1] * U[3 + j] + R[i * 3 + 2] * U[6 + j]);
    m.push(...row, c[i] + tr[i] - (row[0] * c[0] + row[1] * c[1] + row[2] * c[2]));
  }
  return m as Affine3x4;
}

function cross(a: Vec3, b: Vec3): Vec3 {
  return [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];
}

/** det A. */
export function affineDeterminant(m: Affine3x4): number {
  return m[0] * (m[5] * m[10] - m[6] * m[9]) - m[1] * (m[4] * m[10] - m[6] * m[8]) + m[2] * (m[4] * m[9] - m[5] * m[8]);
}

/** Eigen decomposition of a symmetric 3x3 (row-major) by cyclic Jacobi: values and column vectors. */
export function symmetricEigen3(m: ArrayLike<number>): { values: Vec3; vectors: number[] } {
  const a = Array.from(m);
  const v = [1, 0, 0, 0, 1, 0, 0, 0, 1];
  /** Givens rotation of entries (i, j) of x over k: x_i, x_j <- c x_i - s x_j, s x_i + c x_j. */
  const rot = (x: number[], i: (k: number) => number, j: (k: number) => number, c: number, s: number) => {
    for (let k = 0; k < 3; k++) {
      const xi = x[i(k)];
      const xj = x[j(k)];
      x[i(k)] = c * xi - s * xj;
      x[j(k)] = s * xi + c * xj;
    }
  };
  for (let sweep = 0; sweep < 50; sweep++) {
    const off = a[1] ** 2 + a[2] ** 2 + a[5] ** 2;
    if (off === 0 || off <= 1e-30 * (a[0] ** 2 + a[4] ** 2 + a[8] ** 2)) break;
    for (const [p, q] of [0, 1, 2].map((n) => [n === 2 ? 1 : 0, n === 0 ? 1 : 2])) {
      const apq = a[p * 3 + q];
      if (apq === 0) continue;
      const theta = (a[q * 3 + q] - a[p * 3 + p]) / (2 * apq);
      const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
      const c = 1 / Math.sqrt(t * t + 1);
      const s = t * c;
      // a <- J^T a J, v <- v J
      rot(
        a,
        (k) => k * 3 + p,
        (k) => k * 3 + q,
        c,
        s,
      );
      rot(
        a,
        (k) => p * 3 + k,
        (k) => q * 3 + k,
        c,
        s,
      );
      rot(
        v,
        (k) => k * 3 + p,
        (k) => k * 3 + q,
        c,
        s,
      );
    }
  }
  return { values: [a[0], a[4], a[8]], vectors: v };
}
