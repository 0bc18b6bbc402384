/**
 * The SAM embedding network as a pure function of a weights record: forward(weights, input, config)
 * gives the global and local embeddings (L2-normalised per voxel) and their strides. The same
 * weights serve training (call it under tf.grad / tf.variableGrads), inference and export.
 *
 * Tensors are NDHWC [batch, z, y, x, channels], float32. Input: [B, D, H, W, 1], the CT resampled
 * to 2 mm and normalised by normalizeForNetwork. Output voxel n (per axis, stride s) describes the
 * input block [s*n, s*n + s - 1]; its centre is at input voxel coordinate s*n + (s - 1)/2 exactly
 * (the official loss assumes the same when it resamples its mm grids with align_corners=False).
 * Inputs not a multiple of the total stride are padded at the high end with config.padValue (air)
 * and the outputs cropped to ceil(size / stride), so indices never shift.
 *
 * Design (departures from the official mmdet code, which uses BatchNorm):
 *  - No activation statistics (no BN/GN/IN): scaled weight standardisation with a learned gain and
 *    bias on every conv except the stem, NF-ResNet pre-activation blocks
 *    (x + alpha * f(x / beta), beta the analytic expected std of x). Batch size 1 trains like any
 *    other, train and inference compute the same function, and an embedding depends only on its
 *    receptive field, never on the field of view (whole volume vs patch), so the network is exactly
 *    translation-equivariant by its total stride away from borders.
 *  - The stem keeps absolute intensity (no standardisation: mean-free filters would lose HU level);
 *    the input is scaled by config.inputScale and padded with air.
 *  - Downsampling is 2-voxel average pooling then stride-1 convs (and max pooling for the
 *    official z-pool), so every level's voxel is centred on its stride block; the strided stem
 *    of 'small' uses an even kernel padded (k - s)/2 each side for the same reason.
 *  - Top-down path: nearest upsampling (as mmdet FPN), lateral 1x1 only where channels differ.
 */
import * as tf from '@tensorflow/tfjs-core';
import { sumPerChannel } from './channel-sum-wgsl.ts';
import { conv3dFilterGradByTaps, conv3dWithFilterGrad } from './conv3d-filter-grad.ts';
import { conv3dFilterGradWgsl } from './conv3d-filter-grad-wgsl.ts';
import { conv3dWgsl } from './conv3d-wgsl.ts';
import { l2NormaliseRowsWgsl } from './l2-normalise-wgsl.ts';
import { reluWgsl } from './relu-wgsl.ts';
import { standardisedKernelWgsl } from './weight-standardisation-wgsl.ts';
import { InputError } from '../errors.ts';
import {
  convLayers,
  isTransition,
  levelStrides,
  outputStrides,
  validateSamConfig,
  type ConvLayer,
  type SamConfig,
  type Vec3,
} from './config.ts';

/** Weights by name (see convLayers for the names): `${layer}.w`, `.b`, `.g`. */
export type SamWeights = Record<string, tf.Tensor>;

export interface WeightSpec {
  name: string;
  shape: number[];
  /** He-normal conv kernel, gain (init 1) or bias (init 0). */
  init: 'he' | 'one' | 'zero';
}

/** Every weight tensor of a configuration, in canonical order. */
export function weightSpecs(config: SamConfig): WeightSpec[] {
  const out: WeightSpec[] = [];
  for (const l of convLayers(config)) {
    out.push({ name: `${l.name}.w`, shape: [...l.kernel, l.cin, l.cout], init: 'he' });
    if (l.ws) out.push({ name: `${l.name}.g`, shape: [l.cout], init: 'one' });
    out.push({ name: `${l.name}.b`, shape: [l.cout], init: 'zero' });
  }
  return out;
}

/** Deterministic He/Kaiming-normal initialisation: each tensor's values depend only on (seed, name). */
export function createWeights(config: SamConfig, seed = 0): SamWeights {
  validateSamConfig(config);
  const w: SamWeights = {};
  for (const s of weightSpecs(config)) w[s.name] = tf.tensor(initValues(s, seed), s.shape, 'float32');
  return w;
}

