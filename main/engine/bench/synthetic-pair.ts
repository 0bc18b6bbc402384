/**
 * Synthetic registration pairs with known ground truth, made from one real CT: the fixed image is the
 * CT (on its grid or resampled to `spacingMm`), the moving image is the same CT seen through a random
 * affine transform and a smooth deformation, with its own field of view (cropped) and independent
 * noise in both. Everything is drawn from `seed`.
 *
 * Convention (world LPS mm): truth(x) maps a point x of the fixed image to the point of the moving
 * image showing the same anatomy (the displacement truth(x) - x maps fixed to moving points), so
 * fixed(x) ≈ moving(truth(x)) up to noise, interpolation and field of view.
 * The moving image was resampled with the inverse map, movingToFixed (applied exactly per voxel):
 *   u = L (y - c) + c + t            (L = rotation * scale * shear about the fixed image's centre c)
 *   movingToFixed(y) = u + d(u),     d(u) = sum_b a_b exp(-|u - m_b|^2 / (2 s_b^2))  (Gaussian bumps)
 *   moving(y) = source(movingToFixed(y)) + noise
 * truth = movingToFixed^-1: u solves u + d(u) = x by fixed-point iteration (d is a contraction:
 * sum_b |a_b| e^(-1/2) / s_b <= 0.5, enforced), converged to 1e-9 mm, then y = L^-1 (u - c - t) + c.
 * |d| <= maxDeformationMm everywhere (sum_b |a_b| is bounded by it).
 */
import {
  applyAffine,
  indexToWorldMatrix,
  worldToIndex,
  worldToIndexMatrix,
  column,
  invert3,
} from '../volume/geometry.ts';
import type { Geometry } from '../volume/geometry.ts';
import { superiorAxis } from '../volume/mask.ts';
import { gridWithSpacing, resample } from '../volume/resample.ts';
import { makeVolume, type Mat3, type Vec3, type Volume } from '../volume/volume.ts';
import { createRng, type Rng } from '../train/rng.ts';

export interface SyntheticPairOptions {
  seed: number;
  /** Largest rotation angle, degrees (default 8), about a random axis. */
  maxRotationDeg?: number;
  /** Scale per axis in [1 - s, 1 + s] (default 0.06). */
  maxScale?: number;
  /** Shear terms in [-h, h] (default 0.04). */
  maxShear?: number;
  /** Translation per axis in [-t, t] mm (default 15). */
  maxTranslationMm?: number;
  /** Gaussian bumps of the deformation (default 3). */
  bumps?: number;
  /** Bound on the deformation's magnitude, mm (default 12). */
  maxDeformationMm?: number;
  /** Range of the bumps' widths (sigma), mm (default [40, 80]). */
  bumpSigmaMm?: [number, number];
  /** Standard deviation of the Gaussian noise added to each image, HU (default 15). */
  noiseHu?: number;
  /** Share of the transformed extent the moving image keeps along the superior axis (default [0.7, 0.9]). */
  fovKeep?: [number, number];
  /** ... and along the other two axes (default [0.85, 1]). */
  fovKeepInPlane?: [number, number];
  /** Spacing (isotropic, mm) of both images' grids (default: the source's own grid). */
  spacingMm?: number;
  /**
   * The moving image as thick slices (mm) along the superior axis, each the mean of the anatomy over
   * its thickness (a thick reconstruction of the same scan), instead of the fixed grid's spacing.
   */
  movingSliceMm?: number;
}

export interface SyntheticPair {
  fixed: Volume<Float32Array>;
  moving: Volume<Float32Array>;
  /** Fixed point -> moving point (world mm). */
  truth(x: Vec3): Vec3;
  /** Moving point -> fixed point: the map the moving image was resampled with. */
  movingToFixed(y: Vec3): Vec3;
  params: { linear: Mat3; centre: Vec3; translation: Vec3; bumps: { centre: Vec3; amplitude: Vec3; sigma: number }[] };
}

