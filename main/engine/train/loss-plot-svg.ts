/**
 * The loss curves as an SVG (loss.svg beside loss.png): the total on top and the terms below, each
 * panel with its own y range (the data's middle 98%, not from zero: a loss falling from 21 to 19 must show),
 * tick labels on both axes, a legend, and a running mean over 5% of the run drawn over each raw
 * curve so that the trend shows through the noise of single iterations.
 */

export type Colour = [number, number, number];

/** Round tick values covering [lo, hi]: about `count` of them at 1, 2 or 5 times a power of ten. */
export function niceTicks(lo: number, hi: number, count = 5, integer = false): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / Math.max(1, count);
  const p = 10 ** Math.floor(Math.log10(raw));
  let step = [1, 2, 5, 10].map((m) => m * p).find((s) => s >= raw) ?? 10 * p;
  // iterations: no tick between two of them (a short run's axis had 1.5, 2.5 ...)
  if (integer) step = Math.max(1, Math.round(step));
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(+v.toPrecision(12));
  return out;
}

function runningMean(v: number[], window: number): number[] {
  const out: number[] = [];
  let s = 0;
  for (let n = 0; n < v.length; n++) {
    s += v[n];
    if (n >= window) s -= v[n - window];
    out.push(s / Math.min(n + 1, window));
  }
  return out;
}

const esc = (t: string) => t.replace(/&/g, '&amp;').replace(/</g, '&lt;');
const rgb = (c: Colour, a = 1) => `rgba(${c[0]},${c[1]},${c[2]},${a})`;

export function plotLossSvg<R extends { iteration: number; total: number }>(
  rows: R[],
  series: [keyof R & string, Colour][],
  width = 800,
  height = 560,
): string {
  const left = 64;
  const right = 150;
  const top = 24;
  const gap = 44;
  const bottom = 40;
  const panelH = (height - top - gap - bottom) / 2;
  const x0 = rows.length ? rows[0].iteration : 0;
  const x1 = rows.length ? Math.max(rows[rows.length - 1].iteration, x0 + 1) : 1;
  const X = (it: number) => left + ((width - left - right) * (it - x0)) / (x1 - x0);
  const window = Math.max(1, Math.round(rows.length / 20));
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
  ];
  const panels: { title: string; keys: [keyof R & string, Colour][]; y: number }[] = [
    { title: 'total loss', keys: series.filter(([k]) => k === 'total'), y: top },
    { title: 'terms', keys: series.filter(([k]) => k !== 'total'), y: top + panelH + gap },
  ];
  for (const p of panels) {
    const values = rows.flatMap((r) => p.keys.map(([k]) => r[k] as number)).filter(Number.isFinite);
    // the range of the middle 98% of the values: a single odd iteration (a pair without positives
    // has a zero term) runs off the panel rather than flattening every curve
    const sorted = [...values].sort((a, b) => a - b);
    const q = (f: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.round(f * (sorted.length - 1))))];
    let lo = values.length ? q(0.01) : 0;
    let hi = values.length ? q(0.99) : 1;
    if (hi - lo < 1e-9) [lo, hi] = [lo - 0.5, hi + 0.5];
    const pad = 0.05 * (hi - lo);
    lo -= pad;
    hi += pad;
    const Y = (v: number) => p.y + panelH - (panelH * (v - lo)) / (hi - lo);
    const clip = `panel${p.y.toFixed(0)}`;
    out.push(
      `<clipPath id="${clip}"><rect x="${left}" y="${p.y}" width="${width - left - right}" height="${panelH}"/></clipPath>`,
      `<text x="${left}" y="${p.y - 8}" font-weight="bold">${esc(p.title)}</text>`,
    );
    for (const t of niceTicks(lo, hi, 5)) {
      const y = Y(t).toFixed(1);
      out.push(`<line x1="${left}" x2="${width - right}" y1="${y}" y2="${y}" stroke="#e4e4e4"/>`);
      out.push(`<text x="${left - 6}" y="${y}" text-anchor="end" dominant-baseline="middle">${t}</text>`);
    }
    for (const t of niceTicks(x0, x1, 8, true)) {
      const x = X(t).toFixed(1);
      out.push(`<line x1="${x}" x2="${x}" y1="${p.y + panelH}" y2="${p.y + panelH + 4}" stroke="black"/>`);
      out.push(`<text x="${x}" y="${p.y + panelH + 16}" text-anchor="middle">${t}</text>`);
    }
    out.push(
      `<rect x="${left}" y="${p.y}" width="${width - left - right}" height="${panelH}" fill="none" stroke="black"/>`,
    );
    p.keys.forEach(([key, colour], n) => {
      const pts = rows.map((r) => [X(r.iteration), r[key] as number] as const).filter(([, v]) => Number.isFinite(v));
      if (pts.length) {
        const line = (vals: number[], stroke: string, w: number) =>
          out.push(
            `<polyline clip-path="url(#${clip})" fill="none" stroke="${stroke}" stroke-width="${w}" points="${pts
              .map(([x], i) => `${x.toFixed(1)},${Y(vals[i]).toFixed(1)}`)
              .join(' ')}"/>`,
          );
        const raw = pts.map(([, v]) => v);
        // one iteration so far: a dot (a one-point polyline draws nothing)
        if (pts.length === 1)
          out.push(
            `<circle clip-path="url(#${clip})" cx="${pts[0][0].toFixed(1)}" cy="${Y(raw[0]).toFixed(1)}" r="3" fill="${rgb(colour)}"/>`,
          );
        line(raw, rgb(colour, window > 1 ? 0.3 : 1), 1);
        if (window > 1) line(runningMean(raw, window), rgb(colour), 2);
      }
      const ly = p.y + 12 + 18 * n;
      out.push(
        `<line x1="${width - right + 12}" x2="${width - right + 32}" y1="${ly}" y2="${ly}" stroke="${rgb(colour)}" stroke-width="2"/>`,
      );
      out.push(`<text x="${width - right + 38}" y="${ly}" dominant-baseline="middle">${esc(String(key))}</text>`);
    });
  }
  out.push(
    `<text x="${(left + width - right) / 2}" y="${height - 6}" text-anchor="middle">iteration${
      window > 1 ? ` (thick: running mean over ${window} iterations)` : ''
    }</text>`,
    '</svg>',
  );
  return out.join('\n') + '\n';
}