/** The initial values of one weight (exported for tests and for re-initialising one layer). */
export function initValues(spec: WeightSpec, seed: number): Float32Array {
  const n = spec.shape.reduce((a, b) => a * b, 1);
  const v = new Float32Array(n);
  if (spec.init === 'one') v.fill(1);
  if (spec.init !== 'he') return v;
  const fanIn = n / spec.shape[spec.shape.length - 1];
  const std = Math.sqrt(2 / fanIn);
  const rnd = mulberry32(fnv1a(`${seed >>> 0}:${spec.name}`));
  for (let i = 0; i < n; i += 2) {
    // Box-Muller: two normals per pair of uniforms
    const u = 1 - rnd();
    const r = Math.sqrt(-2 * Math.log(u)) * std;
    const t = 2 * Math.PI * rnd();
    v[i] = r * Math.cos(t);
    if (i + 1 < n) v[i + 1] = r * Math.sin(t);
  }
  return v;
}

export function disposeWeights(w: SamWeights): void {
  for (const t of Object.values(w)) t.dispose();
}

/** Throw an InputError naming `source` unless the weights are exactly those of the configuration. */
export function checkWeights(config: SamConfig, weights: SamWeights, source = 'SAM weights'): void {
  const specs = weightSpecs(config);
  for (const s of specs) {
    const t = weights[s.name];
    if (!t) throw new InputError(source, `missing weight '${s.name}' of configuration '${config.name}'`);
    if (t.shape.length !== s.shape.length || t.shape.some((d, i) => d !== s.shape[i]))
      throw new InputError(source, `weight '${s.name}' has shape [${t.shape}], expected [${s.shape}]`);
    if (t.dtype !== 'float32') throw new InputError(source, `weight '${s.name}' is ${t.dtype}, expected float32`);
  }
  const known = new Set(specs.map((s) => s.name));
  const extra = Object.keys(weights).filter((k) => !known.has(k));
  if (extra.length) throw new InputError(source, `unexpected weights: ${extra.slice(0, 5).join(', ')}`);
}

export interface SamOutput {
  /** [B, ceil(D/gz), ceil(H/gy), ceil(W/gx), embedDim], unit norm along channels. */
  global: tf.Tensor5D;
  /** [B, ceil(D/lz), ceil(H/ly), ceil(W/lx), embedDim], unit norm along channels. */
  local: tf.Tensor5D;
  /** Strides (z, y, x) in input voxels; voxel n is centred at input coordinate s*n + (s-1)/2. */
  globalStride: Vec3;
  localStride: Vec3;
}

/** Input coordinate (z, y, x), in input voxels, of the centre of output voxel `index` at `stride`. */
export function embeddingVoxelCentre(index: Vec3, stride: Vec3): Vec3 {
  return [0, 1, 2].map((a) => stride[a] * index[a] + (stride[a] - 1) / 2) as Vec3;
}

/** Output shapes (z, y, x) for an input of `size` (z, y, x), and the padded size the network runs on. */
export function outputGeometry(config: SamConfig, size: Vec3) {
  const s = outputStrides(config);
  const ceil = (st: Vec3): Vec3 => [0, 1, 2].map((a) => Math.ceil(size[a] / st[a])) as Vec3;
  const padded = [0, 1, 2].map((a) => ceil(s.total)[a] * s.total[a]) as Vec3;
  return { local: ceil(s.local), global: ceil(s.global), localStride: s.local, globalStride: s.global, padded };
}

/** sqrt(2 / (1 - 1/pi)): scales ReLU so that relu(N(0,1)) keeps unit variance (NF-ResNet gamma). */
const GAMMA = Math.sqrt(2 / (1 - 1 / Math.PI));

interface ConvOptions {
  /** Factor on the conv's input, folded into the kernel (ReLU gamma, 1/beta, the input scale). */
  inScale?: number;
  /** Factor on the conv's output, folded into kernel and bias (the residual alpha). */
  outScale?: number;
  /** 'same' only with stride 1 and odd kernels (symmetric); the stem runs 'valid' on a padded input. */
  pad?: 'same' | 'valid';
}

/**
 * The kernel actually applied: scaled weight standardisation W' = g (W - mean) / sqrt(var * fanIn + 1e-4)
 * over each output channel's fan-in (or W itself for the stem), times the folded scales. Means and
 * variances go through matMul and every broadcast is over the last axis: tfjs-cpu's fast paths.
 */
