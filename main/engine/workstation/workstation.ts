/**
 * The workstation's engine side: the loaded volumes (kept here, in the main process or the server;
 * the renderer receives one int16 copy per volume), the registration (run by a worker, with progress
 * and cancel), export, and session files. Electron's IPC handlers and the browser-mode server both
 * wrap one instance; plain Node, no Electron, no DOM.
 */
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CancelledError, InputError } from '../errors.ts';
import type { RegisterQa, RegisterResult } from '../register/cascade.ts';
import type { FitMethod } from '../register/affine-fit.ts';
import type { Field } from '../register/field/field.ts';
import { warpVolume } from '../register/field/warp.ts';
import { writeRegistration } from '../register/register-output.ts';
import type { SamAffineStats } from '../register/sam-affine.ts';
import type { CoarsePair } from '../register/sam-coarse.ts';
import { parseCoarsePairsCsv, readRegistrationResult, readStoredConfidence } from '../review/result-dir.ts';
import { confidenceFromStoredMap } from '../review/confidence.ts';
import { fieldStatistics, jacobianSummary, type FieldStatistics } from '../review/field-stats.ts';
import { parseLabelNames } from '../review/label-names.ts';
import { qaFlags } from '../review/qa-flags.ts';
import { voxelReadout } from '../review/readout.ts';
import { refitAffine } from '../review/refit.ts';
import { sliceOverlay, type SliceOverlay } from '../review/slice-overlay.ts';
import { makeSignOff, writeConfidenceMaps, writeReviewReport } from '../review/report.ts';
import { reviewRegistration } from '../review/review.ts';
import type { Geometry } from '../volume/geometry.ts';
import { bodyMask } from '../volume/mask.ts';
import { makeVolume } from '../volume/volume.ts';
import { listDicomSeries } from '../volume/io/dicom/scan.ts';
import { readVolume } from '../volume/io/index.ts';
import type { Volume } from '../volume/volume.ts';
import { describeVolume } from './describe.ts';
import { displayVoxels, warpedDisplayVoxels } from './display-voxels.ts';
import { movingCoverage } from '../register/field/coverage.ts';
import { type PathPolicy } from './path-policy.ts';
import { checkOutputFolder } from '../util/paths.ts';
import type { StartWorker, WorkerHandle } from './runner.ts';
import { CONFIDENCE_NO_DATA, quantizeConfidence, type FromWorker } from './register-protocol.ts';
import { readSession, writeSession } from './session-file.ts';
import { checkRecordedMoving } from '../register/provenance.ts';
import type {
  AffinePair,
  AffineRefit,
  Capabilities,
  CoarsePairInfo,
  ConfidenceInfo,
  ConfidenceLabels,
  CursorReadout,
  FieldQa,
  SignOffRequest,
  ExportSummary,
  RegisterProgress,
  RegisterRequest,
  OpenResultRequest,
  RegisterSummary,
  ReviewProgress,
  SeriesChoice,
  SessionFile,
  SessionSaved,
  TrackedPointInfo,
  SliceOverlayRequest,
  VolumeDescriptor,
} from './types.ts';

type ReviewMessage = Extract<FromWorker, { job: number }>;

/** The confidence map of a result, as the worker sent it (kept for the readout and the report). */
interface StoredConfidence {
  info: ConfidenceInfo;
  map: Int16Array;
}

interface Loaded {
  descriptor: VolumeDescriptor;
  volume: Volume;
  display?: Int16Array;
}

export interface WorkstationOptions {
  mode: 'desktop' | 'browser';
  policy: PathPolicy;
  startWorker: StartWorker;
  /** SAM model file; the SAM matcher is offered only when it exists. */
  modelPath?: string;
  dataRoots?: string[];
  workRoot?: string;
}

export function defaultModelPath(): string {
  return process.env.SAM_MODEL || fileURLToPath(new URL('../../../resources/sam-small.samw', import.meta.url));
}

/** At most this many affine pairs go to the renderer (beyond it, only the kept ones). */
const MAX_PAIRS = 3000;

