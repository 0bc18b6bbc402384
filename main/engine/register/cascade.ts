/**
 * The registration cascade: fixed and moving CT in, transform and warped moving image out.
 * Stages, in order (any prefix-closed subset: affine; affine,coarse; affine,coarse,deform; affine,deform):
 * - affine (sam-affine.ts): grid points in the fixed body matched into the moving image, confident
 *   pairs, robust fit;
 * - coarse (sam-coarse.ts): denser points matched near their affine prediction, in the moving image
 *   resampled through the affine (SAME++; with the SAM matcher unrefined that image is embedded again,
 *   otherwise NCC searches there: coarseMatcherOf), cycle-checked, an affine refitted to them and a
 *   smooth control-grid displacement to what it leaves, both held by the grid;
 * - deform (deform/sam-deform.ts): instance optimisation of a dense 4 mm displacement (local NCC,
 *   diffusion smoothness), no trained network needed; with a trained SAM-deform network
 *   (deform-net/, `deformNet`), the network's field first and the instance optimisation refining it
 *   (SAME++: network + instance optimisation). The network reads SAM local features, so it needs the
 *   embeddings: with the NCC matcher the engine embeds both images for it.
 * With the deform stage on the GPU (deform.onDevice: register/device/), the whole field, the warped
 * image and the Jacobian are made there too (warp-on-device.ts, jacobian-on-device.ts); with
 * `deviceModel` the embeddings are made, matched and reduced there (sam/device/).
 * The default is the full cascade (DEFAULT_STAGES): about 30-60 s on a 2-core CPU for a 2 mm chest
 * pair with the NCC matcher (README, registration section).
 * The matcher is SAM (embeddings from the given engine), by default with each match refined by NCC
 * template matching near it (ncc-refine.ts), or, as a classical fallback and baseline, NCC template
 * matching alone (from a rough translation, initial-shift.ts).
 * Conventions: the affine maps fixed to moving points (LPS mm); the corrections of coarse and deform
 * are added in moving space (stage-field.ts); `field` is the whole map as one displacement field on
 * the fixed grid (fixed point x -> moving point x + u(x)); the warped image is moving(x + u(x)).
 */
import { CancelledError, DeviceLimitError, InputError } from '../errors.ts';
import type { EmbeddingEngine } from '../compute/embedding-engine.ts';
import { embedVolume, type EmbeddedVolume } from '../sam/embed-volume.ts';
import * as tf from '@tensorflow/tfjs-core';
import type { SamConfig } from '../sam/config.ts';
import type { SamWeights } from '../sam/network.ts';
import { embedVolumeOnDevice, whenComputed, type DeviceEmbedded } from '../sam/device/embed-on-device.ts';
import { matchPointsOnDevice } from '../sam/device/match-on-device.ts';
import { MatchThreads } from '../sam/match-threads.ts';
import { embeddingFeaturesOnDevice } from './device/embedding-features-on-device.ts';
import { flushGpuQueue, onHardwareGpu } from '../compute/tf-backend.ts';
import { DeviceImages, deviceOnlyVolume } from '../compute/device-images.ts';
import { NccOnDevice } from './device/ncc-on-device.ts';
import type { NccMatcher } from '../bench/ncc-match.ts';
import { NccThreads, nccMatchOn } from '../bench/ncc-threads.ts';
import { nonFiniteAsAir, requireCt } from '../volume/intensity.ts';
import { bodyMask } from '../volume/mask.ts';
import { MaskThreads } from '../volume/mask-threads.ts';
import type { Vec3, Volume } from '../volume/volume.ts';
import type { Affine3x4, Geometry } from '../volume/geometry.ts';
import { StageChecks } from './stage-checks.ts';
import { add } from '../volume/geometry.ts';
import { initialShift } from './initial-shift.ts';
import { affineDecompose, affineDeterminant } from './affine-fit.ts';
import { warpWithAffine } from './field/warp.ts';
import { samAffine, type SamAffineResult } from './sam-affine.ts';
import { checkNotMirrored, mirroredLeftRight } from './mirror-check.ts';
import {
  movingAfterAffine,
  movingAfterAffineGrid,
  samCoarse,
  type SamCoarseOptions,
  type SamCoarseResult,
  type SamMatchFn,
} from './sam-coarse.ts';
import { nccRefineMatches, refinedLocation } from './ncc-refine.ts';
import { samDeform, type SamDeformOptions, type SamDeformResult } from './deform/sam-deform.ts';
import { stageField } from './stage-field.ts';
import { embeddingFeatures } from './deform/embedding-features.ts';
import { fieldFromAffine, type Field } from './field/field.ts';
import { CascadeTailThreads } from './cascade-tail-threads.ts';
import { jacobianDeterminant } from './field/jacobian.ts';
import { deformNetStage, type DeformNet, type DeformNetStageResult } from './deform-net/apply.ts';
import { warpVolume } from './field/warp.ts';
import { affineWarpOnDevice, cascadeWarpOnDevice, stageFieldOnDevice } from './device/warp-on-device.ts';
import { jacobianSummaryOnDevice } from './device/jacobian-on-device.ts';
import { overlapNcc, type OverlapNcc } from './overlap-ncc.ts';
import { maskedNcc } from './masked-ncc.ts';
import { AFFINE_IDENTITY } from './affine3x4.ts';
import { profiler } from '../util/profile.ts';

