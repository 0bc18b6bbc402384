/**
 * The cascade's dense tail on the CPU's cores: the whole field (stageField), the warped image
 * (warpVolume), the moving image unwarped on the fixed grid (the QA's "before") and the Jacobian
 * determinants with their fold counts (jacobianDeterminant), slab by slab of fixed slices on worker
 * threads, each slab computed by the same slice functions as the single-threaded path
 * (stageFieldSlices, warpSlices, warpWithAffineSlices, jacobianSlices), so every voxel and every count
 * is the same on any number of threads. The host twin of device/warp-on-device.ts's cascadeWarpOnDevice.
 *
 * A slab's thread makes the field on one more slice either side (the Jacobian's differences reach
 * them) and sends its slices back (transferred, not copied); the caller copies them into ordinary
 * arrays (the result goes to other processes, which cannot take shared memory). The moving image, the
 * corrections and the mask are shared with the threads once per call (SharedArrayBuffer copies).
 */
import { threadEntry } from '../compute/start-thread.ts';
import { JobThreads, type JobReply } from '../compute/job-threads.ts';
import { sharedCopy, sharedVoxels } from '../compute/shared-memory.ts';
import { makeVolume, voxelTypeOf, type Volume, type VoxelArray } from '../volume/volume.ts';
import type { Geometry } from '../volume/geometry.ts';
import { availableParallelism } from 'node:os';
import type { Affine3x4 } from './affine-fit.ts';
import { gridCopy, type Field } from './field/field.ts';
import { warpResult, warpVolume, warpWithAffine } from './field/warp.ts';
import {
  jacobianDeterminant,
  jacobianReport,
  JACOBIAN_VARIANTS,
  type JacobianReport,
  type JacobianSlab,
} from './field/jacobian.ts';
import { stageField } from './stage-field.ts';
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

/** A slab's answer: its Jacobian counts (its voxels are in the shared outputs). */
export interface TailSlabReply extends JobReply {
  counts?: Pick<JacobianSlab, 'voxels' | 'folded' | 'nonPositive'>;
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
   * `count` threads (default: one per core, at most 8); null when fewer than 2 or they cannot start.
   * Start them early: a thread loads its modules while the cascade's other stages run.
   */
  static start(count = Math.min(8, availableParallelism()), entry?: string): CascadeTailThreads | null {
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
    if (this.broken) return cascadeTail(grid, moving, affine, corrections, o);
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
    const counts = { voxels: 0, folded: 0, nonPositive: Object.fromEntries(JACOBIAN_VARIANTS.map((v) => [v, 0])) };
    const mask = o.jacobian?.mask;
    const inputs = {
      grid: { size: grid.size, spacing: grid.spacing, origin: grid.origin, direction: grid.direction },
      affine,
      corrections: corrections.map((c) => ({ ...c, data: sharedCopy(c.data as Float32Array) })),
      moving: { ...moving, meta: { warnings: [] }, data: sharedCopy(moving.data) },
      mask: mask && { ...mask, meta: { warnings: [] }, data: sharedCopy(mask.data) },
      fill: o.fill,
      out,
    };
    // about four slabs per thread (their times differ: air is cheaper than the body), at least 2 slices
    const slabs = Math.max(1, Math.min(4 * this.size, Math.floor(nk / 2)));
    const round = (kind: TailSlabJob['kind']) =>
      Promise.all(
        Array.from({ length: slabs }, async (_, s) => {
          const k0 = Math.floor((s * nk) / slabs);
          const k1 = Math.floor(((s + 1) * nk) / slabs);
          const job: TailSlabJob = { kind, ...inputs, k0, k1 };
          const r = await this.post(s % this.size, { ...job });
          if (!r.counts) return;
          counts.voxels += r.counts.voxels;
          counts.folded += r.counts.folded;
          for (const v of JACOBIAN_VARIANTS) counts.nonPositive[v] += r.counts.nonPositive[v];
        }),
      );
    try {
      // the field first: a slab's Jacobian reads its neighbours' slices
      await round('field');
      await round('warp');
    } catch (e) {
      if (!this.broken) throw e;
      // a thread failed: all of it here (once the others have stopped writing into the outputs)
      await this.whenTerminated();
      return cascadeTail(grid, moving, affine, corrections, o);
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
      jacobian: o.jacobian
        ? jacobianReport(field, out.det!, out.foldedData!, counts as Parameters<typeof jacobianReport>[3], mask)
        : undefined,
    };
  }

  dispose(): void {
    this.stop(new Error('the cascade threads were stopped'));
  }

  protected released(): void {}
}