function affinePairs(result: RegisterResult): AffinePair[] {
  const all = result.affine.pairs.map((p, index) => ({
    index,
    fixed: [p.fixed[0], p.fixed[1], p.fixed[2]] as [number, number, number],
    moving: [p.moving[0], p.moving[1], p.moving[2]] as [number, number, number],
    score: p.score,
    kept: p.kept,
    residualMm: p.residualMm,
    inlier: p.inlier,
  }));
  return all.length <= MAX_PAIRS ? all : all.filter((p) => p.kept).slice(0, MAX_PAIRS);
}

function coarsePairs(pairs: CoarsePair[] | undefined): CoarsePairInfo[] | undefined {
  return pairs
    ?.filter((p) => p.kept)
    .slice(0, MAX_PAIRS)
    .map((p) => ({
      fixed: [p.fixed[0], p.fixed[1], p.fixed[2]],
      moving: [p.moving[0], p.moving[1], p.moving[2]],
      score: p.score,
      residualMm: p.residualMm,
    }));
}

export class Workstation {
  private volumes = new Map<string, Loaded>();
  private nextId = 1;
  private job: { worker: WorkerHandle; cancelled: boolean } | null = null;
  private pool: WorkerHandle | null = null;
  /**
   * Workers set aside by a cancel they did not answer in time: ended once they report back (their
   * messages are ignored until then), never while they may be inside ONNX Runtime (see cancelRegistration).
   */
  private retired = new Set<WorkerHandle>();
  private listener: ((m: Exclude<FromWorker, ReviewMessage>) => void) | null = null;
  /**
   * Which result the worker holds for the review requests (its inputs and field, then its SAM
   * embeddings): the last registration it ran, or one handed to it with a review request (a result
   * reopened from a folder, or after the worker was replaced). Requests name the result they are for.
   */
  private workerHolds: { worker: WorkerHandle; resultId: number } | null = null;
  private nextResultId = 1;
  private result: {
    /** Numbers the results of this workstation (the worker's review state is checked against it). */
    id: number;
    fixedId: string;
    movingId: string;
    result: RegisterResult;
    warpedId: string;
    stats?: FieldStatistics;
    /** The fixed image's body mask: the region of the field QA, the report and the confidence statistics. */
    fixedBody?: Volume;
    jacobianId?: string;
    /** The confidence map's computation (started once per result; see confidence()). */
    confidence?: Promise<StoredConfidence>;
    /** The label choice the computation was asked with (JSON). */
    confidenceKey?: string;
    confidenceDone?: StoredConfidence;
    magnitudeId?: string;
    /** A result read back from a folder (openResult): its coarse-stage pairs, written again on export. */
    readBackCoarsePairs?: CoarsePair[];
  } | null = null;
  /** Review requests in flight in the worker, by job number. */
  private reviewJobs = new Map<number, (m: ReviewMessage) => void>();
  private nextJob = 1;

  constructor(private readonly o: WorkstationOptions) {}

  capabilities(): Capabilities {
    const sam = !!this.o.modelPath && existsSync(this.o.modelPath);
    return {
      mode: this.o.mode,
      samModel: sam,
      // SAM (refined by NCC) where the model is installed: the most accurate on the README's benchmarks
      defaultMatcher: sam ? 'sam' : 'ncc',
      stages: ['affine', 'coarse', 'deform'],
      dataRoots: this.o.dataRoots ?? [],
      workRoot: this.o.workRoot,
    };
  }

  async listSeries(path: string): Promise<SeriesChoice[]> {
    const p = this.o.policy.readable(path);
    if (!statSync(p).isDirectory()) return [];
    return (await listDicomSeries(p)).map((s) => ({
      seriesInstanceUid: s.seriesInstanceUid,
      description: s.description,
      slices: s.sliceCount,
      size: `${s.columns}x${s.rows}x${s.sliceCount}`,
    }));
  }

