/** Worker-thread entry of box-sum-threads.ts: one box sum per message, into the shared output array. */
import { parentPort } from 'node:worker_threads';
import { boxSum } from './box-sum.ts';
import type { BoxSumJob } from './box-sum-threads.ts';

const port = parentPort!;
port.on('message', (m: BoxSumJob & { job: number }) => {
  try {
    boxSum(m.src, m.size, m.r, m.out);
    port.postMessage({ job: m.job });
  } catch (e) {
    port.postMessage({ job: m.job, error: e instanceof Error ? e.message : String(e) });
  }
});
