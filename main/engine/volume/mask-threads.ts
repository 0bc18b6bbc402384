/**
 * Body masks (mask.ts bodyMask) on worker threads: the cascade's two masks at once, one a thread,
 * made while the caller's thread embeds both images (on the GPU, tfjs' queueing and the waits are
 * this thread's; on the CPU, ONNX Runtime's). On an H200 machine the two masks took 0.27-0.29 s of
 * the main thread inside a 0.53-0.66 s embedding step.
 *
 * The threads are the process's: started on the first call, kept for the next registration (a thread
 * loads its modules once), unref'd while idle so that they never hold a process open. Each mask is
 * bodyMask's own answer (the same function on the same voxels). The voxels are copied to the thread
 * with the message; the mask comes back without a copy. When a thread cannot start or fails, the
 * masks are made on the caller's thread from then on.
 */
import type { Worker } from 'node:worker_threads';
import { threadEntry } from '../compute/start-thread.ts';
import { JobThreads, type JobReply } from '../compute/job-threads.ts';
import { bodyMask } from './mask.ts';
import { withData, type Volume } from './volume.ts';

export interface MaskJob {
  kind: 'body-mask';
  /** The volume (geometry, components, data); its meta is left out of the message. */
  volume: Volume;
}

export interface MaskReply extends JobReply {
  mask?: Uint8Array;
  /** The thread's time on the mask, ms. */
  ms?: number;
}

/** A mask and the seconds it took where it was made. */
export interface MadeMask {
  mask: Volume<Uint8Array>;
  seconds: number;
  /** Made on a thread (not on the caller's after a failure). */
  onThread?: boolean;
}

let shared: MaskThreads | null | undefined;

export class MaskThreads extends JobThreads<MaskReply> {
  private next = 0;

  /** The process's mask threads, started on first use; null when none can start. */
  static shared(): MaskThreads | null {
    if (shared === undefined) shared = MaskThreads.start();
    return shared;
  }

  /** Two threads (at most one per core) on `entry` (default mask-worker.ts); null when none can start. */
  static start(entry?: string): MaskThreads | null {
    const threads = JobThreads.startThreads(2, entry ?? threadEntry(new URL('./mask-worker.ts', import.meta.url)), 1);
    return threads && new MaskThreads(threads);
  }

  private constructor(threads: Worker[]) {
    super(threads, true);
  }

  /** bodyMask(volume), made on a thread (here when the threads have failed). */
  async bodyMask(volume: Volume): Promise<MadeMask> {
    const here = (): MadeMask => {
      const t0 = performance.now();
      return { mask: bodyMask(volume), seconds: (performance.now() - t0) / 1000 };
    };
    if (this.stopped) throw this.stopped;
    if (this.broken) return here();
    // (the geometry and voxels: the meta may hold what a message cannot carry)
    const message: MaskJob = { kind: 'body-mask', volume: { ...volume, meta: { warnings: [] } } };
    let reply: Promise<MaskReply>;
    try {
      reply = this.post(this.next++ % this.size, { ...message });
    } catch {
      // the message could not be sent (the voxels too large to copy): this mask here
      return here();
    }
    try {
      const r = await reply;
      return {
        mask: withData(volume, r.mask!, 1, { description: 'body mask' }),
        seconds: (r.ms ?? 0) / 1000,
        onThread: true,
      };
    } catch (e) {
      // a thread failed (it could not load, it died): here, as every later mask
      if (this.broken && !this.stopped) return here();
      throw e;
    }
  }

  /** Stop the threads (not the shared set's: it lives as long as the process). */
  dispose(): void {
    if (this === shared) return;
    this.stop(new Error('the mask threads were stopped'));
  }

  protected released(): void {}
}
