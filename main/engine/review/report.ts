/**
 * The review's sign-off record and QA report: report.json (the numbers) and a self-contained
 * report.html (the same numbers as tables, and key slices as embedded PNG images: mid-slices of
 * the fixed and warped images, a fixed/warped checkerboard and the low-confidence overlay, with a
 * CT window/level), both written atomically (util/atomic-write.ts) and never over an input.
 *
 * Slice images follow slice-plane.ts's radiological layout, with square pixels (nearest neighbour
 * at the finer of the two in-plane spacings).
 */
import type { JacobianSummary } from './field-stats.ts';
import { join } from 'node:path';
import { InputError } from '../errors.ts';
import { writeFileAtomic } from '../util/atomic-write.ts';
import { encodePng } from '../util/png.ts';
import { sameGrid } from '../volume/geometry.ts';
import type { Volume } from '../volume/volume.ts';
import type { ConfidenceResult, ConfidenceSummary } from './confidence.ts';
import { writeVolume } from '../volume/io/index.ts';
import type { QaFlag } from './qa-flags.ts';
import { slicePlane, sliceIndex, type Orientation } from './slice-plane.ts';

export type Decision = 'approved' | 'rejected';

export interface SignOff {
  decision: Decision;
  comment: string;
  reviewer: string;
  /** ISO 8601 time of the decision. */
  time: string;
}

/** A checked sign-off record (time defaults to now). A rejection needs a comment. */
export function makeSignOff(s: {
  decision: string;
  comment?: string;
  reviewer: string;
  time?: string | Date;
}): SignOff {
  if (s.decision !== 'approved' && s.decision !== 'rejected')
    throw new InputError('sign-off', `decision must be 'approved' or 'rejected', not '${s.decision}'`);
  const reviewer = (s.reviewer ?? '').trim();
  if (!reviewer) throw new InputError('sign-off', 'the reviewer must be named');
  const comment = (s.comment ?? '').trim();
  if (s.decision === 'rejected' && !comment) throw new InputError('sign-off', 'a rejection needs a comment saying why');
  const t = s.time === undefined ? new Date() : new Date(s.time);
  if (Number.isNaN(t.getTime())) throw new InputError('sign-off', `not a time: ${String(s.time)}`);
  return { decision: s.decision, comment, reviewer, time: t.toISOString() };
}

export interface ReviewReport {
  createdAt: string;
  inputs: { fixed: string; moving: string; resultDir: string; labels?: string };
  /** From the result's qa.json: stages, matcher, engine, per-stage seconds, affine, image similarity. */
  registrationQa: Record<string, unknown> | null;
  /** Residuals of the SAM-affine pairs (pairs.csv). */
  residuals: {
    pairs: number;
    kept: number;
    inliers: number;
    rmsMm: number;
    medianMm: number;
    p95Mm: number;
    maxMm: number;
  } | null;
  jacobian: JacobianSummary;
  displacementMm: { mean: number; p95: number; max: number };
  confidence: ConfidenceSummary | null;
  /** What the QA rules (qa-flags.ts) flag in the confidence and Jacobian numbers; empty = nothing flagged. */
  flags: QaFlag[];
  /** Seconds spent by the review itself per step. */
  reviewSeconds: Record<string, number>;
  files: string[];
  signOff: SignOff | null;
}

export interface WindowLevel {
  window: number;
  level: number;
}

/** Soft-tissue CT window. */
export const CT_WINDOW: WindowLevel = { window: 400, level: 40 };

export interface SliceImage {
  width: number;
  height: number;
  /** Grey (1 byte per pixel) or RGB (3), row-major, top row first. */
  channels: 1 | 3;
  pixels: Uint8Array;
}

