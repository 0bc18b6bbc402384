/**
 * The registration worker's job (loaded by register-worker.ts): receives two volumes and options, runs the cascade
 * (registerVolumes) off the caller's event loop, posts progress, honours cancel. Runs as a
 * worker_threads Worker (browser-mode server, tests) or as an Electron utilityProcess (desktop app):
 * the port adapter below is the only difference.
 *
 * It keeps the last registration (inputs and field) for the review requests (register-protocol.ts):
 * 'review' embeds both images with the SAM model (once per registration) and computes the confidence
 * map (review/confidence.ts); 'track' matches one fixed point into the moving image with them
 * (review/track-point.ts).
 */
import { inOwnMemory } from '../compute/shared-memory.ts';
import { parentPort } from 'node:worker_threads';
import { PartJoiner, sendInParts } from './message-parts.ts';
import { registerVolumes } from '../register/cascade.ts';
import { confidenceMap } from '../review/confidence.ts';
import { trackPoint } from '../review/track-point.ts';
import type { EmbeddedVolume } from '../sam/embed-volume.ts';
import { embedVolume } from '../sam/embed-volume.ts';
import { bodyMask } from '../volume/mask.ts';
import type { Volume } from '../volume/volume.ts';
import { quantizeConfidence, type FromWorker, type ToWorker } from './register-protocol.ts';

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
  // a separate process: large arrays travel in parts (message-parts.ts, utility-runner.ts)
  const joiner = new PartJoiner();
  return {
    post: (m) => sendInParts(m, (part) => u.postMessage(part)),
    onMessage: (f) =>
      u.on('message', (e) => {
        const whole = joiner.accept<ToWorker>(e.data);
        if (whole) f(whole);
      }),
  };
}

const io = port();
let controller: AbortController | null = null;

/** The last registration, kept for the review requests. */
let last: {
  /** The workstation's number for this result. */
  id: number;
  fixed: Volume;
  moving: Volume;
  field: Volume;
  embeddings?: { fixed: EmbeddedVolume; moving: EmbeddedVolume };
  /** The fixed body mask (made at the first review request, reused by later ones). */
  mask?: Volume;
} | null = null;
let review: { job: number; controller: AbortController } | null = null;

async function openSamModel(modelPath: string) {
  const { openModel } = await import('../../cli/commands/match.ts');
  return openModel({ weightsFile: modelPath });
}

async function openEngine(modelPath: string) {
  return (await openSamModel(modelPath)).engine;
}

async function run(m: Extract<ToWorker, { type: 'register' }>): Promise<void> {
  review?.controller.abort();
  // (the previous result stays for readouts until this run succeeds, as the workstation keeps it for
  // export: a cancelled or failed run changes nothing)
  controller = new AbortController();
  let engine;
  let deviceModel;
  try {
    if (m.options.matcher === 'sam') {
      if (!m.options.modelPath) throw new Error('SAM matcher: no model installed (choose NCC)');
      const model = await openSamModel(m.options.modelPath);
      engine = model.engine;
      deviceModel = model;
    }
    const result = await registerVolumes(m.fixed, m.moving, {
      stages: m.options.stages,
      matcher: m.options.matcher,
      refine: m.options.refine,
      engine,
      deviceModel,
      gridMm: m.options.gridMm,
      signal: controller.signal,
      onProgress: (stage, done, total) => io.post({ type: 'progress', stage, done, total }),
    });
    last = { id: m.resultId, fixed: m.fixed, moving: m.moving, field: result.field };
    // (the CPU threads' outputs are on shared memory, which a message to another process cannot take)
    io.post({
      type: 'done',
      result: { ...result, field: inOwnMemory(result.field), warped: inOwnMemory(result.warped) },
    });
  } catch (e) {
    const err = e as Error;
    io.post({ type: 'error', name: err.name ?? 'Error', message: err.message ?? String(e) });
  } finally {
    controller = null;
    await engine?.dispose();
  }
}

function reviewError(job: number, e: unknown): void {
  const err = e as Error;
  io.post({ type: 'review-error', job, name: err.name ?? 'Error', message: err.message ?? String(e) });
}

async function runReview(m: Extract<ToWorker, { type: 'review' }>): Promise<void> {
  review?.controller.abort();
  const mine = { job: m.job, controller: new AbortController() };
  review = mine;
  const signal = mine.controller.signal;
  // a result this worker did not register (reopened from a folder): adopt its images and field
  if (m.state && last?.id !== m.resultId) last = { id: m.resultId, ...m.state };
  const state = last;
  const seconds: Record<string, number> = {};
  let t0 = performance.now();
  const tick = (name: string) => {
    seconds[name] = (performance.now() - t0) / 1000;
    t0 = performance.now();
  };
  let engine;
  try {
    if (!state) throw new Error('run a registration first');
    if (state.id !== m.resultId) throw new Error('the registration worker holds another result: ask again');
    if (!state.embeddings) {
      engine = await openEngine(m.modelPath);
      const embeddings: { fixed?: EmbeddedVolume; moving?: EmbeddedVolume } = {};
      for (const role of ['fixed', 'moving'] as const)
        embeddings[role] = await embedVolume(state[role], engine, {
          signal,
          onProgress: (p) =>
            io.post({ type: 'review-progress', job: m.job, stage: `embedding ${role}`, done: p.tile, total: p.tiles }),
        });
      state.embeddings = embeddings as { fixed: EmbeddedVolume; moving: EmbeddedVolume };
      tick('embeddings');
    }
    signal.throwIfAborted();
    io.post({ type: 'review-progress', job: m.job, stage: 'confidence map', done: 0, total: 1 });
    const mask = (state.mask ??= bodyMask(state.fixed));
    const c = confidenceMap(state.fixed, state.embeddings, state.field, {
      mask,
      threshold: m.threshold,
      labels: m.labels,
      labelNames: m.labelNames,
    });
    const map = quantizeConfidence(c.map.data);
    tick('confidence map');
    if (review === mine) io.post({ type: 'review-done', job: m.job, summary: c.summary, map, seconds });
  } catch (e) {
    reviewError(m.job, e);
  } finally {
    if (review === mine) review = null;
    await engine?.dispose();
  }
}

async function runTrack(m: Extract<ToWorker, { type: 'track' }>): Promise<void> {
  try {
    if (!last?.embeddings || last.id !== m.resultId)
      throw new Error('point tracking needs the SAM embeddings: compute the confidence map first');
    const tracked = await trackPoint(last.embeddings, m.point, { field: last.field });
    io.post({ type: 'track-done', job: m.job, tracked });
  } catch (e) {
    reviewError(m.job, e);
  }
}

io.post({ type: 'ready' });
io.onMessage((m) => {
  if (m.type === 'cancel') controller?.abort();
  else if (m.type === 'register') void run(m);
  else if (m.type === 'review') void runReview(m);
  else if (m.type === 'track') void runTrack(m);
  else if (m.type === 'cancel-review' && review?.job === m.job) review.controller.abort();
});
