/**
 * Export of the SAM embedding network (sam/network.ts) to an ONNX model (opset 17, IR 8) from the
 * same weights, for ONNX Runtime (compute/onnx-engine.ts) or any other ONNX consumer.
 *
 * Graph layout:
 *  - Input "ct": float32 [1, 1, D, H, W] (NCDHW, D/H/W symbolic): the normalised 2 mm CT, z slowest.
 *  - Inside, everything is NCDHW. The graph itself pads the input at the high end to a multiple of the
 *    total stride plus the stem's half kernel on both ends (Pad, constant config.padValue, pad sizes
 *    computed from Shape), and crops both outputs to ceil(size / stride) (Slice), exactly as forward().
 *    Any D, H, W >= 1 works; no wrapper logic is needed.
 *  - Outputs "global" [1, gd, gh, gw, C] and "local" [1, ld, lh, lw, C]: channel-last (a Transpose
 *    after the crop), then L2-normalised over the last axis as x / sqrt(max(sum x^2, 1e-12)) (the
 *    tfjs epsilon), so the engine hands ONNX Runtime's buffers out as the contract's layout unchanged.
 *    A head's last conv, when 1x1x1 ('small' local), runs after the crop and the transpose as a Gemm
 *    (bias fused) on its narrower input (same values; saves a full-width Slice and Transpose).
 *  - Every conv is a plain Conv with the effective kernel and bias baked in: weight standardisation,
 *    gains, the ReLU gain, 1/beta, alpha and the input scale are folded in float64
 *    (network.ts effectiveKernelValues), then rounded once to float32. Kernels are [cout, cin, kz, ky, kx].
 *    Stride-1 convs use symmetric explicit pads (k - 1) / 2 (tfjs 'same' for odd kernels); the stem
 *    (possibly even kernel, strided) runs unpadded on the Pad above, as forward() does.
 *  - Downsampling: AveragePool / MaxPool with kernel = stride = the factor; top-down upsampling:
 *    Resize nearest, asymmetric, floor, integer scales (exact replication).
 * Weights come as tfjs tensors (SamWeights) or plain Float32Arrays by name (weights-file decodeWeights,
 * initValues), so exporting needs no tfjs backend for the latter.
 */
import * as tf from '@tensorflow/tfjs-core';
import { InputError } from '../../errors.ts';
import {
  convLayers,
  isTransition,
  levelStrides,
  outputStrides,
  validateSamConfig,
  type ConvLayer,
  type SamConfig,
  type Vec3,
} from '../config.ts';
import { effectiveKernelValues, RELU_GAIN, weightSpecs, type SamWeights } from '../network.ts';
import {
  DataType,
  encodeModel,
  type AttrValue,
  type ModelProto,
  type NodeProto,
  type TensorProto,
} from './protobuf.ts';

export const SAM_ONNX_OPSET = 17;
export const SAM_ONNX_IR_VERSION = 8;

/** Weight values by name: tfjs tensors, or Float32Arrays (row-major in the tfjs shapes of weightSpecs). */
export type WeightSource = SamWeights | Map<string, Float32Array> | Record<string, Float32Array>;

export interface OnnxExportOptions {
  /** Where the weights come from (doc string and metadata 'sam.weights'), e.g. a file or "random init, seed 3". */
  weightsDescription?: string;
  producerVersion?: string;
  /** Extra metadata_props. */
  metadata?: Record<string, string>;
}

