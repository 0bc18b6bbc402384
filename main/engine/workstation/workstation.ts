/**
 * The workstation's engine side: the loaded volumes (kept here, in the main process or the server;
 * the renderer receives one int16 copy per volume), the registration (run by a worker, with progress
 * and cancel), export, and session files. Electron's IPC handlers and the browser-mode server both
 * wrap one instance; plain Node, no Electron, no DOM.
 */
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CancelledError, InputError } from '../errors.ts';
import type { RegisterResult } from '../register/cascade.ts';
import { writeRegistration } from '../register/register-output.ts';
import { listDicomSeries } from '../volume/io/dicom/scan.ts';
import { readVolume } from '../volume/io/index.ts';
import type { Volume } from '../volume/volume.ts';
import { describeVolume } from './describe.ts';
import { displayVoxels } from './display-voxels.ts';
import { isInside, type PathPolicy } from './path-policy.ts';
import type { StartWorker, WorkerHandle } from './runner.ts';
import type { FromWorker } from './register-protocol.ts';
import { readSession, writeSession } from './session-file.ts';
import type {
  Capabilities,
  ExportSummary,
  RegisterProgress,
  RegisterRequest,
  RegisterSummary,
  SeriesChoice,
  SessionFile,
  VolumeDescriptor,
} from './types.ts';

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

export class Workstation {
  private volumes = new Map<string, Loaded>();
  private nextId = 1;
  private job: { worker: WorkerHandle; cancelled: boolean } | null = null;
  private pool: WorkerHandle | null = null;
  private listener: ((m: FromWorker) => void) | null = null;
  private result: { fixedId: string; movingId: string; result: RegisterResult; warpedId: string } | null = null;

  constructor(private readonly o: WorkstationOptions) {}

  capabilities(): Capabilities {
    const sam = !!this.o.modelPath && existsSync(this.o.modelPath);
    return {
      mode: this.o.mode,
      samModel: sam,
      // NCC until a shipped model matches as accurately (README, Registration): SAM is offered
      defaultMatcher: 'ncc',
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
    l.display ??= displayVoxels(l.volume);
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
    w.onMessage((m) => this.listener?.(m));
    w.onExit((code) => {
      if (this.pool === w) this.pool = null;
      this.listener?.({ type: 'error', name: 'WorkerExit', message: `registration worker exited (${code})` });
    });
    return w;
  }

  /** Ends the worker (when the app or the server closes). */
  dispose(): void {
    this.pool?.terminate();
    this.pool = null;
  }

  async register(req: RegisterRequest, onProgress: (p: RegisterProgress) => void): Promise<RegisterSummary> {
    if (this.job) throw new InputError('registration', 'a registration is already running');
    const fixed = this.get(req.fixedId);
    const moving = this.get(req.movingId);
    const t0 = performance.now();
    const worker = this.worker();
    const job = { worker, cancelled: false };
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
          fixed: fixed.volume,
          moving: moving.volume,
          options: {
            matcher: req.matcher,
            stages: req.stages,
            gridMm: req.gridMm,
            modelPath: this.capabilities().samModel ? this.o.modelPath : undefined,
          },
        });
      });
      const warped = this.add(fixed.descriptor.path, result.warped);
      warped.description = `${moving.descriptor.description ?? 'moving'} registered to fixed`;
      this.result = { fixedId: req.fixedId, movingId: req.movingId, result, warpedId: warped.id };
      return { warped, affine: [...result.affine.affine], qa: result.qa, seconds: (performance.now() - t0) / 1000 };
    } finally {
      this.job = null;
      this.listener = null;
    }
  }

  /** Cancels the running registration: asks the worker, and ends it if it does not stop in 2 s. */
  cancelRegistration(): boolean {
    const job = this.job;
    if (!job) return false;
    job.cancelled = true;
    job.worker.post({ type: 'cancel' });
    setTimeout(() => {
      if (this.job !== job) return;
      job.worker.terminate();
      if (this.pool === job.worker) this.pool = null;
      this.listener?.({ type: 'error', name: 'CancelledError', message: 'registration cancelled' });
    }, 2000).unref?.();
    return true;
  }

  /** Writes the last registration's result folder (warped, field, affine, pairs, QA); never over the inputs. */
  async exportResult(dir: string): Promise<ExportSummary> {
    if (!this.result) throw new InputError('export', 'nothing to export: run a registration first');
    const out = this.o.policy.writable(dir);
    const fixed = this.get(this.result.fixedId);
    const moving = this.get(this.result.movingId);
    const inputs = [fixed.descriptor.path, moving.descriptor.path];
    for (const p of inputs) {
      const folder = statSync(p).isDirectory() ? p : dirname(p);
      if (isInside(folder, out) && statSync(p).isDirectory())
        throw new InputError(dir, 'the export folder is inside an input DICOM folder');
      if (out === p) throw new InputError(dir, 'the export folder is an input');
    }
    mkdirSync(out, { recursive: true });
    const files = await writeRegistration(out, fixed.volume, moving.volume, this.result.result, { protect: inputs });
    return { dir: out, files };
  }

  saveSession(path: string, s: SessionFile): string {
    const p = this.o.policy.writable(path);
    const protect = [...this.volumes.values()].map((l) => l.descriptor.path);
    writeSession(p, s, protect);
    return p;
  }

  openSession(path: string): SessionFile {
    return readSession(this.o.policy.readable(path));
  }
}