/** Sampling of a slice: for each pixel, the flat voxel index (square pixels, radiological layout). */
function sliceSampling(g: Volume, orientation: Orientation, slice?: number) {
  const plane = slicePlane(g, orientation);
  const s = sliceIndex(g, plane, slice);
  const sc = g.spacing[plane.colAxis];
  const sr = g.spacing[plane.rowAxis];
  const px = Math.min(sc, sr);
  const nc = g.size[plane.colAxis];
  const nr = g.size[plane.rowAxis];
  const width = Math.max(1, Math.round(((nc - 1) * sc) / px) + 1);
  const height = Math.max(1, Math.round(((nr - 1) * sr) / px) + 1);
  const voxel = new Int32Array(width * height);
  const stride = [1, g.size[0], g.size[0] * g.size[1]];
  for (let r = 0; r < height; r++) {
    let ir = Math.min(nr - 1, Math.round((r * px) / sr));
    if (plane.rowFlip) ir = nr - 1 - ir;
    for (let c = 0; c < width; c++) {
      let ic = Math.min(nc - 1, Math.round((c * px) / sc));
      if (plane.colFlip) ic = nc - 1 - ic;
      voxel[r * width + c] = s * stride[plane.axis] + ir * stride[plane.rowAxis] + ic * stride[plane.colAxis];
    }
  }
  return { width, height, voxel };
}

const grey = (v: number, wl: WindowLevel) => {
  if (!Number.isFinite(v)) return 0;
  const x = ((v - (wl.level - wl.window / 2)) / wl.window) * 255;
  return x < 0 ? 0 : x > 255 ? 255 : Math.round(x);
};

/** A grey slice of a scalar volume with window/level (default: the middle slice, soft-tissue window). */
export function sliceImage(
  v: Volume,
  orientation: Orientation,
  options: { slice?: number } & Partial<WindowLevel> = {},
): SliceImage {
  const wl = { ...CT_WINDOW, ...options };
  const { width, height, voxel } = sliceSampling(v, orientation, options.slice);
  const pixels = new Uint8Array(width * height);
  for (let p = 0; p < pixels.length; p++) pixels[p] = grey(v.data[voxel[p] * v.components], wl);
  return { width, height, channels: 1, pixels };
}

/** Checkerboard of two volumes on the same grid: `squares` squares across the wider side. */
export function checkerboardImage(
  a: Volume,
  b: Volume,
  orientation: Orientation,
  options: { slice?: number; squares?: number } & Partial<WindowLevel> = {},
): SliceImage {
  if (!sameGrid(a, b, 0.01)) throw new InputError('checkerboard', 'the two volumes are not on the same grid');
  const wl = { ...CT_WINDOW, ...options };
  const { width, height, voxel } = sliceSampling(a, orientation, options.slice);
  const side = Math.max(1, Math.ceil(Math.max(width, height) / (options.squares ?? 8)));
  const pixels = new Uint8Array(width * height);
  for (let r = 0; r < height; r++)
    for (let c = 0; c < width; c++) {
      const p = r * width + c;
      const src = (Math.floor(r / side) + Math.floor(c / side)) % 2 === 0 ? a : b;
      pixels[p] = grey(src.data[voxel[p] * src.components], wl);
    }
  return { width, height, channels: 1, pixels };
}

/** The fixed slice in grey with the voxels flagged in `flags` (same grid) tinted red. */
export function flaggedOverlayImage(
  fixed: Volume,
  flags: Volume,
  orientation: Orientation,
  options: { slice?: number } & Partial<WindowLevel> = {},
): SliceImage {
  if (!sameGrid(fixed, flags, 0.01)) throw new InputError('overlay', 'the flags are not on the fixed grid');
  const wl = { ...CT_WINDOW, ...options };
  const { width, height, voxel } = sliceSampling(fixed, orientation, options.slice);
  const pixels = new Uint8Array(width * height * 3);
  for (let p = 0; p < width * height; p++) {
    const gv = grey(fixed.data[voxel[p] * fixed.components], wl);
    const f = flags.data[voxel[p]] !== 0;
    pixels[3 * p] = f ? Math.round(0.45 * gv + 0.55 * 255) : gv;
    pixels[3 * p + 1] = f ? Math.round(0.45 * gv) : gv;
    pixels[3 * p + 2] = f ? Math.round(0.45 * gv) : gv;
  }
  return { width, height, channels: 3, pixels };
}

export function imagePng(img: SliceImage): Buffer {
  return encodePng(img.width, img.height, img.pixels, img.channels);
}

export interface ReportImage {
  title: string;
  png: Buffer;
}

