/**
 * The query side of point matching (match.ts): where each local voxel sits in the global grid, the
 * norm of the upsampled global embedding there (the official renormalisation), and the inner loops
 * that score local voxels ((global + local) / 2) and pick the top-k global candidates. Kept apart
 * from match.ts as plain functions over typed arrays so that V8 optimises them.
 */
import { InputError } from '../errors.ts';
import { indexToWorldMatrix, worldToIndexMatrix, type Affine3x4, type Geometry } from '../volume/geometry.ts';
import type { Vec3 } from '../volume/volume.ts';
import { embeddingFloat32, halfTable, type EmbeddedVolume, type EmbeddingVolume } from './embed-volume.ts';
import type { LocalToGlobal } from './continuous-refine.ts';

/** a ∘ b for 3x4 affines. */
export function compose(a: Affine3x4, b: Affine3x4): Affine3x4 {
  const m: number[] = [];
  for (let r = 0; r < 3; r++)
    for (let c = 0; c < 4; c++)
      m.push(a[r * 4] * b[c] + a[r * 4 + 1] * b[4 + c] + a[r * 4 + 2] * b[8 + c] + (c === 3 ? a[r * 4 + 3] : 0));
  return m as Affine3x4;
}

/**
 * Where each local voxel sits in the global grid, per axis (the two grids of an embedded volume share
 * their axes): flat offset of its global cell's lower corner, trilinear fraction, corner step.
 */
export interface CellTables {
  off: [Int32Array, Int32Array, Int32Array];
  frac: [Float64Array, Float64Array, Float64Array];
  step: Vec3;
}

interface QueryCache {
  local: EmbeddingVolume;
  /** Local index -> global index per axis; the cell tables are its values at the local voxels. */
  l2g: LocalToGlobal;
  cells: CellTables;
  norms?: Float32Array;
}
const queryCache = new WeakMap<EmbeddingVolume, QueryCache>();

/** The query's local-to-global index map per axis (cached; continuous-refine.ts). */
export function localToGlobal(e: { global: Geometry; local: Geometry }): LocalToGlobal {
  return cached(e as unknown as EmbeddedVolume).l2g;
}

/** The cell tables of an embedded volume (cached; shared with the GPU matcher, sam/device/). */
export function cellTables(e: { global: Geometry; local: Geometry }): CellTables {
  return cached(e as unknown as EmbeddedVolume).cells;
}

function cached(e: EmbeddedVolume): QueryCache {
  let q = queryCache.get(e.global);
  if (q && q.local === e.local) return q;
  const m = compose(worldToIndexMatrix(e.global), indexToWorldMatrix(e.local));
  for (let r = 0; r < 3; r++)
    for (let c = 0; c < 3; c++)
      if (r !== c && Math.abs(m[r * 4 + c]) > 1e-9)
        throw new InputError('SAM embedding', 'its global and local grids do not share axes');
  const G = e.global.size;
  const l2g: LocalToGlobal = { scale: [m[0], m[5], m[10]], offset: [m[3], m[7], m[11]], size: [G[0], G[1], G[2]] };
  const strides = [1, G[0], G[0] * G[1]];
  const off = [0, 1, 2].map((a) => new Int32Array(e.local.size[a])) as CellTables['off'];
  const frac = [0, 1, 2].map((a) => new Float64Array(e.local.size[a])) as CellTables['frac'];
  for (let a = 0; a < 3; a++)
    for (let t = 0; t < e.local.size[a]; t++) {
      const x = Math.min(Math.max(l2g.scale[a] * t + l2g.offset[a], 0), G[a] - 1);
      const x0 = Math.min(Math.floor(x), Math.max(G[a] - 2, 0));
      off[a][t] = x0 * strides[a];
      frac[a][t] = G[a] > 1 ? x - x0 : 0;
    }
  const step = [0, 1, 2].map((a) => (G[a] > 1 ? strides[a] : 0)) as Vec3;
  q = { local: e.local, l2g, cells: { off, frac, step } };
  queryCache.set(e.global, q);
  return q;
}

/** Use norms made elsewhere (globalNorms of the same embeddings, e.g. in another thread) for this volume. */
export function adoptGlobalNorms(e: EmbeddedVolume, norms: Float32Array): void {
  const q = cached(e);
  const [li, lj, lk] = e.local.size;
  if (norms.length !== li * lj * lk)
    throw new RangeError(`adoptGlobalNorms: ${norms.length} norms for ${li * lj * lk} voxels`);
  q.norms = norms;
}

/**
 * |trilinear upsampling of the global embedding| at every local voxel of an embedded volume (the
 * official code divides by it), from each global cell's 8x8 Gram matrix. Cached per volume.
 */
