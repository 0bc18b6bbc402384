/**
 * SAM embedding network configurations: the named layouts ('paper', 'small', 'tiny'), their
 * validation, and the derived geometry every other SAM module shares: the stride of each
 * pyramid level and the ordered list of convolutions (the single source of truth for the
 * weight names and shapes, the forward pass and the cost model).
 *
 * Axis order everywhere is (z, y, x) in voxels of the 2 mm network input. Layout (all configs):
 *   stem conv -> stages 1..4 (residual blocks; level l = output of stage l)
 *   local head: top-down path over levels 1..local.levels to level 1, L2-normalised
 *   global head: convs on the top level, L2-normalised
 * See network.ts for the block structure and the normalisation-free design.
 */
import { InputError } from '../errors.ts';

/** (z, y, x) triple. */
export type Vec3 = [number, number, number];

/** A convolution of a head: its kernel, output channels, and whether an activation precedes it. */
export interface ConvSpec {
  kernel: Vec3;
  channels: number;
  preAct: boolean;
}

export interface StageSpec {
  channels: number;
  /** Residual blocks (2 in ResNet-18, 1 in ResNet-10). */
  blocks: number;
  /** Kernel of the blocks' convolutions: official levels 1-2 use 1x3x3, levels 3-4 3x3x3. */
  kernel: Vec3;
  /** Downsampling at the start of the stage (2-voxel average pooling, then stride-1 convs). */
  down: Vec3;
  /** Max pooling after the stage (the official z-pool after level 1 is (2,1,1)). */
  postPool: Vec3;
}

export interface SamConfig {
  name: string;
  /** Channels of both embeddings (128 in the official configuration). */
  embedDim: number;
  /** Fixed factor applied to the normalised input (official normalisation: air = -50 -> -1). */
  inputScale: number;
  /** Value of the normalised input used to pad outside the volume (official normalisation of air). */
  padValue: number;
  /** Residual branch scale of the normalisation-free blocks (NF-ResNet alpha). */
  alpha: number;
  /** Stem convolution: kernel minus stride must be even on every axis (centred blocks). */
  stem: { channels: number; kernel: Vec3; stride: Vec3 };
  stages: StageSpec[];
  /**
   * Local head over levels 1..levels: widths[l-1] is the top-down width at level l; a 1x1 lateral
   * conv is used only where the stage's channels differ from it, a top-down conv (tdKernel, run at
   * the coarser level before upsampling) only where consecutive widths differ. `out` runs at level 1.
   */
  local: { levels: number; widths: number[]; tdKernel: Vec3; tdPreAct: boolean; out: ConvSpec[] };
  /** Global head: convs on the top level. */
  global: { out: ConvSpec[] };
}

const k1: Vec3 = [1, 1, 1];
const k133: Vec3 = [1, 3, 3];
const k333: Vec3 = [3, 3, 3];

/** The official SAM layout (configs/sam/sam_deeplesion.py): ResNet-18, FPN with 128 channels. */
const paper: SamConfig = {
  name: 'paper',
  embedDim: 128,
  inputScale: 1 / 50,
  padValue: -50,
  alpha: 0.2,
  stem: { channels: 64, kernel: [3, 7, 7], stride: [1, 1, 1] },
  stages: [
    { channels: 64, blocks: 2, kernel: k133, down: [1, 2, 2], postPool: [2, 1, 1] },
    { channels: 128, blocks: 2, kernel: k133, down: [1, 2, 2], postPool: [1, 1, 1] },
    { channels: 256, blocks: 2, kernel: k333, down: [1, 2, 2], postPool: [1, 1, 1] },
    { channels: 512, blocks: 2, kernel: k333, down: [2, 2, 2], postPool: [1, 1, 1] },
  ],
  local: {
    levels: 3,
    widths: [128, 128, 128],
    tdKernel: k333,
    tdPreAct: false,
    out: [{ kernel: k333, channels: 128, preAct: false }],
  },
  global: {
    out: [
      { kernel: k1, channels: 128, preAct: false },
      { kernel: k333, channels: 128, preAct: false },
    ],
  },
};

