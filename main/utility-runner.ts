/**
 * Electron's way to run register-worker: an Electron utilityProcess (a Node child process managed by
 * Electron), so a long registration never blocks the main process or the window. Same entry and
 * messages as the worker thread of the browser mode (engine/workstation/worker-runner.ts).
 */
import { utilityProcess } from 'electron';
import { join } from 'node:path';
import type { FromWorker } from './engine/workstation/register-protocol.ts';
import type { StartWorker } from './engine/workstation/runner.ts';

export function utilityRunner(bundleDir: string): StartWorker {
  return () => {
    const child = utilityProcess.fork(join(bundleDir, 'register-worker.js'), [], {
      serviceName: 'SAM registration',
      stdio: 'inherit',
    });
    return {
      post: (m) => child.postMessage(m),
      onMessage: (f) => child.on('message', (m: FromWorker) => f(m)),
      onExit: (f) => child.on('exit', (code) => f(code)),
      terminate: () => void child.kill(),
    };
  };
}
