/**
 * The review's verdict rules: flags raised by the confidence summary (review/confidence.ts) and the
 * Jacobian statistics (review/field-stats.ts) of one registration, each with the number that raised
 * it, so that a poor registration is pointed out before anyone reads a slice.
 *
 * Rules (thresholds in QA_LIMITS):
 *  - 'low-confidence': too much of the body, of an axial third or of an octant scores below the
 *    confidence threshold. Calibrated on a deformed pair of real CT with the shipped model
 *    (test/unit/review-confidence.test.ts): under the true field 0.95 % of the body and at most 1.2 %
 *    of a third is below 0.6; under the best affine-only transform 3.9 % of the body and 10.7 % of
 *    the superior third.
 *  - 'folding': any folded voxel (Jacobian determinant <= 0 in any finite-difference variant).
 *  - 'extreme-jacobian': local volume change beyond [0.2, 5] (tissue squeezed or stretched 5x).
 */
import type { ConfidenceSummary, RegionSummary } from './confidence.ts';
import type { JacobianSummary } from './field-stats.ts';

export interface QaFlag {
  code: 'low-confidence' | 'folding' | 'extreme-jacobian';
  /** Where: 'body', a region name, or 'field'. */
  region: string;
  /** The number that raised the flag and the limit it crossed. */
  value: number;
  limit: number;
  message: string;
}

export const QA_LIMITS = {
  /** Percent of body voxels below the confidence threshold. */
  bodyPercentBelow: 3,
  /** Percent of an axial third's voxels below the threshold. */
  thirdPercentBelow: 6,
  /** Percent of an octant's voxels below the threshold (smaller regions: a higher limit). */
  octantPercentBelow: 12,
  /** Regions with fewer counted voxels are not judged. */
  minRegionVoxels: 1000,
  jacobianMin: 0.2,
  jacobianMax: 5,
};

export function qaFlags(
  confidence: ConfidenceSummary | null,
  jacobian: JacobianSummary | null,
  limits = QA_LIMITS,
): QaFlag[] {
  const flags: QaFlag[] = [];
  if (confidence) {
    const t = confidence.threshold;
    const check = (r: RegionSummary, limit: number) => {
      if (r.voxels < limits.minRegionVoxels || !(r.percentBelow > limit)) return;
      flags.push({
        code: 'low-confidence',
        region: r.name,
        value: r.percentBelow,
        limit,
        message: `${r.name}: ${r.percentBelow.toFixed(1)} % of voxels below SAM similarity ${t} (limit ${limit} %)`,
      });
    };
    check(confidence.body, limits.bodyPercentBelow);
    for (const r of confidence.thirds) check(r, limits.thirdPercentBelow);
    for (const r of confidence.octants) check(r, limits.octantPercentBelow);
  }
  if (jacobian) {
    if (jacobian.folded > 0)
      flags.push({
        code: 'folding',
        region: 'field',
        value: jacobian.folded,
        limit: 0,
        message: `${jacobian.folded} folded voxels (${jacobian.foldedPercent.toFixed(3)} %)`,
      });
    if (jacobian.min < limits.jacobianMin)
      flags.push({
        code: 'extreme-jacobian',
        region: 'field',
        value: jacobian.min,
        limit: limits.jacobianMin,
        message: `Jacobian determinant down to ${jacobian.min.toFixed(3)} (limit ${limits.jacobianMin})`,
      });
    if (jacobian.max > limits.jacobianMax)
      flags.push({
        code: 'extreme-jacobian',
        region: 'field',
        value: jacobian.max,
        limit: limits.jacobianMax,
        message: `Jacobian determinant up to ${jacobian.max.toFixed(3)} (limit ${limits.jacobianMax})`,
      });
  }
  return flags;
}
