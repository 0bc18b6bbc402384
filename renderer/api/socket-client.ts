/**
 * The browser-mode transport: calls as JSON over one WebSocket to the local server (main/server),
 * voxels as one binary HTTP GET per volume. The per-session token comes from the page URL
 * (?token=...), is kept in memory and removed from the address bar.
 */
import type { SamApi } from './client.ts';
import type { RegisterProgress, ReviewProgress } from '../../main/engine/workstation/types.ts';

const CLOSED =
  'the connection to the local SAM server closed (the server stopped?): start it again (npm run web) and open its new address';

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
}

export function browserApi(): SamApi {
  const params = new URLSearchParams(location.search);
  const token = params.get('token') ?? sessionStorage.getItem('sam-token') ?? '';
  sessionStorage.setItem('sam-token', token);
  if (params.has('token')) history.replaceState(null, '', location.pathname);
  const pending = new Map<number, Pending>();
  let progress: ((p: RegisterProgress) => void) | null = null;
  const reviewListeners = new Set<(p: ReviewProgress) => void>();
  let nextId = 1;
  const socket = new Promise<WebSocket>((resolve, reject) => {
    const ws = new WebSocket(`ws://${location.host}/api/socket?token=${encodeURIComponent(token)}`);
    ws.onopen = () => resolve(ws);
    ws.onerror = () => reject(new Error('cannot reach the local SAM server (wrong or expired session token?)'));
    ws.onclose = () => {
      for (const p of pending.values()) p.reject(new Error(CLOSED));
      pending.clear();
    };
    ws.onmessage = (e) => {
      const m = JSON.parse(String(e.data));
      if (m.event === 'register-progress') return progress?.(m.data);
      if (m.event === 'review-progress') return reviewListeners.forEach((f) => f(m.data));
      const p = pending.get(m.id);
      if (!p) return;
      pending.delete(m.id);
      if (m.error) p.reject(Object.assign(new Error(m.error.message), { name: m.error.name }));
      else p.resolve(m.result);
    };
  });
  async function call<T>(op: string, ...args: unknown[]): Promise<T> {
    const ws = await socket;
    // a closed socket drops what is sent without an error: the call would wait for ever
    if (ws.readyState !== WebSocket.OPEN) throw new Error(CLOSED);
    const id = nextId++;
    return new Promise<T>((resolve, reject) => {
      pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      ws.send(JSON.stringify({ id, op, args }));
    });
  }
  return {
    capabilities: () => call('capabilities'),
    pickPath: async () => null,
    listSeries: (path) => call('listSeries', path),
    openVolume: (path, series) => call('openVolume', path, series),
    closeVolume: (id) => call('closeVolume', id),
    async fetchVoxels(id) {
      const r = await fetch(`/api/volumes/${encodeURIComponent(id)}/voxels`, { headers: { 'x-sam-token': token } });
      if (!r.ok) throw new Error(`voxels of ${id}: ${r.status} ${await r.text()}`);
      return new Int16Array(await r.arrayBuffer());
    },
    async register(req, onProgress) {
      progress = onProgress;
      try {
        return await call('register', req);
      } finally {
        progress = null;
      }
    },
    cancelRegistration: () => call('cancelRegistration'),
    exportResult: (dir, signOff) => call('exportResult', dir, signOff),
    readout: (point) => call('readout', point),
    fieldQa: () => call('fieldQa'),
    refitAffine: (excluded) => call('refitAffine', excluded),
    onReviewProgress(listener) {
      reviewListeners.add(listener);
      return () => void reviewListeners.delete(listener);
    },
    confidence: (labels) => call('confidence', labels),
    trackPoint: (point) => call('trackPoint', point),
    sliceOverlay: (req) => call('sliceOverlay', req),
    saveSession: (path, s) => call('saveSession', path, s),
    openSession: (path) => call('openSession', path),
    openResult: (req) => call('openResult', req),
  };
}
