/**
 * `sam bench-train`: training speed of the SAM network on the chosen tfjs backend: iterations/s and
 * achieved GFLOP/s of whole training iterations (sampling, mining forward, forward + backward, Adam
 * step) for each configuration, with the convolutions' weight gradients computed by tfjs' built-in
 * kernel, by per-tap matrix products (sam/conv3d-filter-grad.ts) and, on WebGPU, by the WGSL kernel
 * (sam/conv3d-filter-grad-wgsl.ts); the weight-gradient kernels alone, layer by layer, every way
 * (on WebGPU also the WGSL kernel's 'staged' variant, which training does not use); and on WebGPU
 * the forward convolutions alone, layer by layer, by tfjs' built-in (naive) Conv3D kernel and by
 * the WGSL implicit-GEMM program (sam/conv3d-wgsl.ts), which the network uses there by default.
 *
 * FLOP counts are the model's (network.ts layers, flops.ts): one iteration = a forward pass (which
 * serves the mining and the loss: train/one-forward-gradients.ts) and its backward pass (counted as
 * two forward passes) over 2 x batch patches, i.e. 3x the forward FLOPs (4x with SAM_TRAIN_TWO_PASS=1,
 * a second forward pass); the weight gradient of a layer = its forward FLOPs.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import type { Command } from '../index.ts';
import { initTfBackend, type TfBackendName } from '../../engine/compute/tf-backend.ts';
import { convLayers, getSamConfig, type SamConfig, type Vec3 } from '../../engine/sam/config.ts';
import { conv3dFilterGradByTaps } from '../../engine/sam/conv3d-filter-grad.ts';
import { conv3dFilterGradWgsl } from '../../engine/sam/conv3d-filter-grad-wgsl.ts';
import { conv3dWgslForward, defaultVariant, setConv3dWgslTiles } from '../../engine/sam/conv3d-wgsl.ts';
import { forwardCost } from '../../engine/sam/flops.ts';
import { setFilterGradientMode, type FilterGradientMode } from '../../engine/sam/network.ts';
import { loadTrainingSet } from '../../engine/train/dataset.ts';
import { ADAM } from '../../engine/train/optimizer.ts';
import { trainSam } from '../../engine/train/train-loop.ts';
import { startHostStats, type HostStats } from '../bench/host-stats.ts';
import { printKernelProfile } from '../bench/kernel-profile.ts';
import { intOption, sizeOption } from '../option-values.ts';
import { SHARED_DATA_LABEL, sharedDataPath } from '../shared-data.ts';

const DEFAULT_DATA = 'TotalSegmentator/tests/reference_files/example_ct.nii.gz';

const USAGE = [
  'usage: sam bench-train [options]',
  '  --config A,B       configurations (default small,paper)',
  '  --batch P          patch pairs per iteration (default 2)',
  '  --patch X,Y,Z      patch size (default 96,96,32)',
  '  --iterations N     timed iterations after one warm-up iteration (default 3)',
  '  --backend NAME     auto (default), webgpu, tensorflow, cpu',
  '  --wgrad A,B        weight-gradient methods to compare: builtin, taps, wgsl, wgsl-staged (kernels only);',
  '                     default builtin,taps,wgsl,wgsl-staged on webgpu, builtin,taps elsewhere',
  '  --no-kernels       skip the layer-by-layer weight-gradient comparison',
  '  --no-forward       skip the layer-by-layer forward comparison, built-in Conv3D vs WGSL (WebGPU only)',
  '  --no-iterations    skip the training iterations',
  '  --host-stats       per timed iteration: WebGPU calls (dispatches, submits, read-backs, bind groups, pipelines',
  '                     compiled ...), the main thread busy vs waiting, GC pauses, CPU time (host-stats.ts)',
  '  --profile          after the timed iterations, one more iteration (default kernels) with every kernel timed',
  '                     (tf.profile; WebGPU: SAM_DAWN_FLAGS=enable-dawn-features=allow_unsafe_apis)',
  `  --data FILE        training CT (default ${DEFAULT_DATA} under ${SHARED_DATA_LABEL})`,
].join('\n');

/** Forward-pass equivalents of one training iteration (see the header). */
const passes = () => (process.env.SAM_TRAIN_TWO_PASS === '1' ? 4 : 3);
const median = (v: number[]) => [...v].sort((a, b) => a - b)[v.length >> 1];

