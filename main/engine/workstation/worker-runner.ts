/**
 * Starts register-worker in a worker thread (compute/start-thread.ts: its .ts source under tsx, the
 * built .js in a bundle).
 */
import type { StartWorker } from './runner.ts';
import type { FromWorker } from './register-protocol.ts';
import { startThread, threadEntry } from '../compute/start-thread.ts';

export function workerEntry(): string {
  return threadEntry(new URL('./register-worker.ts', import.meta.url));
}

export const startWorkerThread: StartWorker = () => {
  const w = startThread(workerEntry());
  w.unref(); // an idle worker never keeps the process alive
  let exited = false;
  return {
    post: (m) => w.postMessage(m),
    onMessage: (f) => w.on('message', (m: FromWorker) => f(m)),
    onExit: (f) => {
      w.on('error', () => !exited && ((exited = true), f(1)));
      w.on('exit', (code) => !exited && ((exited = true), f(code)));
    },
    terminate: () => void w.terminate(),
  };
};
