/**
 * Worker threads on engine modules, under tsx (the CLI, `npm run web`, the tests) and in the
 * electron-vite bundle alike: an entry is named by its .ts source beside the caller; when that source
 * is there the thread loads it through a two-line shim that registers tsx inside the thread first,
 * otherwise (a bundle) it starts the built .js of the same name beside the caller's chunk (each entry
 * is an input of electron.vite.config.ts, built to out/main/<name>.js).
 */
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { disableOnnxTelemetry } from './onnx-runtime.ts';

/** The entry's file: the .ts source (`tsUrl`) when present, else the .js of the same name beside it. */
export function threadEntry(tsUrl: URL): string {
  const ts = fileURLToPath(tsUrl);
  if (existsSync(ts)) return ts;
  return ts.replace(/\.ts$/, '.js');
}

/** Start a worker thread on an entry (threadEntry's file). */
export function startThread(entry: string): Worker {
  // (in the process's environment before a thread can load ONNX Runtime: onnx-runtime.ts)
  disableOnnxTelemetry();
  return entry.endsWith('.ts')
    ? new Worker(
        `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))})` +
          `.then((t) => { t.register(); return import(${JSON.stringify(pathToFileURL(entry).href)}); })`,
        { eval: true },
      )
    : new Worker(entry);
}
