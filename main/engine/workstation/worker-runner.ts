/**
 * Starts register-worker in a worker thread. Under tsx (npm run web, tests) the .ts entry is loaded
 * through a two-line shim that registers tsx inside the worker first; in a bundle the built .js
 * beside this module is started directly.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { StartWorker } from './runner.ts';
import type { FromWorker } from './register-protocol.ts';

export function workerEntry(): string {
  const ts = fileURLToPath(new URL('./register-worker.ts', import.meta.url));
  if (existsSync(ts)) return ts;
  return fileURLToPath(new URL('./register-worker.js', import.meta.url));
}

export const startWorkerThread: StartWorker = () => {
  const entry = workerEntry();
  const w = entry.endsWith('.ts')
    ? new Worker(
        `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))})` +
          `.then((t) => { t.register(); return import(${JSON.stringify(pathToFileURL(entry).href)}); })`,
        { eval: true },
      )
    : new Worker(entry);
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
