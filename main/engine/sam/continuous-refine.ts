/**
 * Sub-voxel refinement of a SAM match on the continuous score. The discrete matcher (match.ts) scores
 * local voxel centres with (g + l) / 2; between the centres the same score is defined by the same
 * interpolation the template side uses: l(x) is the cosine of the template's local embedding with the
 * query's local embedding trilinearly interpolated at x and renormalised, g(x) the same with the
 * global embedding at x's place in the global grid (at voxel centres: the official upsampled global).
 * Both are computed without interpolating 128-channel vectors: from the template's dot products with a
 * 3x3x3 block of query voxels and the block's Gram matrix (only pairs that share a cell are needed),
 * sim(x) = sum_c w_c d_c / sqrt(sum_ab w_a w_b G_ab). A pattern search from the best voxel, in steps of
 * 1/2 down to 1/16 voxel within one voxel of it, finds the maximum.
 *
 * Measured with the shipped model on the chest matched onto crops of itself (990 grid points): the
 * parabola through the six neighbours' scores (the earlier refinement) left a mean error of 1.13 mm
 * on the identical image and 1.64-2.75 mm on crops one voxel or more apart; this leaves 0.06 mm and
 * 0.44-1.78 mm (session 13; the README has the numbers). A parabola assumes a smooth peak; the
 * cosine of interpolated embeddings is peaked and skewed, so the parabola is biased toward the voxel.
 *
 * Blocks have 27 slots (slot = i + 3 (j + 3 k) within the block), whatever their extent (1 to 3 voxels
 * per axis where the grid is that small); the GPU matcher (sam/device/) fills the same layout from its
 * gathers, so host and device refine alike. Grid positions are continuous voxel indices.
 */
import { halfTable, type EmbeddingVolume } from './embed-volume.ts';
import type { Vec3 } from '../volume/volume.ts';

export const BLOCK_SLOTS = 27;

export interface SimBlock {
  /** Grid index of the block's first voxel per axis, and its extent (1 to 3) per axis. */
  base: Vec3;
  dims: Vec3;
  /** Template · voxel for each slot. */
  dots: Float64Array;
  /** Voxel · voxel, 27 x 27 by slot (only pairs within one voxel of each other on every axis are read). */
  gram: Float64Array;
  /**
   * Host blocks read by one point: the Gram entries are computed when a cell first needs them (the
   * search visits few of the 8 cells), from the rows; `have` marks the entries done.
   */
  lazy?: { rows: Float32Array; components: number; have: Uint8Array };
  /** The cells blockSimilarity has read (filled by it), by lower corner o0 + 2 (o1 + 2 o2). */
  cells?: (CellCache | undefined)[];
}

/** The block of voxels around a grid position: per axis up to 3 voxels centred on it, inside the grid. */
export function blockAround(centre: readonly number[], size: readonly number[]): { base: Vec3; dims: Vec3 } {
  const base: Vec3 = [0, 0, 0];
  const dims: Vec3 = [1, 1, 1];
  for (let a = 0; a < 3; a++) {
    dims[a] = Math.min(3, size[a]);
    base[a] = Math.min(Math.max(Math.round(centre[a]) - 1, 0), size[a] - dims[a]);
  }
  return { base, dims };
}

/** Flat grid voxel index of each slot (unused slots repeat the first voxel), appended to `into` at `at`. */
export function blockVoxels(b: { base: Vec3; dims: Vec3 }, size: readonly number[], into: Int32Array, at = 0): void {
  const first = b.base[0] + size[0] * (b.base[1] + size[1] * b.base[2]);
  for (let s = 0; s < BLOCK_SLOTS; s++) {
    const i = s % 3;
    const j = Math.floor(s / 3) % 3;
    const k = Math.floor(s / 9);
    into[at + s] =
      i < b.dims[0] && j < b.dims[1] && k < b.dims[2]
        ? b.base[0] + i + size[0] * (b.base[1] + j + size[1] * (b.base[2] + k))
        : first;
  }
}

/** Whether two slots are within one voxel of each other on every axis (they can share a cell). */
function neighbours(s: number, t: number): boolean {
  return (
    Math.abs((s % 3) - (t % 3)) <= 1 &&
    Math.abs((Math.floor(s / 3) % 3) - (Math.floor(t / 3) % 3)) <= 1 &&
    Math.abs(Math.floor(s / 9) - Math.floor(t / 9)) <= 1
  );
}