function effectiveKernel(w: SamWeights, l: ConvLayer, scale: number): tf.Tensor5D {
  const k = w[`${l.name}.w`] as tf.Tensor5D;
  if (!l.ws) return scale === 1 ? k : tf.mul(k, scale);
  // on WebGPU one dispatch (and two for the gradient) instead of about 11 (and 22)
  if (tf.getBackend() === 'webgpu') return standardisedKernelWgsl(k, w[`${l.name}.g`], scale);
  const fanIn = l.kernel[0] * l.kernel[1] * l.kernel[2] * l.cin;
  const k2 = tf.reshape(k, [fanIn, l.cout]);
  const ones = tf.ones([1, fanIn]);
  const mean = tf.reshape(tf.matMul(ones, k2), [l.cout]);
  const d = tf.sub(k2, tf.mul(mean, 1 / fanIn));
  const sumSq = tf.reshape(tf.matMul(ones, tf.square(d)), [l.cout]);
  const s = tf.mul(w[`${l.name}.g`], tf.rsqrt(tf.add(sumSq, 1e-4)));
  return tf.reshape(tf.mul(d, scale === 1 ? s : tf.mul(s, scale)), k.shape);
}

/**
 * How the convolutions' weight gradients are computed: tfjs' Conv3DBackpropFilterV2 kernel
 * ('builtin'), one matrix product per kernel tap ('taps', conv3d-filter-grad.ts) or one WGSL
 * implicit-GEMM kernel ('wgsl', conv3d-filter-grad-wgsl.ts, WebGPU only). 'auto' (the default) takes
 * the WGSL kernel on WebGPU, where the built-in kernel is the bottleneck of training: over the
 * `small` network's layers on lavapipe it is 17-23x faster than the built-in kernel and 8-12x faster
 * than the taps (README, "Training speed and the weight-gradient kernel"); elsewhere the built-in kernel
 * (on tfjs-cpu the taps are 3-5x slower). Values are identical up to rounding; $SAM_CONV_WGRAD sets
 * the initial mode.
 */
export type FilterGradientMode = 'auto' | 'builtin' | 'taps' | 'wgsl';
export const FILTER_GRADIENT_MODES: readonly FilterGradientMode[] = ['auto', 'builtin', 'taps', 'wgsl'];
let filterGradientMode: FilterGradientMode = parseFilterGradientMode(process.env.SAM_CONV_WGRAD);

function parseFilterGradientMode(v: string | undefined): FilterGradientMode {
  if (v === undefined || v === '') return 'auto';
  if ((FILTER_GRADIENT_MODES as readonly string[]).includes(v)) return v as FilterGradientMode;
  throw new Error(`SAM_CONV_WGRAD must be ${FILTER_GRADIENT_MODES.join(', ')} (got '${v}')`);
}

export function setFilterGradientMode(mode: FilterGradientMode): void {
  filterGradientMode = parseFilterGradientMode(mode);
}

/** The method the current mode gives on the active backend. */
export function filterGradientMethod(): Exclude<FilterGradientMode, 'auto'> {
  const webgpu = tf.getBackend() === 'webgpu';
  if (filterGradientMode === 'auto') return webgpu ? 'wgsl' : 'builtin';
  if (filterGradientMode === 'wgsl' && !webgpu)
    throw new Error(`weight-gradient mode 'wgsl' needs the webgpu backend (active: '${tf.getBackend()}')`);
  return filterGradientMode;
}

/**
 * How the convolutions' forward pass runs: tfjs' Conv3D kernel ('builtin'; on WebGPU a naive
 * kernel) or the WGSL implicit matrix product of conv3d-wgsl.ts ('wgsl', WebGPU only; its
 * input gradient is tfjs' and the filter gradient follows FilterGradientMode). 'auto' (the default)
 * takes wgsl on WebGPU (6-7x the naive kernel's speed over the small network's layers on lavapipe)
 * and the built-in kernel elsewhere. $SAM_CONV_FORWARD sets the initial mode.
 */
export type ConvForwardMode = 'auto' | 'builtin' | 'wgsl';
let convForwardMode: ConvForwardMode = parseConvForwardMode(process.env.SAM_CONV_FORWARD);

function parseConvForwardMode(v: string | undefined): ConvForwardMode {
  if (v === undefined || v === '') return 'auto';
  if (v === 'auto' || v === 'builtin' || v === 'wgsl') return v;
  throw new Error(`SAM_CONV_FORWARD must be auto, builtin or wgsl (got '${v}')`);
}

export function setConvForwardMode(mode: ConvForwardMode): void {
  convForwardMode = parseConvForwardMode(mode);
}

export function convForwardIsWgsl(): boolean {
  return convForwardMode === 'wgsl' || (convForwardMode === 'auto' && tf.getBackend() === 'webgpu');
}