  async openVolume(path: string, series?: string): Promise<VolumeDescriptor> {
    const p = this.o.policy.readable(path);
    this.worker(); // start it now, while the user is still opening volumes
    const volume = await readVolume(p, series ? { seriesUid: series } : {});
    if (volume.components !== 1) throw new InputError(path, 'a vector image cannot be opened as a CT volume');
    return this.add(p, volume, series);
  }

  private add(path: string, volume: Volume, series?: string): VolumeDescriptor {
    const id = `v${this.nextId++}`;
    const descriptor = describeVolume(id, path, volume, series);
    this.volumes.set(id, { descriptor, volume });
    return descriptor;
  }

  private get(id: string): Loaded {
    const l = this.volumes.get(id);
    if (!l) throw new InputError(id, 'no such volume is open');
    return l;
  }

  /** The int16 display copy (computed once, shared by every view and every fetch). */
  voxels(id: string): Int16Array {
    const l = this.get(id);
    const r = this.result;
    // the warped image marks where it has no moving data (DISPLAY_NO_DATA)
    l.display ??=
      r && id === r.warpedId
        ? warpedDisplayVoxels(l.volume, movingCoverage(r.result.field, this.get(r.movingId).volume))
        : displayVoxels(l.volume);
    return l.display;
  }

  closeVolume(id: string): void {
    if (this.result && [this.result.fixedId, this.result.movingId, this.result.warpedId].includes(id)) return;
    this.volumes.delete(id);
  }

  /**
   * The worker, started ahead of the first registration (when a volume is opened) and kept between
   * registrations, so its start-up (loading the engine) is not paid while the user waits.
   */
  private worker(): WorkerHandle {
    if (this.pool) return this.pool;
    const w = this.o.startWorker();
    this.pool = w;
    w.onMessage((m) => {
      if (this.retired.has(w)) {
        // its cancelled registration has ended: the worker is idle, safe to end
        if (m.type === 'done' || m.type === 'error') {
          this.retired.delete(w);
          w.terminate();
        }
        return;
      }
      if ('job' in m) this.reviewJobs.get(m.job)?.(m);
      else this.listener?.(m);
    });
    w.onExit((code, detail) => {
      if (this.retired.delete(w)) return;
      if (this.pool === w) this.pool = null;
      const message = `registration worker exited (${code})${detail ? `: ${detail}` : ''}`;
      this.listener?.({ type: 'error', name: 'WorkerExit', message });
      for (const [job, f] of [...this.reviewJobs]) f({ type: 'review-error', job, name: 'WorkerExit', message });
    });
    return w;
  }

  /** Whether the current worker holds result `id` (its images and field, and its embeddings once reviewed). */
  private workerHoldsResult(id: number): boolean {
    return !!this.pool && this.workerHolds?.worker === this.pool && this.workerHolds.resultId === id;
  }

  /** Whether a registration is running (the app asks before quitting). */
  registering(): boolean {
    return this.job !== null;
  }

  /** Ends the worker (when the app or the server closes). */
  dispose(): void {
    this.pool?.terminate();
    this.pool = null;
    // set-aside workers end themselves when they report back (ending one inside ONNX Runtime would
    // abort the process); they do not keep the process alive
  }

