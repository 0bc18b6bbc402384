/**
 * `sam bench-embed [input]`: whole-volume embedding time and peak memory, and the time to match
 * 2,000 points, on the chosen device (issue targets on this 2-core CPU: small network through ONNX
 * Runtime <= 10 s for the 2 mm chest CT; 2,000 points <= 1 s; a 512x512x300 volume under 4 GB).
 * --size resamples the input onto a larger grid of the same extent (e.g. 512,512,300) to measure
 * memory at that size.
 */
import { parseArgs } from 'node:util';
import type { Command } from '../index.ts';
import type { Device } from '../../engine/compute/choose-engine.ts';
import type { EmbeddingEngine } from '../../engine/compute/embedding-engine.ts';
import { embedVolume, networkGrid } from '../../engine/sam/embed-volume.ts';
import * as tf from '@tensorflow/tfjs-core';
import { InputError } from '../../engine/errors.ts';
import { forward } from '../../engine/sam/network.ts';
import { printKernelProfile } from '../bench/kernel-profile.ts';
import { startHostStats, type HostStats } from '../bench/host-stats.ts';
import { embedVolumeOnDevice, whenComputed, type DeviceEmbedded } from '../../engine/sam/device/embed-on-device.ts';
import { matchPointsOnDevice } from '../../engine/sam/device/match-on-device.ts';
import { matchPoints, type PointMatch } from '../../engine/sam/match.ts';
import { MatchThreads } from '../../engine/sam/match-threads.ts';
import { indexToWorld } from '../../engine/volume/geometry.ts';
import { readVolume } from '../../engine/volume/io/index.ts';
import { bodyMask } from '../../engine/volume/mask.ts';
import { resample } from '../../engine/volume/resample.ts';
import type { Vec3, Volume } from '../../engine/volume/volume.ts';
import { createRng } from '../../engine/train/rng.ts';
import { defaultModelPath, openModel, type OpenedModel } from './match.ts';
import { intOption, numberOption, optionalNumber, sizeOption } from '../option-values.ts';
import { SHARED_DATA_LABEL, sharedDataPath } from '../shared-data.ts';

const DEFAULT_INPUT = 'ITKElastix/examples/data/00';