export const STAGES = ['affine', 'coarse', 'deform'] as const;
export type Stage = (typeof STAGES)[number];
export const DEFAULT_STAGES: Stage[] = ['affine', 'coarse', 'deform'];

/** How the SAM matcher's matches are refined (RegisterOptions.refine). */
export type RefineMode = 'ncc' | 'none';
export const DEFAULT_REFINE: RefineMode = 'ncc';

export interface RegisterOptions {
  stages?: Stage[];
  matcher?: 'sam' | 'ncc';
  /** Required for the SAM matcher. */
  engine?: EmbeddingEngine;
  gridMm?: number;
  /** Options of the later stages. */
  coarse?: SamCoarseOptions;
  deform?: SamDeformOptions;
  /**
   * SAM matcher: each match of the affine stage refined by NCC template matching near it
   * (register/ncc-refine.ts: SAM finds the anatomy, NCC its precise position, with a cycle check of
   * its own), and the coarse stage's points found by NCC around the affine's prediction
   * (coarseMatcherOf); 'none' keeps SAM's own locations in both. Default 'ncc' (DEFAULT_REFINE).
   */
  refine?: RefineMode;
  /**
   * Where the SAM matches' NCC refinement and SAM-coarse's NCC searches run: on the GPU
   * (register/device/ncc-on-device.ts, one dispatch for all points) or on the CPU's threads. Default:
   * on the GPU when the SAM embeddings are there (the whole cascade on the device). The NCC matcher
   * (matcher 'ncc') always runs on the CPU's threads.
   */
  nccOnDevice?: boolean;
  /** Weight of the SAM local-embedding similarity in the deform stage (SAM matcher only; default DEFAULT_FEATURE_WEIGHT). */
  featureWeight?: number;
  /**
   * Worker threads of the CPU work: the NCC matcher (affine and coarse stages; default one per core,
   * at most 8), the deform stage's box sums on the host (at most 4) and the dense tail (field, warp,
   * Jacobian; at most 8); 1: none. The result does not depend on it.
   */
  threads?: number;
  /**
   * The SAM model behind `engine`: when the engine is tfjs on WebGPU, the embeddings are made, matched
   * and reduced on the GPU from it (sam/device/, register/device/) instead of by `engine` in tiles read
   * back to the host. Ignored with any other engine.
   */
  deviceModel?: { config: SamConfig; weights: SamWeights };
  /** A trained SAM-deform network: its field starts the deform stage (needs `engine`). */
  deformNet?: DeformNet;
  onProgress?: (stage: string, done: number, total: number) => void;
  signal?: AbortSignal;
}

export interface RegisterResult {
  affine: SamAffineResult;
  coarse?: SamCoarseResult;
  deform?: SamDeformResult;
  deformNet?: DeformNetStageResult;
  /** The whole map as one displacement field on the fixed grid (mm, LPS). */
  field: Field;
  /** The moving image resampled on the fixed grid. */
  warped: Volume;
  qa: RegisterQa;
}

/** qa.json: the fields callers read, and the rest as written. */
export type RegisterQa = Record<string, unknown> & {
  secondsPerStage: Record<string, number>;
  secondsTotal: number;
  jacobian: { min: number; max: number; mean: number; std: number; foldedPercent: number; voxels?: number };
  nccInFixedBody: { before: number; after: number };
  /** NCC over the fixed body where the moving image has data (overlap-ncc.ts), and how much of it that is. */
  nccWhereMovingHasData: OverlapNcc;
};

/**
 * Default weight of the SAM local-embedding similarity in the deform stage (SAME++'s feature term;
 * `featureWeight` / `--feature-weight` set it). Off: with the shipped model the term made every
 * registration measured worse: the four 2 mm chest bench pairs (mean TRE 0.74 mm with 0.5, 0.67 mm
 * without) and two real crops of one scan, whose answer is the identity (|u| mean 0.71 mm with 0.5,
 * 0.24 mm without): its 4 mm embeddings differ where the crops see different surroundings. It comes
 * back on when a model makes it help.
 */
export const DEFAULT_FEATURE_WEIGHT = 0;

/** Checks the stage list: known names, in cascade order, starting with the affine. */
export function checkStages(stages: string[]): Stage[] {
  for (const st of stages) if (!STAGES.includes(st as Stage)) throw new InputError('--stages', `unknown stage '${st}'`);
  if (stages[0] !== 'affine') throw new InputError('--stages', 'the cascade starts with affine');
  const order = stages.map((st) => STAGES.indexOf(st as Stage));
  if (order.some((v, n) => n > 0 && v <= order[n - 1]))
    throw new InputError('--stages', `give stages once each, in the order ${STAGES.join(',')}`);
  return stages as Stage[];
}

