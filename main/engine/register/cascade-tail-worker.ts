/**
 * Worker-thread entry of cascade-tail-threads.ts: one slab of the cascade's dense tail per message
 * (tailSlab), written straight into the shared outputs; the reply carries the slab's Jacobian counts.
 */
import { parentPort } from 'node:worker_threads';
import { tailSlab, type TailSlabJob } from './cascade-tail-threads.ts';

const port = parentPort!;
port.on('message', (m: TailSlabJob & { job: number }) => {
  try {
    port.postMessage({ job: m.job, counts: tailSlab(m) });
  } catch (e) {
    port.postMessage({ job: m.job, error: e instanceof Error ? e.message : String(e) });
  }
});