  async register(req: RegisterRequest, onProgress: (p: RegisterProgress) => void): Promise<RegisterSummary> {
    if (this.job) throw new InputError('registration', 'a registration is already running');
    const fixed = this.get(req.fixedId);
    const moving = this.get(req.movingId);
    const t0 = performance.now();
    const worker = this.worker();
    const job = { worker, cancelled: false };
    const resultId = this.nextResultId++;
    this.job = job;
    try {
      const result = await new Promise<RegisterResult>((resolve, reject) => {
        this.listener = (m) => {
          if (m.type === 'ready') return;
          if (m.type === 'progress')
            onProgress({ stage: m.stage, done: m.done, total: m.total, elapsed: (performance.now() - t0) / 1000 });
          else if (m.type === 'done') resolve(m.result);
          else if (job.cancelled || m.name === 'CancelledError') reject(new CancelledError('registration'));
          else reject(new Error(m.message));
        };
        worker.post({
          type: 'register',
          resultId,
          fixed: fixed.volume,
          moving: moving.volume,
          options: {
            matcher: req.matcher,
            refine: req.refine,
            stages: req.stages,
            gridMm: req.gridMm,
            modelPath: this.capabilities().samModel ? this.o.modelPath : undefined,
          },
        });
      });
      const warped = this.add(fixed.descriptor.path, result.warped);
      warped.description = `${moving.descriptor.description ?? 'moving'} registered to fixed`;
      this.dropResultMaps();
      this.result = { id: resultId, fixedId: req.fixedId, movingId: req.movingId, result, warpedId: warped.id };
      this.workerHolds = { worker, resultId };
      return {
        warped,
        affine: [...result.affine.affine],
        qa: result.qa,
        seconds: (performance.now() - t0) / 1000,
        pairs: affinePairs(result),
        affineRmsMm: result.affine.stats.rmsMm,
        coarsePairs: coarsePairs(result.coarse?.pairs),
        gridMm: req.gridMm,
      };
    } finally {
      this.job = null;
      this.listener = null;
    }
  }

  /**
   * Reopens an exported result folder for review on the open fixed and moving volumes (a saved
   * session): the field, warped image, affine, pairs and QA are read back (the field and the warped
   * image must lie on the fixed grid) and become the last result, so the readout, field QA, maps,
   * pairs, refit, confidence and export work as after a registration.
   */
  async openResult(req: OpenResultRequest): Promise<RegisterSummary> {
    if (this.job) throw new InputError('result', 'a registration is running');
    const fixed = this.get(req.fixedId);
    const moving = this.get(req.movingId);
    const t0 = performance.now();
    const dir = this.o.policy.readable(req.dir);
    const r = await readRegistrationResult(dir, fixed.volume);
    checkRecordedMoving(r.qa, moving.volume, moving.descriptor.path);
    if (r.fieldSource !== 'displacement.nii.gz' || !r.affine || !r.qa)
      throw new InputError(
        dir,
        'not a complete registration result (it needs displacement.nii.gz, affine.tfm and qa.json)',
      );
    const qa = r.qa as RegisterQa;
    const pairs = r.pairs ?? [];
    const stats = (qa.pairs ?? {}) as Partial<SamAffineStats>;
    const qaAffine = (qa.affine ?? {}) as { method?: FitMethod };
    const coarsePath = join(dir, 'coarse-pairs.csv');
    const coarse = existsSync(coarsePath)
      ? parseCoarsePairsCsv(readFileSync(coarsePath, 'utf8'), coarsePath)
      : undefined;
    const result: RegisterResult = {
      affine: {
        affine: r.affine,
        method: qaAffine.method ?? 'ransac+irls',
        pairs,
        stats: {
          pairs: stats.pairs ?? pairs.length,
          kept: stats.kept ?? pairs.filter((p) => p.kept).length,
          inliers: stats.inliers ?? pairs.filter((p) => p.inlier).length,
          rmsMm: stats.rmsMm ?? NaN,
          medianResidualMm: stats.medianResidualMm ?? NaN,
          p95ResidualMm: stats.p95ResidualMm ?? NaN,
        },
        fit: { scaleMm: NaN, iterations: 0, samples: 0 },
      },
      field: r.field as Field,
      warped: r.warped ?? warpVolume(moving.volume, r.field, { fill: -1024 }),
      qa,
    };
    // the confidence map its export stored, if any: a bad one is reported, the result still opens
    let storedConfidence: Awaited<ReturnType<typeof readStoredConfidence>> = null;
    let confidenceNotRead: string | undefined;
    try {
      storedConfidence = await readStoredConfidence(dir, fixed.volume);
    } catch (e) {
      confidenceNotRead = (e as Error).message;
    }
    const warped = this.add(r.warped ? join(dir, 'warped.nii.gz') : fixed.descriptor.path, result.warped);
    warped.description = `${moving.descriptor.description ?? 'moving'} registered to fixed (from ${dir})`;
    this.dropResultMaps();
    this.result = {
      id: this.nextResultId++,
      fixedId: req.fixedId,
      movingId: req.movingId,
      result,
      warpedId: warped.id,
      readBackCoarsePairs: coarse,
    };
    if (storedConfidence) {
      const map = quantizeConfidence(storedConfidence.map.data);
      const d = this.addMap(fixed.descriptor.path, fixed.volume, map, 'SAM confidence x1000 (stored)');
      const info = { summary: storedConfidence.summary, map: d, flags: storedConfidence.flags, seconds: {} };
      this.result.confidenceDone = { info, map };
    }
    return {
      warped,
      affine: [...r.affine],
      qa,
      seconds: (performance.now() - t0) / 1000,
      pairs: affinePairs(result),
      affineRmsMm: result.affine.stats.rmsMm,
      coarsePairs: coarsePairs(coarse),
      reopenedFrom: dir,
      ...(this.result.confidenceDone ? { confidence: this.result.confidenceDone.info } : {}),
      ...(confidenceNotRead ? { confidenceNotRead } : {}),
    };
  }

