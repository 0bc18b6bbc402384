/**
 * NCC template matching (ncc-match.ts) on worker threads: the points of a call are split into
 * contiguous parts, one per thread, each matched by the same nccMatch on the same numbers, so the
 * answers equal a single-threaded call's exactly. The images' voxels and the moving image's search
 * levels are made once, on SharedArrayBuffers, and shared with every thread (not copied per thread).
 * The cascade starts one set of threads for its NCC stages and disposes it after them; volumes sent to
 * the threads stay there until then.
 */
import { CancelledError } from '../errors.ts';
import { threadEntry } from '../compute/start-thread.ts';
import { JobThreads, type JobReply } from '../compute/job-threads.ts';
import type { Vec3, Volume } from '../volume/volume.ts';
import {
  nccLevelKey,
  nccLevels,
  nccMatch,
  type NccLevel,
  type NccMatch,
  type NccMatcher,
  type NccOptions,
} from './ncc-match.ts';
import { sharedVolume } from '../compute/shared-memory.ts';

export type NccToThread =
  | { kind: 'volume'; id: number; volume: Volume; levels: NccLevel[] }
  | { kind: 'levels'; id: number; levels: NccLevel[] }
  | { kind: 'match'; job: number; fixed: number; moving: number; points: Vec3[]; options: NccOptions };

/** A thread's answer: the matches and the search levels it had to make itself, or an error. */
export interface NccReply extends JobReply {
  matches?: NccMatch[];
  levelsMade?: number;
}

export class NccThreads extends JobThreads<NccReply> implements NccMatcher {
  private readonly ids = new Map<Volume, number>();
  /** Levels already sent, per volume id and level key. */
  private readonly sentLevels = new Set<string>();
  /** Search levels the threads made themselves (0 when they use the shared ones; for tests). */
  levelsMadeInThreads = 0;

  /**
   * `count` threads (default 8; at most one per core); null when that is fewer than 2
   * or the threads cannot start (match in the caller's thread). `entry`: the thread's module (tests).
   */
  static start(count = 8, entry?: string): NccThreads | null {
    const threads = JobThreads.startThreads(
      count,
      entry ?? threadEntry(new URL('./ncc-match-worker.ts', import.meta.url)),
    );
    return threads && new NccThreads(threads);
  }

  /**
   * nccMatch(fixed, moving, points, options), the points shared out among the threads; in the caller's
   * thread when they are few or a thread has failed. Rejected with CancelledError when `signal` aborts
   * (the threads are stopped).
   */
  async match(
    fixed: Volume,
    moving: Volume,
    points: Vec3[],
    options: NccOptions = {},
    signal?: AbortSignal,
  ): Promise<NccMatch[]> {
    if (this.stopped) throw this.stopped;
    if (signal?.aborted) throw this.stop(new CancelledError('NCC matching'));
    // too few points to share, or no threads left: here
    if (this.broken || points.length < 2 * this.size) return nccMatch(fixed, moving, points, options);
    const f = this.send(fixed, []);
    const m = this.send(moving, nccLevels(moving, options));
    const n = this.size;
    const parts = this.threads.map((_, w) => {
      const lo = Math.floor((w * points.length) / n);
      const hi = Math.floor(((w + 1) * points.length) / n);
      const initial = options.initial?.slice(lo, hi);
      return this.post(w, {
        kind: 'match',
        fixed: f,
        moving: m,
        points: points.slice(lo, hi),
        options: { ...options, initial },
      } satisfies Omit<Extract<NccToThread, { kind: 'match' }>, 'job'>).then((r) => {
        this.levelsMadeInThreads += r.levelsMade ?? 0;
        return r.matches ?? [];
      });
    });
    const onAbort = () => this.stop(new CancelledError('NCC matching'));
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      return (await Promise.all(parts)).flat();
    } catch (e) {
      // a thread failed (not a cancel, not an error of the matching itself): answer here instead
      if (this.broken && !this.stopped) return nccMatch(fixed, moving, points, options);
      throw e;
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }

  /** Stop the threads (pending calls are rejected) and let go of the images sent to them. */
  dispose(): void {
    this.stop(new Error('the NCC matching threads were stopped'));
  }

  protected released(): void {
    this.ids.clear();
    this.sentLevels.clear();
  }

  /** The volume's id in the threads, sent (voxels on shared memory) with the levels they lack. */
  private send(v: Volume, levels: NccLevel[]): number {
    let id = this.ids.get(v);
    const isNew = id === undefined;
    if (id === undefined) this.ids.set(v, (id = this.ids.size));
    const fresh = levels.filter((L) => !this.sentLevels.has(`${id}:${nccLevelKey(L)}`));
    if (!isNew && !fresh.length) return id;
    for (const L of fresh) this.sentLevels.add(`${id}:${nccLevelKey(L)}`);
    const message: NccToThread = isNew
      ? { kind: 'volume', id, volume: sharedVolume(v, { source: v.meta.source }), levels: fresh }
      : { kind: 'levels', id, levels: fresh };
    for (const t of this.threads) t.postMessage(message);
    return id;
  }
}

/**
 * nccMatch(fixed, moving, points, options) on `threads` when given (worker threads: the same answers;
 * the GPU: the same search in float32), else in this thread: the one call of the cascade's NCC stages.
 */
export async function nccMatchOn(
  threads: NccMatcher | null | undefined,
  fixed: Volume,
  moving: Volume,
  points: Vec3[],
  options: NccOptions,
  signal?: AbortSignal,
): Promise<NccMatch[]> {
  return threads ? threads.match(fixed, moving, points, options, signal) : nccMatch(fixed, moving, points, options);
}
