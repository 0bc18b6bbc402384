/**
 * One open review: the fixed and moving images, a registration result and (optionally) the SAM
 * embeddings held together, so that the workstation's review tools answer at interactive speed:
 * readout at the cursor, point tracking, glyphs and grid lines of the shown slice, the confidence
 * map and field statistics (computed once, cached), and the residual refit. The UI calls these
 * through IPC / the browser server (api.ts); nothing here touches files except through the result.
 *
 * Applying a refit (applyRefit) replaces the transform by the refitted affine: only for affine-only
 * results (qa.json stages = ['affine'], or a result without a displacement field), since the later
 * stages were computed from the old affine and must be re-run. The caches are then recomputed on
 * demand.
 */
import { InputError } from '../errors.ts';
import type { Affine3x4 } from '../register/affine-fit.ts';
import { fieldFromAffine } from '../register/field/field.ts';
import { warpWithAffine } from '../register/field/warp.ts';
import type { EmbeddingEngine } from '../compute/embedding-engine.ts';
import { embedVolume, type EmbeddedVolume } from '../sam/embed-volume.ts';
import { embedVolumeCached, hashVolume } from '../sam/embedding-cache.ts';
import { readVolume } from '../volume/io/index.ts';
import type { Vec3, Volume } from '../volume/volume.ts';
import { bodyMask } from '../volume/mask.ts';
import { confidenceMap, type ConfidenceResult } from './confidence.ts';
import {
  arrowGlyphs,
  deformedGridLines,
  fieldStatistics,
  type FieldStatistics,
  type SliceOptions,
} from './field-stats.ts';
import { voxelReadout, type VoxelReadout } from './readout.ts';
import { refitAffine, type RefitOptions, type RefitResult } from './refit.ts';
import { readRegistrationResult, type RegistrationResult } from './result-dir.ts';
import { reviewRegistration, type ReviewOutput } from './review.ts';
import type { SignOff } from './report.ts';
import { trackPoint, type TrackedPoint, type TrackOptions } from './track-point.ts';

export interface ReviewSessionOptions {
  embeddings?: { fixed: EmbeddedVolume; moving: EmbeddedVolume };
  labels?: Volume;
  labelNames?: Record<number, string>;
  threshold?: number;
  names?: { fixed: string; moving: string; labels?: string };
}

export class ReviewSession {
  private confidenceCache: ConfidenceResult | null = null;
  private statsCache: FieldStatistics | null = null;
  private maskCache: Volume<Uint8Array> | null = null;
  /** Refits applied, in order (their affines). */
  readonly applied: Affine3x4[] = [];

  constructor(
    readonly fixed: Volume,
    readonly moving: Volume,
    public result: RegistrationResult,
    readonly options: ReviewSessionOptions = {},
  ) {}

  get body(): Volume<Uint8Array> {
    return (this.maskCache ??= bodyMask(this.fixed));
  }

  readout(point: Vec3): VoxelReadout {
    return voxelReadout(
      {
        fixed: this.fixed,
        moving: this.moving,
        field: this.result.field,
        warped: this.result.warped ?? undefined,
        embeddings: this.options.embeddings,
      },
      point,
    );
  }

  async track(point: Vec3, options: Omit<TrackOptions, 'field' | 'affine'> = {}): Promise<TrackedPoint> {
    if (!this.options.embeddings) throw new InputError('point tracking', 'needs the SAM embeddings of both images');
    return trackPoint(this.options.embeddings, point, { ...options, field: this.result.field });
  }

  glyphs(options: SliceOptions & { bodyOnly?: boolean }) {
    return arrowGlyphs(this.result.field, { ...options, mask: options.bodyOnly ? this.body : undefined });
  }

  gridLines(options: SliceOptions) {
    return deformedGridLines(this.result.field, options);
  }

