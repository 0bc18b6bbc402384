/**
 * One client interface for the renderer. In the desktop app the preload bridge implements it
 * (window.sam, preload/index.ts); in the browser mode socket-client.ts implements the same interface
 * over the local server's WebSocket and one binary HTTP response per volume.
 */
import type {
  AffineRefit,
  Capabilities,
  ConfidenceInfo,
  ConfidenceLabels,
  CursorReadout,
  ExportSummary,
  FieldQa,
  RegisterProgress,
  RegisterRequest,
  OpenResultRequest,
  RegisterSummary,
  ReviewProgress,
  SeriesChoice,
  SessionFile,
  SessionSaved,
  SignOffRequest,
  TrackedPointInfo,
  SliceOverlay,
  SliceOverlayRequest,
  VolumeDescriptor,
} from '../../main/engine/workstation/types.ts';
import { browserApi } from './socket-client.ts';

export type PickKind = 'volume' | 'dicom-folder' | 'export-folder' | 'session-open' | 'session-save';

export interface SamApi {
  capabilities(): Promise<Capabilities>;
  /** Native dialog (desktop); null when cancelled or when there is none (browser mode: type the path). */
  pickPath(kind: PickKind): Promise<string | null>;
  listSeries(path: string): Promise<SeriesChoice[]>;
  openVolume(path: string, series?: string): Promise<VolumeDescriptor>;
  closeVolume(id: string): Promise<void>;
  /** The int16 display copy of a volume: one transfer, shared by the three views. */
  fetchVoxels(id: string): Promise<Int16Array>;
  register(req: RegisterRequest, onProgress: (p: RegisterProgress) => void): Promise<RegisterSummary>;
  cancelRegistration(): Promise<boolean>;
  /** Writes the result folder; with a sign-off also report.json and report.html. */
  exportResult(dir: string, signOff?: SignOffRequest): Promise<ExportSummary>;
  /** Engine readout of the last registration at the fixed voxel nearest a world point (mm). */
  readout(point: [number, number, number]): Promise<CursorReadout>;
  /** Jacobian / folding statistics of the last registration, its Jacobian and |u| maps (volumes). */
  fieldQa(): Promise<FieldQa>;
  /** Refits the last registration's affine without these pairs (not applied to the warped image). */
  refitAffine(excluded: number[]): Promise<AffineRefit>;
  /** Progress of the review's background work (embeddings, confidence map); returns an unsubscribe. */
  onReviewProgress(listener: (p: ReviewProgress) => void): () => void;
  /** The last registration's SAM confidence map (a volume), its summaries (per organ with labels) and the QA flags. */
  confidence(labels?: ConfidenceLabels): Promise<ConfidenceInfo>;
  /** A fixed point (mm) tracked into the moving image with SAM, and where the registration maps it. */
  trackPoint(point: [number, number, number]): Promise<TrackedPointInfo>;
  /** Arrow glyphs and deformed grid lines of the last registration on a view's slice (world mm). */
  sliceOverlay(req: SliceOverlayRequest): Promise<SliceOverlay>;
  saveSession(path: string, session: SessionFile): Promise<SessionSaved>;
  openSession(path: string): Promise<SessionFile>;
  /** Reopens an exported result folder for review on the open fixed and moving volumes (a saved session). */
  openResult(req: OpenResultRequest): Promise<RegisterSummary>;
  /** Desktop only: the application menu's actions (a path already chosen in a native dialog). */
  onMenu?(listener: (m: MenuCommand) => void): () => void;
}

export interface MenuCommand {
  action: 'open-fixed' | 'open-moving' | 'export' | 'session-save' | 'session-open';
  path: string;
}

declare global {
  interface Window {
    sam?: SamApi;
  }
}

let api: SamApi | null = null;

export function samApi(): SamApi {
  api ??= window.sam ?? browserApi();
  return api;
}
