/**
 * A moving scan stored mirrored left to right (a wrong header or a flipped export) is refused, not
 * registered. An affine cannot undo a mirror (the affine stage refuses a fit with det < 0), but a chest
 * or an abdomen is nearly symmetric left to right: SAM's matches of a mirrored scan can fit a proper
 * rotation with a residual of about 10 mm, under the affine stage's 25 mm limit, and the later stages
 * then warp the left lung onto the right one (a walkthrough in session 20: 179 mm mean error, exit 0).
 *
 * So when the affine's residual is high (above MIRROR_CHECK_RMS_MM; a correct fit is about 1 mm, a
 * large rotation up to 13), the affine is fitted again to the moving scan mirrored about its centre
 * along the patient's left-right axis; when that fit is far better, the scan is refused with the
 * numbers. The mirrored copy is the same voxels with a reflected geometry (no resampling).
 */
import { InputError } from '../errors.ts';
import { indexToWorld } from '../volume/geometry.ts';
import type { Mat3, Vec3, Volume } from '../volume/volume.ts';

/** The affine residual (inlier RMS, mm) above which the mirror hypothesis is tried. */
export const MIRROR_CHECK_RMS_MM = 3;
/** The mirrored fit must have at most this share of the residual, and at least as many inliers. */
export const MIRROR_BETTER_RATIO = 0.5;

/** `v` mirrored about its centre along world x (the patient's left-right axis in LPS): same voxels. */
export function mirroredLeftRight<T extends Volume>(v: T): T {
  const c = indexToWorld(v, v.size.map((n) => (n - 1) / 2) as Vec3);
  const d = v.direction;
  const direction = [-d[0], -d[1], -d[2], d[3], d[4], d[5], d[6], d[7], d[8]] as Mat3;
  const origin: Vec3 = [2 * c[0] - v.origin[0], v.origin[1], v.origin[2]];
  return { ...v, direction, origin };
}

export interface AffineFitSummary {
  rmsMm: number;
  inliers: number;
}

/**
 * Throws when the mirrored fit is far better than the direct one. `fitMirrored` fits the affine to the
 * mirrored moving scan (null when no plausible affine fits it).
 */
export async function checkNotMirrored(
  direct: AffineFitSummary,
  fitMirrored: () => Promise<AffineFitSummary | null>,
  movingName: string,
): Promise<{ checked: boolean; mirrored?: AffineFitSummary }> {
  if (!(direct.rmsMm > MIRROR_CHECK_RMS_MM)) return { checked: false };
  const m = await fitMirrored();
  if (m && m.rmsMm <= MIRROR_BETTER_RATIO * direct.rmsMm && m.inliers >= direct.inliers)
    throw new InputError(
      movingName,
      `looks mirrored left to right: an affine fits the scan mirrored with residual RMS ${m.rmsMm.toFixed(1)} mm ` +
        `(${m.inliers} inlier pairs) against ${direct.rmsMm.toFixed(1)} mm (${direct.inliers}) as stored; ` +
        'check its orientation (the header, or how it was exported) before registering it',
    );
  return { checked: true, ...(m ? { mirrored: m } : {}) };
}
