/** Store slice: registration settings, per-stage progress, result or error. */
import type { StateCreator } from 'zustand';
import type {
  Matcher,
  Refine,
  RegisterProgress,
  RegisterSummary,
  StageName,
} from '../../main/engine/workstation/types.ts';
import type { AppState } from './index.ts';

export type RegStatus = 'idle' | 'running' | 'done' | 'cancelled' | 'error';

export interface RegistrationSlice {
  matcher: Matcher;
  /** SAM matcher: refined by NCC ('ncc') or not. */
  refine: Refine;
  stages: StageName[];
  gridMm: number;
  status: RegStatus;
  /** Latest progress per stage name, in the order the stages reported. */
  progress: Record<string, RegisterProgress>;
  summary: RegisterSummary | null;
  regError: string | null;
  setSettings(s: Partial<Pick<RegistrationSlice, 'matcher' | 'refine' | 'stages' | 'gridMm'>>): void;
  startRegistration(): void;
  reportProgress(p: RegisterProgress): void;
  finishRegistration(s: { status: RegStatus; summary?: RegisterSummary | null; error?: string | null }): void;
}

export const registrationSlice: StateCreator<AppState, [], [], RegistrationSlice> = (set) => ({
  matcher: 'ncc',
  refine: 'ncc',
  stages: ['affine', 'coarse', 'deform'],
  gridMm: 24,
  status: 'idle',
  progress: {},
  summary: null,
  regError: null,
  setSettings: (s) => set(s),
  // the previous result stays (shown, exportable, reviewable) until a new one replaces it: a cancelled
  // or failed run leaves it as it was (the engine keeps it too)
  startRegistration: () => set({ status: 'running', progress: {}, regError: null }),
  reportProgress: (p) => set((st) => ({ progress: { ...st.progress, [p.stage]: p } })),
  // idle (new inputs): the last run's progress no longer describes anything on screen
  finishRegistration: ({ status, summary, error = null }) =>
    set({
      status,
      regError: error,
      ...(summary !== undefined ? { summary } : {}),
      ...(status === 'idle' ? { progress: {} } : {}),
    }),
});
