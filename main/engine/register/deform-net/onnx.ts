/**
 * The SAM-deform network's convolutional part (input -> stationary velocity) as an ONNX model for ONNX
 * Runtime, which runs 3D convolutions on a CPU tens of times faster than tfjs' CPU backend (README,
 * Measured); the integration (scaling and squaring) stays in tfjs (network.ts velocityToDisplacement).
 * Same weights, same function as deformForward's velocity (checked in test/unit/reg-deform-net.test.ts):
 *  - input "x": float32 [1, K, J, I, C] NDHWC (fixed, moving, correlation channels), transposed to NCDHW
 *    inside; output "velocity": [1, K, J, I, 3] NDHWC (voxel units, channels di, dj, dk);
 *  - convs with tfjs' 'same' padding: (k - 1) / 2 each side at stride 1; at stride 2 with a 3-kernel on
 *    even sizes, 0 before and 1 after; LeakyRelu 0.2; nearest upsampling as Resize (asymmetric, floor).
 */
import { availableParallelism } from 'node:os';
import { encodeModel, DataType } from '../../sam/onnx/protobuf.ts';
import { GraphBuilder, int, ints, str } from '../../sam/onnx/export.ts';
import { loadOnnxRuntime } from '../../compute/onnx-engine.ts';
import { deformConvs, inputChannels, validateDeformNetConfig, type DeformNetConfig } from './config.ts';

/** [k, k, k, cin, cout] -> [cout, cin, k, k, k]. */
function toOihw(w: Float32Array, taps: number, cin: number, cout: number): Float32Array {
  const out = new Float32Array(w.length);
  for (let t = 0; t < taps; t++)
    for (let i = 0; i < cin; i++)
      for (let o = 0; o < cout; o++) out[(o * cin + i) * taps + t] = w[(t * cin + i) * cout + o];
  return out;
}

export function buildDeformOnnx(config: DeformNetConfig, values: Record<string, Float32Array>): Uint8Array {
  validateDeformNetConfig(config);
  const g = new GraphBuilder();
  const convs = new Map(deformConvs(config).map((l) => [l.name, l]));
  const layer = (x: string, name: string, act = true) => {
    const l = convs.get(name)!;
    const k = l.kernel;
    const pads = l.stride === 2 ? [0, 0, 0, 1, 1, 1] : Array(6).fill((k - 1) / 2);
    const y = g.node(
      'Conv',
      [
        x,
        g.floats(`${name}.weight`, [l.cout, l.cin, k, k, k], toOihw(values[`${name}.w`], k ** 3, l.cin, l.cout)),
        g.floats(`${name}.bias`, [l.cout], values[`${name}.b`]),
      ],
      { kernel_shape: ints([k, k, k]), strides: ints([l.stride, l.stride, l.stride]), pads: ints(pads) },
      name,
    );
    return act ? g.node('LeakyRelu', [y], { alpha: { type: 'float', value: 0.2 } }) : y;
  };
  let x = g.node('Transpose', ['x'], { perm: ints([0, 4, 1, 2, 3]) });
  if (config.stem > 0) x = layer(x, 'stem');
  const skips: string[] = [];
  config.encoder.forEach((_, l) => {
    x = layer(x, `enc${l}`);
    skips.push(x);
  });
  const scales = g.floats('up_scales', [5], new Float32Array([1, 1, 2, 2, 2]));
  for (let d = 0; d < config.decoder.length; d++) {
    const up = g.node('Resize', [x, '', scales], {
      mode: str('nearest'),
      coordinate_transformation_mode: str('asymmetric'),
      nearest_mode: str('floor'),
    });
    x = layer(g.node('Concat', [up, skips[skips.length - 2 - d]], { axis: int(1) }), `dec${d}`);
  }
  config.full.forEach((_, f) => (x = layer(x, `full${f}`)));
  const v = layer(x, 'flow', false);
  g.node('Transpose', [v], { perm: ints([0, 2, 3, 4, 1]) }, undefined, 'velocity');
  return encodeModel({
    irVersion: 8,
    opsetVersion: 17,
    producerName: 'sam-workstation',
    producerVersion: '',
    docString: `SAM-deform network, configuration '${config.name}' (input -> stationary velocity)`,
    graph: {
      name: `sam_deform_${config.name}`,
      nodes: g.nodes,
      initializers: g.inits,
      inputs: [{ name: 'x', elemType: DataType.FLOAT, dims: [1, 'K', 'J', 'I', inputChannels(config)], docString: '' }],
      outputs: [{ name: 'velocity', elemType: DataType.FLOAT, dims: [1, 'K', 'J', 'I', 3], docString: '' }],
    },
    metadata: { 'sam.deformConfig': JSON.stringify(config) },
  }).finish();
}

/** Runs input [1, K, J, I, C] (flat NDHWC, size [I, J, K]) -> velocity [1, K, J, I, 3] (flat). */
export type VelocityRunner = (input: Float32Array, size: readonly number[]) => Promise<Float32Array>;

export async function createDeformOnnxRunner(
  config: DeformNetConfig,
  values: Record<string, Float32Array>,
): Promise<VelocityRunner> {
  const ort = await loadOnnxRuntime();
  const session = await ort.InferenceSession.create(buildDeformOnnx(config, values), {
    executionProviders: ['cpu'],
    intraOpNumThreads: availableParallelism(),
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    enableCpuMemArena: false,
  });
  const C = inputChannels(config);
  return async (input, size) => {
    const feed = new ort.Tensor('float32', input, [1, size[2], size[1], size[0], C]);
    const r = await session.run({ x: feed });
    return r.velocity.data as Float32Array;
  };
}
