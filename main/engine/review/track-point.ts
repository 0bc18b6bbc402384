/**
 * Point tracking for the review: a point clicked on the fixed image -> its anatomical match on the
 * moving image, found with SAM embeddings (sam/match.ts matchPoints: global top-k candidates, local
 * search in their windows, sub-voxel refinement, forward-backward cycle check), and, when a
 * registration result exists, the point the transform maps it to (x + u(x) through the displacement
 * field, or A x through an affine) with the distance between the two: a large distance at a
 * confident match points at a registration error there.
 * Points are world LPS mm.
 */
import { InputError } from '../errors.ts';
import { affineApply, type Affine3x4 } from '../register/affine-fit.ts';
import { transformPoints } from '../register/field/field.ts';
import type { EmbeddedVolume } from '../sam/embed-volume.ts';
import { matchPoints, type MatchOptions } from '../sam/match.ts';
import type { Vec3, Volume } from '../volume/volume.ts';

export interface TrackedPoint {
  point: Vec3;
  /** SAM match on the moving image. */
  matched: Vec3;
  score: number;
  globalScore: number;
  localScore: number;
  /** Distance of the back-match from the point (cycle check), mm. */
  cycleErrorMm: number | null;
  /** The matcher's verdict (inside the fixed embedding, cycle check, minScore). */
  accepted: boolean;
  /** The point mapped by the registration (null without one). */
  mapped: Vec3 | null;
  /** |matched - mapped|, mm (null without a registration). */
  distanceMm: number | null;
}

export interface TrackOptions extends Pick<MatchOptions, 'topK' | 'cycleThresholdMm' | 'minScore' | 'signal'> {
  /** Displacement field on the fixed grid, or an affine (fixed -> moving). */
  field?: Volume;
  affine?: Affine3x4;
  /** Cycle check (default true). */
  cycleCheck?: boolean;
}

/** Track fixed points into the moving image (see the header). */
export async function trackPoints(
  embeddings: { fixed: EmbeddedVolume; moving: EmbeddedVolume },
  points: Vec3[],
  options: TrackOptions = {},
): Promise<TrackedPoint[]> {
  for (const p of points)
    if (p.length !== 3 || !p.every(Number.isFinite))
      throw new InputError('point', `not a finite 3-D point: ${p.join(', ')}`);
  const matches = await matchPoints(embeddings.fixed, embeddings.moving, points, {
    topK: options.topK,
    cycleCheck: options.cycleCheck ?? true,
    cycleThresholdMm: options.cycleThresholdMm,
    minScore: options.minScore,
    signal: options.signal,
  });
  const mapped: (Vec3 | null)[] = options.field
    ? transformPoints(options.field, points)
    : options.affine
      ? points.map((p) => affineApply(options.affine!, p))
      : points.map(() => null);
  return matches.map((m, n) => {
    const q = mapped[n];
    return {
      point: [...points[n]] as Vec3,
      matched: m.location,
      score: m.score,
      globalScore: m.globalScore,
      localScore: m.localScore,
      cycleErrorMm: m.cycleErrorMm ?? null,
      accepted: m.accepted,
      mapped: q,
      distanceMm: q ? Math.hypot(q[0] - m.location[0], q[1] - m.location[1], q[2] - m.location[2]) : null,
    };
  });
}

/** One point (the review's click). */
export async function trackPoint(
  embeddings: { fixed: EmbeddedVolume; moving: EmbeddedVolume },
  point: Vec3,
  options: TrackOptions = {},
): Promise<TrackedPoint> {
  return (await trackPoints(embeddings, [point], options))[0];
}