/** The key slices of the report: per orientation, fixed, warped, checkerboard, and flagged voxels when given. */
export function keyImages(
  fixed: Volume,
  warped: Volume,
  lowConfidence?: Volume,
  wl: WindowLevel = CT_WINDOW,
): ReportImage[] {
  const out: ReportImage[] = [];
  for (const o of ['axial', 'coronal', 'sagittal'] as const) {
    out.push({ title: `${o}: fixed`, png: imagePng(sliceImage(fixed, o, wl)) });
    out.push({ title: `${o}: warped moving`, png: imagePng(sliceImage(warped, o, wl)) });
    out.push({ title: `${o}: checkerboard fixed / warped`, png: imagePng(checkerboardImage(fixed, warped, o, wl)) });
    if (lowConfidence)
      out.push({
        title: `${o}: low SAM confidence (red)`,
        png: imagePng(flaggedOverlayImage(fixed, lowConfidence, o, wl)),
      });
  }
  return out;
}

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const num = (x: unknown, d = 2) =>
  typeof x === 'number' ? (Number.isFinite(x) ? x.toFixed(d) : String(x)) : esc(String(x ?? ''));

function table(rows: [string, string][]): string {
  return `<table>${rows.map(([k, v]) => `<tr><th>${esc(k)}</th><td>${v}</td></tr>`).join('')}</table>`;
}

/** The self-contained HTML report (images embedded as data: URLs; no external resources). */
export function renderReportHtml(report: ReviewReport, images: ReportImage[]): string {
  const parts: string[] = [];
  const qa = report.registrationQa ?? {};
  const so = report.signOff;
  parts.push(`<h1>Registration review</h1>`);
  parts.push(
    table([
      ['Fixed', esc(report.inputs.fixed)],
      ['Moving', esc(report.inputs.moving)],
      ['Result', esc(report.inputs.resultDir)],
      ['Created', esc(report.createdAt)],
      [
        'Sign-off',
        so
          ? `<b class="${so.decision}">${so.decision.toUpperCase()}</b> by ${esc(so.reviewer)} at ${esc(so.time)}${so.comment ? `: ${esc(so.comment)}` : ''}`
          : 'not signed off',
      ],
    ]),
  );
  const stages = (qa.secondsPerStage ?? {}) as Record<string, number>;
  parts.push(`<h2>Registration</h2>`);
  parts.push(
    table([
      ['Stages', esc(String(qa.stages ?? ''))],
      [
        qa.engine ? 'Matcher / engine' : 'Matcher',
        [qa.matcher, qa.engine]
          .filter((x) => x !== undefined && x !== null && x !== '')
          .map((x) => esc(String(x)))
          .join(' / '),
      ],
      ...Object.entries(stages).map(([k, v]) => [`Time: ${k}`, `${num(v)} s`] as [string, string]),
      ...Object.entries(report.reviewSeconds).map(([k, v]) => [`Review time: ${k}`, `${num(v)} s`] as [string, string]),
    ]),
  );
  const flags = report.flags ?? [];
  parts.push(`<h2>QA flags</h2>`);
  parts.push(
    flags.length
      ? `<ul class="flags">${flags.map((f) => `<li class="warn">${esc(f.code)}: ${esc(f.message)}</li>`).join('')}</ul>`
      : `<p>None: ${report.confidence ? 'confidence and Jacobian' : 'Jacobian (no confidence map: no SAM embeddings)'} within the limits.</p>`,
  );
  const r = report.residuals;
  if (r) {
    parts.push(
      `<h2>Matched pairs (affine stage${qa.matcher ? `, ${esc(String(qa.matcher).toUpperCase())} matcher` : ''})</h2>`,
    );
    parts.push(
      table([
        ['Pairs / kept / inliers', `${r.pairs} / ${r.kept} / ${r.inliers}`],
        ['Inlier residual RMS', `${num(r.rmsMm)} mm`],
        ['Inlier residual median / p95 / max', `${num(r.medianMm)} / ${num(r.p95Mm)} / ${num(r.maxMm)} mm`],
      ]),
    );
  }
  const j = report.jacobian;
  parts.push(`<h2>Deformation (inside the fixed body)</h2>`);
  parts.push(
    table([
      ['Jacobian determinant min / mean / max', `${num(j.min, 3)} / ${num(j.mean, 3)} / ${num(j.max, 3)}`],
      ['Folded voxels', `${j.folded} of ${j.voxels} (${num(j.foldedPercent, 3)}%)`],
      [
        'Displacement mean / p95 / max',
        `${num(report.displacementMm.mean)} / ${num(report.displacementMm.p95)} / ${num(report.displacementMm.max)} mm`,
      ],
    ]),
  );
  const c = report.confidence;
  if (c) {
    parts.push(`<h2>SAM confidence (threshold ${num(c.threshold)})</h2>`);
    parts.push(
      `<p>Counted over the fixed body's voxels whose mapped point has SAM embeddings in the moving scan ` +
        `(${c.body.voxels} of the ${j.voxels} the deformation statistics count): where the moving scan ` +
        `has no data there is nothing to compare.</p>`,
    );
    const rows = [c.body, ...c.thirds, ...c.octants, ...c.labels];
    parts.push(
      `<table><tr><th>Region</th><th>Voxels</th><th>Mean similarity</th><th>% below threshold</th></tr>${rows
        .map(
          (x) =>
            `<tr class="${x.percentBelow > 10 ? 'warn' : ''}"><td>${esc(x.name)}</td><td>${x.voxels}</td><td>${num(x.meanSimilarity, 3)}</td><td>${num(x.percentBelow, 1)}</td></tr>`,
        )
        .join('')}</table>`,
    );
  }
  if (images.length) {
    parts.push(`<h2>Key slices</h2><div class="grid">`);
    for (const im of images)
      parts.push(
        `<figure><img alt="${esc(im.title)}" src="data:image/png;base64,${im.png.toString('base64')}"><figcaption>${esc(im.title)}</figcaption></figure>`,
      );
    parts.push(`</div>`);
  }
  const css = [
    'body{font-family:system-ui,sans-serif;margin:2em;color:#222}',
    'table{border-collapse:collapse;margin:0.5em 0 1.5em}',
    'th,td{border:1px solid #ccc;padding:3px 8px;text-align:left}',
    'tr.warn td{background:#fde2e2}',
    'li.warn{color:#a11}',
    '.approved{color:#176d2a}.rejected{color:#a11}',
    '.grid{display:flex;flex-wrap:wrap;gap:12px}',
    'figure{margin:0}img{image-rendering:pixelated;width:300px;border:1px solid #888}',
  ].join('');
  return `<!doctype html><html><head><meta charset="utf-8"><title>Registration review</title><style>${css}</style></head><body>${parts.join('\n')}</body></html>\n`;
}