/**
 * CPU-trainable layout, same level strides: ResNet-10 (1 block per stage) with widths 16/32/64/128,
 * a stride-2 stem straight to level 1, top-down widths matching the stages (no lateral convs) and a
 * cheap level-1 output (1x3x3 to 32, then 1x1 to 128).
 */
const small: SamConfig = {
  name: 'small',
  embedDim: 128,
  inputScale: 1 / 50,
  padValue: -50,
  alpha: 0.2,
  stem: { channels: 16, kernel: [4, 6, 6], stride: [2, 2, 2] },
  stages: [
    { channels: 16, blocks: 1, kernel: k133, down: [1, 1, 1], postPool: [1, 1, 1] },
    { channels: 32, blocks: 1, kernel: k133, down: [1, 2, 2], postPool: [1, 1, 1] },
    { channels: 64, blocks: 1, kernel: k333, down: [1, 2, 2], postPool: [1, 1, 1] },
    { channels: 128, blocks: 1, kernel: k333, down: [2, 2, 2], postPool: [1, 1, 1] },
  ],
  local: {
    levels: 3,
    widths: [16, 32, 64],
    tdKernel: k333,
    tdPreAct: true,
    out: [
      { kernel: k133, channels: 32, preAct: true },
      { kernel: k1, channels: 128, preAct: true },
    ],
  },
  global: { out: [{ kernel: k333, channels: 128, preAct: true }] },
};

/**
 * Unit-test layout: a few thousand weights, same level strides, and every code path of the other
 * two (strided stem, z max-pool, lateral conv, identity and conv top-down steps, multi-conv heads).
 */
const tiny: SamConfig = {
  name: 'tiny',
  embedDim: 8,
  inputScale: 1 / 50,
  padValue: -50,
  alpha: 0.2,
  stem: { channels: 4, kernel: [3, 4, 4], stride: [1, 2, 2] },
  stages: [
    { channels: 4, blocks: 1, kernel: k133, down: [1, 1, 1], postPool: [2, 1, 1] },
    { channels: 8, blocks: 2, kernel: k133, down: [1, 2, 2], postPool: [1, 1, 1] },
    { channels: 8, blocks: 1, kernel: k333, down: [1, 2, 2], postPool: [1, 1, 1] },
    { channels: 8, blocks: 1, kernel: k333, down: [2, 2, 2], postPool: [1, 1, 1] },
  ],
  local: {
    levels: 3,
    widths: [6, 8, 8],
    tdKernel: k333,
    tdPreAct: true,
    out: [
      { kernel: k133, channels: 6, preAct: true },
      { kernel: k1, channels: 8, preAct: false },
    ],
  },
  global: {
    out: [
      { kernel: k1, channels: 8, preAct: true },
      { kernel: k333, channels: 8, preAct: false },
    ],
  },
};

export const SAM_CONFIG_NAMES = ['paper', 'small', 'tiny'] as const;
export type SamConfigName = (typeof SAM_CONFIG_NAMES)[number];
const NAMED: Record<SamConfigName, SamConfig> = { paper, small, tiny };

/** A fresh copy of a named configuration. */
export function getSamConfig(name: SamConfigName | string): SamConfig {
  const c = (NAMED as Record<string, SamConfig>)[name];
  if (!c) throw new InputError(`SAM configuration '${name}'`, `unknown; known: ${SAM_CONFIG_NAMES.join(', ')}`);
  return structuredClone(c);
}

const mul = (a: Vec3, b: Vec3): Vec3 => [a[0] * b[0], a[1] * b[1], a[2] * b[2]];
const isPow2 = (n: number) => Number.isInteger(n) && n >= 1 && (n & (n - 1)) === 0;

