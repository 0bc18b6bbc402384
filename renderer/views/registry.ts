/**
 * The live slice views by name, for the keyboard shortcuts, the status line and the UI tests
 * (window.__sam exposes them with canvasStats; it holds no data the page does not already show).
 */
import { useApp } from '../store/index.ts';
import { canvasStats } from './canvas-stats.ts';
import type { SliceView } from './slice-view.ts';
import type { ViewName } from './view-geometry.ts';

export const liveViews = new Map<ViewName, SliceView>();

declare global {
  interface Window {
    __sam?: { views: Map<ViewName, SliceView>; stats: typeof canvasStats; store: typeof useApp };
  }
}

window.__sam = { views: liveViews, stats: canvasStats, store: useApp };