export async function registerVolumes(fixed: Volume, moving: Volume, o: RegisterOptions = {}): Promise<RegisterResult> {
  const stages = checkStages(o.stages ?? DEFAULT_STAGES);
  // NaN or infinite voxels read as air (intensity.ts nonFiniteAsAir), counted in the QA
  const f = nonFiniteAsAir(fixed);
  const m = nonFiniteAsAir(moving);
  fixed = f.volume;
  moving = m.volume;
  for (const [v, what] of [
    [fixed, 'fixed image'],
    [moving, 'moving image'],
  ] as const) {
    requireCt(v, v.meta.source ?? what);
    // a slice or a slab is no volume to register (its grid points and windows find no neighbours)
    const thin = v.size.findIndex((n, a) => n < 8 || n * v.spacing[a] < 16);
    if (thin >= 0)
      throw new InputError(
        v.meta.source ?? what,
        `is ${v.size[thin]} voxel${v.size[thin] > 1 ? 's' : ''} (${(v.size[thin] * v.spacing[thin]).toFixed(1)} mm) ` +
          `along its ${'ijk'[thin]} axis: registration needs a 3D volume (at least 8 voxels and 16 mm along each axis)`,
      );
  }
  const matcher = o.matcher ?? 'sam';
  const netUsed = !!o.deformNet && stages.includes('deform');
  if ((matcher === 'sam' || netUsed) && !o.engine)
    throw new InputError(matcher === 'sam' ? 'SAM matcher' : 'SAM-deform network', 'no embedding engine given');
  // with the SAM engine on WebGPU the embeddings are made, matched and reduced there, never read back whole
  const gpuModel =
    (matcher === 'sam' || netUsed) && o.engine?.name === 'tfjs-webgpu' && tf.getBackend() === 'webgpu'
      ? o.deviceModel
      : undefined;
  let onGpu: GpuEmbeddings | null = null;
  let hostReason: string | undefined;
  // the body masks on worker threads while this thread embeds (else on this thread during the GPU's
  // embedding, or after the CPU's)
  const maskThreads = (o.threads ?? 2) > 1 ? MaskThreads.shared() : null;
  let masks: BodyMasks | Promise<BodyMasks> | undefined = maskThreads
    ? bodyMasksOn(maskThreads, fixed, moving)
    : undefined;
  // (awaited by runStages; a failure meanwhile is seen there, not as an unhandled rejection)
  if (masks instanceof Promise) masks.catch(() => {});
  // on WebGPU each image's voxels go to the device once (embedding, deform preparation, warp)
  const images = tf.getBackend() === 'webgpu' ? new DeviceImages() : undefined;
  try {
    if (gpuModel) {
      try {
        // the body masks are made on the CPU while the GPU embeds
        onGpu = await embedBothOnDevice(fixed, moving, gpuModel, o, images, () => (masks ??= bodyMasks(fixed, moving)));
      } catch (e) {
        // too large for one buffer of this device: the host path embeds in tiles and reads them back
        if (!(e instanceof DeviceLimitError)) throw e;
        hostReason = e.message;
      }
    }
    const r = await runStages({ fixed, moving, o, stages, gpu: onGpu, madeMasks: masks, images });
    if (hostReason) r.qa.embeddingOnHost = hostReason;
    if (f.count || m.count) r.qa.nonFiniteVoxelsAsAir = { fixed: f.count, moving: m.count };
    return r;
  } finally {
    onGpu?.fixed.dispose();
    onGpu?.moving.dispose();
    images?.dispose();
  }
}

interface BodyMasks {
  fixed: Volume<Uint8Array>;
  moving: Volume<Uint8Array>;
  /** Seconds of the masks' making (on threads: the longer of the two). */
  seconds: number;
  /** Made on worker threads (mask-threads.ts). */
  onThreads?: boolean;
}

function bodyMasks(fixed: Volume, moving: Volume): BodyMasks {
  const t0 = performance.now();
  return { fixed: bodyMask(fixed), moving: bodyMask(moving), seconds: (performance.now() - t0) / 1000 };
}

/** bodyMasks, the two made at once on the threads. */
async function bodyMasksOn(threads: MaskThreads, fixed: Volume, moving: Volume): Promise<BodyMasks> {
  const [f, m] = await Promise.all([threads.bodyMask(fixed), threads.bodyMask(moving)]);
  return {
    fixed: f.mask,
    moving: m.mask,
    seconds: Math.max(f.seconds, m.seconds),
    onThreads: !!(f.onThread && m.onThread),
  };
}

/**
 * Both images' embeddings on the device (each disposed if the other fails). tfjs queues the GPU work
 * and returns: `meanwhile` runs on the CPU while the GPU computes, before the wait for it (the body
 * masks, when they are not on threads).
 */