/** The ONNX model of the network with these weights (a ModelProto ready for encodeModel). */
export function buildSamOnnxModel(
  config: SamConfig,
  weights: WeightSource,
  options: OnnxExportOptions = {},
): ModelProto {
  validateSamConfig(config);
  const value = weightReader(config, weights);
  const g = new GraphBuilder();
  const layers = new Map(convLayers(config).map((l) => [l.name, l]));
  const L = (name: string) => layers.get(name)!;
  const strides = levelStrides(config);
  const out = outputStrides(config);

  /** The kernel [kz, ky, kx, cin, cout] (float64) and bias forward() applies, with the scales folded in. */
  const effective = (l: ConvLayer, inScale: number, outScale: number) => {
    const k = effectiveKernelValues(
      l,
      value(`${l.name}.w`),
      l.ws ? value(`${l.name}.g`) : undefined,
      inScale * outScale,
    );
    const b = value(`${l.name}.b`);
    const bias = new Float32Array(l.cout);
    for (let o = 0; o < l.cout; o++) bias[o] = outScale === 1 ? b[o] : Math.fround(b[o]) * Math.fround(outScale);
    return { k, bias };
  };
  const conv = (x: string, l: ConvLayer, inScale = 1, outScale = 1, pads?: number[]) => {
    const { k, bias } = effective(l, inScale, outScale);
    const half = l.kernel.map((n) => (n - 1) / 2);
    const weight = g.floats(`${l.name}.weight`, [l.cout, l.cin, ...l.kernel], toOihw(k, l));
    return g.node(
      'Conv',
      [x, weight, g.floats(`${l.name}.bias`, [l.cout], bias)],
      {
        kernel_shape: ints(l.kernel),
        strides: ints(l.convStride),
        pads: ints(pads ?? [...half, ...half]),
        dilations: ints([1, 1, 1]),
      },
      l.name,
    );
  };
  const relu = (x: string) => g.node('Relu', [x]);
  const actConv = (x: string, l: ConvLayer, outScale = 1) => conv(relu(x), l, RELU_GAIN, outScale);
  const pool = (x: string, f: Vec3, op: 'AveragePool' | 'MaxPool') =>
    f.every((n) => n === 1) ? x : g.node(op, [x], { kernel_shape: ints(f), strides: ints(f) });

  // input: pad at the high end to a multiple of the total stride, plus the stem's half kernel each side
  const spatial = g.node('Shape', ['ct'], { start: int(2), end: int(5) }, 'spatial_size');
  const ceilDiv = (s: Vec3, tag: string) => {
    const minus1 = g.int64s(`${tag}_minus1`, [s[0] - 1, s[1] - 1, s[2] - 1]);
    return g.node('Div', [g.node('Add', [spatial, minus1]), g.int64s(tag, s)]);
  };
  const padded = g.node('Mul', [ceilDiv(out.total, 'total_stride'), g.int64s('total_stride', out.total)]);
  const stem = L('stem');
  const half = stem.kernel.map((k, a) => (k - stem.convStride[a]) / 2);
  const high = g.node('Add', [g.node('Sub', [padded, spatial]), g.int64s('stem_half', half)]);
  const pads = g.node('Concat', [g.int64s('pads_begin', [0, 0, ...half, 0, 0]), high], { axis: int(0) });
  const input = g.node('Pad', ['ct', pads, g.floats('pad_value', [], new Float32Array([config.padValue]))], {
    mode: str('constant'),
  });
  let x = conv(input, stem, config.inputScale, 1, [0, 0, 0, 0, 0, 0]);

  // backbone: NF-ResNet pre-activation blocks, x + alpha * f(x / beta), as forward()
  const feats: string[] = [];
  let variance = 1;
  let cin = config.stem.channels;
  config.stages.forEach((st, i) => {
    for (let b = 0; b < st.blocks; b++) {
      const p = `s${i + 1}.b${b}`;
      const trans = b === 0 && isTransition(cin, st);
      const inScale = (1 / Math.sqrt(variance)) * RELU_GAIN;
      const a = b === 0 ? pool(relu(x), st.down, 'AveragePool') : relu(x);
      const shortcut = trans ? conv(a, L(`${p}.short`), inScale) : x;
      const h = conv(a, L(`${p}.conv1`), inScale);
      x = g.node('Add', [shortcut, actConv(h, L(`${p}.conv2`), config.alpha)], {}, `${p}.out`);
      variance = (trans ? 1 : variance) + config.alpha ** 2;
    }
    x = pool(x, st.postPool, 'MaxPool');
    feats.push(x);
    cin = st.channels;
  });
  const head = (t: string, name: string, preAct: boolean) => (preAct ? actConv(t, L(name)) : conv(t, L(name)));

  // local head: top-down path with nearest upsampling
  const { levels, widths } = config.local;
  const lateral = (l: number) => (layers.has(`local.lat${l}`) ? conv(feats[l - 1], L(`local.lat${l}`)) : feats[l - 1]);
  let t = lateral(levels);
  for (let l = levels - 1; l >= 1; l--) {
    const down = widths[l] !== widths[l - 1] ? head(t, `local.td${l}`, config.local.tdPreAct) : t;
    const f = [0, 1, 2].map((a) => strides[l][a] / strides[l - 1][a]);
    const up = f.every((n) => n === 1)
      ? down
      : g.node('Resize', [down, '', g.floats(`up${l}_scales`, [5], new Float32Array([1, 1, ...f]))], {
          mode: str('nearest'),
          coordinate_transformation_mode: str('asymmetric'),
          nearest_mode: str('floor'),
        });
    t = g.node('Add', [lateral(l), up]);
  }
  const locals = config.local.out;
  locals.slice(0, -1).forEach((o, i) => (t = head(t, `local.out${i}`, o.preAct)));
  let gl = feats[feats.length - 1];
  const globals = config.global.out;
  globals.slice(0, -1).forEach((o, i) => (gl = head(gl, `global.out${i}`, o.preAct)));

  // outputs: last conv, crop to ceil(size / stride), channel-last, L2-normalise over channels. A last
  // 1x1 conv runs after the crop and transpose as a Gemm on the narrower input (pointwise: same values).
  const eps = g.floats('l2_eps', [], new Float32Array([1e-12]));
  const axes = g.int64s('spatial_axes', [2, 3, 4]);
  const starts = g.int64s('zeros3', [0, 0, 0]);
  const toNdhwc = { perm: ints([0, 2, 3, 4, 1]) };
  const finish = (y: string, last: ConvLayer, preAct: boolean, s: Vec3, name: 'global' | 'local') => {
    const crop = (v: string) => g.node('Slice', [v, starts, ceilDiv(s, `${name}_stride`), axes]);
    let nhwc: string;
    if (last.kernel.every((n) => n === 1)) {
      const { k, bias } = effective(last, preAct ? RELU_GAIN : 1, 1);
      const a = g.node('Transpose', [crop(preAct ? relu(y) : y)], toNdhwc);
      // Gemm on [voxels, cin] (bias fused), back to [1, d, h, w, cout]
      const w = g.floats(`${last.name}.weight`, [last.cin, last.cout], Float32Array.from(k)); // [cin, cout] as is
      const rows = g.node('Reshape', [a, g.int64s(`${last.name}.rows`, [-1, last.cin])]);
      const m = g.node('Gemm', [rows, w, g.floats(`${last.name}.bias`, [last.cout], bias)], {}, last.name);
      const dims = g.node('Shape', [a], { start: int(0), end: int(4) });
      const shape = g.node('Concat', [dims, g.int64s(`${last.name}.cout`, [last.cout])], { axis: int(0) });
      nhwc = g.node('Reshape', [m, shape]);
    } else nhwc = g.node('Transpose', [crop(preAct ? actConv(y, last) : conv(y, last))], toNdhwc);
    const ss = g.node('ReduceSumSquare', [nhwc], { axes: ints([4]), keepdims: int(1) });
    const norm = g.node('Sqrt', [g.node('Max', [ss, eps])]);
    g.node('Div', [nhwc, norm], {}, undefined, name);
  };
  finish(gl, L(`global.out${globals.length - 1}`), globals[globals.length - 1].preAct, out.global, 'global');
  finish(t, L(`local.out${locals.length - 1}`), locals[locals.length - 1].preAct, out.local, 'local');

  const C = config.embedDim;
  const desc = options.weightsDescription ?? 'unspecified weights';
  return {
    irVersion: SAM_ONNX_IR_VERSION,
    opsetVersion: SAM_ONNX_OPSET,
    producerName: 'sam-workstation',
    producerVersion: options.producerVersion ?? '',
    docString: `SAM embedding network, configuration '${config.name}', ${desc}`,
    graph: {
      name: `sam_${config.name}`,
      nodes: g.nodes,
      initializers: g.inits,
      inputs: [{ name: 'ct', elemType: DataType.FLOAT, dims: [1, 1, 'D', 'H', 'W'], docString: INPUT_DOC }],
      outputs: [
        { name: 'global', elemType: DataType.FLOAT, dims: [1, 'gd', 'gh', 'gw', C], docString: OUTPUT_DOC },
        { name: 'local', elemType: DataType.FLOAT, dims: [1, 'ld', 'lh', 'lw', C], docString: OUTPUT_DOC },
      ],
    },
    metadata: {
      'sam.config': JSON.stringify(config),
      'sam.weights': desc,
      'sam.globalStride': out.global.join(','),
      'sam.localStride': out.local.join(','),
      'sam.layout': 'input ct [1,1,D,H,W] NCDHW; outputs [1,d,h,w,C] channel-last, unit norm',
      ...options.metadata,
    },
  };
}

