/**
 * The deformation overlays (arrow glyphs, deformed grid lines) of the views' slices, fetched from
 * the engine (sliceOverlay) and kept per result, view, slice and spacing (the oldest dropped beyond
 * MAX_ENTRIES). At most one request per view is in flight and requests start at most every
 * MIN_INTERVAL_MS, so that scrolling through slices asks for some of them on the way and the one it
 * stops on at once; a view draws only the overlay of the slice it shows (never a neighbour's).
 */
import type { SliceOverlay } from '../../main/engine/workstation/types.ts';
import { samApi } from '../api/client.ts';
import type { Vec3 } from '../store/view.ts';
import type { ViewName } from './view-geometry.ts';

const MAX_ENTRIES = 400;
const MIN_INTERVAL_MS = 120;

const cache = new Map<string, SliceOverlay>();
const state = new Map<
  ViewName,
  { busy: boolean; last: number; wanted: Wanted | null; timer?: ReturnType<typeof setTimeout> }
>();

interface Wanted {
  result: string;
  view: ViewName;
  point: Vec3;
  slice: number;
  every: number;
  onReady: () => void;
}

const keyOf = (result: string, view: ViewName, slice: number, every: number) => `${result}|${view}|${slice}|${every}`;

/** The cached overlay of a view's slice, or undefined (then ask with requestSliceOverlay). */
export function cachedSliceOverlay(
  result: string,
  view: ViewName,
  slice: number,
  every: number,
): SliceOverlay | undefined {
  return cache.get(keyOf(result, view, slice, every));
}

/** Asks the engine for a view's slice overlay (the latest wish per view wins); onReady when it is cached. */
export function requestSliceOverlay(w: Wanted): void {
  let st = state.get(w.view);
  if (!st) state.set(w.view, (st = { busy: false, last: 0, wanted: null }));
  st.wanted = w;
  pump(w.view);
}

function pump(view: ViewName): void {
  const st = state.get(view)!;
  const w = st.wanted;
  if (!w || st.busy || st.timer) return;
  const wait = st.last + MIN_INTERVAL_MS - performance.now();
  if (wait > 0) {
    st.timer = setTimeout(() => {
      st.timer = undefined;
      pump(view);
    }, wait);
    return;
  }
  st.wanted = null;
  if (cache.has(keyOf(w.result, view, w.slice, w.every))) return w.onReady();
  st.busy = true;
  st.last = performance.now();
  samApi()
    .sliceOverlay({ orientation: view, point: w.point, every: w.every, slice: w.slice })
    .then((o) => {
      // the engine drew the slice asked for (the view's index on the fixed grid, which the field shares)
      cache.set(keyOf(w.result, view, o.slice, w.every), o);
      if (cache.size > MAX_ENTRIES) cache.delete(cache.keys().next().value!);
      w.onReady();
    })
    .catch((e: Error) => console.warn(`[sam] slice overlay: ${e.message}`))
    .finally(() => {
      st.busy = false;
      pump(view);
    });
}
