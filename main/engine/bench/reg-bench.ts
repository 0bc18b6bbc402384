/**
 * The registration benchmark behind `sam bench-reg`: pairs made from real CTs by known transforms
 * (synthetic-pair.ts: affine up to +-15 degrees, +-15 % scale, +-30 mm shift, a smooth deformation up to
 * 15 mm, noise, a cropped field of view), registered by the SAM cascade and, side by side, by elastix
 * (affine + B-spline, elastix.ts). Scored on
 * - TRE on dense known correspondences (fixed body voxels, every `stride`-th, whose true match lies inside
 *   the moving image, at least 2 voxels from its faces: elsewhere there is no correspondence to find):
 *   mean and 95th percentile;
 * - Dice per organ: the fixed label map (TotalSegmentator) pulled into the moving image through the
 *   known transform (nearest neighbour) gives the moving labels; each method's field warps them back
 *   onto the fixed grid (nearest) for comparison with the fixed labels;
 * - folding: % of fixed-body voxels where the Jacobian determinant of the field is <= 0 (jacobian.ts);
 * - time per stage.
 */
import { applyAffine, indexToWorldMatrix, worldToIndexMatrix } from '../volume/geometry.ts';
import { bodyMask } from '../volume/mask.ts';
import { resample } from '../volume/resample.ts';
import { makeVolume, type Volume } from '../volume/volume.ts';
import type { EmbeddingEngine } from '../compute/embedding-engine.ts';
import { InputError } from '../errors.ts';
import { registerVolumes, type RegisterOptions, type Stage } from '../register/cascade.ts';
import { fieldFromAffine, type Field } from '../register/field/field.ts';
import { jacobianDeterminant } from '../register/field/jacobian.ts';
import { warpVolume } from '../register/field/warp.ts';
import { stageField } from '../register/stage-field.ts';
import { bodyPoints, dicePerLabel, tre, type TreStats } from './reg-metrics.ts';
import { runElastix } from './elastix.ts';
import { insideGrid, makeSyntheticPair, type SyntheticPair, type SyntheticPairOptions } from './synthetic-pair.ts';

export interface BenchSource {
  name: string;
  ct: Volume;
  /** Organ labels on the CT's grid (or any grid: resampled by nearest neighbour). */
  labels?: Volume;
}

export interface BenchRow {
  pair: string;
  method: string;
  tre: TreStats;
  /** Mean Dice over the organs with at least minOrganVoxels voxels in the fixed labels (NaN: no labels). */
  diceMean: number;
  dice: Record<string, number>;
  foldedPercent: number;
  seconds: Record<string, number>;
  secondsTotal: number;
  /** The method refused the pair (an InputError's message: e.g. an affine no two patients relate by); no numbers. */
  refused?: string;
}

export interface BenchOptions {
  seeds: number[];
  spacingMm: number;
  stages: Stage[];
  matcher: 'sam' | 'ncc';
  engine?: EmbeddingEngine;
  elastix: boolean;
  /** Override elastix's iterations per resolution (quick runs). */
  elastixIterations?: number;
  /** TRE point stride over the fixed body voxels (default 23). */
  stride?: number;
  minOrganVoxels?: number;
  transform?: Partial<SyntheticPairOptions>;
  /**
   * Runs of the cascade per pair (default 1); the rows report the last. More than one measures a warm
   * process: the first run also compiles the GPU programs and warms the JIT (its total is reported in
   * progress).
   */
  repeat?: number;
  /** Counts of the host's work (e.g. cli/bench/host-stats.ts) around the last run, reported by onProgress. */
  hostStats?: () => { stop(per: number): string[] };
  /** Further options of the cascade (stage options). */
  register?: Pick<
    RegisterOptions,
    | 'coarse'
    | 'deform'
    | 'gridMm'
    | 'deformNet'
    | 'deviceModel'
    | 'threads'
    | 'refine'
    | 'nccOnDevice'
    | 'featureWeight'
  >;
  onProgress?: (what: string) => void;
  signal?: AbortSignal;
}

/** The benchmark's transform ranges (the issue's): +-15 deg, +-15 % scale, +-30 mm, deformation <= 15 mm. */
export const BENCH_TRANSFORM: Partial<SyntheticPairOptions> = {
  maxRotationDeg: 15,
  maxScale: 0.15,
  maxShear: 0.03,
  maxTranslationMm: 30,
  bumps: 3,
  maxDeformationMm: 15,
  bumpSigmaMm: [35, 60],
  noiseHu: 20,
};

/** The fixed labels pulled into the moving image through the known transform (nearest neighbour). */
export function movingLabels(labels: Volume, pair: SyntheticPair): Volume {
  const g = pair.moving;
  const out = new Uint16Array(g.data.length);
  const toW = indexToWorldMatrix(g);
  const toL = worldToIndexMatrix(labels);
  const [ni, nj, nk] = g.size;
  const [li, lj, lk] = labels.size;
  for (let k = 0, v = 0; k < nk; k++)
    for (let j = 0; j < nj; j++)
      for (let i = 0; i < ni; i++, v++) {
        const x = pair.movingToFixed(applyAffine(toW, [i, j, k]));
        const c = applyAffine(toL, x).map(Math.round);
        if (c[0] >= 0 && c[1] >= 0 && c[2] >= 0 && c[0] < li && c[1] < lj && c[2] < lk)
          out[v] = labels.data[c[0] + li * (c[1] + lj * c[2])];
      }
  return makeVolume({ ...g, components: 1, data: out, meta: { description: 'moving labels (known transform)' } });
}

