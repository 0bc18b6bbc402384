/**
 * Messages between the workstation and its registration worker (a worker thread in the browser-mode
 * server, an Electron utilityProcess in the desktop app; the same entry, register-worker.ts).
 * Volumes cross by structured clone (one copy per input, once per registration).
 *
 * After a registration the worker keeps its inputs and result (fixed, moving, field) so that the
 * review requests ('review': SAM embeddings of both images and the confidence map; 'track': one
 * point tracked with those embeddings) need no second copy of the volumes. Review messages carry
 * the job number of their request; a new registration drops the kept state and aborts a review.
 */
import type { RegisterResult } from '../register/cascade.ts';
import type { ConfidenceSummary } from '../review/confidence.ts';
import type { TrackedPoint } from '../review/track-point.ts';
import type { Vec3, Volume } from '../volume/volume.ts';
import type { Matcher, Refine, StageName } from './types.ts';

export type ToWorker =
  | {
      type: 'register';
      /** The workstation's number for the result (review requests name it). */
      resultId: number;
      fixed: Volume;
      moving: Volume;
      options: { matcher: Matcher; refine?: Refine; stages: StageName[]; gridMm: number; modelPath?: string };
    }
  | { type: 'cancel' }
  /** Embeds the last registration's fixed and moving images and computes the confidence map. */
  | {
      type: 'review';
      job: number;
      /** The result the review is for; the worker refuses it when it holds another and `state` is absent. */
      resultId: number;
      /** That result's images and field, when the worker does not hold it (a result reopened from a folder). */
      state?: { fixed: Volume; moving: Volume; field: Volume };
      modelPath: string;
      threshold?: number;
      /** Label map (any grid) and names for per-organ summaries. */
      labels?: Volume;
      labelNames?: Record<number, string>;
    }
  /** Tracks a fixed point into the moving image with the embeddings of the last 'review'. */
  | { type: 'track'; job: number; point: Vec3; resultId: number }
  | { type: 'cancel-review'; job: number };

export type FromWorker =
  | { type: 'ready' }
  | { type: 'progress'; stage: string; done: number; total: number }
  | { type: 'done'; result: RegisterResult }
  | { type: 'error'; name: string; message: string }
  | { type: 'review-progress'; job: number; stage: string; done: number; total: number }
  | {
      type: 'review-done';
      job: number;
      summary: ConfidenceSummary;
      /** Similarity x1000 on the fixed grid, int16; CONFIDENCE_NO_DATA where there is no information. */
      map: Int16Array;
      seconds: Record<string, number>;
    }
  | { type: 'track-done'; job: number; tracked: TrackedPoint }
  | { type: 'review-error'; job: number; name: string; message: string };

/** Value of the int16 confidence map where the similarity is undefined (outside the embeddings). */
export const CONFIDENCE_NO_DATA = -32768;

/** A similarity map (NaN where undefined) as the workstation keeps it: x1000 in int16, CONFIDENCE_NO_DATA for NaN. */
export function quantizeConfidence(data: ArrayLike<number>): Int16Array {
  const map = new Int16Array(data.length);
  for (let n = 0; n < map.length; n++) {
    const v = data[n];
    map[n] = Number.isFinite(v) ? Math.round(Math.max(-1, Math.min(1, v)) * 1000) : CONFIDENCE_NO_DATA;
  }
  return map;
}
