/**
 * The cascade's dense tail on the CPU's cores: the whole field (stageField), the warped image
 * (warpVolume), the moving image unwarped on the fixed grid (the QA's "before") and the Jacobian
 * determinants with their fold counts (jacobianDeterminant), slab by slab of fixed slices on worker
 * threads, each slab computed by the same slice functions as the single-threaded path
 * (stageFieldSlices, warpSlices, warpWithAffineSlices, jacobianSlices), so every voxel and every count
 * is the same on any number of threads. The host twin of device/warp-on-device.ts's cascadeWarpOnDevice.
 *
 * Two rounds: every slab's field, then every slab's warp and Jacobian (whose differences read the
 * neighbouring slabs' slices). The threads write in place into outputs on SharedArrayBuffers, which
 * the returned volumes keep: a caller that sends them to another process copies them first
 * (compute/shared-memory.ts inOwnMemory; the registration worker does). The moving image, the
 * corrections and the mask are shared with the threads once per call (SharedArrayBuffer copies).
 * When a thread fails (it cannot load, it dies) the slabs are computed on this thread into the same
 * outputs; an error a slab reports (the same on any thread) is the caller's.
 */
import { threadEntry } from '../compute/start-thread.ts';
import { JobThreads, type JobReply } from '../compute/job-threads.ts';
import { sharedVolume, sharedVoxels } from '../compute/shared-memory.ts';
import { makeVolume, voxelTypeOf, type Volume, type VoxelArray } from '../volume/volume.ts';
import type { Geometry } from '../volume/geometry.ts';
import type { Affine3x4 } from './affine-fit.ts';
import { gridCopy, type Field } from './field/field.ts';
import { warpResult, warpSlices, warpVolume, warpWithAffine, warpWithAffineSlices } from './field/warp.ts';
import {
  jacobianDeterminant,
  jacobianReport,
  jacobianSlices,
  JACOBIAN_VARIANTS,
  type JacobianReport,
  type JacobianSlab,
} from './field/jacobian.ts';
import { stageField, stageFieldSlices } from './stage-field.ts';
import { AFFINE_IDENTITY } from './affine3x4.ts';

/** What a slab's thread is sent: the geometry, the shared inputs and outputs, and its slices [k0, k1). */
export interface TailSlabJob {
  /** 'field': the field's slices; 'warp': the images and the Jacobian (after every slab's field). */
  kind: 'field' | 'warp';
  grid: Geometry;
  affine: Affine3x4;
  /** Corrections with their data on shared memory. */
  corrections: Field[];
  /** The moving image (geometry, components, data on shared memory). */
  moving: Volume;
  /** The fixed grid's mask (data on shared memory), for the Jacobian's counts. */
  mask?: Volume;
  fill: number;
  k0: number;
  k1: number;
  /** The whole grid's outputs on shared memory: each thread writes its slices. */
  out: TailOutputs;
}

export interface TailOutputs {
  field: Float32Array;
  warped: VoxelArray;
  unwarped?: VoxelArray;
  /** With the Jacobian: its determinants and fold flags. */
  det?: Float32Array;
  foldedData?: Uint8Array;
}

/** A slab's Jacobian counts. */
type SlabCounts = Pick<JacobianSlab, 'voxels' | 'folded' | 'nonPositive'>;

/** A slab's answer: its Jacobian counts (its voxels are in the shared outputs). */
export interface TailSlabReply extends JobReply {
  counts?: SlabCounts;
}

/** One slab's work, into the shared outputs (a thread's, or this thread's after a failure). */
export function tailSlab(m: TailSlabJob): SlabCounts | undefined {
  const { grid, out, k0, k1 } = m;
  const plane = grid.size[0] * grid.size[1];
  const slices = <T extends { subarray(a: number, b: number): T }>(a: T, nc = 1) =>
    a.subarray(nc * plane * k0, nc * plane * k1);
  if (m.kind === 'field') {
    stageFieldSlices(grid, m.affine, m.corrections, k0, k1, slices(out.field, 3));
    return undefined;
  }
  warpSlices(m.moving, grid, slices(out.field, 3), k0, k1, { fill: m.fill, into: slices(out.warped) });
  if (out.unwarped)
    warpWithAffineSlices(m.moving, grid, AFFINE_IDENTITY, k0, k1, { fill: m.fill, into: slices(out.unwarped) });
  if (!out.det || !out.foldedData) return undefined;
  // the Jacobian reads the field from the slice before k0 (the whole field is made by now)
  const kBase = Math.max(0, k0 - 1);
  const j = jacobianSlices(grid, out.field.subarray(3 * plane * kBase), kBase, k0, k1, m.mask, {
    det: slices(out.det),
    foldedData: slices(out.foldedData),
  });
  return { voxels: j.voxels, folded: j.folded, nonPositive: j.nonPositive };
}

export interface CascadeTail {
  field: Field;
  warped: Volume;
  /** With `unwarped`: warpWithAffine(moving, grid, identity, { fill }). */
  unwarped?: Volume;
  /** With `jacobian`: jacobianDeterminant(field, { mask }). */
  jacobian?: JacobianReport;
}