function score(
  name: string,
  method: string,
  field: Field,
  pair: SyntheticPair,
  ctx: {
    points: ReturnType<typeof bodyPoints>;
    mask: Volume;
    fixedLabels?: Volume;
    movingLabels?: Volume;
    minOrgan: number;
  },
  seconds: Record<string, number>,
): BenchRow {
  const t = tre(field, pair.truth, ctx.points);
  const dice: Record<string, number> = {};
  let diceMean = NaN;
  if (ctx.fixedLabels && ctx.movingLabels) {
    const warped = warpVolume(ctx.movingLabels, field, { interpolation: 'nearest', fill: 0 });
    const counts = new Map<number, number>();
    for (const l of ctx.fixedLabels.data) if (l > 0) counts.set(l, (counts.get(l) ?? 0) + 1);
    const d = dicePerLabel(ctx.fixedLabels, warped);
    const kept = [...d].filter(([l]) => (counts.get(l) ?? 0) >= ctx.minOrgan);
    for (const [l, v] of kept) dice[String(l)] = v;
    diceMean = kept.length ? kept.reduce((s, [, v]) => s + v, 0) / kept.length : NaN;
  }
  const foldedPercent = jacobianDeterminant(field, { mask: ctx.mask }).foldedPercent;
  const secondsTotal = Object.values(seconds).reduce((a, b) => a + b, 0);
  return { pair: name, method, tre: t, diceMean, dice, foldedPercent, seconds, secondsTotal };
}

/** Run the benchmark on sources x seeds (pair n uses source n mod sources and seed n). */
export async function benchRegistration(sources: BenchSource[], o: BenchOptions): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  for (let n = 0; n < o.seeds.length; n++) {
    const src = sources[n % sources.length];
    const seed = o.seeds[n];
    const name = `${src.name}#${seed}`;
    o.onProgress?.(`${name}: making the pair`);
    const pair = makeSyntheticPair(src.ct, { ...BENCH_TRANSFORM, ...o.transform, seed, spacingMm: o.spacingMm });
    const mask = bodyMask(pair.fixed);
    const fixedLabels = src.labels
      ? resample(src.labels, pair.fixed, { interpolation: 'nearest', fill: 0, outputType: 'uint16' })
      : undefined;
    const ctx = {
      points: bodyPoints(mask, o.stride ?? 23).filter((p) => insideGrid(pair.moving, pair.truth(p), 2 * o.spacingMm)),
      mask,
      fixedLabels,
      movingLabels: src.labels ? movingLabels(src.labels, pair) : undefined,
      minOrgan: o.minOrganVoxels ?? 50,
    };
    rows.push(score(name, 'none', fieldFromAffine(pair.fixed, [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0]), pair, ctx, {}));
    rows.push(...(await cascadeRows(name, pair, ctx, o)));
    if (o.elastix) {
      o.onProgress?.(`${name}: elastix (affine + B-spline)`);
      const e = await runElastix(pair.fixed, pair.moving, { signal: o.signal, iterations: o.elastixIterations });
      rows.push(score(name, 'elastix affine+bspline', e.field, pair, ctx, e.seconds));
    }
  }
  return rows;
}

type Cascade = Awaited<ReturnType<typeof registerVolumes>>;
type ScoreContext = Parameters<typeof score>[4];

/**
 * The cascade's rows of one pair (affine, + coarse, + deform): run `repeat` times, the last scored. A
 * refusal (an InputError, e.g. an affine no two patients relate by) is the cascade's answer for this
 * pair and gives a row that says so; anything else ends the benchmark.
 */