export function globalNorms(e: EmbeddedVolume): Float32Array {
  const q = cached(e);
  if (q.norms) return q.norms;
  const G = embeddingFloat32(e.global);
  const C = e.global.components;
  const { off, frac, step } = q.cells;
  const [li, lj, lk] = e.local.size;
  const norms = new Float32Array(li * lj * lk);
  const grams = new Map<number, Float64Array>();
  const w = new Float64Array(8);
  for (let k = 0, n = 0; k < lk; k++)
    for (let j = 0; j < lj; j++)
      for (let i = 0; i < li; i++, n++) {
        const p = off[0][i] + off[1][j] + off[2][k];
        const f = [frac[0][i], frac[1][j], frac[2][k]];
        for (let c = 0; c < 8; c++)
          w[c] = (c & 1 ? f[0] : 1 - f[0]) * (c & 2 ? f[1] : 1 - f[1]) * (c & 4 ? f[2] : 1 - f[2]);
        let gram = grams.get(p);
        if (!gram) {
          gram = new Float64Array(64);
          const corner = (c: number) => p + (c & 1 ? step[0] : 0) + (c & 2 ? step[1] : 0) + (c & 4 ? step[2] : 0);
          for (let a = 0; a < 8; a++)
            for (let b = a; b < 8; b++) {
              let s = 0;
              for (let ch = 0, x = corner(a) * C, y = corner(b) * C; ch < C; ch++) s += G[x + ch] * G[y + ch];
              gram[a * 8 + b] = gram[b * 8 + a] = s;
            }
          grams.set(p, gram);
        }
        let s2 = 0;
        for (let a = 0; a < 8; a++) if (w[a] !== 0) for (let b = 0; b < 8; b++) s2 += w[a] * w[b] * gram[a * 8 + b];
        norms[n] = Math.sqrt(Math.max(s2, 1e-24));
      }
  q.norms = norms;
  return norms;
}

export interface ScanContext {
  q32: Float32Array | null;
  q16: Uint16Array | null;
  half: Float32Array;
  CL: number;
  li: number;
  lj: number;
  ox: Int32Array;
  oy: Int32Array;
  oz: Int32Array;
  fxs: Float64Array;
  fys: Float64Array;
  fzs: Float64Array;
  dx: number;
  dy: number;
  dz: number;
  gnorm: Float32Array;
  stamp: Int32Array;
  scratch: Float64Array;
}

export interface ScanState {
  best: number;
  bestV: number;
  bestG: number;
  bestL: number;
}

/**
 * The row's similarities at one x-edge of a global cell, interpolated along y then z (the first two
 * of globalAt's three steps; p = the edge's lower-y, lower-z voxel in the row).
 */
function edgeYZ(row: Float32Array, p: number, dy: number, dz: number, fy: number, fz: number): number {
  const c0 = row[p] + (row[p + dy] - row[p]) * fy;
  const c1 = row[p + dz] + (row[p + dz + dy] - row[p + dz]) * fy;
  return c0 + (c1 - c0) * fz;
}

/**
 * Global similarity at local voxel (i, j, k): the row upsampled (trilinear: y, then z, then x) and
 * renormalised. scanWindow computes the same numbers with the y and z steps shared along a row.
 */
export function globalAt(x: ScanContext, row: Float32Array, rowOff: number, i: number, j: number, k: number): number {
  const p = rowOff + x.ox[i] + x.oy[j] + x.oz[k];
  const fy = x.fys[j];
  const fz = x.fzs[k];
  const a0 = edgeYZ(row, p, x.dy, x.dz, fy, fz);
  const a1 = edgeYZ(row, p + x.dx, x.dy, x.dz, fy, fz);
  return (a0 + (a1 - a0) * x.fxs[i]) / x.gnorm[i + x.li * (j + x.lj * k)];
}

/**
 * Local similarity of `tl` with local voxel v: one accumulator in channel order, the arithmetic of
 * localRow's, so that a voxel scores the same bits whichever path scored it.
 */
export function localAt(x: ScanContext, tl: Float32Array, v: number): number {
  const C = x.CL;
  const base = v * C;
  let s0 = 0;
  if (x.q32) {
    const q = x.q32;
    for (let c = 0; c < C; c++) s0 += tl[c] * q[base + c];
  } else {
    const q = x.q16!;
    const t = x.half;
    for (let c = 0; c < C; c++) s0 += tl[c] * t[q[base + c]];
  }
  return s0;
}

/** Local similarities of `tl` with the n voxels from v0 on (contiguous), into out[0..n). */
function localRow(x: ScanContext, tl: Float32Array, v0: number, n: number, out: Float64Array): void {
  const C = x.CL;
  if (!x.q32) {
    for (let t = 0; t < n; t++) out[t] = localAt(x, tl, v0 + t);
    return;
  }
  const q = x.q32;
  let t = 0;
  for (; t + 3 < n; t += 4) {
    const b0 = (v0 + t) * C;
    const b1 = b0 + C;
    const b2 = b1 + C;
    const b3 = b2 + C;
    let s0 = 0;
    let s1 = 0;
    let s2 = 0;
    let s3 = 0;
    for (let c = 0; c < C; c++) {
      const a = tl[c];
      s0 += a * q[b0 + c];
      s1 += a * q[b1 + c];
      s2 += a * q[b2 + c];
      s3 += a * q[b3 + c];
    }
    out[t] = s0;
    out[t + 1] = s1;
    out[t + 2] = s2;
    out[t + 3] = s3;
  }
  for (; t < n; t++) out[t] = localAt(x, tl, v0 + t);
}

