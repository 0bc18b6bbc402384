/**
 * Electron's way to run register-worker: an Electron utilityProcess (a Node child process managed by
 * Electron), so a long registration never blocks the main process or the window. Same entry and
 * messages as the worker thread of the browser mode (engine/workstation/worker-runner.ts), with two
 * differences a separate process needs: large typed arrays travel in parts (message-parts.ts: one
 * utilityProcess message past ~512 MB crashes Electron), and the child's stderr is kept, so that a
 * worker that dies (a module that does not load, a native library missing) says why in the error the
 * user sees, where a packaged app has no console.
 */
import { utilityProcess } from 'electron';
import { join } from 'node:path';
import type { FromWorker } from './engine/workstation/register-protocol.ts';
import type { StartWorker } from './engine/workstation/runner.ts';
import { PartJoiner, sendInParts } from './engine/workstation/message-parts.ts';

const STDERR_KEPT = 4000;

export function utilityRunner(bundleDir: string): StartWorker {
  return () => {
    const child = utilityProcess.fork(join(bundleDir, 'register-worker.js'), [], {
      serviceName: 'SAM registration',
      stdio: ['ignore', 'inherit', 'pipe'],
    });
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => {
      process.stderr.write(d);
      stderr = (stderr + d.toString()).slice(-STDERR_KEPT);
    });
    const joiner = new PartJoiner();
    return {
      post: (m) => sendInParts(m, (part) => child.postMessage(part)),
      onMessage: (f) =>
        child.on('message', (m: unknown) => {
          const whole = joiner.accept<FromWorker>(m);
          if (whole) f(whole);
        }),
      onExit: (f) => child.on('exit', (code) => f(code, stderr.trim().split('\n').slice(-5).join('\n') || undefined)),
      terminate: () => void child.kill(),
    };
  };
}
