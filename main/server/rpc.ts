/**
 * The browser mode's operations: one entry per workstation operation, with argument checks. The
 * socket (socket.ts) dispatches JSON messages { id, op, args } here; nothing else is callable.
 */
import { InputError } from '../engine/errors.ts';
import type { Workstation } from '../engine/workstation/workstation.ts';
import type {
  ConfidenceLabels,
  OpenResultRequest,
  RegisterProgress,
  RegisterRequest,
  ReviewProgress,
  SessionFile,
  SignOffRequest,
  SliceOverlayRequest,
} from '../engine/workstation/types.ts';

function str(v: unknown, name: string): string {
  if (typeof v !== 'string' || v.length === 0 || v.length > 4096) throw new InputError(name, 'expected a path/string');
  return v;
}

function optStr(v: unknown, name: string): string | undefined {
  return v === undefined || v === null || v === '' ? undefined : str(v, name);
}

/** A register request from the page, checked field by field (only the known fields pass). */
export function registerRequest(v: unknown): RegisterRequest {
  const r = v as RegisterRequest;
  if (!r || typeof r !== 'object') throw new InputError('register', 'expected a request object');
  if (r.matcher !== 'sam' && r.matcher !== 'ncc') throw new InputError('matcher', 'use sam or ncc');
  if (r.refine !== undefined && r.refine !== 'ncc' && r.refine !== 'none')
    throw new InputError('refine', 'use ncc or none');
  if (!Array.isArray(r.stages) || !r.stages.every((s) => ['affine', 'coarse', 'deform'].includes(s)))
    throw new InputError('stages', 'unknown stage');
  const gridMm = Number(r.gridMm);
  if (!(gridMm >= 4 && gridMm <= 100)) throw new InputError('gridMm', 'between 4 and 100 mm');
  return {
    fixedId: str(r.fixedId, 'fixedId'),
    movingId: str(r.movingId, 'movingId'),
    matcher: r.matcher,
    ...(r.refine !== undefined ? { refine: r.refine } : {}),
    stages: r.stages,
    gridMm,
  };
}

function point(v: unknown): [number, number, number] {
  if (!Array.isArray(v) || v.length !== 3 || !v.every((x) => typeof x === 'number' && Number.isFinite(x)))
    throw new InputError('point', 'expected [x, y, z] in mm');
  return [v[0], v[1], v[2]];
}

function sliceOverlayRequest(v: unknown): SliceOverlayRequest {
  const r = v as SliceOverlayRequest;
  if (!r || typeof r !== 'object') throw new InputError('slice overlay', 'expected a request object');
  if (!['axial', 'coronal', 'sagittal'].includes(r.orientation))
    throw new InputError('orientation', 'use axial, coronal or sagittal');
  if (!Number.isInteger(r.every) || r.every < 1 || r.every > 512)
    throw new InputError('every', 'an integer from 1 to 512 voxels');
  if (r.slice !== undefined && (!Number.isInteger(r.slice) || r.slice < 0))
    throw new InputError('slice', 'a slice index: an integer from 0');
  return { orientation: r.orientation, point: point(r.point), every: r.every, slice: r.slice };
}

function openResultRequest(v: unknown): OpenResultRequest {
  const r = v as OpenResultRequest;
  if (!r || typeof r !== 'object') throw new InputError('result', 'expected a request object');
  return { dir: str(r.dir, 'dir'), fixedId: str(r.fixedId, 'fixedId'), movingId: str(r.movingId, 'movingId') };
}

function indices(v: unknown): number[] {
  if (!Array.isArray(v) || v.length > 100_000 || !v.every((x) => Number.isInteger(x) && x >= 0))
    throw new InputError('excluded', 'expected a list of pair indices');
  return v as number[];
}

function signOff(v: unknown): SignOffRequest | undefined {
  if (v === undefined || v === null) return undefined;
  const s = v as SignOffRequest;
  if (typeof s !== 'object') throw new InputError('sign-off', 'expected a sign-off object');
  if (s.decision !== 'approved' && s.decision !== 'rejected') throw new InputError('sign-off', 'approved or rejected');
  const text = (x: unknown, name: string) => {
    if (typeof x !== 'string' || x.length > 4096) throw new InputError(name, 'expected a string');
    return x;
  };
  return { decision: s.decision, comment: text(s.comment, 'comment'), reviewer: text(s.reviewer, 'reviewer') };
}

function confidenceLabels(v: unknown): ConfidenceLabels | undefined {
  if (v === undefined || v === null) return undefined;
  const l = v as ConfidenceLabels;
  if (typeof l !== 'object') throw new InputError('labels', 'expected { path, namesPath? }');
  return { path: str(l.path, 'labels path'), namesPath: optStr(l.namesPath, 'label names path') };
}

export type Emit = {
  (event: 'register-progress', data: RegisterProgress): void;
  (event: 'review-progress', data: ReviewProgress): void;
};

export function operations(ws: Workstation, emit: Emit): Record<string, (...args: unknown[]) => unknown> {
  return {
    capabilities: () => ws.capabilities(),
    listSeries: (path) => ws.listSeries(str(path, 'path')),
    openVolume: (path, series) => ws.openVolume(str(path, 'path'), optStr(series, 'series')),
    closeVolume: (id) => ws.closeVolume(str(id, 'id')),
    register: (req) => ws.register(registerRequest(req), (p) => emit('register-progress', p)),
    cancelRegistration: () => ws.cancelRegistration(),
    exportResult: (dir, s) => ws.exportResult(str(dir, 'dir'), signOff(s)),
    readout: (p) => ws.readout(point(p)),
    fieldQa: () => ws.fieldQa(),
    refitAffine: (excluded) => ws.refitAffine(indices(excluded)),
    confidence: (labels) => ws.confidence((p) => emit('review-progress', p), confidenceLabels(labels)),
    trackPoint: (p) => ws.trackPoint(point(p), (q) => emit('review-progress', q)),
    sliceOverlay: (req) => ws.sliceOverlay(sliceOverlayRequest(req)),
    saveSession: (path, s) => ws.saveSession(str(path, 'path'), s as SessionFile),
    openSession: (path) => ws.openSession(str(path, 'path')),
    openResult: (req) => ws.openResult(openResultRequest(req)),
  };
}
