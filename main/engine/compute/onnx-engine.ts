/**
 * The EmbeddingEngine on ONNX Runtime (onnxruntime-node): runs a model written by sam/onnx/export.ts
 * (or `sam export-onnx`) on the CPU by default, or on CUDA / DirectML / CoreML where the user's
 * install has them.
 *
 * onnxruntime-node (a native addon) is imported only when an engine is created. Execution providers
 * are tried in the order requested: one not in this build of onnxruntime-node is skipped, one whose
 * session fails to initialise (missing CUDA libraries...) is skipped with the error; the CPU always
 * comes last. Every attempt and its reason is kept in `attempts`. Intra-op threads default to the
 * number of cores (os.availableParallelism()); the CPU memory arena is off by default (peak memory).
 *
 * The model does the padding to the total stride, the cropping, the channel-last transpose and the
 * L2 normalisation itself (see export.ts), so run() feeds [1, 1, D, H, W] and returns ONNX Runtime's
 * output buffers as they are: [d, h, w, C] channel-last, the contract's layout.
 */
import { availableParallelism } from 'node:os';
import type * as Ort from 'onnxruntime-node';
import { importOnnxRuntime } from './onnx-runtime.ts';
import { InputError } from '../errors.ts';
import { outputStrides, widestConvChannelsPerVoxel, type SamConfig, type Vec3 } from '../sam/config.ts';
import { outputGeometry } from '../sam/network.ts';
import type { EmbeddingEngine, EngineOutput } from './embedding-engine.ts';

export type OnnxExecutionProvider = 'cuda' | 'dml' | 'coreml' | 'cpu';
export const ONNX_EXECUTION_PROVIDERS: readonly OnnxExecutionProvider[] = ['cuda', 'dml', 'coreml', 'cpu'];

export interface OnnxEngineOptions {
  /** An .onnx file written by export.ts, or its bytes (exactly one of the two). */
  modelPath?: string;
  modelBytes?: Uint8Array;
  /** The configuration the model was exported from (output geometry and channels). */
  config: SamConfig;
  /** Providers to try, in order (default ['cpu']); the CPU is always tried last. */
  executionProviders?: OnnxExecutionProvider[];
  /** Intra-op threads (default: the number of cores). */
  threads?: number;
  /**
   * ONNX Runtime's CPU memory arena (default off: whole-volume runs allocate a few large buffers, and
   * the arena would keep its peak, about twice the memory, for the session's life at no speed gain).
   */
  memoryArena?: boolean;
}

export interface OnnxProviderAttempt {
  provider: OnnxExecutionProvider;
  ok: boolean;
  /** Why it is not used (absent when ok). */
  reason?: string;
}

export interface OnnxEngine extends EmbeddingEngine {
  /** The provider the session runs on. */
  readonly provider: OnnxExecutionProvider;
  readonly attempts: OnnxProviderAttempt[];
  readonly threads: number;
}

type OrtModule = typeof Ort;

/** onnxruntime-node, imported on first use. */
export function loadOnnxRuntime(): Promise<OrtModule> {
  return importOnnxRuntime<OrtModule>();
}