/** Stride (z, y, x), in input voxels, of each pyramid level 1..stages.length (index 0 = level 1). */
export function levelStrides(c: SamConfig): Vec3[] {
  const out: Vec3[] = [];
  let s = c.stem.stride;
  for (const st of c.stages) {
    s = mul(mul(s, st.down), st.postPool);
    out.push(s);
  }
  return out;
}

/** Strides of the two outputs; `total` (the top level's) is the multiple the input is padded to. */
export function outputStrides(c: SamConfig): { local: Vec3; global: Vec3; total: Vec3 } {
  const s = levelStrides(c);
  const top = s[s.length - 1];
  return { local: s[0], global: top, total: top };
}

/** One convolution of the network, in forward order. */
export interface ConvLayer {
  /** Weight prefix: the layer's tensors are `${name}.w` [kz,ky,kx,cin,cout], `.b` [cout] and, if ws, `.g` [cout]. */
  name: string;
  kernel: Vec3;
  cin: number;
  cout: number;
  /** Scaled weight standardisation with a learned gain (every conv except the stem). */
  ws: boolean;
  /** The conv's own stride (only the stem may have one; others run at stride 1). */
  convStride: Vec3;
  /** Stride of the conv's output grid relative to the input, in input voxels. */
  outStride: Vec3;
}

/** Every convolution, in forward order; names and shapes of all weights follow from this list. */
export function convLayers(c: SamConfig): ConvLayer[] {
  const L: ConvLayer[] = [];
  const one: Vec3 = [1, 1, 1];
  const add = (name: string, kernel: Vec3, cin: number, cout: number, outStride: Vec3, ws = true, convStride = one) =>
    L.push({ name, kernel, cin, cout, ws, convStride, outStride });
  add('stem', c.stem.kernel, 1, c.stem.channels, c.stem.stride, false, c.stem.stride);
  const strides = levelStrides(c);
  let cin = c.stem.channels;
  let s = c.stem.stride;
  c.stages.forEach((st, i) => {
    const at = mul(s, st.down);
    for (let b = 0; b < st.blocks; b++) {
      const p = `s${i + 1}.b${b}`;
      add(`${p}.conv1`, st.kernel, b === 0 ? cin : st.channels, st.channels, at);
      add(`${p}.conv2`, st.kernel, st.channels, st.channels, at);
      if (b === 0 && isTransition(cin, st)) add(`${p}.short`, one, cin, st.channels, at);
    }
    cin = st.channels;
    s = strides[i];
  });
  const { levels, widths, tdKernel } = c.local;
  for (let l = levels; l >= 1; l--) {
    const ch = c.stages[l - 1].channels;
    if (ch !== widths[l - 1]) add(`local.lat${l}`, one, ch, widths[l - 1], strides[l - 1]);
    if (l > 1 && widths[l - 1] !== widths[l - 2])
      add(`local.td${l - 1}`, tdKernel, widths[l - 1], widths[l - 2], strides[l - 1]);
  }
  let w = widths[0];
  c.local.out.forEach((o, i) => {
    add(`local.out${i}`, o.kernel, w, o.channels, strides[0]);
    w = o.channels;
  });
  w = c.stages[c.stages.length - 1].channels;
  c.global.out.forEach((o, i) => {
    add(`global.out${i}`, o.kernel, w, o.channels, strides[strides.length - 1]);
    w = o.channels;
  });
  return L;
}

/** Does the first block of a stage change resolution or width (so its shortcut is a 1x1 conv)? */
export function isTransition(cin: number, st: StageSpec): boolean {
  return cin !== st.channels || st.down.some((d) => d !== 1);
}

