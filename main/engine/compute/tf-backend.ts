/**
 * Chooses and initialises the TensorFlow.js backend the engine computes on, and makes sure the
 * gradient functions are registered (training needs them; tfjs-core alone does not register them).
 *
 * Backends, in 'auto' order of preference:
 *   'webgpu'     - when navigator.gpu exists (Electron renderer, browsers) or the optional `webgpu`
 *                  npm package (Dawn for Node) can be loaded; @tensorflow/tfjs-backend-webgpu.
 *   'tensorflow' - when the optional @tensorflow/tfjs-node package is installed (same tfjs version).
 *   'cpu'        - always available (@tensorflow/tfjs-backend-cpu, pure JS).
 * An explicit choice (argument, or the SAM_TF_BACKEND environment variable) is honoured or fails
 * with the reason; 'auto' falls back down the list and reports why each earlier one was skipped.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu'; // side effect: registers the 'cpu' backend and its kernels

// PROD silences tfjs's console banners (e.g. 'install tfjs-node'); our own messages say which backend runs.
tf.env().set('PROD', true);

export type TfBackendName = 'webgpu' | 'tensorflow' | 'cpu';
export const TF_BACKENDS: readonly TfBackendName[] = ['webgpu', 'tensorflow', 'cpu'];

export interface TfBackendAttempt {
  name: TfBackendName;
  ok: boolean;
  /** Why it was not used (absent when ok). */
  reason?: string;
}

export interface TfBackendChoice {
  /** The active backend. */
  backend: TfBackendName;
  attempts: TfBackendAttempt[];
  /** Whether gradient functions are registered (tf.grad works), and why not otherwise. */
  gradients: boolean;
  gradientsReason?: string;
}

export interface TfBackendOptions {
  /** 'auto' (default) or a backend name; overrides SAM_TF_BACKEND. */
  backend?: TfBackendName | 'auto';
  /** Register the gradient functions too (default true). */
  gradients?: boolean;
}

// Optional packages: names in variables so that neither TypeScript nor a bundler requires them.
const WEBGPU_NODE_PKG = 'webgpu';
const TFJS_NODE_PKG = '@tensorflow/tfjs-node';

/** Select and initialise a backend; throws when an explicitly requested backend is unavailable. */
export async function initTfBackend(options: TfBackendOptions = {}): Promise<TfBackendChoice> {
  const env = typeof process !== 'undefined' ? process.env?.SAM_TF_BACKEND : undefined;
  const requested = options.backend ?? ((env as TfBackendName | 'auto' | undefined) || 'auto');
  if (requested !== 'auto' && !TF_BACKENDS.includes(requested))
    throw new Error(`tfjs backend '${requested}': unknown; choose one of auto, ${TF_BACKENDS.join(', ')}`);
  const order = requested === 'auto' ? TF_BACKENDS : [requested];
  const attempts: TfBackendAttempt[] = [];
  let chosen: TfBackendName | undefined;
  for (const name of order) {
    const reason = await tryBackend(name);
    attempts.push(reason ? { name, ok: false, reason } : { name, ok: true });
    if (!reason) {
      chosen = name;
      break;
    }
  }
  if (!chosen) {
    const why = attempts.map((a) => `${a.name}: ${a.reason}`).join('; ');
    throw new Error(`tfjs backend '${requested}': not available (${why})`);
  }
  const g = options.gradients === false ? 'not requested' : await registerGradients();
  return { backend: chosen, attempts, gradients: g === null, ...(g ? { gradientsReason: g } : {}) };
}

/** Activate one backend; null when it is active, else the reason it is not. */
async function tryBackend(name: TfBackendName): Promise<string | null> {
  try {
    if (name === 'webgpu') {
      const why = await ensureNavigatorGpu();
      if (why) return why;
      await import('@tensorflow/tfjs-backend-webgpu');
      if (!tf.findBackendFactory('webgpu'))
        return 'the webgpu backend did not register (loaded before navigator.gpu existed?)';
    } else if (name === 'tensorflow') {
      try {
        await import(/* @vite-ignore */ TFJS_NODE_PKG);
      } catch (e) {
        return `${TFJS_NODE_PKG} not installed or not loadable (${message(e)})`;
      }
      if (!tf.findBackendFactory('tensorflow'))
        return `${TFJS_NODE_PKG} registered with another copy of @tensorflow/tfjs-core (versions must match)`;
    }
    if (!(await tf.setBackend(name))) return `initialisation failed`;
    await tf.ready();
    if (name === 'webgpu' && process.env.SAM_WEBGPU_UPLOAD !== 'staging') uploadByWriteBuffer();
    // tfjs-webgpu submits queued dispatches in batches of 15; $SAM_WEBGPU_SUBMIT_BATCH sets it (experiments)
    if (name === 'webgpu' && process.env.SAM_WEBGPU_SUBMIT_BATCH)
      tf.env().set('WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE', Number(process.env.SAM_WEBGPU_SUBMIT_BATCH));
    return tf.getBackend() === name ? null : `still on '${tf.getBackend()}' after initialisation`;
  } catch (e) {
    return `initialisation failed (${message(e)})`;
  }
}