/**
 * Largest local similarity counted by the pruning bound: unit vectors give at most 1; the margin
 * covers float32 rounding of normalised embeddings (|l - 1| ~ 1e-7).
 */
const LOCAL_BOUND = 1 + 1e-4;

/**
 * Score the local voxels of box [lo, hi] not yet stamped `id` (-1: no stamping), keeping the best.
 * A voxel whose global similarity g cannot win even with a perfect local one ((g + 1) / 2 at most
 * the best so far) is not scored locally (the 128-channel dot product is the cost): the result is
 * the exhaustive scan's, since such a voxel never replaces the best.
 */
export function scanWindow(
  x: ScanContext,
  st: ScanState,
  tl: Float32Array,
  row: Float32Array,
  rowOff: number,
  lo: number[],
  hi: number[],
  id: number,
): void {
  const n = hi[0] - lo[0] + 1;
  if (x.scratch.length < 2 * n) x.scratch = new Float64Array(2 * n);
  const ls = x.scratch;
  const gs = x.scratch.subarray(n, 2 * n);
  for (let k = lo[2]; k <= hi[2]; k++)
    for (let j = lo[1]; j <= hi[1]; j++) {
      const v0 = lo[0] + x.li * (j + x.lj * k);
      // global similarities of the row (globalAt's arithmetic, its y and z steps once per cell edge),
      // and how many voxels could still win
      let alive = 0;
      const thr = 2 * st.best - LOCAL_BOUND;
      const pjk = rowOff + x.oy[j] + x.oz[k];
      const fy = x.fys[j];
      const fz = x.fzs[k];
      let cellX = -1;
      let a0 = 0;
      let a1 = 0;
      for (let t = 0; t < n; t++) {
        const v = v0 + t;
        if (id >= 0) {
          if (x.stamp[v] === id) {
            gs[t] = -Infinity;
            continue;
          }
          x.stamp[v] = id;
        }
        const i = lo[0] + t;
        if (x.ox[i] !== cellX) {
          cellX = x.ox[i];
          a0 = edgeYZ(row, pjk + cellX, x.dy, x.dz, fy, fz);
          a1 = edgeYZ(row, pjk + cellX + x.dx, x.dy, x.dz, fy, fz);
        }
        const g = (a0 + (a1 - a0) * x.fxs[i]) / x.gnorm[v];
        gs[t] = g;
        if (g > thr) alive++;
      }
      if (alive === 0) continue;
      // most of the row alive: the unrolled row product; else one voxel at a time
      const whole = 2 * alive > n;
      if (whole) localRow(x, tl, v0, n, ls);
      for (let t = 0; t < n; t++) {
        const g = gs[t];
        if (!(g > 2 * st.best - LOCAL_BOUND)) continue;
        const l = whole ? ls[t] : localAt(x, tl, v0 + t);
        const s = (g + l) / 2;
        if (s > st.best) {
          st.best = s;
          st.bestV = v0 + t;
          st.bestG = g;
          st.bestL = l;
        }
      }
    }
}

/** Indices (and values) of the cand.length largest of sims[off .. off + n), best first; -1 pads. */
export function topKInto(sims: Float32Array, off: number, n: number, cand: Int32Array, candS: Float32Array): void {
  const k = cand.length;
  candS.fill(-Infinity);
  cand.fill(-1);
  let thr = -Infinity;
  for (let v = 0, r = off; v < n; v++, r++) {
    const s = sims[r];
    if (s <= thr) continue;
    let q = k - 1;
    for (; q > 0 && candS[q - 1] < s; q--) {
      candS[q] = candS[q - 1];
      cand[q] = cand[q - 1];
    }
    candS[q] = s;
    cand[q] = v;
    thr = candS[k - 1];
  }
}

/** Everything the scans read about a query (cached tables, fresh stamps). */
export function scanContext(query: EmbeddedVolume): ScanContext {
  const { off, frac, step } = cached(query).cells;
  const half = query.local.storage === 'float16' ? halfTable() : null;
  const [li, lj, lk] = query.local.size;
  return {
    q32: half ? null : (query.local.data as Float32Array),
    q16: half ? (query.local.data as Uint16Array) : null,
    half: half ?? new Float32Array(0),
    CL: query.local.components,
    li,
    lj,
    ox: off[0],
    oy: off[1],
    oz: off[2],
    fxs: frac[0],
    fys: frac[1],
    fzs: frac[2],
    dx: step[0],
    dy: step[1],
    dz: step[2],
    gnorm: globalNorms(query),
    stamp: new Int32Array(li * lj * lk).fill(-1),
    scratch: new Float64Array(64),
  };
}
