/** Store slice: capabilities, paths typed or picked, export and session results, messages. */
import type { StateCreator } from 'zustand';
import type { Capabilities, ExportSummary, SessionSaved } from '../../main/engine/workstation/types.ts';
import type { AppState } from './index.ts';

export interface SessionSlice {
  caps: Capabilities | null;
  busy: string | null;
  error: string | null;
  lastExport: ExportSummary | null;
  sessionPath: string | null;
  /** The last save of the session (shown beside its buttons). */
  sessionSaved: SessionSaved | null;
  setCaps(c: Capabilities): void;
  setBusy(b: string | null): void;
  setError(e: string | null): void;
  setLastExport(e: ExportSummary | null): void;
  setSessionPath(p: string | null): void;
  setSessionSaved(s: SessionSaved | null): void;
}

export const sessionSlice: StateCreator<AppState, [], [], SessionSlice> = (set) => ({
  caps: null,
  busy: null,
  error: null,
  lastExport: null,
  sessionPath: null,
  sessionSaved: null,
  setCaps: (caps) => set({ caps }),
  setBusy: (busy) => set({ busy }),
  setError: (error) => set({ error }),
  setLastExport: (lastExport) => set({ lastExport }),
  setSessionPath: (sessionPath) => set({ sessionPath }),
  setSessionSaved: (sessionSaved) => set({ sessionSaved }),
});
