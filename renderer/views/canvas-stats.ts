/**
 * Content check of a view's canvas for the UI tests: renders, copies the WebGL canvas and the 2-D
 * overlay canvas over it (view-overlay.ts: lens, glyphs, grid, pairs) into a small 2D canvas in the
 * same task (the drawing buffer is still valid) and returns mean, standard deviation and a checksum of
 * the grey values, so a test can tell blank from real content and one slice from another. An optional
 * region (fractions of the view) restricts the figures to a part of the picture.
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
  /** The grey values of the region, row by row (only when a region was asked for). */
  grey?: number[];
}

export interface Region {
  x: number;
  y: number;
  w: number;
  h: number;
}

export function canvasStats(view: SliceView, region?: Region): CanvasStats | null {
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
  const overlay = src.closest('.viewport')?.querySelector<HTMLCanvasElement>('canvas.view-overlay');
  if (overlay && overlay.width > 0 && overlay.height > 0) g.drawImage(overlay, 0, 0, w, h);
  const r = region ?? { x: 0, y: 0, w: 1, h: 1 };
  const x0 = Math.max(0, Math.floor(r.x * w));
  const y0 = Math.max(0, Math.floor(r.y * h));
  const rw = Math.max(1, Math.min(w - x0, Math.round(r.w * w)));
  const rh = Math.max(1, Math.min(h - y0, Math.round(r.h * h)));
  const px = g.getImageData(x0, y0, rw, rh).data;
  let sum = 0;
  let sq = 0;
  let bright = 0;
  let checksum = 0;
  const n = rw * rh;
  const grey: number[] = [];
  for (let p = 0; p < n; p++) {
    const v = (px[p * 4] + px[p * 4 + 1] + px[p * 4 + 2]) / 3;
    if (region) grey.push(v);
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
    ...(region ? { grey } : {}),
  };
}