export interface CascadeTailOptions {
  fill: number;
  unwarped?: boolean;
  /** The Jacobian, counted inside `mask` (everywhere when it is undefined). */
  jacobian?: { mask?: Volume };
}

/** The tail on this thread: the functions the threads' slabs reproduce. */
export function cascadeTail(
  grid: Geometry,
  moving: Volume,
  affine: Affine3x4,
  corrections: Field[],
  o: CascadeTailOptions,
): CascadeTail {
  const field = stageField(grid, affine, corrections);
  return {
    field,
    warped: warpVolume(moving, field, { fill: o.fill }),
    unwarped: o.unwarped ? warpWithAffine(moving, grid, AFFINE_IDENTITY, { fill: o.fill }) : undefined,
    jacobian: o.jacobian ? jacobianDeterminant(field, { mask: o.jacobian.mask }) : undefined,
  };
}

export class CascadeTailThreads extends JobThreads<TailSlabReply> {
  /**
   * `count` threads (default 8; at most one per core); null when fewer than 2 or they cannot start.
   * Start them early: a thread loads its modules while the cascade's other stages run.
   */
  static start(count = 8, entry?: string): CascadeTailThreads | null {
    const threads = JobThreads.startThreads(
      count,
      entry ?? threadEntry(new URL('./cascade-tail-worker.ts', import.meta.url)),
    );
    return threads && new CascadeTailThreads(threads);
  }

  /** cascadeTail's answers, the slabs on the threads (on this thread when they have failed). */
  async tail(
    grid: Geometry,
    moving: Volume,
    affine: Affine3x4,
    corrections: Field[],
    o: CascadeTailOptions,
  ): Promise<CascadeTail> {
    if (this.stopped) throw this.stopped;
    // (CT images have one component; the shared outputs are sized for one)
    if (this.broken || moving.components !== 1) return cascadeTail(grid, moving, affine, corrections, o);
    const [ni, nj, nk] = grid.size;
    const n = ni * nj * nk;
    const type = voxelTypeOf(moving.data);
    const out: TailOutputs = {
      field: sharedVoxels('float32', 3 * n) as Float32Array,
      warped: sharedVoxels(type, n),
      unwarped: o.unwarped ? sharedVoxels(type, n) : undefined,
      det: o.jacobian ? (sharedVoxels('float32', n) as Float32Array) : undefined,
      foldedData: o.jacobian ? (sharedVoxels('uint8', n) as Uint8Array) : undefined,
    };
    const zero = (): SlabCounts => ({
      voxels: 0,
      folded: 0,
      nonPositive: Object.fromEntries(JACOBIAN_VARIANTS.map((v) => [v, 0])) as SlabCounts['nonPositive'],
    });
    let counts = zero();
    const add = (c: SlabCounts | undefined) => {
      if (!c) return;
      counts.voxels += c.voxels;
      counts.folded += c.folded;
      for (const v of JACOBIAN_VARIANTS) counts.nonPositive[v] += c.nonPositive[v];
    };
    const mask = o.jacobian?.mask;
    const inputs = {
      grid: gridCopy(grid),
      affine,
      corrections: corrections.map((c) => sharedVolume(c) as Field),
      moving: sharedVolume(moving),
      mask: mask && sharedVolume(mask),
      fill: o.fill,
      out,
    };
    // about four slabs per thread (their times differ: air is cheaper than the body), at least 2 slices
    const slabs = Math.max(1, Math.min(4 * this.size, Math.floor(nk / 2)));
    const jobs = (kind: TailSlabJob['kind']): TailSlabJob[] =>
      Array.from({ length: slabs }, (_, s) => ({
        kind,
        ...inputs,
        k0: Math.floor((s * nk) / slabs),
        k1: Math.floor(((s + 1) * nk) / slabs),
      }));
    // the field first: a slab's Jacobian reads its neighbours' slices
    const rounds: TailSlabJob['kind'][] = ['field', 'warp'];
    try {
      for (const kind of rounds)
        await Promise.all(jobs(kind).map(async (job, s) => add((await this.post(s % this.size, { ...job })).counts)));
    } catch (e) {
      if (!this.broken) throw e;
      // a thread failed: every slab here, into the same outputs, once no thread writes into them
      await this.whenTerminated();
      counts = zero();
      out.foldedData?.fill(0);
      for (const kind of rounds) for (const job of jobs(kind)) add(tailSlab(job));
    }
    const field = makeVolume({
      ...gridCopy(grid),
      components: 3,
      data: out.field,
      meta: { description: 'displacement field (cascade)' },
    }) as Field;
    return {
      field,
      warped: warpResult(moving, grid, out.warped, 'displacement field, linear'),
      unwarped: out.unwarped && warpResult(moving, grid, out.unwarped, 'affine, linear'),
      jacobian: o.jacobian ? jacobianReport(field, out.det!, out.foldedData!, counts, mask) : undefined,
    };
  }

  dispose(): void {
    this.stop(new Error('the cascade threads were stopped'));
  }

  protected released(): void {}
}
