/** Worker-thread entry of mask-threads.ts: one body mask per message, sent back without a copy. */
import { parentPort } from 'node:worker_threads';
import { bodyMask } from './mask.ts';
import type { MaskJob } from './mask-threads.ts';

const port = parentPort!;
port.on('message', (m: MaskJob & { job: number }) => {
  try {
    const t0 = performance.now();
    const mask = bodyMask(m.volume).data;
    port.postMessage({ job: m.job, mask, ms: performance.now() - t0 }, [mask.buffer as ArrayBuffer]);
  } catch (e) {
    port.postMessage({ job: m.job, error: e instanceof Error ? e.message : String(e) });
  }
});
