/**
 * The live slice views by name, for the keyboard shortcuts, the status line and the UI tests
 * (window.__sam exposes them with canvasStats; it holds no data the page does not already show).
 */
import { useApp } from '../store/index.ts';
import { canvasStats } from './canvas-stats.ts';
import type { SliceView } from './slice-view.ts';
import type { ViewName } from './view-geometry.ts';
import type { ViewOverlay } from './view-overlay.ts';

export const liveViews = new Map<ViewName, SliceView>();
/** Each view's 2-D overlay (what it drew: counts, pair markers and colours). */
export const liveOverlays = new Map<ViewName, ViewOverlay>();

declare global {
  interface Window {
    __sam?: {
      views: Map<ViewName, SliceView>;
      overlays: Map<ViewName, ViewOverlay>;
      stats: typeof canvasStats;
      store: typeof useApp;
    };
  }
}

window.__sam = { views: liveViews, overlays: liveOverlays, stats: canvasStats, store: useApp };