async function cascadeRows(name: string, pair: SyntheticPair, ctx: ScoreContext, o: BenchOptions): Promise<BenchRow[]> {
  let r: Cascade;
  try {
    r = await cascadeRuns(name, pair, o);
  } catch (e) {
    if (!(e instanceof InputError)) throw e;
    o.onProgress?.(`${name}: the cascade refused the pair: ${e.message}`);
    return [refusedRow(name, `${matcherLabel(o)} ${o.stages.join('+')}`, e.message)];
  }
  const t = r.qa.secondsPerStage;
  if (r.qa.embeddingOnHost) o.onProgress?.(`${name}: embedded on the host, not the GPU: ${r.qa.embeddingOnHost}`);
  if (typeof r.qa.masksSecondsDuringEmbedding === 'number')
    o.onProgress?.(
      `${name}: body masks made ${r.qa.masksOnThreads ? 'on worker threads meanwhile' : 'on the CPU during the GPU embedding'}: ` +
        `${seconds(r.qa.masksSecondsDuringEmbedding)} s`,
    );
  // whether the later stages' corrections were used (map-ncc.ts: only when they raised the images' NCC)
  const used = (u: boolean | undefined, before?: number, after?: number) =>
    `${u === false ? 'not used' : 'used'} (NCC ${before?.toFixed(5)} -> ${after?.toFixed(5)})`;
  if (r.coarse)
    o.onProgress?.(`${name}: coarse ${used(r.coarse.stats.used, r.coarse.stats.nccAffine, r.coarse.stats.nccCoarse)}`);
  if (r.deform?.stats.kept)
    o.onProgress?.(
      `${name}: deform ${used(r.deform.stats.used, r.deform.stats.nccBefore, r.deform.stats.nccAfter).replace('NCC', 'unbiased LNCC')}`,
    );
  if (r.deform) {
    const d = r.deform.stats.seconds;
    o.onProgress?.(
      `${name}: deform stage: prepare ${seconds(d.prepare)} s, optimise ${seconds(d.optimise)} s ` +
        `(${r.deform.stats.optimisedOn}, grid ${r.deform.stats.grid.size.join('x')}), fold check ${seconds(d.foldCheck)} s`,
    );
  }
  const rows = [
    score(name, `${matcherLabel(o)} affine`, fieldFromAffine(pair.fixed, r.affine.affine), pair, ctx, {
      affine: t.affine,
    }),
  ];
  if (r.coarse)
    rows.push(
      score(
        name,
        `${matcherLabel(o)} affine+coarse`,
        stageField(pair.fixed, r.affine.affine, [r.coarse.grid]),
        pair,
        ctx,
        {
          affine: t.affine,
          coarse: t.coarse,
        },
      ),
    );
  if (r.deform)
    rows.push(
      score(name, `${matcherLabel(o)} ${o.stages.join('+')}${r.deformNet ? ' (net + IO)' : ''}`, r.field, pair, ctx, t),
    );
  return rows;
}

/** The cascade rows' name: its matcher, SAM (refined by NCC or not: the table's header says) or NCC. */
function matcherLabel(o: BenchOptions): string {
  return o.matcher === 'ncc' ? 'NCC' : 'SAM';
}

/** The cascade on a pair `repeat` times (a warm process measured by the last); the last result. */
async function cascadeRuns(name: string, pair: SyntheticPair, o: BenchOptions): Promise<Cascade> {
  const runs = Math.max(1, o.repeat ?? 1);
  let r!: Cascade;
  for (let run = 1; run <= runs; run++) {
    o.onProgress?.(
      `${name}: SAM cascade (${o.stages.join(',')}, ${o.matcher})${runs > 1 ? `, run ${run} of ${runs}` : ''}`,
    );
    const stats = run === runs ? o.hostStats?.() : undefined;
    r = await registerVolumes(pair.fixed, pair.moving, {
      stages: o.stages,
      matcher: o.matcher,
      engine: o.engine,
      gridMm: 24,
      ...o.register,
      signal: o.signal,
    });
    if (stats) for (const line of stats.stop(1)) o.onProgress?.(`${name}: run ${run}, host: ${line}`);
    if (run < runs)
      o.onProgress?.(`${name}: run ${run}: ${r.qa.secondsTotal.toFixed(2)} s (${stageTimes(r.qa.secondsPerStage)})`);
  }
  return r;
}

/** A row for a method that refused the pair: no numbers, the reason. */
function refusedRow(pair: string, method: string, reason: string): BenchRow {
  const none: TreStats = { points: 0, mean: NaN, p95: NaN, max: NaN };
  return {
    pair,
    method,
    tre: none,
    diceMean: NaN,
    dice: {},
    foldedPercent: NaN,
    seconds: {},
    secondsTotal: 0,
    refused: reason,
  };
}

/** Seconds with two decimals below 10 s (a GPU's stages), one above. */
function seconds(v: number): string {
  return v < 10 ? v.toFixed(2) : v.toFixed(1);
}

function stageTimes(t: Record<string, number>): string {
  return Object.entries(t)
    .map(([k, v]) => `${k} ${seconds(v)}`)
    .join(', ');
}

/** The rows as a text table. */
export function benchTable(rows: BenchRow[]): string {
  const head = ['pair', 'method', 'TRE mean mm', 'TRE p95 mm', 'Dice mean', 'folding %', 'time s', 'time per stage s'];
  const body = rows.map((r) =>
    r.refused
      ? [r.pair, `${r.method}: refused`, '-', '-', '-', '-', '-', r.refused.replace(/\s+/g, ' ').slice(0, 160)]
      : [
          r.pair,
          r.method,
          r.tre.mean.toFixed(2),
          r.tre.p95.toFixed(2),
          Number.isFinite(r.diceMean) ? r.diceMean.toFixed(3) : '-',
          r.foldedPercent.toFixed(3),
          r.secondsTotal ? seconds(r.secondsTotal) : '-',
          stageTimes(r.seconds) || '-',
        ],
  );
  const widths = head.map((h, c) => Math.max(h.length, ...body.map((b) => b[c].length)));
  const line = (cells: string[]) => `| ${cells.map((x, c) => x.padEnd(widths[c])).join(' | ')} |`;
  return [line(head), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...body.map(line)].join('\n');
}