interface UploadingBackend {
  tensorMap: { get(id: object): { dtype: string; shape: number[]; values: unknown; resource: unknown } | undefined };
  bufferManager: {
    freeBuffers: Map<string, unknown[]>;
    acquireBuffer(size: number, usage: number): { size: number };
  };
  queue: { writeBuffer(b: unknown, offset: number, data: ArrayBufferView): void };
  uploadToGPU(dataId: object): void;
  samWriteBufferUploads?: boolean;
}

/**
 * tfjs-webgpu uploads a tensor's host values (every tf.tensor made from an array: index lists, masks,
 * the patches) into a pooled buffer through a new mapped staging buffer, created for that upload and
 * destroyed after it (or, without a pooled buffer of that size, a new buffer mapped at creation): some
 * 40 buffers created an iteration in SAM training. Here a pooled buffer of the size is filled by
 * queue.writeBuffer instead (Dawn's own staging ring, no buffer created). The queue runs the write
 * before the commands not yet submitted, which is safe: tfjs returns a buffer to the pool only after
 * the commands that use it were submitted. Without a pooled buffer, tfjs' own path.
 * $SAM_WEBGPU_UPLOAD=staging leaves tfjs' path.
 */
function uploadByWriteBuffer(): void {
  const b = tf.backend() as unknown as UploadingBackend;
  if (b.samWriteBufferUploads || typeof b.uploadToGPU !== 'function' || !b.bufferManager?.freeBuffers) return;
  const own = b.uploadToGPU.bind(b);
  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
  b.uploadToGPU = (dataId: object) => {
    const d = b.tensorMap.get(dataId);
    if (!d || d.resource != null || d.values == null || !['float32', 'int32', 'bool'].includes(d.dtype))
      return own(dataId);
    const n = d.shape.reduce((x, y) => x * y, 1);
    const size = 4 * n;
    // tfjs-webgpu's buffer key (getBufferKey): size and usage
    if (n === 0 || !b.bufferManager.freeBuffers.get(`${size}_${usage}`)?.length) return own(dataId);
    const values = d.values as ArrayLike<number>;
    const data =
      d.dtype === 'float32'
        ? values instanceof Float32Array
          ? values
          : Float32Array.from(values)
        : values instanceof Int32Array
          ? values
          : Int32Array.from(values);
    if (data.length !== n) return own(dataId);
    const buffer = b.bufferManager.acquireBuffer(size, usage);
    b.queue.writeBuffer(buffer, 0, data);
    d.resource = buffer;
    d.values = null; // as tfjs: once uploaded, the values are not kept on the host
  };
  b.samWriteBufferUploads = true;
}

/** navigator.gpu from the environment, or from the optional `webgpu` package (Dawn) under Node. */
async function ensureNavigatorGpu(): Promise<string | null> {
  const g = globalThis as { navigator?: { gpu?: unknown } };
  if (g.navigator?.gpu) return null;
  let mod: { create?: (flags: string[]) => unknown; globals?: object };
  try {
    mod = await import(/* @vite-ignore */ WEBGPU_NODE_PKG);
  } catch (e) {
    return `no navigator.gpu and the '${WEBGPU_NODE_PKG}' package is not loadable (${message(e)})`;
  }
  if (typeof mod.create !== 'function') return `the '${WEBGPU_NODE_PKG}' package has no create()`;
  Object.assign(globalThis, mod.globals ?? {});
  // $SAM_DAWN_FLAGS: Dawn options, comma-separated (e.g. enable-dawn-features=allow_unsafe_apis for
  // the timestamp queries that kernel profiling needs)
  const flags = (process.env.SAM_DAWN_FLAGS ?? '').split(',').filter(Boolean);
  const gpu = mod.create(flags);
  if (process.env.SAM_DAWN_POLL !== 'spin') throttleDawnPolling();
  if (g.navigator) Object.defineProperty(g.navigator, 'gpu', { value: gpu, configurable: true });
  else Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true, writable: true });
  return null;
}

