/**
 * The host matcher's per-point search (match-search.ts: top k, window scan, refinement) shared between
 * the caller's thread and worker threads: each block of points is split into contiguous parts, the
 * caller searches the first while the threads search the others, on the same numbers, so the answers
 * equal a single-threaded match's exactly (test/unit/match-threads.test.ts). The query's embeddings
 * must lie on SharedArrayBuffers (embedVolume and the embedding cache put them there): they are shared
 * with the threads, not copied; otherwise the caller searches alone. The threads keep the queries sent
 * to them (with the query's upsampled-global norms, computed once, here) until matchPoints ends
 * (release()), at most the two most recent.
 * Start them early (they load their modules meanwhile) and dispose of them when done.
 */
import { availableParallelism } from 'node:os';
import { CancelledError } from '../errors.ts';
import { threadEntry } from '../compute/start-thread.ts';
import { JobThreads, type JobReply } from '../compute/job-threads.ts';
import type { EmbeddedVolume } from './embed-volume.ts';
import { emptyFound, type QuerySearch, type SearchBlock, type SearchFound } from './match-search.ts';
import { globalNorms } from './similarity-grid.ts';
import { sharedCopy } from '../compute/shared-memory.ts';
import { profiler } from '../util/profile.ts';

export type MatchToThread =
  | { kind: 'query'; id: number; query: EmbeddedVolume; norms: Float32Array }
  | { kind: 'drop'; id: number }
  | { kind: 'search'; job: number; id: number; block: SearchBlock };

export interface MatchReply extends JobReply {
  found?: SearchFound;
}

/** Queries a thread keeps at most (a forward match's and its cycle check's; each holds its embeddings alive). */
const KEPT_QUERIES = 2;
/** Below this many points a block is searched here alone. */
const MIN_SHARED_POINTS = 64;

const isShared = (e: EmbeddedVolume) =>
  e.local.data.buffer instanceof SharedArrayBuffer && e.global.data.buffer instanceof SharedArrayBuffer;

export class MatchThreads extends JobThreads<MatchReply> {
  private readonly ids = new WeakMap<EmbeddedVolume, number>();
  private sent: number[] = [];
  private nextId = 0;
  /** Points the threads have searched (for tests). */
  pointsInThreads = 0;

  /**
   * `count` threads besides the caller's (default: one per core but one); null on a single core or
   * when the threads cannot start (the caller matches alone). `entry`: the thread's module (tests).
   */
  static start(count = availableParallelism() - 1, entry?: string): MatchThreads | null {
    // (the caller's thread searches too: one thread fewer than cores, and one is enough)
    const threads = JobThreads.startThreads(
      Math.min(count, availableParallelism() - 1),
      entry ?? threadEntry(new URL('./match-worker.ts', import.meta.url)),
      1,
    );
    return threads && new MatchThreads(threads);
  }

  /** Whether the threads can take work (not stopped, not failed). */
  get usable(): boolean {
    return !this.stopped && !this.broken;
  }

  /**
   * The search of a whole block: its first part by `here` (the caller's QuerySearch of `query`), the
   * others by the threads. Rejected with CancelledError when `signal` aborts (the threads are stopped).
   */
  async search(
    query: EmbeddedVolume,
    here: QuerySearch,
    block: SearchBlock,
    signal?: AbortSignal,
  ): Promise<SearchFound> {
    const n = block.n;
    if (!this.usable || n < MIN_SHARED_POINTS || !isShared(query)) return here.searchAll(block);
    const out = emptyFound(n);
    if (signal?.aborted) throw this.stop(new CancelledError('point matching'));
    const id = this.send(query);
    const parts = this.size + 1;
    const cut = (p: number) => Math.floor((p * n) / parts);
    const Vg = block.sims.length / n;
    const C = block.tg.length / n;
    const CL = block.tl.length / n;
    // the block's similarities on shared memory once: each thread reads its rows there (no copy per thread)
    const sims = sharedCopy(block.sims);
    const rows = (a: Float32Array, w: number, lo: number, hi: number) => a.subarray(lo * w, hi * w);
    const pending = this.threads.map((_, w) => {
      const lo = cut(w + 1);
      const hi = cut(w + 2);
      const part: SearchBlock = {
        ...block,
        n: hi - lo,
        tg: rows(block.tg, C, lo, hi),
        tl: rows(block.tl, CL, lo, hi),
        sims: rows(sims, Vg, lo, hi),
      };
      return this.post(w, { kind: 'search', id, block: part }).then((r) => ({ lo, found: r.found! }));
    });
    const onAbort = () => this.stop(new CancelledError('point matching'));
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      // the first part here, while the threads work on theirs
      const prof = profiler('match threads');
      here.search(block, 0, cut(1), out);
      prof.mark('this thread');
      const answers = await Promise.all(pending);
      prof.mark('waiting for the others');
      prof.done(`${n} points`);
      for (const { lo, found } of answers) {
        this.pointsInThreads += found.voxel.length;
        out.voxel.set(found.voxel, lo);
        out.score.set(found.score, lo);
        out.globalScore.set(found.globalScore, lo);
        out.localScore.set(found.localScore, lo);
        out.at.set(found.at, 3 * lo);
      }
      return out;
    } catch (e) {
      // a thread failed (not a cancel): the whole block here instead
      if (this.broken && !this.stopped) return here.searchAll(block);
      throw e;
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }

  /**
   * The threads let go of every query sent to them (matchPoints calls it after each call, so that
   * embeddings the caller drops are not held alive by a thread; sending one again is cheap: shared).
   */
  release(): void {
    if (!this.usable) return;
    for (const id of this.sent.splice(0)) {
      const drop: MatchToThread = { kind: 'drop', id };
      for (const t of this.threads) t.postMessage(drop);
    }
  }

  /** Stop the threads (pending searches are rejected) and let go of the queries sent to them. */
  dispose(): void {
    this.stop(new Error('the matching threads were stopped'));
  }

  protected released(): void {
    this.sent = [];
  }

  /** The query's id in the threads, sent (embeddings shared, norms copied) when they do not hold it. */
  private send(query: EmbeddedVolume): number {
    let id = this.ids.get(query);
    if (id !== undefined && this.sent.includes(id)) return id;
    if (id === undefined) this.ids.set(query, (id = this.nextId++));
    const message: MatchToThread = { kind: 'query', id, query, norms: globalNorms(query) };
    for (const t of this.threads) t.postMessage(message);
    this.sent.push(id);
    while (this.sent.length > KEPT_QUERIES) {
      const drop: MatchToThread = { kind: 'drop', id: this.sent.shift()! };
      for (const t of this.threads) t.postMessage(drop);
    }
    return id;
  }
}
