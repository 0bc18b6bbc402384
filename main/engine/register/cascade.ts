/**
 * The registration cascade: fixed and moving CT in, transform and warped moving image out.
 * Implemented so far: the affine stage (SAM-affine: grid points in the fixed body, matched into
 * the moving image, confident pairs, robust fit). SAM-coarse and SAM-deform are not built yet and
 * are refused clearly. The matcher is SAM (embeddings from the given engine) or, as a classical
 * fallback and baseline, NCC template matching.
 * Conventions: the affine maps fixed to moving points (LPS mm); the warped image is the moving image
 * resampled on the fixed grid (see register-output.ts for the exported field).
 */
import { resample } from '../volume/resample.ts';
import { CancelledError, InputError } from '../errors.ts';
import type { EmbeddingEngine } from '../compute/embedding-engine.ts';
import { embedVolume } from '../sam/embed-volume.ts';
import { nccMatch } from '../bench/ncc-match.ts';
import { requireCt } from '../volume/intensity.ts';
import { bodyMask } from '../volume/mask.ts';
import type { Volume } from '../volume/volume.ts';
import { affineDecompose, affineDeterminant } from './affine-fit.ts';
import { warpWithAffine } from './field/warp.ts';
import { samAffine, type SamAffineResult } from './sam-affine.ts';

export const STAGES = ['affine', 'coarse', 'deform'] as const;
export type Stage = (typeof STAGES)[number];

export interface RegisterOptions {
  stages?: Stage[];
  matcher?: 'sam' | 'ncc';
  /** Required for the SAM matcher. */
  engine?: EmbeddingEngine;
  gridMm?: number;
  onProgress?: (stage: string, done: number, total: number) => void;
  signal?: AbortSignal;
}

export interface RegisterResult {
  affine: SamAffineResult;
  /** The moving image resampled on the fixed grid. */
  warped: Volume;
  qa: Record<string, unknown>;
}

/** Normalised cross-correlation of two images on the same grid inside a mask. */
function maskedNcc(a: ArrayLike<number>, b: ArrayLike<number>, mask: Uint8Array): number {
  let n = 0;
  let sa = 0;
  let sb = 0;
  for (let i = 0; i < mask.length; i++)
    if (mask[i]) {
      n++;
      sa += a[i];
      sb += b[i];
    }
  const ma = sa / n;
  const mb = sb / n;
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < mask.length; i++)
    if (mask[i]) {
      const x = a[i] - ma;
      const y = b[i] - mb;
      ab += x * y;
      aa += x * x;
      bb += y * y;
    }
  return ab / Math.sqrt(aa * bb || 1);
}

export async function registerVolumes(fixed: Volume, moving: Volume, o: RegisterOptions = {}): Promise<RegisterResult> {
  const stages = o.stages ?? ['affine'];
  const missing = stages.filter((s) => s !== 'affine');
  if (missing.length)
    throw new InputError('--stages', `${missing.join(', ')} not implemented yet; only 'affine' is available`);
  requireCt(fixed, fixed.meta.source ?? 'fixed image');
  requireCt(moving, moving.meta.source ?? 'moving image');
  const times: Record<string, number> = {};
  const tick = (name: string, t0: number) => (times[name] = (performance.now() - t0) / 1000);
  const matcher = o.matcher ?? 'sam';
  let t0 = performance.now();
  let embeddings = null;
  if (matcher === 'sam') {
    if (!o.engine) throw new InputError('SAM matcher', 'no embedding engine given');
    o.onProgress?.('embed fixed', 0, 2);
    const f = await embedVolume(fixed, o.engine, { signal: o.signal });
    o.onProgress?.('embed moving', 1, 2);
    const m = await embedVolume(moving, o.engine, { signal: o.signal });
    embeddings = { fixed: f, moving: m };
    tick('embedding', t0);
  }
  if (o.signal?.aborted) throw new CancelledError('registration');
  t0 = performance.now();
  const fixedMask = bodyMask(fixed);
  const affine = await samAffine(fixed, moving, embeddings, {
    gridMm: o.gridMm,
    fixedMask,
    signal: o.signal,
    onProgress: (p) => o.onProgress?.(`affine: ${p.stage}`, p.done, p.total),
    match:
      matcher === 'ncc'
        ? async (points) =>
            nccMatch(fixed, moving, points).map((m) => ({ location: m.location, score: m.score, accepted: true }))
        : undefined,
  });
  tick('affine', t0);
  t0 = performance.now();
  const warped = warpWithAffine(moving, fixed, affine.affine, { fill: -1024 });
  tick('warp', t0);
  const mask = fixedMask.data;
  const before = resample(moving, fixed, { fill: -1024 });
  // The Jacobian determinant of an affine is det(A) everywhere: a fold only if det(A) <= 0.
  const det = affineDeterminant(affine.affine);
  const qa = {
    stages,
    matcher,
    engine: o.engine?.name,
    secondsPerStage: times,
    affine: { matrix: affine.affine, decomposition: affineDecompose(affine.affine), method: affine.method },
    pairs: affine.stats,
    jacobian: { min: det, max: det, mean: det, foldedPercent: det > 0 ? 0 : 100 },
    nccInFixedBody: {
      before: maskedNcc(fixed.data, before.data, mask),
      after: maskedNcc(fixed.data, warped.data, mask),
    },
  };
  return { affine, warped, qa };
}