/** The encoded .onnx file as chunks (write with writeFileAtomic, or join for an InferenceSession). */
export function exportSamOnnx(config: SamConfig, weights: WeightSource, options: OnnxExportOptions = {}): Uint8Array[] {
  return encodeModel(buildSamOnnxModel(config, weights, options)).parts();
}

/** The encoded .onnx file in one buffer. */
export function exportSamOnnxBytes(
  config: SamConfig,
  weights: WeightSource,
  options: OnnxExportOptions = {},
): Uint8Array {
  return encodeModel(buildSamOnnxModel(config, weights, options)).finish();
}

const INPUT_DOC =
  'CT resampled to 2 mm, (clip(HU, -1024, 3071) + 1024) * 255 / 4095 - 50 (the official SAM normalisation), z slowest, x fastest; any size';
const OUTPUT_DOC =
  'embeddings, channel-last, unit L2 norm; voxel n along an axis of stride s is centred on s*n + (s-1)/2';

export const ints = (value: number[]): AttrValue => ({ type: 'ints', value });
export const int = (value: number): AttrValue => ({ type: 'int', value });
export const str = (value: string): AttrValue => ({ type: 'string', value });

/** Nodes and initializers with unique value names (also used by register/deform-net/onnx.ts). */
export class GraphBuilder {
  readonly nodes: NodeProto[] = [];
  readonly inits: TensorProto[] = [];
  private readonly used = new Set<string>(['ct', 'global', 'local']);
  private count = 0;

