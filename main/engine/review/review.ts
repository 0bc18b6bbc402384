/**
 * The review of one registration, end to end on volumes in memory: confidence map (when SAM
 * embeddings are given), Jacobian and displacement statistics inside the fixed body, residual
 * statistics of the matched pairs, key slice images, and the report record (report.ts). The CLI
 * (`sam review`) and the workstation call this; writing files is left to them.
 */
import { quantile } from '../register/affine-fit.ts';
import { warpVolume } from '../register/field/warp.ts';
import type { EmbeddedVolume } from '../sam/embed-volume.ts';
import { bodyMask } from '../volume/mask.ts';
import type { Volume } from '../volume/volume.ts';
import { confidenceMap, type ConfidenceResult } from './confidence.ts';
import { fieldStatistics, jacobianSummary, type FieldStatistics } from './field-stats.ts';
import { qaFlags } from './qa-flags.ts';
import { keyImages, type ReportImage, type ReviewReport, type SignOff } from './report.ts';
import type { RegistrationResult } from './result-dir.ts';

export interface ReviewInputs {
  fixed: Volume;
  moving: Volume;
  result: RegistrationResult;
  /** Names shown in the report. */
  names: { fixed: string; moving: string; labels?: string };
  embeddings?: { fixed: EmbeddedVolume; moving: EmbeddedVolume };
  labels?: Volume;
  labelNames?: Record<number, string>;
  threshold?: number;
  signOff?: SignOff | null;
  /** Include the key slice images (default true). */
  images?: boolean;
  /** Already computed for this transform (a review session's caches): reused as they are. */
  precomputed?: {
    mask?: Volume;
    confidence?: ConfidenceResult | null;
    /** Seconds the precomputed work took, by step (reported as review times). */
    seconds?: Record<string, number>;
    fieldStats?: FieldStatistics;
  };
}

export interface ReviewOutput {
  report: ReviewReport;
  confidence: ConfidenceResult | null;
  fieldStats: FieldStatistics;
  warped: Volume;
  images: ReportImage[];
}

/** Residual statistics of the pairs (inliers), as the report shows them. */
export function residualStats(pairs: RegistrationResult['pairs']): ReviewReport['residuals'] {
  if (!pairs || pairs.length === 0) return null;
  const inl = pairs.filter((p) => p.inlier).map((p) => p.residualMm);
  return {
    pairs: pairs.length,
    kept: pairs.filter((p) => p.kept).length,
    inliers: inl.length,
    rmsMm: inl.length ? Math.sqrt(inl.reduce((s, r) => s + r * r, 0) / inl.length) : NaN,
    medianMm: quantile(inl, 0.5),
    p95Mm: quantile(inl, 0.95),
    maxMm: inl.length ? Math.max(...inl) : NaN,
  };
}

export function reviewRegistration(inputs: ReviewInputs): ReviewOutput {
  const seconds: Record<string, number> = {};
  let t0 = performance.now();
  /** Records the time since the last tick under `name`, or only restarts the clock (name null: reused work). */
  const tick = (name: string | null) => {
    if (name) seconds[name] = (performance.now() - t0) / 1000;
    t0 = performance.now();
  };
  const { fixed, moving, result } = inputs;
  const pre = inputs.precomputed ?? {};
  Object.assign(seconds, pre.seconds);
  const mask = pre.mask ?? bodyMask(fixed);
  tick(pre.mask ? null : 'body mask');
  const warped = result.warped ?? warpVolume(moving, result.field, { fill: -1024 });
  if (!result.warped) tick('warp');
  const confidence =
    pre.confidence !== undefined
      ? pre.confidence
      : inputs.embeddings
        ? confidenceMap(fixed, inputs.embeddings, result.field, {
            mask,
            labels: inputs.labels,
            labelNames: inputs.labelNames,
            threshold: inputs.threshold,
          })
        : null;
  if (confidence) tick(pre.confidence !== undefined ? null : 'confidence');
  const fieldStats = pre.fieldStats ?? fieldStatistics(result.field, { mask });
  tick(pre.fieldStats ? null : 'jacobian');
  const j = fieldStats.jacobian;
  const images = inputs.images === false ? [] : keyImages(fixed, warped, confidence?.lowMask);
  if (images.length) tick('images');
  const report: ReviewReport = {
    createdAt: new Date().toISOString(),
    inputs: {
      fixed: inputs.names.fixed,
      moving: inputs.names.moving,
      resultDir: result.dir,
      labels: inputs.names.labels,
    },
    registrationQa: result.qa,
    residuals: residualStats(result.pairs),
    jacobian: jacobianSummary(j),
    displacementMm: {
      mean: fieldStats.magnitudeStats.mean,
      p95: fieldStats.magnitudeStats.p95,
      max: fieldStats.magnitudeStats.max,
    },
    confidence: confidence?.summary ?? null,
    flags: qaFlags(confidence?.summary ?? null, jacobianSummary(j)),
    reviewSeconds: seconds,
    files: [],
    signOff: inputs.signOff ?? null,
  };
  return { report, confidence, fieldStats, warped, images };
}