export async function createOnnxEngine(options: OnnxEngineOptions): Promise<OnnxEngine> {
  const { config } = options;
  const source = options.modelPath ?? 'ONNX model bytes';
  if ((options.modelPath === undefined) === (options.modelBytes === undefined))
    throw new InputError('ONNX engine', 'give exactly one of modelPath and modelBytes');
  const threads = options.threads ?? availableParallelism();
  if (!Number.isInteger(threads) || threads < 1)
    throw new InputError('ONNX engine', `threads must be >= 1 (got ${threads})`);
  const requested = options.executionProviders ?? ['cpu'];
  for (const p of requested)
    if (!ONNX_EXECUTION_PROVIDERS.includes(p))
      throw new InputError(
        'ONNX engine',
        `unknown execution provider '${p}'; known: ${ONNX_EXECUTION_PROVIDERS.join(', ')}`,
      );
  const order = [...new Set([...requested.filter((p) => p !== 'cpu'), 'cpu' as const])];

  const ort = await loadOnnxRuntime();
  const inBuild = new Set(ort.listSupportedBackends().map((b) => b.name));
  const attempts: OnnxProviderAttempt[] = [];
  let session: Ort.InferenceSession | undefined;
  let provider: OnnxExecutionProvider = 'cpu';
  for (const p of order) {
    if (!inBuild.has(p)) {
      attempts.push({ provider: p, ok: false, reason: 'not in this onnxruntime-node build' });
      continue;
    }
    const so: Ort.InferenceSession.SessionOptions = {
      executionProviders: [p],
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
      graphOptimizationLevel: 'all',
      enableCpuMemArena: options.memoryArena ?? false,
    };
    try {
      session = options.modelPath
        ? await ort.InferenceSession.create(options.modelPath, so)
        : await ort.InferenceSession.create(options.modelBytes!, so);
      attempts.push({ provider: p, ok: true });
      provider = p;
      break;
    } catch (e) {
      attempts.push({ provider: p, ok: false, reason: firstLine(e) });
    }
  }
  if (!session) {
    const why = attempts.map((a) => `${a.provider}: ${a.reason}`).join('; ');
    throw new InputError(source, `ONNX Runtime could not load the model (${why})`);
  }
  for (const name of ['ct', 'global', 'local'])
    if (![...session.inputNames, ...session.outputNames].includes(name))
      throw new InputError(source, `not a SAM embedding model (no '${name}' input or output)`);

  const s = session;
  const C = config.embedDim;
  return {
    name: `onnxruntime-${provider}`,
    bytesPerInputVoxel: onnxBytesPerInputVoxel(config),
    config,
    provider,
    attempts,
    threads,
    async run(input: Float32Array, size: Vec3): Promise<EngineOutput> {
      if (!size.every((n) => Number.isInteger(n) && n >= 1))
        throw new InputError('ONNX engine input', `size must be three positive integers (got [${size}])`);
      if (input.length !== size[0] * size[1] * size[2])
        throw new InputError('ONNX engine input', `${input.length} values for a block of [${size}]`);
      const feed = new ort.Tensor('float32', input, [1, 1, ...size]);
      const r = await s.run({ ct: feed });
      const geo = outputGeometry(config, size);
      const take = (name: 'global' | 'local', want: Vec3): Float32Array => {
        const t = r[name];
        const expected = [1, ...want, C];
        if (t.type !== 'float32' || t.dims.length !== 5 || t.dims.some((d, i) => d !== expected[i]))
          throw new InputError(source, `output '${name}' is ${t.type} [${t.dims}], expected float32 [${expected}]`);
        return t.data as Float32Array;
      };
      return {
        global: take('global', geo.global),
        globalSize: geo.global,
        local: take('local', geo.local),
        localSize: geo.local,
      };
    },
    async dispose() {
      await s.release();
    },
  };
}

function firstLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split('\n')[0];
}

/**
 * Peak bytes per input voxel of one ONNX Runtime run. ORT plans its buffers and reuses them, so its
 * peak follows the largest activation rather than the sum of all layers (the tfjs estimate,
 * embed-volume.ts bytesPerInputVoxel): two of the largest activation (a conv's input and output)
 * plus the local embedding output and its copy out of ORT, float32. Measured on the 2 mm chest
 * (256x256x144 padded, one tile, `sam bench-embed --tile-bytes 12e9`, process growth over the run
 * including the assembled whole-volume embeddings): small 1.9 GB = 220 B/voxel (this model: 264),
 * paper 2.7 GB = 307 B/voxel (this model: 648; the stem's 64-channel full-resolution output is not
 * held twice).
 */
export function onnxBytesPerInputVoxel(config: SamConfig): number {
  const s = outputStrides(config).local;
  return Math.ceil(4 * (2 * widestConvChannelsPerVoxel(config) + (2 * config.embedDim) / (s[0] * s[1] * s[2]) + 2));
}