  /** The last result's derived volumes (Jacobian, confidence, |u| maps), dropped when it is replaced. */
  private dropResultMaps(): void {
    if (this.result?.jacobianId) this.volumes.delete(this.result.jacobianId);
    if (this.result?.confidenceDone) this.volumes.delete(this.result.confidenceDone.info.map.id);
    if (this.result?.magnitudeId) this.volumes.delete(this.result.magnitudeId);
  }

  /** Cancels the running registration: asks the worker, and ends it if it does not stop in 2 s. */
  cancelRegistration(): boolean {
    const job = this.job;
    if (!job) return false;
    job.cancelled = true;
    job.worker.post({ type: 'cancel' });
    setTimeout(() => {
      if (this.job !== job) return;
      // Not stopped within 2 s: the worker is inside a step that cannot be interrupted, typically an
      // ONNX Runtime run (a whole-volume embedding takes seconds). Ending a worker thread then takes
      // the whole process down (onnxruntime-node aborts), so the worker is set aside instead: the
      // registration is reported cancelled now, the next one starts a fresh worker, and this one is
      // ended when its cancelled run reports back.
      if (this.pool === job.worker) this.pool = null;
      this.retired.add(job.worker);
      this.listener?.({ type: 'error', name: 'CancelledError', message: 'registration cancelled' });
    }, 2000).unref?.();
    return true;
  }

  private lastResult(what: string): NonNullable<Workstation['result']> {
    if (!this.result) throw new InputError(what, 'run a registration first');
    return this.result;
  }

  /** Fixed, warped and moving HU, displacement and Jacobian at the fixed voxel nearest a world point. */
  readout(point: [number, number, number]): CursorReadout {
    const r = this.lastResult('readout');
    const v = voxelReadout(
      {
        fixed: this.get(r.fixedId).volume,
        moving: this.get(r.movingId).volume,
        field: r.result.field,
        warped: r.result.warped,
      },
      point,
    );
    return {
      index: v.index,
      point: v.point,
      fixedHu: v.fixedHu,
      warpedHu: v.warpedHu,
      movingHu: Number.isFinite(v.movingHu) ? v.movingHu : null,
      displacement: v.displacement,
      jacobian: v.jacobian,
      folded: v.folded,
      samSimilarity: this.confidenceAt(v.index),
    };
  }

  /** The confidence map's value (the SAM similarity of fixed and warped) at a fixed voxel, once computed. */
  private confidenceAt(index: [number, number, number]): number | null {
    const c = this.result?.confidenceDone;
    if (!c) return null;
    const [ni, nj] = this.get(this.result!.fixedId).volume.size;
    const x = c.map[index[0] + ni * (index[1] + nj * index[2])];
    return x === CONFIDENCE_NO_DATA || x === undefined ? null : x / 1000;
  }

