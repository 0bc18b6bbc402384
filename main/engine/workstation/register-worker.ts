/**
 * The registration worker's entry: lowers its own priority first, then loads the job code
 * (register-job.ts), so that even loading the engine never competes with the window, the server's
 * event loop or the browser. On Linux, setPriority(0, ...) changes only the calling thread (a worker
 * thread), or the whole child when it runs as an Electron utilityProcess.
 */
import { setPriority } from 'node:os';

try {
  setPriority(0, 10);
} catch {
  // not permitted here: run at normal priority
}
await import('./register-job.ts');