/** Trilinear value of a scalar volume at a continuous index (fill outside the voxel-centre hull). */
export function sampleLinear(v: Volume, idx: Vec3, fill = -1024): number {
  const [ni, nj, nk] = v.size;
  const [x, y, z] = idx;
  const e = 1e-6;
  if (!(x >= -e && y >= -e && z >= -e && x <= ni - 1 + e && y <= nj - 1 + e && z <= nk - 1 + e)) return fill;
  const i0 = Math.max(0, Math.min(Math.floor(x), ni - 2));
  const j0 = Math.max(0, Math.min(Math.floor(y), nj - 2));
  const k0 = Math.max(0, Math.min(Math.floor(z), nk - 2));
  const fx = ni > 1 ? Math.min(Math.max(x - i0, 0), 1) : 0;
  const fy = nj > 1 ? Math.min(Math.max(y - j0, 0), 1) : 0;
  const fz = nk > 1 ? Math.min(Math.max(z - k0, 0), 1) : 0;
  const dx = ni > 1 ? 1 : 0;
  const dy = nj > 1 ? ni : 0;
  const dz = nk > 1 ? ni * nj : 0;
  const d = v.data;
  const p = i0 + ni * (j0 + nj * k0);
  const c00 = d[p] + (d[p + dx] - d[p]) * fx;
  const c10 = d[p + dy] + (d[p + dy + dx] - d[p + dy]) * fx;
  const c01 = d[p + dz] + (d[p + dz + dx] - d[p + dz]) * fx;
  const c11 = d[p + dz + dy] + (d[p + dz + dy + dx] - d[p + dz + dy]) * fx;
  const c0 = c00 + (c10 - c00) * fy;
  const c1 = c01 + (c11 - c01) * fy;
  return c0 + (c1 - c0) * fz;
}

/** Is a world point inside a grid's voxel-centre hull, at least marginMm from its faces? */
export function insideGrid(g: Geometry, p: Vec3, marginMm = 0): boolean {
  const idx = worldToIndex(g, p);
  return idx.every((v, a) => v >= marginMm / g.spacing[a] && v <= g.size[a] - 1 - marginMm / g.spacing[a]);
}

const mat = (m: number[]) => m as Mat3;
function mulM(a: Mat3, b: Mat3): Mat3 {
  const r: number[] = [];
  for (let i = 0; i < 3; i++)
    for (let j = 0; j < 3; j++) r.push(a[i * 3] * b[j] + a[i * 3 + 1] * b[3 + j] + a[i * 3 + 2] * b[6 + j]);
  return mat(r);
}
const mv = (m: Mat3, v: Vec3): Vec3 => [
  m[0] * v[0] + m[1] * v[1] + m[2] * v[2],
  m[3] * v[0] + m[4] * v[1] + m[5] * v[2],
  m[6] * v[0] + m[7] * v[1] + m[8] * v[2],
];

function gaussian(rng: Rng): number {
  const u = 1 - rng.next();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng.next());
}

