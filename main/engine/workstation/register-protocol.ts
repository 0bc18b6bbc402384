/**
 * Messages between the workstation and its registration worker (a worker thread in the browser-mode
 * server, an Electron utilityProcess in the desktop app; the same entry, register-worker.ts).
 * Volumes cross by structured clone (one copy per input, once per registration).
 */
import type { RegisterResult } from '../register/cascade.ts';
import type { Volume } from '../volume/volume.ts';
import type { Matcher, StageName } from './types.ts';

export type ToWorker =
  | {
      type: 'register';
      fixed: Volume;
      moving: Volume;
      options: { matcher: Matcher; stages: StageName[]; gridMm: number; modelPath?: string };
    }
  | { type: 'cancel' };

export type FromWorker =
  | { type: 'ready' }
  | { type: 'progress'; stage: string; done: number; total: number }
  | { type: 'done'; result: RegisterResult }
  | { type: 'error'; name: string; message: string };
