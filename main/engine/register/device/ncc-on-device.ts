/**
 * NCC template matching (bench/ncc-match.ts) on tfjs' WebGPU backend, an NccMatcher like the worker
 * threads (bench/ncc-threads.ts): the GPU cascade's NCC refinement of SAM's matches (ncc-refine.ts)
 * and SAM-coarse's NCC matcher run beside the embeddings on the device instead of on the CPU.
 *
 * Each image's voxels go to the device once (compute/device-images.ts, the cascade's when given), its
 * search levels are made there (resampled, clipped; no box sums: the program sums each window itself)
 * and kept until dispose(); a call is one dispatch per 65,535 points (ncc-match-wgsl.ts) and one
 * read-back of [P, 4]. A template larger than the workgroup's memory allows (MAX_TEMPLATE_VOXELS:
 * the NCC matcher's 16 mm template at 2 mm), or an image or search level larger than one device
 * buffer, is matched on the host instead (hostCalls counts them; a volume that exists only on the
 * device then refuses with an error that names it).
 */
import * as tf from '@tensorflow/tfjs-core';
import { CancelledError } from '../../errors.ts';
import { DeviceImages } from '../../compute/device-images.ts';
import { maxTensorBytes } from '../../compute/tf-backend.ts';
import {
  nccLevelGrid,
  nccLevelKey,
  nccMatch,
  NCC_HI_HU,
  NCC_LO_HU,
  nccSpacings,
  type NccMatch,
  type NccMatcher,
  type NccOptions,
} from '../../bench/ncc-match.ts';
import type { Vec3, Volume } from '../../volume/volume.ts';
import type { Geometry } from '../../volume/geometry.ts';
import { resampleTensorOnDevice } from './resample-on-device.ts';
import { readAndDispose } from './flat-program.ts';
import {
  MAX_TEMPLATE_VOXELS,
  NO_CANDIDATE,
  nccMatchWgsl,
  templateVoxels,
  type NccLevelOnDevice,
} from './ncc-match-wgsl.ts';

/** Points per dispatch (WebGPU's workgroups per dimension). */
const MAX_POINTS = 65535;

export class NccOnDevice implements NccMatcher {
  /** Points matched side by side, for the callers' chunks (about all of a stage's points at once). */
  readonly size = 64;
  private readonly levels = new Map<Volume, Map<string, NccLevelOnDevice>>();
  private readonly images: DeviceImages;
  private readonly ownImages: boolean;
  /** Calls answered on the host (a template too large for the workgroup's memory; for tests). */
  hostCalls = 0;

  /** `images`: the caller's device copies of the volumes (kept; else made and disposed here). */
  constructor(images?: DeviceImages) {
    if (tf.getBackend() !== 'webgpu')
      throw new Error(`NccOnDevice needs the webgpu backend (active: ${tf.getBackend()})`);
    this.images = images ?? new DeviceImages();
    this.ownImages = !images;
  }

  async match(
    fixed: Volume,
    moving: Volume,
    points: Vec3[],
    options: NccOptions = {},
    signal?: AbortSignal,
  ): Promise<NccMatch[]> {
    if (signal?.aborted) throw new CancelledError('NCC matching');
    const s = nccSpacings(options);
    // a template larger than the workgroup's memory, or an image or level larger than one device
    // buffer (lavapipe: 128 MB; a 2 mm level of an oblique scan spans its LPS bounding box): the host
    const cap = maxTensorBytes() ?? 2 ** 31;
    const levels = [
      { spacing: s.cs, pad: s.rc },
      { spacing: s.fs, pad: s.rf },
    ].map((L) => ({ ...L, grid: nccLevelGrid(moving, L.spacing, L.pad) }));
    const tooLarge = [fixed, moving, ...levels.map((L) => L.grid)].some(
      (g) => g.size[0] * g.size[1] * g.size[2] * 4 > cap,
    );
    if (templateVoxels(s) > MAX_TEMPLATE_VOXELS || tooLarge) {
      this.hostCalls++;
      return nccMatch(fixed, moving, points, options);
    }
    const out: NccMatch[] = points.map(() => ({ location: [NaN, NaN, NaN] as Vec3, score: NaN }));
    // (a start that is not finite is not searched, as on the host)
    const idx = points.flatMap((_, n) => ((options.initial?.[n] ?? points[n]).every(Number.isFinite) ? [n] : []));
    if (!idx.length) return out;
    const [coarse, fine] = levels.map((L) => this.level(moving, L));
    const F = this.images.get(fixed);
    const M = this.images.get(moving);
    for (let b0 = 0; b0 < idx.length; b0 += MAX_POINTS) {
      const part = idx.slice(b0, b0 + MAX_POINTS);
      const flat = new Float32Array(part.length * 6);
      part.forEach((n, j) => {
        flat.set(points[n], 6 * j);
        flat.set(options.initial?.[n] ?? points[n], 6 * j + 3);
      });
      const pts = tf.tensor2d(flat, [part.length, 6]);
      let r: Float32Array;
      try {
        r = await readAndDispose(nccMatchWgsl(F, fixed, M, moving, coarse, fine, pts, s));
      } finally {
        pts.dispose();
      }
      part.forEach((n, j) => {
        const score = r[4 * j + 3];
        out[n] = {
          location: [r[4 * j], r[4 * j + 1], r[4 * j + 2]],
          score: score <= NO_CANDIDATE / 2 ? -Infinity : score,
        };
      });
      if (signal?.aborted) throw new CancelledError('NCC matching');
    }
    return out;
  }

  /** The image's search level for a spacing and template radius on its grid (nccLevelGrid), made once. */
  private level(v: Volume, level: { spacing: number; pad: number; grid: Geometry }): NccLevelOnDevice {
    let byKey = this.levels.get(v);
    if (!byKey) this.levels.set(v, (byKey = new Map()));
    const key = nccLevelKey(level);
    const grid = level.grid;
    let L = byKey.get(key);
    if (!L) {
      const X = this.images.get(v);
      const data = tf.tidy(() =>
        tf.reshape(tf.clipByValue(resampleTensorOnDevice(X, v, 1, grid, NCC_LO_HU), NCC_LO_HU, NCC_HI_HU), [-1]),
      );
      byKey.set(key, (L = { data: tf.keep(data), grid }));
    }
    return L;
  }

  /** Let go of the levels (and of the images' copies when they are this matcher's own). */
  dispose(): void {
    for (const byKey of this.levels.values()) for (const L of byKey.values()) L.data.dispose();
    this.levels.clear();
    if (this.ownImages) this.images.dispose();
  }
}