  /** The confidence map (null without embeddings); computed once per transform. */
  confidence(): ConfidenceResult | null {
    if (!this.options.embeddings) return null;
    return (this.confidenceCache ??= confidenceMap(this.fixed, this.options.embeddings, this.result.field, {
      mask: this.body,
      labels: this.options.labels,
      labelNames: this.options.labelNames,
      threshold: this.options.threshold,
    }));
  }

  fieldStats(): FieldStatistics {
    return (this.statsCache ??= fieldStatistics(this.result.field, { mask: this.body }));
  }

  refit(options: RefitOptions = {}): RefitResult {
    if (!this.result.pairs) throw new InputError(this.result.dir, 'no pairs.csv: nothing to refit');
    return refitAffine(this.result.pairs, options);
  }

  /** Is the result's transform the affine alone (so that a refit can replace it)? */
  get affineOnly(): boolean {
    const stages = this.result.qa?.stages;
    return (
      this.result.fieldSource === 'affine' || (Array.isArray(stages) && stages.length === 1 && stages[0] === 'affine')
    );
  }

  /** Replace the transform by a refit's affine (affine-only results; see the header). */
  applyRefit(refit: RefitResult): void {
    if (!this.affineOnly)
      throw new InputError(
        this.result.dir,
        'the deformable stages were computed from the old affine: re-run sam register with the refitted pairs',
      );
    this.result = {
      ...this.result,
      affine: refit.affine,
      field: fieldFromAffine(this.fixed, refit.affine),
      fieldSource: 'affine',
      warped: warpWithAffine(this.moving, this.fixed, refit.affine, { fill: -1024 }),
      pairs: refit.pairs,
    };
    this.applied.push(refit.affine);
    this.confidenceCache = null;
    this.statsCache = null;
  }

  /** The report of the current state (see review.ts), with an optional sign-off. */
  report(signOff: SignOff | null = null, options: { images?: boolean } = {}): ReviewOutput {
    return reviewRegistration({
      fixed: this.fixed,
      moving: this.moving,
      result: this.result,
      names: this.options.names ?? {
        fixed: this.fixed.meta.source ?? 'fixed',
        moving: this.moving.meta.source ?? 'moving',
      },
      embeddings: this.options.embeddings,
      labels: this.options.labels,
      labelNames: this.options.labelNames,
      threshold: this.options.threshold,
      signOff,
      images: options.images,
      precomputed: { mask: this.body, confidence: this.confidence(), fieldStats: this.fieldStats() },
    });
  }
}

/** What openReviewSession reads. */
export interface OpenReviewOptions {
  fixed: string;
  moving: string;
  resultDir: string;
  labels?: string;
  labelNames?: Record<number, string>;
  threshold?: number;
  /** An opened embedding engine (the caller owns and disposes it); without it, no SAM tools. */
  engine?: EmbeddingEngine;
  /** Model identity for the embedding cache (embedding-cache.ts hashModel); no caching without it. */
  modelHash?: string;
  cacheDir?: string;
  signal?: AbortSignal;
}

/** Read the images, the result folder and the labels, embed both images (cached), open a session. */
export async function openReviewSession(o: OpenReviewOptions): Promise<ReviewSession> {
  const fixed = await readVolume(o.fixed);
  const moving = await readVolume(o.moving);
  const result = await readRegistrationResult(o.resultDir, fixed);
  const labels = o.labels ? await readVolume(o.labels) : undefined;
  let embeddings;
  if (o.engine) {
    const engine = o.engine;
    const embed = (v: Volume) =>
      o.modelHash
        ? embedVolumeCached(v, engine, {
            inputHash: hashVolume(v),
            modelHash: o.modelHash,
            cacheDir: o.cacheDir,
            signal: o.signal,
          })
        : embedVolume(v, engine, { signal: o.signal });
    embeddings = { fixed: await embed(fixed), moving: await embed(moving) };
  }
  return new ReviewSession(fixed, moving, result, {
    embeddings,
    labels,
    labelNames: o.labelNames,
    threshold: o.threshold,
    names: { fixed: o.fixed, moving: o.moving, labels: o.labels },
  });
}