/**
 * Dawn for Node (the `webgpu` package) waits for the GPU (mapAsync of every read-back, pipeline and
 * queue promises) by polling: while anything is pending it calls setImmediate with a new native
 * function that processes Dawn's events and schedules the next, so a wait is a busy loop of the main
 * thread. Each turn allocates (the function, the Immediate; some 100 MB/s here), which V8 promotes and
 * then collects with mark-compact pauses of 0.1-0.3 s, and the loop takes a core from the GPU driver
 * threads (lavapipe's, on a CPU). SAM training on lavapipe, 2 pairs of 32x32x16 patches: GC 1.1 s of
 * a 5.5 s iteration, 8 ms of 2.8 s with this. Hence: the first 2 ms of a wait still poll at every turn
 * (short waits keep their latency), after that every 1 ms (setTimeout). Only Dawn's native callbacks
 * are slowed; $SAM_DAWN_POLL=spin leaves them as they are.
 */
function throttleDawnPolling(): void {
  const g = globalThis as unknown as { setImmediate: (f: (...a: unknown[]) => void, ...a: unknown[]) => unknown };
  const immediate = g.setImmediate;
  if (typeof immediate !== 'function' || (immediate as { samDawnThrottle?: boolean }).samDawnThrottle) return;
  const fnToString = Function.prototype.toString;
  // A wait is one chain of polls: each turn schedules the next while Dawn still waits for something.
  let chainStart = 0;
  let polling = false;
  let rescheduled = false;
  const throttled = (f: (...a: unknown[]) => void, ...args: unknown[]) => {
    // Dawn's callback: an anonymous native function, new at every turn
    if (typeof f !== 'function' || f.name !== '' || !fnToString.call(f).includes('[native code]'))
      return immediate(f, ...args);
    const now = performance.now();
    if (!polling) chainStart = now; // a new wait
    polling = true;
    rescheduled = true;
    const turn = () => {
      rescheduled = false;
      try {
        f(...args);
      } finally {
        if (!rescheduled) polling = false; // the wait is over: nothing pending
      }
    };
    return now - chainStart < 2 ? immediate(turn) : setTimeout(turn, 1);
  };
  (throttled as { samDawnThrottle?: boolean }).samDawnThrottle = true;
  g.setImmediate = throttled;
}

let gradientsDone: Promise<string | null> | undefined;

/**
 * Register tfjs-core's gradient functions (idempotent); null on success, else the reason.
 * Bundled builds (vite) resolve tfjs-core's ESM sources themselves; plain Node cannot, because those
 * sources use extensionless and directory imports, so under Node a resolve hook (module.register)
 * adds the '.js' / '/index.js' for files inside @tensorflow/tfjs-core/dist. The gradients land in
 * tfjs' global registry, which every copy of tfjs-core shares.
 */
export function registerGradients(): Promise<string | null> {
  gradientsDone ??= (async () => {
    if (hasGradients()) return null;
    try {
      const isNode = typeof process !== 'undefined' && !!process.versions?.node;
      if (isNode) {
        const { register } = await import('node:module');
        if (typeof register === 'function') register(`data:text/javascript,${encodeURIComponent(RESOLVE_HOOK)}`);
      }
      await import(/* @vite-ignore */ GRADIENTS_MODULE);
    } catch (e) {
      return `could not load ${GRADIENTS_MODULE} (${message(e)})`;
    }
    return hasGradients() ? null : 'gradients did not register';
  })();
  return gradientsDone;
}

const GRADIENTS_MODULE = '@tensorflow/tfjs-core/dist/register_all_gradients.js';

function hasGradients(): boolean {
  try {
    return !!tf.getGradient('Conv3D') && !!tf.getGradient('Sum');
  } catch {
    return false;
  }
}

const RESOLVE_HOOK = `
import { existsSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
export async function resolve(specifier, context, next) {
  const parent = context.parentURL || '';
  if (parent.includes('/@tensorflow/tfjs-core/dist/') && /^\\.\\.?\\//.test(specifier) && !specifier.endsWith('.js')) {
    const p = fileURLToPath(new URL(specifier, parent));
    if (existsSync(p + '.js')) return next(specifier + '.js', context);
    if (existsSync(p) && statSync(p).isDirectory()) return next(specifier + '/index.js', context);
  }
  return next(specifier, context);
}`;

function message(e: unknown): string {
  return e instanceof Error ? e.message.split('\n')[0] : String(e);
}

