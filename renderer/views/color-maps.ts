/**
 * The colour maps of the views and their legends, in one place: the difference heat map (HU), the
 * Jacobian map (determinant x1000), the displacement magnitude map (|u| x 10, scaled to the field's
 * maximum), the SAM confidence map (similarity x1000, with opacity) and the affine pairs' residual colours (mm, scaled to the residuals). A map is a list of
 * stops [value, r, g, b] (colours 0..1) interpolated linearly and clamped at both ends, used by the vtk
 * colour transfer functions, the 2-D overlay and the CSS legends alike. Pure functions (no DOM).
 */

export type Stop = readonly [value: number, r: number, g: number, b: number];
export type Rgb = [number, number, number];

/** |fixed - warped| in HU: black (equal) through red and orange to white (>= 1000 HU). */
export const DIFFERENCE_STOPS: readonly Stop[] = [
  [0, 0, 0, 0],
  [100, 0.5, 0, 0],
  [300, 1, 0.4, 0],
  [600, 1, 0.9, 0.2],
  [1000, 1, 1, 1],
];

/**
 * The difference composite's value where the warped image has no moving data (DISPLAY_NO_DATA):
 * below the scale, drawn in DIFFERENCE_NO_DATA_RGB (slate blue), never as agreement or as an error.
 */
export const DIFFERENCE_NO_DATA = -1;
export const DIFFERENCE_NO_DATA_RGB: Rgb = [0.22, 0.27, 0.42];

/** Jacobian determinant x1000: folded (<= 0) magenta, compression blue, 1 grey, expansion red. */
export const JACOBIAN_STOPS: readonly Stop[] = [
  [0, 1, 0, 1],
  [500, 0, 0.3, 1],
  [1000, 0.5, 0.5, 0.5],
  [1500, 1, 0.2, 0],
  [2000, 1, 1, 0],
];

/** A "jet"-like ramp over 0..1: blue, light blue, cyan, yellow, red (bright enough on dark lung). */
const RAMP: readonly Stop[] = [
  [0, 0.25, 0.35, 1],
  [0.25, 0, 0.35, 1],
  [0.5, 0, 0.9, 0.9],
  [0.75, 1, 0.9, 0],
  [1, 1, 0.1, 0],
];

/** Green (small) through yellow to red (at and beyond the scale's end). */
const RESIDUAL_RAMP: readonly Stop[] = [
  [0, 0.1, 0.85, 0.2],
  [0.5, 1, 0.9, 0],
  [1, 1, 0.1, 0.1],
];

function scaled(ramp: readonly Stop[], max: number): Stop[] {
  return ramp.map(([v, r, g, b]) => [v * max, r, g, b] as const);
}

/** Displacement magnitude map in tenths of a mm (the int16 map holds |u| x 10), 0..maxMm. */
export function magnitudeStops(maxMm: number): Stop[] {
  return scaled(RAMP, maxMm * 10);
}

/** The residual colours in mm, 0..scaleMm. */
export function residualStops(scaleMm: number): Stop[] {
  return scaled(RESIDUAL_RAMP, scaleMm);
}

/**
 * The SAM confidence map (similarity x1000; the renderer's copy holds CONFIDENCE_HOLE where the
 * engine had no data): below the threshold opaque red to yellow (likely misregistered), at or above
 * it a faint green, holes transparent. Holes sit ABOVE the scale, so the linear interpolation between
 * a hole and its neighbours passes through transparent or faint values and never paints a false red
 * fringe along the field-of-view border.
 */
export const CONFIDENCE_HOLE = 1100;

export function confidenceStops(threshold: number): Stop[] {
  const t = Math.round(threshold * 1000);
  return [
    [-1000, 0.5, 0, 0],
    [0, 0.9, 0, 0],
    [t - 1, 1, 0.85, 0],
    [t, 0, 0.8, 0.3],
    [1000, 0, 0.8, 0.3],
    [CONFIDENCE_HOLE, 0, 0, 0],
  ];
}

/** The confidence map's opacity stops [value, opacity]. */
export function confidenceOpacityStops(threshold: number): [number, number][] {
  const t = Math.round(threshold * 1000);
  return [
    [-1000, 0.9],
    [t - 1, 0.9],
    [t, 0.12],
    [1000, 0.12],
    [1001, 0],
    [CONFIDENCE_HOLE, 0],
  ];
}

/** The colour of a value: linear between the stops, clamped to the first and last. */
export function colorAt(stops: readonly Stop[], v: number): Rgb {
  if (!(v > stops[0][0])) return [stops[0][1], stops[0][2], stops[0][3]];
  for (let s = 1; s < stops.length; s++) {
    const [x1, r1, g1, b1] = stops[s];
    if (v <= x1) {
      const [x0, r0, g0, b0] = stops[s - 1];
      const t = x1 > x0 ? (v - x0) / (x1 - x0) : 1;
      return [r0 + t * (r1 - r0), g0 + t * (g1 - g0), b0 + t * (b1 - b0)];
    }
  }
  const last = stops[stops.length - 1];
  return [last[1], last[2], last[3]];
}

export function cssColor(c: Rgb, alpha = 1): string {
  const [r, g, b] = c.map((x) => Math.round(Math.min(1, Math.max(0, x)) * 255));
  return alpha === 1 ? `rgb(${r},${g},${b})` : `rgba(${r},${g},${b},${alpha})`;
}

/** A CSS linear-gradient (left to right) over the stops' range, for a legend bar. */
export function cssGradient(stops: readonly Stop[]): string {
  const lo = stops[0][0];
  const span = stops[stops.length - 1][0] - lo || 1;
  const parts = stops.map(([v, r, g, b]) => `${cssColor([r, g, b])} ${(((v - lo) / span) * 100).toFixed(1)}%`);
  return `linear-gradient(to right, ${parts.join(', ')})`;
}

/** The smallest of 1, 2, 5 x 10^n that is >= x (x > 0), for scales and legends. */
export function niceCeil(x: number): number {
  if (!(x > 0) || !Number.isFinite(x)) return 1;
  const p = 10 ** Math.floor(Math.log10(x));
  for (const m of [1, 2, 5, 10]) if (m * p >= x * (1 - 1e-9)) return m * p;
  return 10 * p;
}

/** The largest of 1, 2, 5 x 10^n that is <= x (x > 0), for a scale bar that fits. */
export function niceFloor(x: number): number {
  if (!(x > 0) || !Number.isFinite(x)) return 1;
  const p = 10 ** Math.floor(Math.log10(x));
  for (const m of [5, 2, 1]) if (m * p <= x * (1 + 1e-9)) return m * p;
  return p;
}

/**
 * The residual colour scale's end: twice the 90th percentile of the residuals given (the fit's
 * inliers), rounded up, at least 1 mm; the good pairs then spread over green to yellow and the
 * outliers, often tens of mm, saturate in red.
 */
export function residualScaleMm(residuals: readonly number[]): number {
  const r = residuals.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!r.length) return 1;
  const p90 = r[Math.min(r.length - 1, Math.floor(0.9 * (r.length - 1) + 0.5))];
  return Math.max(1, niceCeil(2 * p90));
}

/** The displacement magnitude colour scale's end (map and glyphs): the field's largest |u|, rounded up. */
export function magnitudeScaleMm(maxMm: number | undefined): number {
  return niceCeil(Math.max(0.1, maxMm ?? 10));
}