async function embedBothOnDevice(
  fixed: Volume,
  moving: Volume,
  model: { config: SamConfig; weights: SamWeights },
  o: RegisterOptions,
  images: DeviceImages | undefined,
  meanwhile: () => void,
): Promise<GpuEmbeddings> {
  const t0 = performance.now();
  const prof = profiler('embed both on device');
  o.onProgress?.('embed fixed (GPU)', 0, 2);
  const f = await embedVolumeOnDevice(fixed, model, { signal: o.signal, images });
  prof.mark('fixed queued');
  let m: DeviceEmbedded | undefined;
  try {
    o.onProgress?.('embed moving (GPU)', 1, 2);
    m = await embedVolumeOnDevice(moving, model, { signal: o.signal, images });
    // send the queued commands to the GPU now (tfjs submits in batches), then work on the CPU
    prof.mark('moving queued');
    flushGpuQueue();
    prof.mark('submitted');
    meanwhile();
    prof.mark('masks on the CPU');
    await whenComputed(f);
    await whenComputed(m);
    prof.mark('waiting for the GPU');
    prof.done();
    return { fixed: f, moving: m, seconds: (performance.now() - t0) / 1000 };
  } catch (e) {
    f.dispose();
    m?.dispose();
    throw e;
  }
}

/**
 * SAM-coarse's matcher after the affine (SAME++): the moving image resampled through the affine on a
 * 2 mm grid over the fixed image, embedded (on the GPU when the cascade's embeddings are there), and
 * matched against the fixed embeddings; `movingAligned` tells samCoarse that a match p' is the moving
 * point A p'. Undefined when there are no embeddings to match against.
 */
async function alignedSamMatcher(
  fixed: Volume,
  moving: Volume,
  affine: Affine3x4,
  gpu: GpuEmbeddings | null,
  embeddings: { fixed: EmbeddedVolume; moving: EmbeddedVolume } | null,
  images: DeviceImages | undefined,
  o: RegisterOptions,
): Promise<{ matcher: Parameters<typeof samCoarse>[3]; dispose: () => void } | undefined> {
  if (!(gpu && o.deviceModel) && !(embeddings && o.engine)) return undefined;
  o.onProgress?.('coarse: embed the moving image after the affine', 0, 1);
  if (gpu && o.deviceModel) {
    // on WebGPU the aligned image is made there (no host warp, no upload); elsewhere on the host
    const prof = profiler('coarse: moving after the affine, embedded on device');
    const grid = movingAfterAffineGrid(fixed);
    const voxels = tf.getBackend() === 'webgpu' ? affineWarpOnDevice(moving, grid, affine, -1024, images) : null;
    let al: DeviceEmbedded;
    try {
      al = voxels
        ? await embedVolumeOnDevice(moving, o.deviceModel, { signal: o.signal, image: { geometry: grid, voxels } })
        : await embedVolumeOnDevice(movingAfterAffine(fixed, moving, affine), o.deviceModel, { signal: o.signal });
      prof.mark('queued');
      await whenComputed(al);
      prof.mark('waiting for the GPU');
      prof.done();
    } finally {
      voxels?.dispose();
    }
    return {
      matcher: { kind: 'sam', movingAligned: true, match: (pts, mo) => matchPointsOnDevice(gpu.fixed, al, pts, mo) },
      dispose: () => al.dispose(),
    };
  }
  const m = await embedVolume(movingAfterAffine(fixed, moving, affine), o.engine!, { signal: o.signal });
  return {
    matcher: { kind: 'sam', movingAligned: true, embeddings: { fixed: embeddings!.fixed, moving: m } },
    dispose: () => {},
  };
}

/**
 * SAM-coarse's NCC image (sam-coarse.ts movingAfterAffine) made on the device for the GPU's NCC
 * matcher: a volume that lives there only; on the host when it does not fit one device buffer.
 */
function alignedOnDevice(fixed: Volume, moving: Volume, affine: Affine3x4, images: DeviceImages): Volume {
  const grid = movingAfterAffineGrid(fixed);
  const voxels = affineWarpOnDevice(moving, grid, affine, -1024, images);
  return voxels
    ? deviceOnlyVolume(grid, voxels, images, 'the moving image after the affine')
    : movingAfterAffine(fixed, moving, affine);
}

interface GpuEmbeddings {
  fixed: DeviceEmbedded;
  moving: DeviceEmbedded;
  seconds: number;
}

/** What the stages work on: the images, the options, and what the GPU embedding made. */
interface StageInputs {
  fixed: Volume;
  moving: Volume;
  o: RegisterOptions;
  stages: Stage[];
  gpu: GpuEmbeddings | null;
  /** The body masks when made (or being made on threads) during the embedding. */
  madeMasks: BodyMasks | Promise<BodyMasks> | undefined;
  images: DeviceImages | undefined;
  /** The host SAM matcher's threads (runStages starts them). */
  matchThreads?: MatchThreads | null;
}