/** Weight-gradient methods of the kernel comparison; the first three are also training modes. */
const METHODS = ['builtin', 'taps', 'wgsl', 'wgsl-staged'] as const;
type Method = (typeof METHODS)[number];

/** Each conv layer's weight gradient by every method, on the layer's shapes for this patch. */
async function benchKernels(config: SamConfig, patchZyx: Vec3, batch: number, methods: Method[]): Promise<void> {
  const cost = forwardCost(config, patchZyx, batch);
  const totals: Record<string, number> = {};
  let flopsTotal = 0;
  console.log(`  weight-gradient kernels, layer by layer (${batch} patches of ${[...patchZyx].reverse().join('x')}):`);
  for (const [n, l] of convLayers(config).entries()) {
    const outShape = cost.layers[n].outShape;
    const inShape = outShape.map((s, a) => s * l.convStride[a]) as Vec3;
    const x = tf.randomNormal([batch, ...inShape, l.cin]) as tf.Tensor5D;
    const w = tf.randomNormal([...l.kernel, l.cin, l.cout]) as tf.Tensor5D;
    const dy = tf.randomNormal([batch, ...outShape, l.cout]) as tf.Tensor5D;
    const flops = cost.layers[n].flops;
    flopsTotal += flops;
    const line: string[] = [];
    for (const m of methods) {
      const fs = w.shape as [number, number, number, number, number];
      const run = () =>
        m === 'taps'
          ? conv3dFilterGradByTaps(x, dy, fs, l.convStride, 'same')
          : m === 'wgsl' || m === 'wgsl-staged'
            ? conv3dFilterGradWgsl(x, dy, fs, l.convStride, 'same', m === 'wgsl' ? 'direct' : 'staged')
            : tf.grad((wt: tf.Tensor) => tf.sum(tf.mul(tf.conv3d(x, wt as tf.Tensor5D, l.convStride, 'same'), dy)))(w);
      const warm = run();
      await warm.data();
      warm.dispose();
      const t0 = performance.now();
      const g = run();
      await g.data();
      const s = (performance.now() - t0) / 1000;
      g.dispose();
      totals[m] = (totals[m] ?? 0) + s;
      line.push(`${m} ${(s * 1000).toFixed(1)} ms (${(flops / s / 1e9).toPrecision(3)} GFLOP/s)`);
    }
    tf.dispose([x, w, dy]);
    console.log(`    ${l.name.padEnd(14)} ${l.kernel.join('x')} ${l.cin}->${l.cout}: ${line.join(', ')}`);
  }
  const sum = methods.map(
    (m) => `${m} ${totals[m].toFixed(3)} s (${(flopsTotal / totals[m] / 1e9).toPrecision(3)} GFLOP/s)`,
  );
  const speedup = methods
    .filter((m) => m !== 'builtin' && totals.builtin)
    .map((m) => `${m} ${(totals.builtin / totals[m]).toFixed(2)}x`);
  console.log(`    all layers: ${sum.join(', ')}`);
  if (speedup.length) console.log(`    speed relative to the built-in kernel: ${speedup.join(', ')}`);
}

/**
 * Each conv layer's forward pass, tfjs' built-in Conv3D vs the WGSL program's two variants (direct
 * and staged; the network uses the one marked default, by adapter), on the layer's shapes for this
 * patch (the stem 'valid' on its padded input, as the network runs it; the others 'same'). Best of
 * two timed runs after a warm-up (pipeline compilation), each read back.
 */