/** Write report.json and report.html into `dir` atomically; returns the paths. */
/** The confidence maps' files beside a result (`sam review`, the app's export; readStoredConfidence reads the map back). */
export const CONFIDENCE_FILES = { map: 'confidence.nii.gz', low: 'low-confidence.nii.gz' } as const;

/** Writes the confidence map and its low-confidence mask into dir (atomic, never over `protect`); their paths. */
export async function writeConfidenceMaps(
  dir: string,
  c: Pick<ConfidenceResult, 'map' | 'lowMask'>,
  options: { protect?: string[] } = {},
): Promise<string[]> {
  const paths = [join(dir, CONFIDENCE_FILES.map), join(dir, CONFIDENCE_FILES.low)];
  await writeVolume(paths[0], c.map, options);
  await writeVolume(paths[1], c.lowMask, options);
  return paths;
}

export function writeReviewReport(
  dir: string,
  report: ReviewReport,
  images: ReportImage[],
  options: { protect?: string[] } = {},
): string[] {
  const json = join(dir, 'report.json');
  const html = join(dir, 'report.html');
  const withFiles = { ...report, files: [...report.files, json, html] };
  writeFileAtomic(json, Buffer.from(JSON.stringify(withFiles, null, 2)), options);
  writeFileAtomic(html, Buffer.from(renderReportHtml(withFiles, images)), options);
  return [json, html];
}