  node(
    op: string,
    inputs: string[],
    attributes: Record<string, AttrValue> = {},
    name?: string,
    output?: string,
  ): string {
    const base = name ?? `${op.toLowerCase()}_${this.count}`;
    this.count++;
    const out = output ?? this.unique(base);
    this.used.add(out);
    this.nodes.push({ opType: op, inputs, outputs: [out], name: base, attributes });
    return out;
  }

  floats(name: string, dims: number[], data: Float32Array): string {
    const n = this.unique(name);
    this.inits.push({ name: n, dims, data });
    return n;
  }

  int64s(name: string, values: number[]): string {
    const n = this.unique(name);
    this.inits.push({ name: n, dims: [values.length], data: { int64: values } });
    return n;
  }

  private unique(base: string): string {
    let n = base;
    for (let i = 1; this.used.has(n); i++) n = `${base}_${i}`;
    this.used.add(n);
    return n;
  }
}

/** [kz, ky, kx, cin, cout] (float64) -> [cout, cin, kz, ky, kx] (float32). */
function toOihw(k: Float64Array, l: ConvLayer): Float32Array {
  const taps = l.kernel[0] * l.kernel[1] * l.kernel[2];
  const out = new Float32Array(k.length);
  for (let t = 0; t < taps; t++)
    for (let i = 0; i < l.cin; i++)
      for (let o = 0; o < l.cout; o++) out[(o * l.cin + i) * taps + t] = k[(t * l.cin + i) * l.cout + o];
  return out;
}

/** Checked access to the weight values by name. */
function weightReader(config: SamConfig, weights: WeightSource): (name: string) => Float32Array {
  const cache = new Map<string, Float32Array>();
  const sizes = new Map(weightSpecs(config).map((s) => [s.name, s.shape.reduce((a, b) => a * b, 1)]));
  return (name) => {
    let v = cache.get(name);
    if (v) return v;
    const raw =
      weights instanceof Map ? weights.get(name) : (weights as Record<string, Float32Array | tf.Tensor>)[name];
    if (!raw) throw new InputError('SAM weights', `missing weight '${name}' of configuration '${config.name}'`);
    v = raw instanceof tf.Tensor ? (raw.dataSync() as Float32Array) : raw;
    if (v.length !== sizes.get(name))
      throw new InputError('SAM weights', `weight '${name}' has ${v.length} values, expected ${sizes.get(name)}`);
    cache.set(name, v);
    return v;
  };
}
