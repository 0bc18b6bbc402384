/**
 * The training log of a run: loss.csv (one row per iteration, appended and flushed as training
 * goes), loss.svg (the curves with axes and a legend, loss-plot-svg.ts) and loss.png (the same
 * curves without text), both redrawn at each checkpoint and at the end.
 */
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../util/atomic-write.ts';
import { encodePng } from '../util/png.ts';
import { plotLossSvg } from './loss-plot-svg.ts';

export interface LossRow {
  iteration: number;
  total: number;
  localAB: number;
  localBA: number;
  globalAB: number;
  globalBA: number;
  lr: number;
  seconds: number;
  /**
   * Where the iteration's time went, seconds (not written to loss.csv): drawing and augmenting the
   * patch pairs on the CPU; the mining forward pass and the negatives' selection (ends with a read
   * back); the loss's forward and backward passes (ends with reading the loss); the optimiser's
   * update (queued on a GPU: its work may finish during the next iteration's sampling).
   */
  phases?: { sample: number; mine: number; gradients: number; update: number };
}

const COLUMNS: (keyof LossRow)[] = [
  'iteration',
  'total',
  'localAB',
  'localBA',
  'globalAB',
  'globalBA',
  'lr',
  'seconds',
];

/**
 * The log of a run; the columns and plotted series are the SAM training's unless given (the first
 * columns must be 'iteration' and 'total' for other logs too).
 */
export class LossLog<R extends { iteration: number; total: number } = LossRow> {
  readonly csv: string;
  readonly png: string;
  readonly svg: string;
  private readonly columns: (keyof R & string)[];
  private readonly series: [keyof R & string, [number, number, number]][];
  constructor(
    readonly dir: string,
    columns?: (keyof R & string)[],
    series?: [keyof R & string, [number, number, number]][],
  ) {
    this.columns = columns ?? (COLUMNS as (keyof R & string)[]);
    this.series = series ?? (SERIES as [keyof R & string, [number, number, number]][]);
    this.csv = join(dir, 'loss.csv');
    this.png = join(dir, 'loss.png');
    this.svg = join(dir, 'loss.svg');
  }

  /** Rows already logged (when resuming), dropping any beyond `upTo` (iterations not checkpointed). */
  load(upTo = Infinity): R[] {
    if (!existsSync(this.csv)) return [];
    const lines = readFileSync(this.csv, 'utf8').trim().split('\n').slice(1);
    const rows = lines
      .map((l) => l.split(',').map(Number))
      .filter((v) => v.length === this.columns.length && v.every(Number.isFinite))
      .map((v) => Object.fromEntries(this.columns.map((c, n) => [c, v[n]])) as unknown as R)
      .filter((r) => r.iteration <= upTo);
    this.rewrite(rows);
    return rows;
  }

  private rewrite(rows: R[]): void {
    const cols = this.columns;
    const text = [cols.join(','), ...rows.map((r) => cols.map((c) => r[c]).join(','))].join('\n') + '\n';
    writeFileAtomic(this.csv, Buffer.from(text));
  }

  start(): void {
    if (!existsSync(this.csv)) this.rewrite([]);
  }

  append(r: R): void {
    appendFileSync(this.csv, this.columns.map((c) => r[c]).join(',') + '\n');
  }

  /** Draw the total loss and the terms against the iteration. */
  plot(rows: R[]): void {
    writeFileAtomic(this.png, plotLoss(rows, 640, 400, this.series));
    writeFileAtomic(this.svg, Buffer.from(plotLossSvg(rows, this.series)));
  }
}

const SERIES: [keyof LossRow, [number, number, number]][] = [
  ['total', [0, 0, 0]],
  ['localAB', [31, 119, 180]],
  ['localBA', [174, 199, 232]],
  ['globalAB', [214, 39, 40]],
  ['globalBA', [255, 152, 150]],
];

/** A 640x400 PNG: each series as a polyline, y from 0 to the maximum, light grid every 10%. */
export function plotLoss<R extends { iteration: number; total: number } = LossRow>(
  rows: R[],
  width = 640,
  height = 400,
  series: [keyof R & string, [number, number, number]][] = SERIES as [keyof R & string, [number, number, number]][],
): Buffer {
  const px = new Uint8Array(width * height * 3).fill(255);
  const m = 30;
  const set = (x: number, y: number, c: [number, number, number]): void => {
    if (x < 0 || y < 0 || x >= width || y >= height) return;
    px.set(c, (Math.round(y) * width + Math.round(x)) * 3);
  };
  const line = (x0: number, y0: number, x1: number, y1: number, c: [number, number, number]): void => {
    const n = Math.max(1, Math.ceil(Math.max(Math.abs(x1 - x0), Math.abs(y1 - y0))));
    for (let s = 0; s <= n; s++) set(x0 + ((x1 - x0) * s) / n, y0 + ((y1 - y0) * s) / n, c);
  };
  for (let g = 0; g <= 10; g++) {
    const y = height - m - ((height - 2 * m) * g) / 10;
    line(m, y, width - m, y, g === 0 ? [0, 0, 0] : [225, 225, 225]);
  }
  line(m, m, m, height - m, [0, 0, 0]);
  if (rows.length === 0) return encodePng(width, height, px);
  const x0 = rows[0].iteration;
  const x1 = Math.max(rows[rows.length - 1].iteration, x0 + 1);
  const ymax = rows.reduce((m, r) => (r.total > m ? r.total : m), 1e-9);
  const X = (it: number): number => m + ((width - 2 * m) * (it - x0)) / (x1 - x0);
  const Y = (v: number): number => height - m - ((height - 2 * m) * Math.min(v, ymax)) / ymax;
  const v = (r: R, key: keyof R & string) => r[key] as number;
  for (const [key, colour] of series)
    for (let n = 1; n < rows.length; n++)
      line(X(rows[n - 1].iteration), Y(v(rows[n - 1], key)), X(rows[n].iteration), Y(v(rows[n], key)), colour);
  if (rows.length === 1) for (const [key, colour] of series) set(X(rows[0].iteration), Y(v(rows[0], key)), colour);
  return encodePng(width, height, px);
}