/** The slot pairs (s <= u) whose Gram entry a cell can read, flat: s0, u0, s1, u1, ... */
const CELL_PAIRS = (() => {
  const p: number[] = [];
  for (let s = 0; s < BLOCK_SLOTS; s++) for (let u = s; u < BLOCK_SLOTS; u++) if (neighbours(s, u)) p.push(s, u);
  return Int32Array.from(p);
})();

/** A block's voxels as float32 rows (27 x C) into `rows`, and which slots it uses into `used`. */
function blockRows(ev: EmbeddingVolume, idx: Int32Array, dims: Vec3, rows: Float32Array, used: Uint8Array): void {
  const C = ev.components;
  const half = ev.storage === 'float16' ? halfTable() : null;
  for (let s = 0; s < BLOCK_SLOTS; s++) {
    used[s] = 0;
    if (s % 3 >= dims[0] || Math.floor(s / 3) % 3 >= dims[1] || Math.floor(s / 9) >= dims[2]) continue;
    used[s] = 1;
    const src = idx[s] * C;
    if (half) {
      const d = ev.data as Uint16Array;
      for (let c = 0; c < C; c++) rows[s * C + c] = half[d[src + c]];
    } else rows.set((ev.data as Float32Array).subarray(src, src + C), s * C);
  }
}

/** The query side of a block, which does not depend on the template (cached per block for the global level). */
export interface BlockGram {
  base: Vec3;
  dims: Vec3;
  rows: Float32Array;
  used: Uint8Array;
  gram: Float64Array;
  /** Which Gram entries hold this point's values (scratch blocks, computed lazily). */
  have?: Uint8Array;
}

/** Gram entry (s, u) from the rows (C channels each). */
function rowDot(rows: Float32Array, C: number, s: number, u: number): number {
  const a = s * C;
  const b = u * C;
  let g0 = 0;
  let g1 = 0;
  let c = 0;
  for (; c + 1 < C; c += 2) {
    g0 += rows[a + c] * rows[b + c];
    g1 += rows[a + c + 1] * rows[b + c + 1];
  }
  if (c < C) g0 += rows[a + c] * rows[b + c];
  return g0 + g1;
}

/**
 * The block around `centre`: its rows and, unless `lazy`, the Gram entries every cell reads; into
 * `into` when given (its arrays reused: no garbage per point).
 */
function blockGram(ev: EmbeddingVolume, centre: readonly number[], into?: BlockGram, lazy = false): BlockGram {
  const { base, dims } = blockAround(centre, ev.size);
  const C = ev.components;
  const q: BlockGram = into ?? {
    base,
    dims,
    rows: new Float32Array(BLOCK_SLOTS * C),
    used: new Uint8Array(BLOCK_SLOTS),
    gram: new Float64Array(BLOCK_SLOTS * BLOCK_SLOTS),
  };
  q.base = base;
  q.dims = dims;
  if (q.rows.length !== BLOCK_SLOTS * C) q.rows = new Float32Array(BLOCK_SLOTS * C);
  blockVoxels({ base, dims }, ev.size, slotVoxels);
  blockRows(ev, slotVoxels, dims, q.rows, q.used);
  if (lazy) return q;
  const { rows, used, gram } = q;
  for (let p = 0; p < CELL_PAIRS.length; p += 2) {
    const s = CELL_PAIRS[p];
    const u = CELL_PAIRS[p + 1];
    if (!used[s] || !used[u]) continue;
    gram[s * BLOCK_SLOTS + u] = gram[u * BLOCK_SLOTS + s] = rowDot(rows, C, s, u);
  }
  return q;
}

const slotVoxels = new Int32Array(BLOCK_SLOTS);

/** Reusable storage for hostBlock's uncached blocks (one a caller, reused point after point). */
export function blockScratch(components: number): BlockGram {
  return {
    base: [0, 0, 0],
    dims: [1, 1, 1],
    rows: new Float32Array(BLOCK_SLOTS * components),
    used: new Uint8Array(BLOCK_SLOTS),
    gram: new Float64Array(BLOCK_SLOTS * BLOCK_SLOTS),
  };
}

/**
 * The block's dot products and Gram matrix from an embedding volume held on the host (float32 or
 * float16). `cache` (per query level, keyed by the block's place) keeps the template-independent part
 * for the next point that reads the same block.
 */