  /** Sends a review request to the worker and resolves with its answer (progress on the way). */
  private askWorker<T extends ReviewMessage['type']>(
    request: (job: number) => Parameters<WorkerHandle['post']>[0],
    answer: T,
    onProgress?: (p: ReviewProgress) => void,
  ): Promise<Extract<ReviewMessage, { type: T }>> {
    const job = this.nextJob++;
    return new Promise((resolve, reject) => {
      this.reviewJobs.set(job, (m) => {
        if (m.type === 'review-progress') return onProgress?.({ stage: m.stage, done: m.done, total: m.total });
        this.reviewJobs.delete(job);
        if (m.type === answer) resolve(m as Extract<ReviewMessage, { type: T }>);
        else if (m.type === 'review-error')
          reject(
            m.name === 'CancelledError' || m.name === 'AbortError'
              ? new CancelledError('review')
              : new Error(m.message),
          );
        else reject(new Error(`unexpected answer ${m.type} from the worker`));
      });
      this.worker().post(request(job));
    });
  }

  private samModelFor(what: string): string {
    if (!this.capabilities().samModel)
      throw new InputError(
        what,
        `needs the SAM model, which is not installed (${this.o.modelPath ?? 'no model path'})`,
      );
    return this.o.modelPath!;
  }

  /**
   * The confidence map of the last result (review/confidence.ts): the worker embeds the fixed and
   * moving images with the SAM model (once per result) and maps the similarity of fixed and warped
   * embeddings; returned with its summary (per organ too, given a label map and optionally its
   * names) and the QA flags (review/qa-flags.ts). Computed once per result and label choice;
   * concurrent calls share it.
   */
  async confidence(onProgress?: (p: ReviewProgress) => void, labels?: ConfidenceLabels): Promise<ConfidenceInfo> {
    const r = this.lastResult('confidence map');
    const modelPath = this.samModelFor('the confidence map');
    if (this.job) throw new InputError('confidence map', 'a registration is running');
    const key = JSON.stringify(labels ?? null);
    if (!r.confidence || r.confidenceKey !== key) {
      const previous = r.confidence;
      r.confidenceKey = key;
      r.confidence = (async () => {
        // the map it replaces: an earlier computation's, or the one a reopened result stored
        const old = (await previous?.catch(() => undefined)) ?? r.confidenceDone;
        const lab = labels ? await this.readLabels(labels) : undefined;
        const m = await this.askWorker(
          (job) => ({
            type: 'review',
            job,
            resultId: r.id,
            modelPath,
            labels: lab?.volume,
            labelNames: lab?.names,
            // the result's images and field when the worker holds another (a reopened result, a new worker)
            ...(this.workerHoldsResult(r.id)
              ? {}
              : {
                  state: {
                    fixed: this.get(r.fixedId).volume,
                    moving: this.get(r.movingId).volume,
                    field: r.result.field,
                  },
                }),
          }),
          'review-done',
          onProgress,
        );
        const fixed = this.get(r.fixedId);
        const d = this.addMap(fixed.descriptor.path, fixed.volume, m.map, 'SAM confidence x1000');
        if (old) this.volumes.delete(old.info.map.id);
        const flags = qaFlags(m.summary, jacobianSummary(this.stats(r).jacobian));
        const stored = { info: { summary: m.summary, map: d, flags, seconds: m.seconds }, map: m.map };
        if (this.result === r) r.confidenceDone = stored;
        // the worker now holds this result and its embeddings
        if (this.pool) this.workerHolds = { worker: this.pool, resultId: r.id };
        return stored;
      })();
      const mine = r.confidence;
      mine.catch(() => {
        if (this.result === r && r.confidence === mine) r.confidence = undefined;
      });
    }
    return (await r.confidence).info;
  }