/**
 * The largest tensor the active tfjs backend can hold in one buffer, bytes: on WebGPU the device's
 * maxStorageBufferBindingSize / maxBufferSize (128 MB on lavapipe and by the WebGPU defaults, GBs on
 * desktop GPUs); undefined on backends without such a limit. A larger tensor is not an exception
 * there: Dawn reports a validation error and the kernel's output is garbage, so whole-volume
 * embedding sizes its tiles by this (sam/embed-volume.ts planTiles).
 */
export function maxTensorBytes(): number | undefined {
  if (tf.getBackend() !== 'webgpu') return undefined;
  const limits = (tf.backend() as unknown as { device?: { limits?: Record<string, number> } }).device?.limits;
  if (!limits) return undefined;
  const m = Math.min(limits.maxStorageBufferBindingSize ?? Infinity, limits.maxBufferSize ?? Infinity);
  return Number.isFinite(m) ? m : undefined;
}

/**
 * A software WebGPU adapter (Mesa's lavapipe / llvmpipe, SwiftShader): a real WebGPU device that runs
 * on the CPU. 'auto' does not take it for a GPU, and the WGSL convolutions pick their variant by it.
 */
export function isSoftwareAdapter(
  info: { vendor?: string; architecture?: string; description?: string } | undefined,
): boolean {
  if (!info) return false;
  const text = [info.vendor, info.architecture, info.description].filter(Boolean).join(' ');
  return info.architecture === 'software' || /llvmpipe|lavapipe|swiftshader|software|cpu/i.test(text);
}

/** Whether the active tfjs backend is WebGPU on a hardware adapter (a GPU, not lavapipe). */
export function onHardwareGpu(): boolean {
  if (tf.getBackend() !== 'webgpu') return false;
  return !isSoftwareAdapter((tf.backend() as { adapterInfo?: { vendor?: string; architecture?: string } }).adapterInfo);
}

/**
 * Sends the commands tfjs' WebGPU backend has queued to the GPU now (it submits in batches of 15
 * dispatches or on a read), so that CPU work started next overlaps with them. No-op on other backends.
 */
export function flushGpuQueue(): void {
  if (tf.getBackend() !== 'webgpu') return;
  const b = tf.backend() as unknown as {
    commandEncoder?: unknown;
    endComputePassEncoder?: () => void;
    submitQueue?: () => void;
  };
  if (!b.commandEncoder || !b.endComputePassEncoder || !b.submitQueue) return;
  b.endComputePassEncoder();
  b.submitQueue();
}

interface PooledBuffers {
  bufferManager?: {
    freeBuffers?: Map<string, { destroy(): void; size: number }[]>;
    numFreeBuffers?: number;
    numBytesAllocated?: number;
  };
}

/**
 * Runs `f`, which queues GPU work, inside a WebGPU 'out-of-memory' error scope: `outOfMemory` is the
 * device's message when an allocation failed meanwhile (Dawn only reports it, and the kernels that
 * wrote to that buffer produced garbage). Resolves without waiting for the queued work. After an
 * out-of-memory error the buffers tfjs keeps for reuse are destroyed (a failed one is never handed
 * out again, and the memory goes back). Other backends: f alone.
 */
export async function outOfMemoryDuring<T>(f: () => Promise<T>): Promise<{ value: T; outOfMemory?: string }> {
  const device =
    tf.getBackend() === 'webgpu'
      ? (
          tf.backend() as unknown as {
            device?: { pushErrorScope?(f: string): void; popErrorScope?(): Promise<unknown> };
          }
        ).device
      : undefined;
  if (!device?.pushErrorScope || !device.popErrorScope) return { value: await f() };
  device.pushErrorScope('out-of-memory');
  let value: T;
  try {
    value = await f();
  } catch (e) {
    if (await device.popErrorScope()) dropPooledBuffers();
    throw e;
  }
  const error = (await device.popErrorScope()) as { message?: string } | null;
  if (!error) return { value };
  dropPooledBuffers();
  return { value, outOfMemory: error.message || 'out of memory' };
}

/** Destroys the GPU buffers tfjs' WebGPU backend keeps for reuse (none is in use by a tensor). */
function dropPooledBuffers(): void {
  const bm = (tf.backend() as unknown as PooledBuffers).bufferManager;
  if (!bm?.freeBuffers) return;
  for (const [key, list] of bm.freeBuffers) {
    for (const b of list) {
      b.destroy();
      if (bm.numBytesAllocated !== undefined) bm.numBytesAllocated -= b.size;
    }
    if (bm.numFreeBuffers !== undefined) bm.numFreeBuffers -= list.length;
    // emptied, not deleted: tfjs takes an empty map for a disposed manager
    bm.freeBuffers.set(key, []);
  }
}