/**
 * tf.conv3d with its forward pass by the current forward mode (convForwardIsWgsl) and its weight
 * gradient by the current method (filterGradientMethod); plus `bias` [Cout] if given (in the WGSL
 * forward program's dispatch, else by addChannelBias).
 */
export function conv3dTrainable(
  x: tf.Tensor5D,
  k: tf.Tensor5D,
  strides: Vec3,
  pad: 'same' | 'valid',
  bias?: tf.Tensor,
): tf.Tensor5D {
  const m = filterGradientMethod();
  const filterGrad = m === 'builtin' ? undefined : m === 'taps' ? conv3dFilterGradByTaps : conv3dFilterGradWgsl;
  if (convForwardIsWgsl()) return conv3dWgsl(x, k, strides, pad, filterGrad, bias);
  const y = filterGrad ? conv3dWithFilterGrad(x, k, strides, pad, filterGrad) : tf.conv3d(x, k, strides, pad);
  return bias ? addChannelBias(y, bias) : y;
}

function conv(x: tf.Tensor5D, w: SamWeights, l: ConvLayer, o: ConvOptions = {}): tf.Tensor5D {
  const out = o.outScale ?? 1;
  const k = effectiveKernel(w, l, (o.inScale ?? 1) * out);
  const b = w[`${l.name}.b`];
  const pad = o.pad ?? 'same';
  return conv3dTrainable(x, k, l.convStride, pad, out === 1 ? b : tf.mul(b, out));
}

/*
 * Rank-5 helpers. tfjs-webgpu cannot compile shaders that index rank-5 coordinates (Pad, Slice and
 * broadcasting binary ops fail with "cannot index type 'vec5'"), so every such op runs on a
 * free reshape to rank 2 or 4. The same shapes are tfjs-cpu's fast paths (broadcast over the last axis).
 */

/**
 * y + b with b [C] broadcast over [B, D, H, W, C], as a rank-2 op. Its gradient for b sums dy over
 * the voxels per channel (sumPerChannel: one WGSL dispatch on WebGPU; the broadcast's own gradient
 * sums a [voxels, C] matrix over its rows, which tfjs-webgpu transposes with a program that puts
 * voxels / 16 workgroups on one axis, past WebGPU's 65,535 from a million voxels: the paper-size
 * network's full-resolution layers at 2 pairs).
 */
function addChannelBias(y: tf.Tensor5D, b: tf.Tensor): tf.Tensor5D {
  const c = y.shape[4];
  const add = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const [v, bias] = args as [tf.Tensor5D, tf.Tensor];
    const value = tf.reshape(tf.add(tf.reshape(v, [-1, c]), bias), v.shape) as tf.Tensor5D;
    const gradFunc = (dy: tf.Tensor5D) => [dy, tf.reshape(sumPerChannel(dy), bias.shape)];
    return { value, gradFunc };
  });
  return add(y, b) as tf.Tensor5D;
}

/** Pad the spatial axes of a single-channel [B, D, H, W, 1] tensor with a constant, as a rank-4 op. */
function padSpatial1(x: tf.Tensor5D, pads: [number, number][], value: number): tf.Tensor5D {
  const [b, d, h, w] = x.shape;
  const y: tf.Tensor4D = tf.pad(tf.reshape(x, [b, d, h, w]) as tf.Tensor4D, [[0, 0], ...pads], value);
  return tf.reshape(y, [b, y.shape[1], y.shape[2], y.shape[3], 1]);
}

/** Keep voxels [0, s) of the spatial axes of [B, D, H, W, C], as rank-4 and rank-3 slices. */
function cropSpatial(y: tf.Tensor5D, s: Vec3): tf.Tensor5D {
  const [b, d, h, w, c] = y.shape;
  if (d === s[0] && h === s[1] && w === s[2]) return y;
  const hw = tf.slice(tf.reshape(y, [b * d, h, w, c]), [0, 0, 0, 0], [b * d, s[1], s[2], c]);
  const dz = tf.slice(tf.reshape(hw, [b, d, s[1] * s[2] * c]), [0, 0, 0], [b, s[0], s[1] * s[2] * c]);
  return tf.reshape(dz, [b, s[0], s[1], s[2], c]);
}

/** ReLU; on WebGPU its gradient in one dispatch instead of tfjs' three kernels (relu-wgsl.ts). */
const relu = (x: tf.Tensor5D): tf.Tensor5D =>
  tf.getBackend() === 'webgpu' && x.dtype === 'float32' ? reluWgsl(x) : tf.relu(x);