  /** A label map for the per-organ summaries (read here, policy-checked) and its names. */
  private async readLabels(l: ConfidenceLabels): Promise<{ volume: Volume; names?: Record<number, string> }> {
    const volume = await readVolume(this.o.policy.readable(l.path));
    if (volume.components !== 1) throw new InputError(l.path, 'a label map needs one component per voxel');
    if (!l.namesPath) return { volume };
    const p = this.o.policy.readable(l.namesPath);
    return { volume, names: parseLabelNames(readFileSync(p, 'utf8'), l.namesPath) };
  }

  /**
   * Tracks a fixed point (world mm) into the moving image with the SAM embeddings (computing the
   * confidence map first when needed): the match, its score and cycle check, and where the
   * registration maps the point.
   */
  async trackPoint(
    point: [number, number, number],
    onProgress?: (p: ReviewProgress) => void,
  ): Promise<TrackedPointInfo> {
    const r = this.lastResult('point tracking');
    this.samModelFor('point tracking');
    // the worker needs this result's embeddings: a confidence map computed by this worker means it
    // holds them; otherwise (a new worker after a cancel or a crash) the map is computed again
    if (!this.workerHoldsResult(r.id)) r.confidence = undefined;
    await (r.confidence ?? this.confidence(onProgress));
    return (await this.askWorker((job) => ({ type: 'track', job, point, resultId: r.id }), 'track-done')).tracked;
  }

  /** Jacobian and |u| statistics inside the fixed body (the maps cover the whole grid), as the report's. */
  private stats(r: NonNullable<Workstation['result']>): FieldStatistics {
    return (r.stats ??= fieldStatistics(r.result.field, { mask: this.fixedBody(r) }));
  }

  private fixedBody(r: NonNullable<Workstation['result']>): Volume {
    return (r.fixedBody ??= bodyMask(this.get(r.fixedId).volume));
  }

  /**
   * Refits the last result's affine without the excluded pairs (indices into its affine pairs), with
   * SAM-affine's robust fit; the new affine is reported, not applied (the warped image stays).
   */
  refitAffine(excluded: number[]): AffineRefit {
    const r = this.lastResult('refit');
    const f = refitAffine(r.result.affine.pairs, { exclude: excluded });
    return {
      affine: [...f.affine],
      rmsMm: f.stats.rmsMm,
      fitted: f.stats.fitted,
      inliers: f.stats.inliers,
      residuals: f.pairs.map((p, index) => ({ index, residualMm: p.residualMm, inlier: p.inlier, kept: p.kept })),
      histogram: f.histogram,
      ms: f.ms,
    };
  }

  /**
   * Jacobian / folding and displacement statistics of the last result's field (computed once), the
   * Jacobian map x1000 and the displacement magnitude map |u| x 10 (tenths of a mm) as int16 volumes
   * on the fixed grid the renderer fetches like any other.
   */
  fieldQa(): FieldQa {
    const r = this.lastResult('field QA');
    const j = this.stats(r).jacobian;
    const fixedPath = this.get(r.fixedId).descriptor.path;
    r.jacobianId ??= this.addInt16Map(fixedPath, j.det, 1000, 'Jacobian determinant x1000');
    r.magnitudeId ??= this.addInt16Map(fixedPath, this.stats(r).magnitude, 10, 'displacement magnitude (mm x 10)');
    return {
      jacobian: jacobianSummary(j),
      displacementMm: { mean: this.stats(r).magnitudeStats.mean, max: this.stats(r).magnitudeStats.max },
      jacobianMap: this.get(r.jacobianId).descriptor,
      magnitudeMap: this.get(r.magnitudeId).descriptor,
    };
  }

  /** A float map as an int16 volume (value x factor, rounded and clamped; NaN 0), added as a volume. */
  private addInt16Map(path: string, map: Volume, factor: number, description: string): string {
    const src = map.data;
    const data = new Int16Array(src.length);
    for (let n = 0; n < src.length; n++) {
      const x = Math.round(src[n] * factor);
      data[n] = x > 32767 ? 32767 : x < -32768 ? -32768 : Number.isNaN(x) ? 0 : x;
    }
    return this.addMap(path, map, data, description).id;
  }

