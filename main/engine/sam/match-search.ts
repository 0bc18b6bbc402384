/**
 * Steps 2-3 of match.ts for a block of points, after the global similarities: each point's top-k
 * global candidates, the scan of their local windows (first maximum in scan order) and the sub-voxel
 * refinement. A plain function of typed arrays and the query's embeddings, so that the caller's thread
 * and the match threads (match-threads.ts) run the same code on parts of a block: each point's answer
 * depends on nothing but its own rows, so any split gives the same answers.
 */
import { makeVolume, type Vec3, type Volume } from '../volume/volume.ts';
import type { EmbeddedVolume } from './embed-volume.ts';
import { candidateWindow } from './match.ts';
import {
  globalAt,
  localAt,
  localToGlobal,
  scanContext,
  scanWindow,
  topKInto,
  type ScanContext,
  type ScanState,
} from './similarity-grid.ts';
import {
  blockScratch,
  hostBlock,
  refineContinuous,
  toGlobal,
  type BlockGram,
  type LocalToGlobal,
} from './continuous-refine.ts';

/** A block of points to search: template vectors and global similarities, row b for point b. */
export interface SearchBlock {
  /** Template global vectors [n, C], local vectors [n, CL] (sampled and normalised). */
  tg: Float32Array;
  tl: Float32Array;
  /** Global similarities with every query global voxel [n, Vg]. */
  sims: Float32Array;
  n: number;
  topK: number;
  /** Window half-sizes (match.ts windowHalfSizes). */
  h: number[];
  refine: boolean;
}

/** Per point of a searched range: best local voxel, its score and terms, and the refined position. */
export interface SearchFound {
  voxel: Int32Array;
  score: Float64Array;
  globalScore: Float64Array;
  localScore: Float64Array;
  /** Continuous local-grid position (3 a point): the refined one, or the voxel's. */
  at: Float64Array;
}

export function emptyFound(n: number): SearchFound {
  return {
    voxel: new Int32Array(n),
    score: new Float64Array(n),
    globalScore: new Float64Array(n),
    localScore: new Float64Array(n),
    at: new Float64Array(3 * n),
  };
}

/**
 * The search state of one thread over one query: the scan context (its visited stamps tell one point's
 * overlapping windows apart: each point gets a new stamp number), the global blocks' Gram matrices
 * (shared by the points that read the same block), scratch.
 */
export class QuerySearch {
  private readonly ctx: ScanContext;
  private readonly l2g: LocalToGlobal;
  private readonly globalBlocks = new Map<number, BlockGram>();
  private readonly localBlock: ReturnType<typeof blockScratch>;
  private readonly scan: ScanState = { best: -Infinity, bestV: 0, bestG: 0, bestL: 0 };
  private nextStamp = 0;

  constructor(readonly query: EmbeddedVolume) {
    this.ctx = scanContext(query);
    this.l2g = localToGlobal(query);
    this.localBlock = blockScratch(query.local.components);
  }

  /** The whole block searched here. */
  searchAll(b: SearchBlock): SearchFound {
    const out = emptyFound(b.n);
    this.search(b, 0, b.n, out);
    return out;
  }

  /** The combined similarity (g + l) / 2 of block row r's point at every query local voxel (returnMap). */
  similarityMap(b: SearchBlock, r: number): Volume<Float32Array> {
    const { query, ctx } = this;
    const CL = query.local.components;
    const tl = b.tl.subarray(r * CL, (r + 1) * CL);
    const rowOff = r * (b.sims.length / b.n);
    const [li, lj, lk] = query.local.size;
    const map = new Float32Array(li * lj * lk);
    for (let k = 0, n = 0; k < lk; k++)
      for (let j = 0; j < lj; j++)
        for (let i = 0; i < li; i++, n++)
          map[n] = (globalAt(ctx, b.sims, rowOff, i, j, k) + localAt(ctx, tl, i + li * (j + lj * k))) / 2;
    return makeVolume({ ...query.local, components: 1, data: map, meta: { description: 'SAM similarity' } });
  }

  /** Search rows lo .. hi - 1 of the block into `out` at the same rows (out's row 0 = block row `outFirst`). */
  search(b: SearchBlock, lo: number, hi: number, out: SearchFound, outFirst = 0): void {
    const { query, ctx, scan } = this;
    const C = query.global.components;
    const CL = query.local.components;
    const [li, lj, lk] = query.local.size;
    const [gi, gj, gk] = query.global.size;
    const Vg = gi * gj * gk;
    const cand = new Int32Array(b.topK);
    const candS = new Float32Array(b.topK);
    for (let r = lo; r < hi; r++) {
      const rowOff = r * Vg;
      const tl = b.tl.subarray(r * CL, (r + 1) * CL);
      topKInto(b.sims, rowOff, Vg, cand, candS);
      // the windows around the candidates (the whole grid when every voxel is one)
      scan.best = -Infinity;
      const stamp = this.nextStamp++;
      for (let q = 0; q < b.topK && cand[q] >= 0; q++) {
        if (b.topK === Vg) {
          scanWindow(ctx, scan, tl, b.sims, rowOff, [0, 0, 0], [li - 1, lj - 1, lk - 1], -1);
          break;
        }
        const { lo: wlo, hi: whi } = candidateWindow(query, cand[q], b.h);
        scanWindow(ctx, scan, tl, b.sims, rowOff, wlo, whi, stamp);
      }
      const { best, bestV, bestG, bestL } = scan;
      const bi: Vec3 = [bestV % li, Math.floor(bestV / li) % lj, Math.floor(bestV / (li * lj))];
      // sub-voxel: the continuous score's maximum within one voxel (continuous-refine.ts)
      const at: Vec3 = b.refine
        ? refineContinuous(
            bi,
            query.local.size,
            hostBlock(query.local, tl, bi, undefined, this.localBlock),
            hostBlock(query.global, b.tg.subarray(r * C, (r + 1) * C), toGlobal(this.l2g, bi), this.globalBlocks),
            this.l2g,
          )
        : bi;
      const o = r - outFirst;
      out.voxel[o] = bestV;
      out.score[o] = best;
      out.globalScore[o] = bestG;
      out.localScore[o] = bestL;
      out.at.set(at, 3 * o);
    }
  }
}