async function benchForward(config: SamConfig, patchZyx: Vec3, batch: number): Promise<void> {
  const cost = forwardCost(config, patchZyx, batch);
  const methods = ['builtin', 'wgsl-direct', 'wgsl-staged'] as const;
  type M = (typeof methods)[number];
  const totals: Record<M, number> = { builtin: 0, 'wgsl-direct': 0, 'wgsl-staged': 0 };
  const used = `wgsl-${defaultVariant(tf.backend())}`;
  let flopsTotal = 0;
  let maxErr = 0;
  console.log(
    `  forward convolutions, layer by layer (${batch} patches of ${[...patchZyx].reverse().join('x')}; ` +
      `the network uses ${used} here):`,
  );
  for (const [n, l] of convLayers(config).entries()) {
    const outShape = cost.layers[n].outShape;
    const stem = n === 0;
    const inShape = outShape.map((s, a) => s * l.convStride[a] + (stem ? l.kernel[a] - l.convStride[a] : 0)) as Vec3;
    const pad = stem ? 'valid' : 'same';
    const x = tf.randomNormal([batch, ...inShape, l.cin]) as tf.Tensor5D;
    const w = tf.randomNormal([...l.kernel, l.cin, l.cout]) as tf.Tensor5D;
    const flops = cost.layers[n].flops;
    flopsTotal += flops;
    const line: string[] = [];
    const secs: Record<string, number> = {};
    const values: Record<string, Float32Array> = {};
    for (const m of methods) {
      if (m !== 'builtin') setConv3dWgslTiles({ variant: m === 'wgsl-direct' ? 'direct' : 'staged' });
      try {
        const run = () => (m === 'builtin' ? tf.conv3d : conv3dWgslForward)(x, w, l.convStride, pad);
        const warm = run();
        values[m] = (await warm.data()) as Float32Array;
        warm.dispose();
        let s = Infinity;
        for (let r = 0; r < 2; r++) {
          const t0 = performance.now();
          const y = run();
          await y.data();
          s = Math.min(s, (performance.now() - t0) / 1000);
          y.dispose();
        }
        totals[m] += s;
        secs[m] = s;
        line.push(`${m} ${(s * 1000).toFixed(1)} ms (${(flops / s / 1e9).toPrecision(3)} GFLOP/s)`);
      } finally {
        setConv3dWgslTiles({});
      }
    }
    const scale = values.builtin.reduce((a, v) => Math.max(a, Math.abs(v)), 0) || 1;
    for (const m of methods.slice(1))
      maxErr = Math.max(maxErr, values[m].reduce((a, v, i) => Math.max(a, Math.abs(v - values.builtin[i])), 0) / scale);
    tf.dispose([x, w]);
    console.log(
      `    ${l.name.padEnd(14)} ${l.kernel.join('x')} ${l.cin}->${l.cout}: ${line.join(', ')}; ` +
        `${used} ${(secs.builtin / secs[used]).toFixed(2)}x`,
    );
  }
  const sum = methods.map(
    (m) => `${m} ${totals[m].toFixed(3)} s (${(flopsTotal / totals[m] / 1e9).toPrecision(3)} GFLOP/s)`,
  );
  console.log(`    all layers: ${sum.join(', ')}`);
  console.log(
    `    speed relative to the built-in kernel: ${methods
      .slice(1)
      .map((m) => `${m} ${(totals.builtin / totals[m]).toFixed(2)}x`)
      .join(', ')} (max difference ${maxErr.toExponential(1)} of the largest output)`,
  );
}