/** conv(act(x)) with act = GAMMA * relu, GAMMA folded into the kernel. */
const actConv = (x: tf.Tensor5D, w: SamWeights, l: ConvLayer, o: ConvOptions = {}) =>
  conv(relu(x), w, l, { ...o, inScale: (o.inScale ?? 1) * GAMMA });

/**
 * Nearest upsampling by integer factors (powers of two): forward through 2D nearest resizes, gradient
 * as the exact block sum (average pooling times the block size). tfjs-cpu's own
 * ResizeNearestNeighborGrad is wrong, so the gradient is supplied here.
 */
function upsample(x: tf.Tensor5D, f: Vec3): tf.Tensor5D {
  if (f.every((n) => n === 1)) return x;
  const up = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const v = args[0] as tf.Tensor5D;
    const [b, , , , c] = v.shape;
    let [d, h, wd] = v.shape.slice(1, 4);
    let y: tf.Tensor = v;
    if (f[1] !== 1 || f[2] !== 1) {
      y = tf.image.resizeNearestNeighbor(tf.reshape(y, [b * d, h, wd, c]) as tf.Tensor4D, [h * f[1], wd * f[2]]);
      h *= f[1];
      wd *= f[2];
    }
    if (f[0] !== 1) {
      y = tf.image.resizeNearestNeighbor(tf.reshape(y, [b, d, h * wd, c]) as tf.Tensor4D, [d * f[0], h * wd]);
      d *= f[0];
    }
    const value = tf.reshape(y, [b, d, h, wd, c]) as tf.Tensor5D;
    const gradFunc = (dy: tf.Tensor5D) => tf.mul(tf.avgPool3d(dy as tf.Tensor5D, f, f, 'valid'), f[0] * f[1] * f[2]);
    return { value, gradFunc };
  });
  return up(x);
}

const pool = (x: tf.Tensor5D, f: Vec3, kind: 'avg' | 'max'): tf.Tensor5D =>
  f.every((n) => n === 1) ? x : kind === 'avg' ? tf.avgPool3d(x, f, f, 'valid') : tf.maxPool3d(x, f, f, 'valid');

/**
 * x / |x| along channels; the per-voxel factor is spread over channels by an outer product (fast on
 * cpu). On WebGPU one dispatch, and one for the gradient (l2-normalise-wgsl.ts).
 */
function l2normalize(x: tf.Tensor5D): tf.Tensor5D {
  const c = x.shape[4];
  const x2 = tf.reshape(x, [-1, c]);
  if (tf.getBackend() === 'webgpu' && x2.dtype === 'float32')
    return tf.reshape(l2NormaliseRowsWgsl(x2 as tf.Tensor2D), x.shape);
  const inv = tf.rsqrt(tf.maximum(tf.sum(tf.square(x2), -1, true), 1e-12));
  return tf.reshape(tf.mul(x2, tf.matMul(inv, tf.ones([1, c]))), x.shape);
}

export interface ForwardOptions {
  /** Normalised value used to pad outside the volume (default config.padValue, air). */
  padValue?: number;
}

/**
 * The network. `input` [B, D, H, W, 1] is not disposed; intermediates are. Differentiable with
 * respect to every weight (and the input).
 */
