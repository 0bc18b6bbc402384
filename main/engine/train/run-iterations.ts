/**
 * The skeleton both training loops share (train-loop.ts for SAM, register/deform-net/train.ts for the
 * SAM-deform network): iterations start + 1 .. iterations, each with its own RNG seeded by
 * (seed, t) so a resumed run continues as an uninterrupted one would; the event loop gets a turn
 * before each (tfjs-cpu's awaits are microtasks: without it Ctrl-C would be seen only at the end);
 * on cancellation the last finished iteration is checkpointed; each row is logged, progress reported
 * with rate and ETA, a checkpoint written every `checkpointEvery` iterations and at the end; the
 * caller's `release` frees the weights once the run stops either way.
 */
import { yieldToEventLoop } from '../util/yield.ts';
import type { LossLog } from './loss-log.ts';
import { createRng, type Rng } from './rng.ts';

export interface IterationProgress<R> {
  iteration: number;
  iterations: number;
  row: R;
  /** Iterations per second over this session's iterations. */
  rate: number;
  etaSeconds: number;
}

export interface IterationsResult<R> {
  iteration: number;
  stopped: 'done' | 'cancelled';
  /** The checkpoint saved at the stop; none when stopped before the call's first iteration. */
  checkpoint?: string;
  rows: R[];
}

/** The RNG seed of iteration t: independent streams per iteration, reproducible on resume. */
export function iterationSeed(seed: number, t: number): number {
  return (Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(t, 0x85ebca6b)) >>> 0;
}

/** Iteration t's RNG, as the loop hands it to the step (a step that samples ahead makes the next one with it). */
export function iterationRng(seed: number, t: number): Rng {
  return createRng(iterationSeed(seed, t));
}

/** When to stop, checkpoint and reseed: the training options' fields of those names. */
export interface IterationSchedule {
  iterations: number;
  checkpointEvery: number;
  seed: number;
}

export async function runIterations<R extends { iteration: number; total: number }>(
  run: {
    /** Last iteration already done (0, or the resumed checkpoint's). */
    start: number;
    log: LossLog<R>;
    /** Rows so far (a resumed run's), appended to. */
    rows: R[];
    /** Save a checkpoint after iteration t; returns its folder. */
    checkpoint: (t: number) => Promise<string>;
    release: () => void;
    /** One iteration: returns its row. */
    step: (t: number, rng: Rng) => Promise<R>;
  },
  schedule: IterationSchedule,
  hooks: { signal?: AbortSignal; onProgress?: (p: IterationProgress<R>) => void },
): Promise<IterationsResult<R>> {
  const o = { ...run, ...schedule, signal: hooks.signal, onProgress: hooks.onProgress };
  const { start, rows } = o;
  const t0 = performance.now();
  let t: number;
  for (t = start + 1; t <= o.iterations; t++) {
    await yieldToEventLoop();
    if (o.signal?.aborted) {
      // stopped before this call's first iteration: nothing new to save (a resumed run keeps its
      // latest checkpoint; a new one has none and no model.samw, rather than untrained weights)
      const dir = t > start + 1 ? await o.checkpoint(t - 1) : undefined;
      o.release();
      return { iteration: t - 1, stopped: 'cancelled', checkpoint: dir, rows };
    }
    const row = await o.step(t, iterationRng(o.seed, t));
    rows.push(row);
    o.log.append(row);
    const rate = (t - start) / ((performance.now() - t0) / 1000);
    o.onProgress?.({ iteration: t, iterations: o.iterations, row, rate, etaSeconds: (o.iterations - t) / rate });
    if (t % o.checkpointEvery === 0 && t < o.iterations) await o.checkpoint(t);
  }
  t = Math.max(start, o.iterations);
  const dir = await o.checkpoint(t);
  o.release();
  return { iteration: t, stopped: 'done', checkpoint: dir, rows };
}