  /** An int16 map on a grid (the fixed one), added as a volume the renderer fetches like any other. */
  private addMap(path: string, grid: Geometry, data: Int16Array, description: string): VolumeDescriptor {
    const { size, spacing, origin, direction } = grid;
    const d = this.add(path, makeVolume({ size, spacing, origin, direction, data, meta: { description } }));
    d.description = description;
    return d;
  }

  /**
   * The arrow glyphs and deformed grid lines of the last result's field on the slice of an
   * orientation through a world point, every `every` voxels (world LPS mm).
   */
  sliceOverlay(req: SliceOverlayRequest): SliceOverlay {
    const r = this.lastResult('slice overlay');
    return sliceOverlay(r.result.field, req.orientation, req.point, req.every, req.slice);
  }

  /**
   * Writes the last registration's result folder (warped, field, affine, pairs, QA) and the review
   * report (report.json, report.html: with the sign-off when given, else marked not signed off);
   * never over the inputs.
   */
  async exportResult(dir: string, signOff?: SignOffRequest & { time?: string }): Promise<ExportSummary> {
    if (!this.result) throw new InputError('export', 'nothing to export: run a registration first');
    const out = this.o.policy.writable(dir);
    const fixed = this.get(this.result.fixedId);
    const moving = this.get(this.result.movingId);
    const inputs = [fixed.descriptor.path, moving.descriptor.path];
    // (the resolved folder: a typed path is taken in the work folder in browser mode)
    checkOutputFolder(out, inputs);
    mkdirSync(out, { recursive: true });
    let previous: string | undefined;
    const notes: string[] = [];
    const files = await writeRegistration(out, fixed.volume, moving.volume, this.result.result, {
      protect: inputs,
      inputPaths: { fixed: fixed.descriptor.path, moving: moving.descriptor.path },
      coarsePairs: this.result.readBackCoarsePairs,
      onArchived: (folder) => (previous = folder),
      onNote: (n) => notes.push(n),
    });
    // the review report, signed off or not (then it says so): the field QA, residuals and confidence
    // the reviewer saw, on the same body mask
    const r = this.result;
    const mask = this.fixedBody(r);
    const review = reviewRegistration({
      fixed: fixed.volume,
      moving: moving.volume,
      result: {
        dir: out,
        warped: r.result.warped,
        field: r.result.field,
        fieldSource: 'displacement.nii.gz',
        affine: r.result.affine.affine,
        pairs: r.result.affine.pairs,
        qa: r.result.qa,
        files,
      },
      names: { fixed: fixed.descriptor.path, moving: moving.descriptor.path },
      signOff: signOff ? makeSignOff(signOff) : null,
      precomputed: {
        mask,
        fieldStats: this.stats(r),
        ...(r.confidenceDone
          ? {
              confidence: confidenceFromStoredMap(
                fixed.volume,
                r.confidenceDone.map,
                CONFIDENCE_NO_DATA,
                r.confidenceDone.info.summary,
                mask,
              ),
              seconds: r.confidenceDone.info.seconds,
            }
          : {}),
      },
    });
    // the confidence map as `sam review` writes it: reopening the folder restores it (openResult)
    if (review.confidence) files.push(...(await writeConfidenceMaps(out, review.confidence, { protect: inputs })));
    // the report lists the export's files beside its own
    review.report.files = [...files];
    files.push(...writeReviewReport(out, review.report, review.images, { protect: inputs }));
    return { dir: out, files, ...(previous ? { previous } : {}), ...(notes.length ? { notes } : {}) };
  }

  /** Saves the session (replacing only an earlier session file); where, and whether one was replaced. */
  saveSession(path: string, s: SessionFile): SessionSaved {
    const p = this.o.policy.writable(path);
    const protect = [...this.volumes.values()].map((l) => l.descriptor.path);
    return { path: p, ...writeSession(p, s, protect) };
  }

  openSession(path: string): SessionFile {
    return readSession(this.o.policy.readable(path));
  }
}