export const benchTrainCommand: Command = {
  name: 'bench-train',
  summary: 'benchmark SAM training: iterations/s, GFLOP/s, weight-gradient kernels',
  usage: USAGE,
  async run(args) {
    const { values } = parseArgs({
      args,
      options: {
        config: { type: 'string', default: 'small,paper' },
        batch: { type: 'string', default: '2' },
        patch: { type: 'string', default: '96,96,32' },
        iterations: { type: 'string', default: '3' },
        backend: { type: 'string', default: 'auto' },
        wgrad: { type: 'string' },
        'no-kernels': { type: 'boolean', default: false },
        'no-forward': { type: 'boolean', default: false },
        'no-iterations': { type: 'boolean', default: false },
        profile: { type: 'boolean', default: false },
        'host-stats': { type: 'boolean', default: false },
        data: { type: 'string' },
      },
    });
    const batch = intOption('batch', values.batch);
    const iterations = intOption('iterations', values.iterations);
    const patch: Vec3 = sizeOption('patch', values.patch);
    const backend = await initTfBackend({ backend: values.backend as TfBackendName | 'auto' });
    const webgpu = backend.backend === 'webgpu';
    const methods = (values.wgrad ?? (webgpu ? METHODS.join(',') : 'builtin,taps')).split(',') as Method[];
    for (const m of methods) {
      if (!METHODS.includes(m)) throw new Error(`--wgrad: unknown method '${m}' (${METHODS.join(', ')})`);
      if (m.startsWith('wgsl') && !webgpu) throw new Error(`--wgrad ${m} needs the webgpu backend`);
    }
    console.log(`backend: ${backend.backend}`);
    const cases = values['no-iterations']
      ? []
      : (await loadTrainingSet([values.data ?? sharedDataPath(DEFAULT_DATA)])).cases;
    const patchZyx: Vec3 = [patch[2], patch[1], patch[0]];
    for (const name of values.config.split(',')) {
      const config = getSamConfig(name);
      // a throw-away run: Adam, seed 0, no checkpoints
      const runOptions = (runDir: string, n: number) => ({
        config,
        runDir,
        iterations: n,
        batchPairs: batch,
        seed: 0,
        optimizer: { ...ADAM },
        checkpointEvery: 1e9,
        resume: false,
        patch: { patchSize: patch },
      });
      const fwd = forwardCost(config, patchZyx).flops;
      console.log(
        `${config.name}: ${(fwd / 1e9).toFixed(2)} GFLOP per patch forward; one iteration of ${batch} pair(s) = ` +
          `${((passes() * 2 * batch * fwd) / 1e9).toFixed(1)} GFLOP`,
      );
      if (!values['no-forward'] && backend.backend === 'webgpu') await benchForward(config, patchZyx, 2 * batch);
      if (!values['no-kernels']) await benchKernels(config, patchZyx, 2 * batch, methods);
      if (values['no-iterations']) continue;
      for (const m of methods) {
        if (m === 'wgsl-staged') continue; // kernel comparison only
        setFilterGradientMode(m as FilterGradientMode);
        const dir = mkdtempSync(join(tmpdir(), 'sam-bench-train-'));
        try {
          // host statistics over the timed iterations (from the end of the warm-up to the last one's row)
          let stats: HostStats | undefined;
          let host: string[] = [];
          const onProgress = ({ iteration }: { iteration: number }) => {
            if (!values['host-stats']) return;
            if (iteration === 1) stats = startHostStats();
            if (iteration === iterations + 1 && stats) host = stats.stop(iterations);
          };
          const r = await trainSam(cases, runOptions(dir, iterations + 1), { onProgress });
          const secs = r.rows.slice(1).map((row) => row.seconds);
          const s = median(secs);
          console.log(
            `  training, weight gradients by ${m}: ${(1 / s).toFixed(3)} it/s (${s.toFixed(2)} s/it, median of ` +
              `${secs.length}; warm-up ${r.rows[0].seconds.toFixed(2)} s), ${((passes() * 2 * batch * fwd) / s / 1e9).toPrecision(3)} GFLOP/s`,
          );
          // where the time goes (train-loop.ts phases), medians over the timed iterations
          const phase = (k: 'sample' | 'mine' | 'gradients' | 'update') =>
            median(r.rows.slice(1).map((row) => row.phases?.[k] ?? NaN)).toFixed(3);
          console.log(
            `    per iteration: patch pairs ${phase('sample')} s, mining (forward + negatives) ${phase('mine')} s, ` +
              `loss forward + backward ${phase('gradients')} s, optimiser update ${phase('update')} s`,
          );
          for (const line of host) console.log(`    per iteration: ${line}`);
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      }
      setFilterGradientMode('auto');
      if (values.profile) {
        const dir = mkdtempSync(join(tmpdir(), 'sam-bench-train-'));
        try {
          const run = () => trainSam(cases, runOptions(dir, 1));
          await run(); // shaders compiled before the profiled iteration
          rmSync(dir, { recursive: true, force: true });
          const t0 = performance.now();
          const info = await tf.profile(async () => {
            await run();
            return [];
          });
          console.log(`  one training iteration (default kernels) under tf.profile:`);
          printKernelProfile(info, (performance.now() - t0) / 1000);
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      }
    }
    return 0;
  },
};