/** Whether the SAM matcher's matches are refined by NCC (the SAM matcher and refine 'ncc'). */
function refinesWithNcc(o: RegisterOptions): boolean {
  return (o.matcher ?? 'sam') === 'sam' && (o.refine ?? DEFAULT_REFINE) === 'ncc';
}

/**
 * SAM-coarse's matcher: SAM (after embedding the affine-aligned moving image again, as SAME++) only
 * for the SAM matcher without refinement. With refinement the coarse stage's points are found by NCC
 * around the SAM affine's prediction, in the affine-aligned image: the affine leaves a few mm, which
 * NCC's 16 mm search covers, so SAM's second embedding and search are not needed (on the four 2 mm
 * chest pairs of the README affine + coarse TRE 0.52-0.55 mm against 0.53-0.59 with SAM's matches
 * refined, and 3-4.5 s less on this CPU).
 */
export function coarseMatcherOf(o: RegisterOptions): 'sam' | 'ncc' {
  return (o.matcher ?? 'sam') === 'sam' && !refinesWithNcc(o) ? 'sam' : 'ncc';
}

/**
 * The stages, with the NCC matcher's threads for the affine and coarse stages (stopped after them)
 * and, when the deform stage runs on the CPU, the threads of the dense tail (started now: they load
 * their modules while the stages run).
 */
async function runStages(inputs: StageInputs): Promise<RegisterResult> {
  const o = inputs.o;
  const ncc = nccOnDeviceOf(o, inputs.gpu)
    ? new NccOnDevice(inputs.images)
    : (o.matcher ?? 'sam') === 'ncc' || refinesWithNcc(o)
      ? NccThreads.start(o.threads)
      : null;
  // the host SAM matcher's search on worker threads too (the GPU matcher needs none)
  const matchThreads =
    (o.matcher ?? 'sam') === 'sam' && !inputs.gpu ? MatchThreads.start((o.threads ?? Infinity) - 1) : null;
  const tailOnCpu = inputs.stages.length > 1 && !(o.deform?.onDevice ?? onHardwareGpu());
  const tail = tailOnCpu ? CascadeTailThreads.start(o.threads) : null;
  try {
    return await stagesWith(ncc, tail, { ...inputs, matchThreads });
  } finally {
    matchThreads?.dispose();
    ncc?.dispose();
    tail?.dispose();
  }
}

/** Whether the SAM matches' NCC refinement runs on the GPU (RegisterOptions.nccOnDevice). */
function nccOnDeviceOf(o: RegisterOptions, gpu: GpuEmbeddings | null): boolean {
  if (!refinesWithNcc(o)) return false;
  if (o.nccOnDevice && tf.getBackend() !== 'webgpu')
    throw new InputError('nccOnDevice', `NCC on the GPU needs tfjs' webgpu backend (active: ${tf.getBackend()})`);
  return (o.nccOnDevice ?? !!gpu) && tf.getBackend() === 'webgpu';
}

