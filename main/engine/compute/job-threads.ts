/**
 * A set of worker threads that answer jobs (the engine's CPU parallelism: bench/ncc-threads.ts,
 * register/deform/box-sum-threads.ts). Each job is a message with a `job` number posted to one thread;
 * the thread replies `{ job, ... }` or `{ job, error }`. Lifecycle:
 * - stop(e) (dispose, a cancel): pending and later jobs are rejected with e, the threads terminated;
 * - a thread that fails to load or dies marks the set `broken`: pending jobs are rejected and the
 *   subclass answers in the caller's thread from then on (the same function, the same answers);
 * - end: the threads are terminated and the subclass lets go of what it sent them (released()).
 * Threads are not unref'd: a pending job keeps the process alive until its answer. A set kept for the
 * process's life (`unrefWhenIdle`) is unref'd while no job is pending, so it never holds a process open.
 */
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import type { Worker } from 'node:worker_threads';
import { startThread } from './start-thread.ts';

export interface JobReply {
  job: number;
  error?: string;
}

export abstract class JobThreads<R extends JobReply> {
  private readonly pending = new Map<number, { resolve: (m: R) => void; reject: (e: Error) => void }>();
  private nextJob = 0;
  /** Set by stop() (dispose, a cancel): later jobs are refused with it. */
  protected stopped: Error | null = null;
  /** A thread failed (did not load, or died): the subclass answers in the caller's thread from then on. */
  protected broken: Error | null = null;
  private alive: number;
  /** Resolves once every thread has ended (after stop() or a failure). */
  private terminated: Promise<unknown> | null = null;

  protected constructor(
    protected readonly threads: Worker[],
    private readonly unrefWhenIdle = false,
  ) {
    this.alive = threads.length;
    if (unrefWhenIdle) for (const t of threads) t.unref();
    for (const t of threads) {
      t.on('message', (m: R) => {
        const p = this.pending.get(m.job);
        if (!p) return;
        this.pending.delete(m.job);
        if (this.unrefWhenIdle && this.pending.size === 0) for (const w of this.threads) w.unref();
        if (m.error !== undefined) p.reject(new Error(m.error));
        else p.resolve(m);
      });
      t.on('error', (e) => this.breakDown(e));
      // (a reply that cannot be read would leave its job pending for ever)
      t.on('messageerror', (e) => this.breakDown(e));
      t.on('exit', (code) => {
        this.alive--;
        this.breakDown(new Error(`a worker thread exited (code ${code})`));
      });
    }
  }

  /**
   * Up to `count` threads on `entry` (at most one per core); null when that is fewer than `min`
   * (default 2), the entry is missing (a bundle built without it) or a thread cannot start: the caller
   * works alone then.
   */
  protected static startThreads(count: number, entry: string, min = 2): Worker[] | null {
    const n = Math.min(count, availableParallelism());
    if (n < min || !existsSync(entry)) return null;
    const threads: Worker[] = [];
    try {
      for (let w = 0; w < n; w++) threads.push(startThread(entry));
    } catch {
      for (const t of threads) void t.terminate();
      return null;
    }
    return threads;
  }

  get size(): number {
    return this.threads.length;
  }

  /** Threads still running (none after dispose, a cancel or a failure). */
  get running(): number {
    return this.alive;
  }

  /** Post a job (its `job` number filled in) to thread `w`; resolves with the thread's reply. */
  protected post(w: number, message: { job?: number; [k: string]: unknown }): Promise<R> {
    const job = this.nextJob++;
    // sent first: a message that cannot be sent (too large to copy) leaves no job pending for ever
    // (nor a thread ref'd: the process could not exit)
    this.threads[w].postMessage({ ...message, job });
    const done = new Promise<R>((resolve, reject) => this.pending.set(job, { resolve, reject }));
    if (this.unrefWhenIdle) this.threads[w].ref();
    return done;
  }

  /** Stop the threads: pending and later jobs are rejected with `e`. Returns the error in force. */
  protected stop(e: Error): Error {
    if (!this.stopped) this.stopped = e;
    this.end(this.stopped);
    return this.stopped;
  }

  /**
   * Resolves once the threads have ended after stop() or a failure: no thread writes into shared
   * memory after it (a caller that redoes their work in place waits for it first).
   */
  protected whenTerminated(): Promise<unknown> {
    return this.terminated ?? Promise.resolve();
  }

  /** Let go of what was sent to the threads (they are gone). */
  protected abstract released(): void;

  /** A thread's failure, unless the threads were stopped on purpose. */
  private breakDown(e: Error): void {
    if (this.stopped || this.broken) return;
    this.broken = e;
    this.end(e);
  }

  private end(e: Error): void {
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
    this.released();
    this.terminated ??= Promise.all(this.threads.map((t) => t.terminate()));
  }
}