export const benchEmbedCommand: Command = {
  name: 'bench-embed',
  summary: 'benchmark whole-volume SAM embedding and matching 2,000 points: time and peak memory',
  usage: [
    `usage: sam bench-embed [input (default ${DEFAULT_INPUT} under ${SHARED_DATA_LABEL})] [options]`,
    '  --weights FILE   the model (default resources/sam-small.samw or $SAM_MODEL: matching time depends on',
    '                   the model, its local scan skips voxels a discriminative global embedding rules out)',
    '  --config NAME    small or paper at random initialisation instead (embedding speed does not depend on',
    '                   the weights; matching is slower with them)',
    '  --device NAME    auto (default), webgpu, onnx, onnx-cuda, tfjs-cpu, ...',
    '  --size X,Y,Z     resample the input onto this many voxels first (over the same extent, or with',
    '  --spacing X,Y,Z  this spacing in mm: e.g. --size 512,512,300 --spacing 0.8,0.8,1.25, a large scan)',
    '  --points N       points to match (default 2000)',
    '  --repeat N       embedding runs (default 2; the first includes warm-up)',
    '  --on-device      also embed and match with everything kept on the tfjs device (a GPU through',
    '                   --device webgpu): input made there, nothing read back but the matches',
    "  --tile-bytes B   memory budget of one tile (default: 40% of this machine's memory on the CPU, 2.5e9",
    '                   with --on-device; a large GPU takes more)',
    '  --profile        with --on-device: time every kernel of one forward pass on the whole grid (tf.profile;',
    '                   WebGPU needs timestamp queries: SAM_DAWN_FLAGS=enable-dawn-features=allow_unsafe_apis)',
    '  --host-stats     with --on-device: around the last embedding, the WebGPU calls (dispatches, submits,',
    "                   read-backs ...) and the main thread's busy and waiting time (cli/bench/host-stats.ts)",
  ].join('\n'),
  async run(args) {
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: {
        config: { type: 'string' },
        weights: { type: 'string' },
        device: { type: 'string', default: 'auto' },
        size: { type: 'string' },
        spacing: { type: 'string' },
        points: { type: 'string', default: '2000' },
        repeat: { type: 'string', default: '2' },
        'on-device': { type: 'boolean', default: false },
        'tile-bytes': { type: 'string' },
        profile: { type: 'boolean', default: false },
        'host-stats': { type: 'boolean', default: false },
      },
    });
    const input = positionals[0] ?? sharedDataPath(DEFAULT_INPUT);
    const repeat = intOption('repeat', values.repeat);
    const nPoints = intOption('points', values.points);
    const tileBytes = optionalNumber('tile-bytes', values['tile-bytes'], { above: 0 });
    const MB = 2 ** 20;
    let volume = await readVolume(input);
    if (values.size) {
      const size: Vec3 = sizeOption('size', values.size);
      const spacing = values.spacing
        ? (values.spacing.split(',').map((v) => numberOption('spacing', v, { above: 0 })) as Vec3)
        : (volume.spacing.map((s, a) => (s * (volume.size[a] - 1)) / Math.max(1, size[a] - 1)) as Vec3);
      volume = resample(volume, { size, spacing, origin: volume.origin, direction: volume.direction }, { fill: -1024 });
    }
    const model = await openModel(
      values.config ? { config: values.config, seed: 0 } : { weightsFile: values.weights ?? defaultModelPath() },
      values.device as Device,
    );
    const rssBefore = process.memoryUsage().rss;
    console.log(
      `input ${input}: ${volume.size.join('x')} voxels, ${volume.spacing.map((s) => s.toFixed(3)).join(' x ')} mm`,
    );
    console.log(`model ${model.label} on ${model.engine.name}`);
    if (model.engine.maxTensorBytes !== undefined)
      console.log(`device buffer cap (largest tensor): ${(model.engine.maxTensorBytes / 2 ** 20).toFixed(0)} MB`);
    let embedded;
    const times: number[] = [];
    // time inside the engine (network + reading its outputs back) and the number of tiles
    const engine = model.engine;
    let runSeconds = 0;
    let runs = 0;
    const timed: EmbeddingEngine = {
      ...engine,
      run: async (input: Float32Array, size: Vec3) => {
        const t0 = performance.now();
        try {
          return await engine.run(input, size);
        } finally {
          runSeconds += (performance.now() - t0) / 1000;
          runs++;
        }
      },
    };
    // the matcher's threads start now and load their code while the volume is embedded
    const matchThreads = MatchThreads.start();
    for (let r = 0; r < repeat; r++) {
      runSeconds = 0;
      runs = 0;
      const t0 = performance.now();
      embedded = await embedVolume(volume, timed, {
        maxTileBytes: tileBytes,
      });
      times.push((performance.now() - t0) / 1000);
    }
    const e = embedded!;
    console.log(
      `embedding (resample to 2 mm + network, grid ${e.local.size.join('x')} local / ${e.global.size.join('x')} global): ` +
        `${times.map((t) => t.toFixed(2)).join(', ')} s (best ${Math.min(...times).toFixed(2)} s)`,
    );
    console.log(
      `  last run: ${runs} tile(s), ${runSeconds.toFixed(2)} s inside the engine (network + output read-back), ` +
        `${(times[times.length - 1] - runSeconds).toFixed(2)} s outside (resampling, normalising, assembling)`,
    );
    if (engine.timeNetwork) {
      const grid = networkGrid(volume).size;
      const zyx = [grid[2], grid[1], grid[0]].map((n) => Math.ceil(n / 16) * 16) as Vec3; // whole strides
      const net: number[] = [];
      try {
        for (let r = 0; r < 3; r++) net.push(await engine.timeNetwork(zyx));
        console.log(
          `  network alone on the whole ${grid.join('x')} grid (outputs left on the device, one element read): ` +
            `${net.map((t) => t.toFixed(3)).join(', ')} s (best ${Math.min(...net).toFixed(3)} s)`,
        );
      } catch (e) {
        console.log(`  network alone on the whole ${grid.join('x')} grid: not run (${(e as Error).message})`);
      }
    }
    // points: random voxels inside the body, matched from the volume onto itself
    const mask = bodyMask(volume);
    const rng = createRng(1);
    const pts: Vec3[] = [];
    const n = nPoints;
    while (pts.length < n) {
      const v = rng.int(0, mask.data.length);
      if (!mask.data[v]) continue;
      const [ni, nj] = volume.size;
      pts.push(indexToWorld(volume, [v % ni, Math.floor(v / ni) % nj, Math.floor(v / (ni * nj))]));
    }
    await matchPoints(e, e, pts.slice(0, 10)); // warm-up (loads ONNX Runtime for the global product)
    const m0 = performance.now();
    const matches = await matchPoints(e, e, pts);
    const matchSeconds = (performance.now() - m0) / 1000;
    const err = matches.map((m, k) => Math.hypot(...(m.location.map((x, a) => x - pts[k][a]) as Vec3)));
    console.log(
      `matching ${n} points: ${matchSeconds.toFixed(3)} s in one thread (self-match error median ${err.sort((a, b) => a - b)[n >> 1].toFixed(2)} mm)`,
    );
    // the search shared with worker threads (started before the embedding: loaded by now), twice: the
    // first run sends the query to the threads and warms their code
    if (matchThreads) {
      const shared: number[] = [];
      for (let r = 0; r < 2; r++) {
        const t0 = performance.now();
        const m = await matchPoints(e, e, pts, { threads: matchThreads });
        shared.push((performance.now() - t0) / 1000);
        if (m.some((x, k) => x.location.some((v, a) => v !== matches[k].location[a])))
          throw new Error('bench-embed: the threads matched differently');
      }
      console.log(
        `matching ${n} points, search shared with ${matchThreads.size} worker thread(s): ` +
          `${shared.map((t) => t.toFixed(3)).join(', ')} s (the same matches)`,
      );
      matchThreads.dispose();
    }
    if (values['on-device']) {
      if (!engine.name.startsWith('tfjs-'))
        throw new InputError('--on-device', `needs a tfjs engine (--device webgpu or tfjs-cpu), not ${engine.name}`);
      try {
        await benchOnDevice(volume, model, pts, {
          repeat,
          maxTileBytes: tileBytes,
          profile: values.profile,
          hostStats: values['host-stats'],
        });
      } catch (e) {
        console.log(`on the device: not run (${(e as Error).message})`);
      }
    }
    const peak = process.resourceUsage().maxRSS * 1024;
    console.log(`peak RSS ${(peak / MB).toFixed(0)} MB (RSS before embedding ${(rssBefore / MB).toFixed(0)} MB)`);
    await model.engine.dispose();
    return 0;
  },
};

