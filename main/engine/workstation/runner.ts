/**
 * How the workstation runs a registration away from its event loop. Two implementations share the
 * worker entry register-worker.ts: worker-runner.ts (worker_threads; browser mode, tests) and
 * main/utility-runner.ts (Electron utilityProcess).
 */
import type { FromWorker, ToWorker } from './register-protocol.ts';

export interface WorkerHandle {
  post(m: ToWorker): void;
  onMessage(f: (m: FromWorker) => void): void;
  /** Called once if the worker dies without a 'done' or 'error' message; `detail`: its last error output, if kept. */
  onExit(f: (code: number, detail?: string) => void): void;
  terminate(): void;
}

export type StartWorker = () => WorkerHandle;
