/**
 * Content check of a view's canvas for the UI tests: renders, copies the WebGL canvas into a small 2D
 * canvas in the same task (the drawing buffer is still valid) and returns mean, standard deviation
 * and a checksum of the grey values, so a test can tell blank from real content and one slice from another.
 */
import type { SliceView } from './slice-view.ts';

export interface CanvasStats {
  width: number;
  height: number;
  mean: number;
  std: number;
  /** Fraction of pixels brighter than 10/255. */
  nonBlack: number;
  checksum: number;
}

export function canvasStats(view: SliceView): CanvasStats | null {
  const src = view.canvas();
  if (!src) return null;
  view.render();
  const w = 128;
  const h = Math.max(1, Math.round((128 * src.height) / Math.max(1, src.width)));
  const c = document.createElement('canvas');
  c.width = w;
  c.height = h;
  const g = c.getContext('2d', { willReadFrequently: true });
  if (!g) return null;
  g.drawImage(src, 0, 0, w, h);
  const px = g.getImageData(0, 0, w, h).data;
  let sum = 0;
  let sq = 0;
  let bright = 0;
  let checksum = 0;
  const n = w * h;
  for (let p = 0; p < n; p++) {
    const v = (px[p * 4] + px[p * 4 + 1] + px[p * 4 + 2]) / 3;
    sum += v;
    sq += v * v;
    if (v > 10) bright++;
    checksum = (checksum * 31 + px[p * 4] + 7 * px[p * 4 + 1]) >>> 0;
  }
  const mean = sum / n;
  return {
    width: src.width,
    height: src.height,
    mean,
    std: Math.sqrt(Math.max(0, sq / n - mean * mean)),
    nonBlack: bright / n,
    checksum,
  };
}