export function hostBlock(
  ev: EmbeddingVolume,
  t: Float32Array,
  centre: readonly number[],
  cache?: Map<number, BlockGram>,
  scratch?: BlockGram,
): SimBlock {
  let q: BlockGram | undefined;
  if (cache) {
    const { base } = blockAround(centre, ev.size);
    const key = base[0] + ev.size[0] * (base[1] + ev.size[1] * base[2]);
    q = cache.get(key);
    if (!q) cache.set(key, (q = blockGram(ev, centre)));
  } else q = blockGram(ev, centre, scratch, true);
  const C = ev.components;
  const dots = new Float64Array(BLOCK_SLOTS);
  for (let s = 0; s < BLOCK_SLOTS; s++) {
    if (!q.used[s]) continue;
    let x = 0;
    for (let c = 0, a = s * C; c < C; c++) x += t[c] * q.rows[a + c];
    dots[s] = x;
  }
  if (cache) return { base: q.base, dims: q.dims, dots, gram: q.gram };
  const have = (scratch ? (scratch.have ??= new Uint8Array(BLOCK_SLOTS ** 2)) : new Uint8Array(BLOCK_SLOTS ** 2)).fill(
    0,
  );
  return { base: q.base, dims: q.dims, dots, gram: q.gram, lazy: { rows: q.rows, components: C, have } };
}

const slotOf = new Int32Array(8);
const weightOf = new Float64Array(8);

/**
 * Cosine of the template with the block's trilinear interpolation at a continuous grid position
 * (clamped into the block's voxel-centre hull).
 */
export function blockSimilarity(b: SimBlock, pos: readonly number[]): number {
  const dims = b.dims;
  // the cell (its lower corner within the block) and the fractions along each axis
  const n0 = dims[0];
  const n1 = dims[1];
  const n2 = dims[2];
  const x = Math.min(Math.max(pos[0] - b.base[0], 0), n0 - 1);
  const y = Math.min(Math.max(pos[1] - b.base[1], 0), n1 - 1);
  const z = Math.min(Math.max(pos[2] - b.base[2], 0), n2 - 1);
  const o0 = n0 > 1 ? Math.min(Math.floor(x), n0 - 2) : 0;
  const o1 = n1 > 1 ? Math.min(Math.floor(y), n1 - 2) : 0;
  const o2 = n2 > 1 ? Math.min(Math.floor(z), n2 - 2) : 0;
  const c = cellOfBlock(b, o0 + 3 * (o1 + 3 * o2));
  const fx = n0 > 1 ? x - o0 : 0;
  const fy = n1 > 1 ? y - o1 : 0;
  const fz = n2 > 1 ? z - o2 : 0;
  const w = weightOf;
  const gx = 1 - fx;
  const gy = 1 - fy;
  const gz = 1 - fz;
  w[0] = gx * gy * gz;
  w[1] = fx * gy * gz;
  w[2] = gx * fy * gz;
  w[3] = fx * fy * gz;
  w[4] = gx * gy * fz;
  w[5] = fx * gy * fz;
  w[6] = gx * fy * fz;
  w[7] = fx * fy * fz;
  const d = c.dots;
  const g = c.gram;
  let num = 0;
  let den = 0;
  for (let p = 0; p < 8; p++) {
    const wp = w[p];
    num += wp * d[p];
    let row = 0;
    for (let q = p + 1; q < 8; q++) row += w[q] * g[p * 8 + q];
    den += wp * (wp * g[p * 9] + 2 * row);
  }
  return num / Math.sqrt(Math.max(den, 1e-24));
}

/** A cell of a block: its 8 corners' dot products and 8 x 8 Gram matrix. */
export interface CellCache {
  dots: Float64Array;
  gram: Float64Array;
}

/** The cell whose lower corner is block slot `key` (corners past a size-1 axis clamp onto it). */
function cellOfBlock(b: SimBlock, key: number): CellCache {
  const o0 = key % 3;
  const o1 = Math.floor(key / 3) % 3;
  const o2 = Math.floor(key / 9);
  // a block has at most 2 x 2 x 2 cells: each kept once filled (the search circles a voxel centre)
  const at = o0 + 2 * (o1 + 2 * o2);
  const all = (b.cells ??= []);
  let c = all[at];
  if (c) return c;
  all[at] = c = { dots: new Float64Array(8), gram: new Float64Array(64) };
  for (let c8 = 0; c8 < 8; c8++)
    slotOf[c8] =
      Math.min(o0 + (c8 & 1), b.dims[0] - 1) +
      3 * (Math.min(o1 + ((c8 >> 1) & 1), b.dims[1] - 1) + 3 * Math.min(o2 + (c8 >> 2), b.dims[2] - 1));
  const lazy = b.lazy;
  for (let p = 0; p < 8; p++) {
    c.dots[p] = b.dots[slotOf[p]];
    for (let q = p; q < 8; q++) {
      const k = slotOf[p] * BLOCK_SLOTS + slotOf[q];
      if (lazy && !lazy.have[k]) {
        const v = rowDot(lazy.rows, lazy.components, slotOf[p], slotOf[q]);
        b.gram[k] = b.gram[slotOf[q] * BLOCK_SLOTS + slotOf[p]] = v;
        lazy.have[k] = lazy.have[slotOf[q] * BLOCK_SLOTS + slotOf[p]] = 1;
      }
      c.gram[p * 8 + q] = c.gram[q * 8 + p] = b.gram[k];
    }
  }
  return c;
}