/**
 * Embedding and matching with the embeddings kept on the tfjs device (sam/device/): the time from
 * the CT in memory to both embedding levels on the device (input resampled there, tiles assembled
 * there; finished = a reduction over both levels read back), and matching the points there.
 */
async function benchOnDevice(
  volume: Volume,
  model: OpenedModel,
  pts: Vec3[],
  options: { repeat: number; maxTileBytes?: number; profile?: boolean; hostStats?: boolean },
): Promise<void> {
  const { config, weights } = model;
  let e: DeviceEmbedded | undefined;
  const times: number[] = [];
  let tiles = 0;
  const runs = Math.max(1, options.repeat);
  let stats: HostStats | undefined;
  for (let r = 0; r < runs; r++) {
    e?.dispose();
    if (options.hostStats && r === runs - 1) stats = startHostStats();
    const t0 = performance.now();
    e = await embedVolumeOnDevice(
      volume,
      { config, weights },
      { maxTileBytes: options.maxTileBytes, onProgress: (p) => (tiles = p.tiles) },
    );
    await whenComputed(e);
    times.push((performance.now() - t0) / 1000);
  }
  const d = e!;
  console.log(
    `on the device (${d.backend}): embedding, ${tiles} tile(s), input made on the device, embeddings left there: ` +
      `${times.map((t) => t.toFixed(3)).join(', ')} s (best ${Math.min(...times).toFixed(3)} s)`,
  );
  for (const line of stats?.stop(1) ?? []) console.log(`  last embedding: ${line}`);
  await matchPointsOnDevice(d, d, pts.slice(0, 10)); // warm-up (shader compilation)
  const m: number[] = [];
  let matches: PointMatch[] = [];
  for (let r = 0; r < 2; r++) {
    const t0 = performance.now();
    matches = await matchPointsOnDevice(d, d, pts);
    m.push((performance.now() - t0) / 1000);
  }
  const err = matches.map((q, k) => Math.hypot(...(q.location.map((x, a) => x - pts[k][a]) as Vec3)));
  console.log(
    `on the device: matching ${pts.length} points ${m.map((t) => t.toFixed(3)).join(', ')} s ` +
      `(self-match error median ${err.sort((a, b) => a - b)[pts.length >> 1].toFixed(2)} mm)`,
  );
  d.dispose();
  if (options.profile) await profileForward(volume, model);
}

/** Kernel times of one forward pass over the whole network grid, by kernel and by kind. */
async function profileForward(volume: Volume, model: OpenedModel): Promise<void> {
  const grid = networkGrid(volume).size;
  const x = tf.zeros([1, grid[2], grid[1], grid[0], 1]) as tf.Tensor5D;
  const t0 = performance.now();
  const info = await tf.profile(() => {
    const o = forward(model.weights, x, model.config);
    return [o.global, o.local];
  });
  const wall = (performance.now() - t0) / 1000;
  tf.dispose([x, ...(info.result as tf.Tensor[])]);
  printKernelProfile(info, wall);
}
