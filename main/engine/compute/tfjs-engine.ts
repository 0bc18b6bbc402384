/**
 * The EmbeddingEngine on TensorFlow.js: network.ts forward() on the active (or a chosen) tfjs
 * backend. It is the reference the ONNX Runtime engine is checked against.
 *
 * The weights stay the caller's (dispose them yourself); every tensor a run creates is disposed
 * before it returns. A `backend` option selects and initialises that tfjs backend through
 * initTfBackend (which switches tfjs globally); without it the active backend is used.
 */
import * as tf from '@tensorflow/tfjs-core';
import { InputError } from '../errors.ts';
import type { SamConfig, Vec3 } from '../sam/config.ts';
import { checkWeights, forward, type SamWeights } from '../sam/network.ts';
import { checkBlockFits } from '../sam/embed-volume.ts';
import type { EmbeddingEngine, EngineOutput } from './embedding-engine.ts';
import { initTfBackend, maxTensorBytes, type TfBackendName } from './tf-backend.ts';

export interface TfjsEngineOptions {
  config: SamConfig;
  weights: SamWeights;
  /** tfjs backend to initialise ('auto' picks the best available); default: keep the active one. */
  backend?: TfBackendName | 'auto';
}

export async function createTfjsEngine(options: TfjsEngineOptions): Promise<EmbeddingEngine> {
  const { config, weights } = options;
  if (options.backend) await initTfBackend({ backend: options.backend, gradients: false });
  else await tf.ready();
  checkWeights(config, weights);
  const backend = tf.getBackend();
  const cap = maxTensorBytes();
  /** A block whose tensors would not fit one buffer is refused: WebGPU would compute garbage, not throw. */
  const checkTensorCap = (size: Vec3) =>
    checkBlockFits(config, size[0] * size[1] * size[2], cap, `tfjs-${backend} engine, block [${size}]`);
  return {
    name: `tfjs-${backend}`,
    config,
    maxTensorBytes: maxTensorBytes(),
    async run(input: Float32Array, size: Vec3): Promise<EngineOutput> {
      if (!size.every((n) => Number.isInteger(n) && n >= 1))
        throw new InputError('tfjs engine input', `size must be three positive integers (got [${size}])`);
      if (input.length !== size[0] * size[1] * size[2])
        throw new InputError('tfjs engine input', `${input.length} values for a block of [${size}]`);
      checkTensorCap(size);
      const x = tf.tensor5d(input, [1, ...size, 1], 'float32');
      let o: ReturnType<typeof forward> | undefined;
      try {
        o = forward(weights, x, config);
        const [global, local] = await Promise.all([o.global.data(), o.local.data()]);
        return {
          global: global as Float32Array,
          globalSize: o.global.shape.slice(1, 4) as Vec3,
          local: local as Float32Array,
          localSize: o.local.shape.slice(1, 4) as Vec3,
        };
      } finally {
        x.dispose();
        o?.global.dispose();
        o?.local.dispose();
      }
    },
    async timeNetwork(size: Vec3): Promise<number> {
      checkTensorCap(size);
      const x = tf.zeros([1, ...size, 1], 'float32') as tf.Tensor5D;
      try {
        const t0 = performance.now();
        const sum = tf.tidy(() => {
          const o = forward(weights, x, config);
          // one element of each output (the dispatch that reads them runs after all that wrote them),
          // not sums over every element: tfjs' whole-tensor sum is one workgroup, slow on a GPU
          // (rank 2: tfjs-webgpu cannot slice rank-5 tensors)
          const one = (t: tf.Tensor5D) => tf.slice(tf.reshape(t, [-1, t.shape[4]]), [0, 0], [1, 1]);
          return tf.add(one(o.global), one(o.local));
        });
        await sum.data();
        sum.dispose();
        return (performance.now() - t0) / 1000;
      } finally {
        x.dispose();
      }
    },
    dispose() {},
  };
}