export function forward(
  weights: SamWeights,
  input: tf.Tensor5D,
  config: SamConfig,
  options: ForwardOptions = {},
): SamOutput {
  if (input.rank !== 5 || input.shape[4] !== 1)
    throw new InputError('SAM network input', `expected [batch, z, y, x, 1], got [${input.shape}]`);
  validateSamConfig(config);
  checkWeights(config, weights);
  const layers = new Map(convLayers(config).map((l) => [l.name, l]));
  const L = (name: string) => layers.get(name)!;
  const size = input.shape.slice(1, 4) as Vec3;
  const geo = outputGeometry(config, size);
  const padValue = options.padValue ?? config.padValue;
  const strides = levelStrides(config);

  const result = tf.tidy(() => {
    // input: pad to a multiple of the total stride (high end) plus the stem's half kernel, then scale
    const stem = L('stem');
    const pads = [0, 1, 2].map((a) => {
      const half = (stem.kernel[a] - stem.convStride[a]) / 2;
      return [half, geo.padded[a] - size[a] + half] as [number, number];
    });
    let x = tf.tidy(() =>
      conv(padSpatial1(input, pads, padValue), weights, stem, {
        inScale: config.inputScale,
        pad: 'valid',
      }),
    );

    // backbone: NF-ResNet pre-activation blocks, x + alpha * f(x / beta); relu(x / beta) = relu(x) / beta
    const feats: tf.Tensor5D[] = [];
    let variance = 1;
    let cin = config.stem.channels;
    config.stages.forEach((st, i) => {
      for (let b = 0; b < st.blocks; b++) {
        const p = `s${i + 1}.b${b}`;
        const trans = b === 0 && isTransition(cin, st);
        const inScale = 1 / Math.sqrt(variance);
        const prev = x;
        x = tf.tidy(() => {
          const a = b === 0 ? pool(relu(prev), st.down, 'avg') : relu(prev);
          const raw = { inScale: inScale * GAMMA };
          const shortcut = trans ? conv(a, weights, L(`${p}.short`), raw) : prev;
          const h = conv(a, weights, L(`${p}.conv1`), raw);
          return tf.add(shortcut, actConv(h, weights, L(`${p}.conv2`), { outScale: config.alpha }));
        });
        variance = (trans ? 1 : variance) + config.alpha ** 2;
        if (!feats.includes(prev)) prev.dispose();
      }
      const pooled = pool(x, st.postPool, 'max');
      if (pooled !== x) x.dispose();
      x = pooled;
      feats.push(x);
      cin = st.channels;
    });

    const head = (t: tf.Tensor5D, name: string, preAct: boolean) =>
      preAct ? actConv(t, weights, L(name)) : conv(t, weights, L(name));

    // local head: top-down from level `levels` to level 1 (lateral 1x1 only where channels differ)
    const { levels, widths } = config.local;
    const lateral = (l: number) =>
      layers.has(`local.lat${l}`) ? conv(feats[l - 1], weights, L(`local.lat${l}`)) : feats[l - 1];
    let t = lateral(levels);
    for (let l = levels - 1; l >= 1; l--) {
      const down = widths[l] !== widths[l - 1] ? head(t, `local.td${l}`, config.local.tdPreAct) : t;
      const f = [0, 1, 2].map((a) => strides[l][a] / strides[l - 1][a]) as Vec3;
      t = tf.add(lateral(l), upsample(down, f));
    }
    config.local.out.forEach((o, i) => (t = head(t, `local.out${i}`, o.preAct)));
    const local = l2normalize(t);

    // global head on the top level
    let g = feats[feats.length - 1];
    config.global.out.forEach((o, i) => (g = head(g, `global.out${i}`, o.preAct)));
    const global = l2normalize(g);

    return { local: cropSpatial(local, geo.local), global: cropSpatial(global, geo.global) };
  });
  return { ...result, localStride: geo.localStride, globalStride: geo.globalStride };
}

function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

function mulberry32(a: number): () => number {
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// ---- For exporters (sam/onnx/export.ts): the forward pass's constants and kernels on plain arrays ----

/** The ReLU gain GAMMA that forward folds into every conv that follows an activation. */
export const RELU_GAIN = GAMMA;

/**
 * effectiveKernel in float64 on plain arrays: the kernel forward applies for layer `l`, from its raw
 * kernel `w` [kz, ky, kx, cin, cout] and gain `g` [cout] (used when l.ws), times `scale`; same formula
 * and epsilon (g (W - mean) / sqrt(sum of squared deviations over the fan-in + 1e-4)). Same layout as `w`.
 */
export function effectiveKernelValues(
  l: ConvLayer,
  w: ArrayLike<number>,
  g: ArrayLike<number> | undefined,
  scale: number,
): Float64Array {
  const cout = l.cout;
  const fanIn = w.length / cout;
  const out = new Float64Array(w.length);
  for (let o = 0; o < cout; o++) {
    let mean = 0;
    if (l.ws) {
      for (let i = 0; i < fanIn; i++) mean += w[i * cout + o];
      mean /= fanIn;
    }
    let sumSq = 0;
    if (l.ws) for (let i = 0; i < fanIn; i++) sumSq += (w[i * cout + o] - mean) ** 2;
    const s = l.ws ? (g![o] / Math.sqrt(sumSq + 1e-4)) * scale : scale;
    for (let i = 0; i < fanIn; i++) out[i * cout + o] = (w[i * cout + o] - mean) * s;
  }
  return out;
}