/**
 * The query's local-to-global index map per axis (the two grids share their axes): global index =
 * scale * local index + offset, clamped into [0, n - 1] as the discrete matcher's cell tables are.
 */
export interface LocalToGlobal {
  scale: Vec3;
  offset: Vec3;
  size: Vec3;
}

/** The global index of a continuous local index, into `out` (a new array by default). */
export function toGlobal(m: LocalToGlobal, pos: readonly number[], out: Vec3 = [0, 0, 0]): Vec3 {
  for (let a = 0; a < 3; a++) out[a] = Math.min(Math.max(m.scale[a] * pos[a] + m.offset[a], 0), m.size[a] - 1);
  return out;
}

/** Neighbour moves by their index d (offsets (d % 3, d / 3 % 3, d / 9) - 1): along one axis, and the rest. */
export const AXIS_MOVES = [12, 14, 10, 16, 4, 22];
export const DIAGONAL_MOVES = Array.from({ length: 27 }, (_, d) => d).filter(
  (d) => d !== 13 && !AXIS_MOVES.includes(d),
);

/**
 * The refined continuous local-grid position of a match found at voxel `bi`: the maximum of
 * (g(x) + l(x)) / 2 within one voxel of it (and inside the grid's voxel-centre hull), by pattern
 * search. Never scores below the voxel itself (it starts there and only moves uphill).
 */
export function refineContinuous(
  bi: readonly number[],
  localSize: readonly number[],
  local: SimBlock,
  global: SimBlock,
  map: LocalToGlobal,
): Vec3 {
  const lo = [0, 1, 2].map((a) => Math.max(0, bi[a] - 1));
  const hi = [0, 1, 2].map((a) => Math.min(localSize[a] - 1, bi[a] + 1));
  const g: Vec3 = [0, 0, 0];
  const score = (p: readonly number[]) =>
    (blockSimilarity(global, toGlobal(map, p, g)) + blockSimilarity(local, p)) / 2;
  const at: Vec3 = [bi[0], bi[1], bi[2]];
  let best = score(at);
  // per step: moves along the axes while one helps, then the 20 diagonal neighbours once (a move
  // there resumes the axis moves); the step halved when none is better, down to 1/16 voxel (0.25 mm
  // on the 4 mm local grid; 1/32 cost a fifth more evaluations for a self-match median of 0.06
  // instead of 0.11 mm). Axis moves alone stalled on diagonal ridges (the plumbing test's inliers
  // 167 -> 151 of 229); all 26 neighbours at every move cost 1.6x the time.
  const q: Vec3 = [0, 0, 0];
  const next: Vec3 = [0, 0, 0];
  const tryMove = (d: number, step: number): boolean => {
    q[0] = at[0] + ((d % 3) - 1) * step;
    q[1] = at[1] + ((Math.floor(d / 3) % 3) - 1) * step;
    q[2] = at[2] + (Math.floor(d / 9) - 1) * step;
    if (q[0] < lo[0] || q[0] > hi[0] || q[1] < lo[1] || q[1] > hi[1] || q[2] < lo[2] || q[2] > hi[2]) return false;
    const s = score(q);
    if (!(s > best)) return false;
    best = s;
    next[0] = q[0];
    next[1] = q[1];
    next[2] = q[2];
    return true;
  };
  for (let step = 0.5; step >= 1 / 16; step /= 2) {
    for (let rounds = 0; rounds < 12; rounds++) {
      let moved = false;
      for (const d of AXIS_MOVES) if (tryMove(d, step)) moved = true;
      if (!moved) for (const d of DIAGONAL_MOVES) if (tryMove(d, step)) moved = true;
      if (!moved) break;
      at[0] = next[0];
      at[1] = next[1];
      at[2] = next[2];
    }
  }
  return at;
}