export function makeSyntheticPair(source: Volume, options: SyntheticPairOptions): SyntheticPair {
  const o = {
    maxRotationDeg: 8,
    maxScale: 0.06,
    maxShear: 0.04,
    maxTranslationMm: 15,
    bumps: 3,
    maxDeformationMm: 12,
    bumpSigmaMm: [40, 80] as [number, number],
    noiseHu: 15,
    fovKeep: [0.7, 0.9] as [number, number],
    fovKeepInPlane: [0.85, 1] as [number, number],
    ...options,
  };
  const rng = createRng(o.seed);
  const u = (lo: number, hi: number) => rng.uniform(lo, hi);
  const fixedGrid: Geometry =
    o.spacingMm !== undefined ? gridWithSpacing(source, [o.spacingMm, o.spacingMm, o.spacingMm]) : source;
  const centre = applyAffine(indexToWorldMatrix(fixedGrid), fixedGrid.size.map((n) => (n - 1) / 2) as Vec3);

  // affine: rotation (axis-angle) * scale * shear
  const axis = [gaussian(rng), gaussian(rng), gaussian(rng)];
  const an = Math.hypot(...axis) || 1;
  const [kx, ky, kz] = axis.map((x) => x / an);
  const th = (u(-1, 1) * o.maxRotationDeg * Math.PI) / 180;
  const cs = Math.cos(th);
  const sn = Math.sin(th);
  // prettier-ignore
  const R = mat([
    cs + kx * kx * (1 - cs), kx * ky * (1 - cs) - kz * sn, kx * kz * (1 - cs) + ky * sn,
    ky * kx * (1 - cs) + kz * sn, cs + ky * ky * (1 - cs), ky * kz * (1 - cs) - kx * sn,
    kz * kx * (1 - cs) - ky * sn, kz * ky * (1 - cs) + kx * sn, cs + kz * kz * (1 - cs),
  ]);
  const S = mat([1 + u(-1, 1) * o.maxScale, 0, 0, 0, 1 + u(-1, 1) * o.maxScale, 0, 0, 0, 1 + u(-1, 1) * o.maxScale]);
  const h = () => u(-1, 1) * o.maxShear;
  const H = mat([1, h(), h(), 0, 1, h(), 0, 0, 1]);
  const L = mulM(R, mulM(S, H));
  const Linv = invert3(L);
  const t: Vec3 = [0, 1, 2].map(() => u(-1, 1) * o.maxTranslationMm) as Vec3;

  // deformation: Gaussian bumps inside the central 80% of the fixed image
  const toW = indexToWorldMatrix(fixedGrid);
  let bumps = Array.from({ length: o.bumps }, () => {
    const c = applyAffine(toW, fixedGrid.size.map((n) => (0.1 + 0.8 * rng.next()) * (n - 1)) as Vec3);
    const dir = [gaussian(rng), gaussian(rng), gaussian(rng)];
    const dn = Math.hypot(...dir) || 1;
    const mag = u(0.5, 1) * o.maxDeformationMm;
    return { centre: c, amplitude: dir.map((x) => (x / dn) * mag) as Vec3, sigma: u(...o.bumpSigmaMm) };
  });
  const sumA = bumps.reduce((s, b) => s + Math.hypot(...b.amplitude), 0);
  const lip = bumps.reduce((s, b) => s + (Math.hypot(...b.amplitude) * Math.exp(-0.5)) / b.sigma, 0);
  const k = Math.min(1, sumA > 0 ? o.maxDeformationMm / sumA : 1, lip > 0 ? 0.5 / lip : 1);
  bumps = bumps.map((b) => ({ ...b, amplitude: b.amplitude.map((x) => x * k) as Vec3 }));
  const disp = (p: Vec3): Vec3 => {
    const d: Vec3 = [0, 0, 0];
    for (const b of bumps) {
      const r2 = (p[0] - b.centre[0]) ** 2 + (p[1] - b.centre[1]) ** 2 + (p[2] - b.centre[2]) ** 2;
      const w = Math.exp(-r2 / (2 * b.sigma * b.sigma));
      d[0] += b.amplitude[0] * w;
      d[1] += b.amplitude[1] * w;
      d[2] += b.amplitude[2] * w;
    }
    return d;
  };
  const affine = (y: Vec3): Vec3 => {
    const l = mv(L, [y[0] - centre[0], y[1] - centre[1], y[2] - centre[2]]);
    return [l[0] + centre[0] + t[0], l[1] + centre[1] + t[1], l[2] + centre[2] + t[2]];
  };
  const movingToFixed = (y: Vec3): Vec3 => {
    const a = affine(y);
    const d = disp(a);
    return [a[0] + d[0], a[1] + d[1], a[2] + d[2]];
  };
  const truth = (x: Vec3): Vec3 => {
    let v: Vec3 = [...x];
    for (let it = 0; it < 200; it++) {
      const d = disp(v);
      const next: Vec3 = [x[0] - d[0], x[1] - d[1], x[2] - d[2]];
      const step = Math.hypot(next[0] - v[0], next[1] - v[1], next[2] - v[2]);
      v = next;
      if (step < 1e-9) break;
    }
    const y = mv(Linv, [v[0] - centre[0] - t[0], v[1] - centre[1] - t[1], v[2] - centre[2] - t[2]]);
    return [y[0] + centre[0], y[1] + centre[1], y[2] + centre[2]];
  };

  // moving grid: the fixed grid's axes, covering the (affinely) transformed fixed extent, then cropped
  const dir = fixedGrid.direction;
  const lo = [Infinity, Infinity, Infinity];
  const hi = [-Infinity, -Infinity, -Infinity];
  for (let c = 0; c < 8; c++) {
    const corner = applyAffine(toW, [0, 1, 2].map((a) => (c & (1 << a) ? fixedGrid.size[a] - 1 : 0)) as Vec3);
    const y = truth(corner);
    for (let a = 0; a < 3; a++) {
      const s = column(dir, a).reduce((acc, x, r) => acc + x * y[r], 0);
      lo[a] = Math.min(lo[a], s);
      hi[a] = Math.max(hi[a], s);
    }
  }
  const sup = superiorAxis({ ...fixedGrid, components: 1, data: new Float32Array(0), meta: { warnings: [] } });
  const size: number[] = [];
  const origin: Vec3 = [0, 0, 0];
  const movingSpacing: Vec3 = [...fixedGrid.spacing];
  if (o.movingSliceMm !== undefined) movingSpacing[sup] = o.movingSliceMm;
  for (let a = 0; a < 3; a++) {
    const n = Math.floor((hi[a] - lo[a]) / movingSpacing[a]) + 1;
    const keep = a === sup ? u(...o.fovKeep) : u(...o.fovKeepInPlane);
    const m = Math.max(2, Math.round(n * keep));
    const start = lo[a] + rng.int(0, n - m + 1) * movingSpacing[a];
    size.push(m);
    const col = column(dir, a);
    for (let r = 0; r < 3; r++) origin[r] += col[r] * start;
  }
  const movingGrid: Geometry = { size: size as Vec3, spacing: movingSpacing, origin, direction: [...dir] };

  const noise = (data: Float32Array) => {
    if (o.noiseHu > 0) for (let n = 0; n < data.length; n++) data[n] += o.noiseHu * gaussian(rng);
    return data;
  };
  const fixedData = resample(source, fixedGrid, { fill: -1024, outputType: 'float32' }).data as Float32Array;
  const fixed = makeVolume({ ...fixedGrid, data: noise(fixedData), meta: { ...source.meta, description: 'fixed' } });
  const movingData = new Float32Array(size[0] * size[1] * size[2]);
  const mw = indexToWorldMatrix(movingGrid);
  const sw = worldToIndexMatrix(source);
  // a thick slice: the mean of samples spread evenly over its thickness (about two per source voxel)
  const slab =
    o.movingSliceMm !== undefined ? Math.max(1, Math.round((2 * o.movingSliceMm) / Math.min(...source.spacing))) : 1;
  const at: Vec3 = [0, 0, 0];
  for (let kk = 0, n = 0; kk < size[2]; kk++)
    for (let j = 0; j < size[1]; j++)
      for (let i = 0; i < size[0]; i++, n++) {
        let sum = 0;
        for (let q = 0; q < slab; q++) {
          at[0] = i;
          at[1] = j;
          at[2] = kk;
          at[sup] += (q + 0.5) / slab - 0.5;
          sum += sampleLinear(source, applyAffine(sw, movingToFixed(applyAffine(mw, at))));
        }
        movingData[n] = sum / slab;
      }
  const moving = makeVolume({
    ...movingGrid,
    data: noise(movingData),
    meta: { ...source.meta, description: 'moving (synthetic)' },
  });
  return { fixed, moving, truth, movingToFixed, params: { linear: L, centre, translation: t, bumps } };
}
