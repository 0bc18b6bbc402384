/**
 * Box sums (box-sum.ts) on worker threads for the deform stage's host optimisation: the several box
 * sums of an iteration (three of the LNCC's forward pass, four of its gradient, three per smoothing
 * pass) are independent, so each goes to a thread; each is the same boxSum on the same numbers, so the
 * optimisation's result is the same on any number of threads. Arrays travel as SharedArrayBuffers
 * (shared32 / shared64 give reusable ones). Threads that fail leave the sums to the caller's thread.
 */
import { threadEntry } from '../../compute/start-thread.ts';
import { JobThreads, type JobReply } from '../../compute/job-threads.ts';
import { sharedVoxels } from '../../compute/shared-memory.ts';
import { boxSum } from './box-sum.ts';

export interface BoxSumJob {
  kind: 'boxsum';
  src: Float32Array | Float64Array;
  out: Float64Array;
  size: number[];
  r: number;
}

export class BoxSumThreads extends JobThreads<JobReply> {
  private readonly scratch = new Map<string, Float32Array | Float64Array>();

  /**
   * `count` threads (default 4: an iteration has 3-4 sums at a time; at most one per core); null when
   * fewer than 2 or they cannot start.
   */
  static start(count = 4, entry?: string): BoxSumThreads | null {
    const threads = JobThreads.startThreads(
      count,
      entry ?? threadEntry(new URL('./box-sum-worker.ts', import.meta.url)),
    );
    return threads && new BoxSumThreads(threads);
  }

  /**
   * outs[n] = boxSum(srcs[n], size, r), the sums spread over the threads (srcs and outs on shared
   * memory: shared32 / shared64). One call at a time per set (they share the scratch arrays).
   */
  async sums(srcs: (Float32Array | Float64Array)[], outs: Float64Array[], size: readonly number[], r: number) {
    if (this.stopped) throw this.stopped;
    const here = () => srcs.forEach((s, n) => boxSum(s, size, r, outs[n]));
    if (this.broken) return here();
    for (const a of [...srcs, ...outs])
      if (!(a.buffer instanceof SharedArrayBuffer))
        throw new Error('BoxSumThreads.sums: an array not on shared memory (the threads would write into a copy)');
    try {
      await Promise.all(
        srcs.map((src, n) =>
          this.post(n % this.size, { kind: 'boxsum', src, out: outs[n], size: [...size], r } satisfies BoxSumJob),
        ),
      );
    } catch (e) {
      // the other threads may still be writing into outs: stop them (a failure did already) and wait
      if (!this.broken) this.stop(e instanceof Error ? e : new Error(String(e)));
      await this.whenTerminated();
      // a thread failed (not a dispose, not an error of the sums): the sums here instead
      if (this.broken && !this.stopped) return here();
      throw e;
    }
  }

  /** A float32 array of n on shared memory, the same one for the same key and length (reused per iteration). */
  shared32(key: string, n: number): Float32Array {
    return this.reuse(`f32:${key}`, n, () => sharedVoxels('float32', n) as Float32Array) as Float32Array;
  }

  /** shared32's float64 sibling. */
  shared64(key: string, n: number): Float64Array {
    return this.reuse(`f64:${key}`, n, () => sharedVoxels('float64', n) as Float64Array) as Float64Array;
  }

  dispose(): void {
    this.stop(new Error('the box-sum threads were stopped'));
  }

  protected released(): void {
    this.scratch.clear();
  }

  private reuse(key: string, n: number, make: () => Float32Array | Float64Array) {
    let a = this.scratch.get(key);
    if (!a || a.length !== n) this.scratch.set(key, (a = make()));
    return a;
  }
}
