/**
 * The registration worker's job (loaded by register-worker.ts): receives two volumes and options, runs the cascade
 * (registerVolumes) off the caller's event loop, posts progress, honours cancel. Runs as a
 * worker_threads Worker (browser-mode server, tests) or as an Electron utilityProcess (desktop app):
 * the port adapter below is the only difference.
 */
import { parentPort } from 'node:worker_threads';
import { registerVolumes } from '../register/cascade.ts';
import type { FromWorker, ToWorker } from './register-protocol.ts';

interface Port {
  post(m: FromWorker): void;
  onMessage(f: (m: ToWorker) => void): void;
}

/** Electron's utilityProcess child exposes process.parentPort (messages arrive as { data }). */
interface UtilityParentPort {
  postMessage(m: unknown): void;
  on(event: 'message', f: (e: { data: unknown }) => void): void;
}

function port(): Port {
  if (parentPort) {
    const p = parentPort;
    return { post: (m) => p.postMessage(m), onMessage: (f) => p.on('message', (m) => f(m as ToWorker)) };
  }
  const u = (process as unknown as { parentPort?: UtilityParentPort }).parentPort;
  if (!u) throw new Error('register-worker: not started as a worker thread or a utility process');
  return { post: (m) => u.postMessage(m), onMessage: (f) => u.on('message', (e) => f(e.data as ToWorker)) };
}

const io = port();
let controller: AbortController | null = null;

async function run(m: Extract<ToWorker, { type: 'register' }>): Promise<void> {
  controller = new AbortController();
  let engine;
  try {
    if (m.options.matcher === 'sam') {
      if (!m.options.modelPath) throw new Error('SAM matcher: no model installed (choose NCC)');
      const { openModel } = await import('../../cli/commands/match.ts');
      engine = (await openModel({ weightsFile: m.options.modelPath })).engine;
    }
    const result = await registerVolumes(m.fixed, m.moving, {
      stages: m.options.stages,
      matcher: m.options.matcher,
      engine,
      gridMm: m.options.gridMm,
      signal: controller.signal,
      onProgress: (stage, done, total) => io.post({ type: 'progress', stage, done, total }),
    });
    io.post({ type: 'done', result });
  } catch (e) {
    const err = e as Error;
    io.post({ type: 'error', name: err.name ?? 'Error', message: err.message ?? String(e) });
  } finally {
    controller = null;
    await engine?.dispose();
  }
}

io.post({ type: 'ready' });
io.onMessage((m) => {
  if (m.type === 'cancel') controller?.abort();
  else if (m.type === 'register') void run(m);
});