async function stagesWith(
  ncc: NccMatcher | null,
  tailThreads: CascadeTailThreads | null,
  inputs: StageInputs,
): Promise<RegisterResult> {
  const { fixed, moving, o, stages, gpu, images, matchThreads } = inputs;
  const times: Record<string, number> = {};
  const tick = (name: string, t0: number) => (times[name] = (performance.now() - t0) / 1000);
  const matcher = o.matcher ?? 'sam';
  let t0 = performance.now();
  let embeddings = null;
  const netUsed = !!o.deformNet && stages.includes('deform');
  // with the masks made on this thread during the GPU embedding, the two share one wall-clock time
  const masksMeanwhile = inputs.madeMasks && !(inputs.madeMasks instanceof Promise);
  if (gpu) times[masksMeanwhile ? 'embedding (GPU) + masks' : 'embedding (GPU)'] = gpu.seconds;
  else if ((matcher === 'sam' || netUsed) && o.engine) {
    o.onProgress?.('embed fixed', 0, 2);
    const f = await embedVolume(fixed, o.engine, { signal: o.signal });
    o.onProgress?.('embed moving', 1, 2);
    const m = await embedVolume(moving, o.engine, { signal: o.signal });
    embeddings = { fixed: f, moving: m };
    tick('embedding', t0);
  }
  const gpuMatch: SamMatchFn | undefined = gpu
    ? (pts, mo) => matchPointsOnDevice(gpu.fixed, gpu.moving, pts, mo)
    : undefined;
  if (o.signal?.aborted) throw new CancelledError('registration');
  let masks: BodyMasks;
  if (inputs.madeMasks instanceof Promise) {
    // made on threads during the embedding: the time waited for them after it
    t0 = performance.now();
    masks = await inputs.madeMasks;
    tick('masks (threads, waited for)', t0);
  } else if (inputs.madeMasks) masks = inputs.madeMasks;
  else {
    masks = bodyMasks(fixed, moving);
    times.masks = masks.seconds;
  }
  const { fixed: fixedMask, moving: movingMask } = masks;
  t0 = performance.now();
  // NCC searches near its start point: start from a rough translation (initial-shift.ts)
  const shift = matcher === 'ncc' ? initialShift(fixed, moving, fixedMask) : ([0, 0, 0] as Vec3);
  // SAM's matches refined by NCC (ncc-refine.ts) in the affine stage (the coarse stage: coarseMatcherOf)
  const refineWithNcc = refinesWithNcc(o);
  // the grid and its matching, the same for the fit to the moving scan mirrored (below)
  const affineGrid = {
    matchThreads,
    gridMm: o.gridMm,
    fixedMask,
    // NCC searches +-48 mm exhaustively per point: a few hundred points are plenty for 12 parameters
    // (SAM refined by NCC: the same, the refinement's two NCC searches a point dominate its time)
    maxPoints: matcher === 'ncc' ? 300 : refineWithNcc ? 400 : undefined,
    signal: o.signal,
  };
  const affine = await samAffine(fixed, moving, matcher === 'sam' ? embeddings : null, {
    ...affineGrid,
    samMatch: matcher === 'sam' ? gpuMatch : undefined,
    movingMask,
    // NCC matches synchronously: chunks of 25 points (about 0.3 s) between which cancel is seen; the
    // GPU matcher takes every point at once (tens of ms: each call's read-backs wait for the device)
    chunk: matcher === 'ncc' ? 25 * (ncc?.size ?? 1) : gpuMatch ? 4096 : undefined,
    onProgress: (p) => o.onProgress?.(`affine: ${p.stage}`, p.done, p.total),
    refine: refineWithNcc
      ? async (points, found, signal) => {
          const r = await nccRefineMatches(fixed, moving, points, found, { threads: ncc, signal });
          // NCC's location where it is confident, else SAM's (and the pair is not kept)
          return found.map((m, n) => {
            const at = refinedLocation(m.location, r[n]);
            return {
              location: at.location,
              score: m.score,
              accepted: m.accepted && at.refined,
              cycleErrorMm: Number.isFinite(r[n].score) ? r[n].cycleErrorMm : m.cycleErrorMm,
            };
          });
        }
      : undefined,
    match:
      matcher === 'ncc'
        ? async (points) => {
            const options = { coarseSpacingMm: 6, fineSpacingMm: 2, initial: points.map((p) => add(p, shift)) };
            const found = await nccMatchOn(ncc, fixed, moving, points, options, o.signal);
            return found.map((m) => ({
              location: m.location,
              score: m.score,
              accepted: true,
            }));
          }
        : undefined,
  });
  // a scan stored mirrored left to right can fit a proper rotation, badly: then the affine is fitted to
  // it mirrored too, and a far better fit refuses it (mirror-check.ts; the SAM matcher, host or GPU)
  let mirrorCheck: Awaited<ReturnType<typeof checkNotMirrored>> | undefined;
  const hostSam = embeddings && o.engine ? { embeddings, engine: o.engine } : null;
  const deviceSam = gpu && o.deviceModel ? { gpu, model: o.deviceModel } : null;
  if (matcher === 'sam' && (hostSam || deviceSam)) {
    mirrorCheck = await checkNotMirrored(
      affine.stats,
      async () => {
        o.onProgress?.('affine: the moving image mirrored (a high residual)', 0, 1);
        const mirrored = mirroredLeftRight(moving);
        // embedded and matched where the direct fit's were: on the GPU, or on the host
        let onDevice: DeviceEmbedded | undefined;
        try {
          let host: { fixed: EmbeddedVolume; moving: EmbeddedVolume } | null = null;
          let samMatch: SamMatchFn | undefined;
          if (deviceSam) {
            const dev = await embedVolumeOnDevice(mirrored, deviceSam.model, { signal: o.signal });
            onDevice = dev;
            samMatch = (pts, mo) => matchPointsOnDevice(deviceSam.gpu.fixed, dev, pts, mo);
          } else if (hostSam)
            host = {
              fixed: hostSam.embeddings.fixed,
              moving: await embedVolume(mirrored, hostSam.engine, { signal: o.signal }),
            };
          const r = await samAffine(fixed, mirrored, host, {
            ...affineGrid,
            samMatch,
            movingMask: mirroredLeftRight(movingMask),
            chunk: samMatch ? 4096 : undefined,
          });
          return r.stats;
        } catch (e) {
          if (e instanceof InputError) return null; // nothing plausible fits it mirrored either
          throw e;
        } finally {
          onDevice?.dispose();
        }
      },
      'moving image',
    );
  }
  tick('affine', t0);
  // without a coarse stage the NCC threads' work is done
  if (!stages.includes('coarse')) ncc?.dispose();
  const corrections: Field[] = [];
  // the checks that a stage's correction improves on the earlier map (map-ncc.ts), on the GPU with the
  // deform stage (the smoothed images made once, on first use)
  const checks = new StageChecks(
    fixed,
    moving,
    fixedMask,
    affine.affine,
    (o.deform?.onDevice ?? onHardwareGpu()) && tf.getBackend() === 'webgpu' ? { images } : null,
  );
  let coarse: SamCoarseResult | undefined;
  if (stages.includes('coarse')) {
    t0 = performance.now();
    // SAM refined by NCC: NCC around the SAM affine's prediction (sam-coarse.ts); SAM alone: the
    // moving image is embedded again after the affine (SAME++), rotation and scale undone
    const coarseMatcher = coarseMatcherOf(o);
    const aligned =
      coarseMatcher === 'sam' && (o.coarse?.matchAfterAffine ?? true)
        ? await alignedSamMatcher(fixed, moving, affine.affine, gpu, embeddings, images, o)
        : undefined;
    try {
      coarse = await samCoarse(
        fixed,
        moving,
        affine.affine,
        aligned?.matcher ??
          (coarseMatcher === 'sam' && gpuMatch
            ? { kind: 'sam', match: gpuMatch }
            : coarseMatcher === 'sam' && embeddings
              ? { kind: 'sam', embeddings }
              : { kind: 'ncc' }),
        fixedMask,
        {
          ...o.coarse,
          // (the GPU's SAM matcher takes every point at once; NCC in its own chunks, see sam-coarse.ts)
          chunk: o.coarse?.chunk ?? (gpu && coarseMatcher === 'sam' ? 4096 : undefined),
          nccThreads: ncc,
          // NCC on the GPU: the aligned image made there too (no host warp, no upload)
          alignedImage:
            ncc instanceof NccOnDevice && images
              ? () => alignedOnDevice(fixed, moving, affine.affine, images)
              : undefined,
          matchThreads,
          signal: o.signal,
          onProgress: o.onProgress,
        },
      );
    } finally {
      aligned?.dispose();
      // the NCC threads' work is done
      ncc?.dispose();
    }
    // kept only when it makes the images agree better than the affine alone: on a scan registered to
    // itself (or a rigid pair) the matches' half-millimetre noise would otherwise become a field
    const [nccAffine, nccCoarse] = await checks.ncc([[], [coarse.grid]]);
    coarse.stats.nccAffine = nccAffine;
    coarse.stats.nccCoarse = nccCoarse;
    coarse.stats.used = !(nccCoarse <= nccAffine);
    if (coarse.stats.used) corrections.push(coarse.grid);
    tick('coarse', t0);
  }
  let deform: SamDeformResult | undefined;
  let deformNet: DeformNetStageResult | undefined;
  if (stages.includes('deform')) {
    t0 = performance.now();
    const k = o.deformNet?.config.featureChannels;
    const featureWeight = matcher === 'sam' ? (o.featureWeight ?? DEFAULT_FEATURE_WEIGHT) : 0;
    // the reduced local embeddings, made only when the network or the feature term reads them
    const wanted = !!o.deformNet || featureWeight > 0;
    const reduced = !wanted
      ? undefined
      : gpu
        ? await embeddingFeaturesOnDevice(gpu, k)
        : embeddings
          ? embeddingFeatures(embeddings, k)
          : undefined;
    if (reduced) {
      tick(gpu ? 'features (GPU)' : 'features', t0);
      t0 = performance.now();
    }
    if (o.deformNet && reduced) {
      const prior = [...corrections];
      deformNet = await deformNetStage(
        fixed,
        moving,
        (g) => stageField(g, affine.affine, prior),
        fixedMask,
        reduced,
        o.deformNet,
        { signal: o.signal, onProgress: o.onProgress },
      );
      corrections.push(deformNet.field);
      tick('deformNet', t0);
      t0 = performance.now();
    }
    const before = [...corrections];
    // with the SAM matcher, the local embeddings' similarity joins the intensity term (embedding-features.ts)
    const features = reduced && featureWeight > 0 ? { ...reduced, weight: featureWeight } : undefined;
    // instance optimisation on the GPU when the tfjs backend is one (register/device/); the earlier
    // stages' map on its grid is made there too
    const onDevice = o.deform?.onDevice ?? onHardwareGpu();
    const u0 = async (g: Geometry) =>
      (onDevice && tf.getBackend() === 'webgpu' ? await stageFieldOnDevice(g, affine.affine, before) : null) ??
      stageField(g, affine.affine, before);
    deform = await samDeform(fixed, moving, u0, fixedMask, {
      features,
      threads: o.threads,
      ...o.deform,
      onDevice,
      deviceImages: images,
      signal: o.signal,
      onProgress: o.onProgress,
    });
    if (deform.stats.kept) {
      const [nccBefore, nccAfter] = await checks.lncc([before, [...before, deform.field]]);
      deform.stats.nccBefore = nccBefore;
      deform.stats.nccAfter = nccAfter;
      deform.stats.used = !(nccAfter <= nccBefore);
    } else deform.stats.used = false;
    if (deform.stats.used) corrections.push(deform.field);
    tick('deform', t0);
  }
  if (o.signal?.aborted) throw new CancelledError('registration');
  t0 = performance.now();
  o.onProgress?.('warp, Jacobian, QA', 0, 1);
  // with the deform stage on the GPU, the whole field and the warp are made there too (when they fit)
  const onGpu = corrections.length && deform?.stats.optimisedOn === 'tfjs-webgpu';
  // (with the QA's NCC before and after from the same dispatch: the unwarped image is not read back)
  const dense = onGpu
    ? await cascadeWarpOnDevice(fixed, moving, affine.affine, corrections, -1024, {
        images,
        ncc: { fixed, mask: fixedMask, overlap: true },
        jacobian: { mask: fixedMask },
      })
    : null;
  // on the CPU's threads: the field, the warp, the QA's unwarped image and the Jacobian slab by slab
  const onThreads =
    !dense && corrections.length && tailThreads
      ? await tailThreads.tail(fixed, moving, affine.affine, corrections, {
          fill: -1024,
          unwarped: true,
          jacobian: { mask: fixedMask },
        })
      : null;
  const field =
    dense?.field ??
    onThreads?.field ??
    (corrections.length ? stageField(fixed, affine.affine, corrections) : fieldFromAffine(fixed, affine.affine));
  const warped =
    dense?.warped ??
    onThreads?.warped ??
    (corrections.length
      ? warpVolume(moving, field, { fill: -1024 })
      : warpWithAffine(moving, fixed, affine.affine, { fill: -1024 }));
  tick(dense ? 'warp (GPU)' : onThreads ? 'warp + Jacobian (threads)' : 'warp', t0);
  if (o.signal?.aborted) throw new CancelledError('registration');
  let jacobian;
  if (corrections.length) {
    t0 = performance.now();
    // on the GPU with the warp (from its field on the device: only statistics come back)
    const j = onGpu
      ? (dense?.jacobian ?? (await jacobianSummaryOnDevice(field, { mask: fixedMask })))
      : (onThreads?.jacobian ?? jacobianDeterminant(field, { mask: fixedMask }));
    jacobian = { min: j.min, max: j.max, mean: j.mean, std: j.std, foldedPercent: j.foldedPercent, voxels: j.voxels };
    if (!onThreads) tick(onGpu ? 'jacobian (GPU)' : 'jacobian', t0);
  } else {
    // The Jacobian determinant of an affine is det(A) everywhere: a fold only if det(A) <= 0.
    const det = affineDeterminant(affine.affine);
    jacobian = { min: det, max: det, mean: det, std: 0, foldedPercent: det > 0 ? 0 : 100 };
  }
  t0 = performance.now();
  const mask = fixedMask.data;
  const nccInFixedBody = dense?.ncc ?? {
    // (the moving image on the fixed grid, sampled as the warp samples: field/warp.ts)
    before: maskedNcc(
      fixed.data,
      (onThreads?.unwarped ?? warpWithAffine(moving, fixed, AFFINE_IDENTITY, { fill: -1024 })).data,
      mask,
    ),
    after: maskedNcc(fixed.data, warped.data, mask),
  };
  // (the same where the moving image has data: nccInFixedBody counts the body's uncovered voxels too)
  const nccWhereMovingHasData = dense?.overlap ?? overlapNcc(fixed, moving, field, warped, mask);
  tick('qa numbers', t0);
  const qa: RegisterQa = {
    stages,
    matcher,
    ...(matcher === 'sam' ? { refine: o.refine ?? DEFAULT_REFINE } : {}),
    ...(stages.includes('coarse') ? { coarseMatcher: coarseMatcherOf(o) } : {}),
    // where the NCC searches ran (the NCC matcher, or SAM refined by NCC)
    ...(matcher === 'ncc' || refinesWithNcc(o) ? { nccOn: ncc instanceof NccOnDevice ? 'gpu' : 'cpu' } : {}),
    engine: o.engine?.name,
    secondsPerStage: times,
    // made while the images were embedded: on this thread during the GPU's embedding (inside
    // 'embedding (GPU) + masks'), or on worker threads (masksOnThreads)
    ...(masksMeanwhile || masks.onThreads ? { masksSecondsDuringEmbedding: masks.seconds } : {}),
    ...(masks.onThreads ? { masksOnThreads: true } : {}),
    secondsTotal: Object.values(times).reduce((a, b) => a + b, 0),
    affine: { matrix: affine.affine, decomposition: affineDecompose(affine.affine), method: affine.method },
    initialShiftMm: shift,
    pairs: affine.stats,
    ...(mirrorCheck?.checked
      ? { mirrorCheck: { rmsMm: affine.stats.rmsMm, mirroredRmsMm: mirrorCheck.mirrored?.rmsMm ?? null } }
      : {}),
    // (with refitShiftMm: what the affine stage left linear, sam-coarse.ts refitAffine)
    coarse: coarse?.stats,
    deform: deform?.stats,
    deformNet: deformNet?.stats,
    jacobian,
    nccInFixedBody,
    nccWhereMovingHasData,
  };
  o.onProgress?.('warp, Jacobian, QA', 1, 1);
  return { affine, coarse, deform, deformNet, field, warped, qa };
}