/** Throw an InputError naming the configuration and the first problem found. */
export function validateSamConfig(c: SamConfig): void {
  const where = `SAM configuration '${(c as { name?: unknown })?.name ?? '?'}'`;
  const fail = (p: string): never => {
    throw new InputError(where, p);
  };
  const posInt = (v: unknown, what: string, min = 1) => {
    if (!Number.isInteger(v) || (v as number) < min)
      fail(`${what} must be an integer >= ${min} (got ${JSON.stringify(v)})`);
  };
  const vec = (v: unknown, what: string, check: (n: number) => boolean, rule: string) => {
    if (!Array.isArray(v) || v.length !== 3 || !v.every((n) => Number.isInteger(n) && check(n)))
      fail(`${what} must be three integers (z, y, x) that are ${rule} (got ${JSON.stringify(v)})`);
  };
  const odd = (n: number) => n >= 1 && n % 2 === 1;
  const convs = (list: unknown, what: string, lastChannels: number) => {
    if (!Array.isArray(list) || list.length === 0) fail(`${what} must list at least one conv`);
    (list as ConvSpec[]).forEach((o, i) => {
      vec(o?.kernel, `${what}[${i}].kernel`, odd, 'odd');
      posInt(o.channels, `${what}[${i}].channels`, 2);
      if (typeof o.preAct !== 'boolean') fail(`${what}[${i}].preAct must be a boolean`);
    });
    const last = (list as ConvSpec[])[(list as ConvSpec[]).length - 1].channels;
    if (last !== lastChannels) fail(`${what} must end with embedDim (${lastChannels}) channels, not ${last}`);
  };
  if (typeof c !== 'object' || c === null) fail('is not an object');
  if (typeof c.name !== 'string' || c.name === '') fail('name must be a non-empty string');
  posInt(c.embedDim, 'embedDim', 2);
  if (!(Number.isFinite(c.inputScale) && c.inputScale > 0)) fail('inputScale must be a positive number');
  if (!Number.isFinite(c.padValue)) fail('padValue must be a finite number');
  if (!(Number.isFinite(c.alpha) && c.alpha >= 0)) fail('alpha must be a number >= 0');
  posInt(c.stem?.channels, 'stem.channels', 2);
  vec(c.stem.stride, 'stem.stride', isPow2, 'powers of two');
  vec(c.stem.kernel, 'stem.kernel', (n) => n >= 1, '>= 1');
  for (let a = 0; a < 3; a++) {
    const d = c.stem.kernel[a] - c.stem.stride[a];
    if (d < 0 || d % 2 !== 0)
      fail('stem.kernel minus stem.stride must be even and >= 0 on every axis (centred output)');
  }
  if (!Array.isArray(c.stages) || c.stages.length < 2) fail('stages must list at least two stages');
  c.stages.forEach((st, i) => {
    const w = `stages[${i}]`;
    posInt(st?.channels, `${w}.channels`, 2);
    posInt(st.blocks, `${w}.blocks`);
    vec(st.kernel, `${w}.kernel`, odd, 'odd');
    vec(st.down, `${w}.down`, isPow2, 'powers of two');
    vec(st.postPool, `${w}.postPool`, isPow2, 'powers of two');
  });
  const loc = c.local;
  posInt(loc?.levels, 'local.levels');
  if (loc.levels > c.stages.length)
    fail(`local.levels (${loc.levels}) exceeds the number of stages (${c.stages.length})`);
  if (!Array.isArray(loc.widths) || loc.widths.length !== loc.levels)
    fail('local.widths must give one width per local level');
  loc.widths.forEach((w, i) => posInt(w, `local.widths[${i}]`, 2));
  vec(loc.tdKernel, 'local.tdKernel', odd, 'odd');
  if (typeof loc.tdPreAct !== 'boolean') fail('local.tdPreAct must be a boolean');
  convs(loc.out, 'local.out', c.embedDim);
  convs(c.global?.out, 'global.out', c.embedDim);
}

/** Channels per input voxel of the widest convolution output (cout over its stride volume). */
export function widestConvChannelsPerVoxel(c: SamConfig): number {
  let widest = 0;
  for (const l of convLayers(c)) widest = Math.max(widest, l.cout / (l.outStride[0] * l.outStride[1] * l.outStride[2]));
  return widest;
}
