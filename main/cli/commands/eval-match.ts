/**
 * `sam eval-match`: accuracy of point matching on synthetic pairs made from a real CT (known random
 * affine + smooth deformation, noise, field-of-view change; bench/synthetic-pair.ts), for the trained
 * model, the same network at random initialisation, and the NCC template-matching baseline; and the
 * trained model's matches refined by NCC near them, as the registration cascade uses them.
 * Reports the mean radial error (MRE, mm), its median, and the share of points within 5 and 10 mm
 * (CPM@5, CPM@10, the SAM paper's measure), next to the error without any matching (identity).
 */
import { resolve } from 'node:path';
import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { Command } from '../index.ts';
import type { Device } from '../../engine/compute/choose-engine.ts';
import { InputError } from '../../engine/errors.ts';
import { makeSyntheticPair, insideGrid, type SyntheticPair } from '../../engine/bench/synthetic-pair.ts';
import { nccMatch } from '../../engine/bench/ncc-match.ts';
import { NccThreads } from '../../engine/bench/ncc-threads.ts';
import { nccRefineMatches, refinedLocation } from '../../engine/register/ncc-refine.ts';
import { embedVolume } from '../../engine/sam/embed-volume.ts';
import { MatchThreads } from '../../engine/sam/match-threads.ts';
import { matchPoints } from '../../engine/sam/match.ts';
import { createRng } from '../../engine/train/rng.ts';
import { indexToWorld } from '../../engine/volume/geometry.ts';
import { readVolume } from '../../engine/volume/io/index.ts';
import { bodyMask } from '../../engine/volume/mask.ts';
import { checkCt } from '../../engine/volume/intensity.ts';
import type { Vec3 } from '../../engine/volume/volume.ts';
import { defaultModelPath, openModel, type OpenedModel } from './match.ts';
import { intOption } from '../option-values.ts';
import { SHARED_DATA_LABEL, sharedDataPath } from '../shared-data.ts';

/** The fixed list of pair seeds; --pairs N takes the first N. */
export const EVAL_SEEDS = [1101, 2202, 3303, 4404, 5505, 6606, 7707, 8808, 9909, 11011];

const DEFAULT_CT = ['TotalSegmentator', 'tests', 'reference_files', 'example_ct.nii.gz'];

const USAGE = `usage: sam eval-match [options]

  --weights FILE     trained model (default resources/sam-small.samw or $SAM_MODEL; skipped if absent)
  --config NAME      configuration of the random-initialisation baseline (default: the trained
                     model's, else small)
  --pairs N          number of synthetic pairs (default 3), seeds taken from a fixed list
  --seeds A,B,...    explicit pair seeds instead
  --points N         points per pair (default 200), inside the body, truth inside the moving image
  --ct FILE          source CT (default ${DEFAULT_CT.join('/')} under ${SHARED_DATA_LABEL})
  --top-k N          global candidates of the SAM matching (default 20)
  --no-ncc           skip the NCC baseline and the trained model's matches refined by NCC (the
                     registration's default, register/ncc-refine.ts)
  --json             print the results as JSON
  --device NAME      auto (default: a GPU through WebGPU, else ONNX Runtime on the CPU), webgpu,
                     onnx, onnx-cuda, onnx-dml, onnx-coreml, tfjs-cpu, tfjs-node

  Each pair is made from the source CT by a known random affine, smooth deformation, noise and a
  cropped field of view, so every point's true location is known. Columns: MRE, the mean radial
  error (mm: distance from the found location to the true one); median, its median; CPM@5 and
  CPM@10, the share of points found within 5 and 10 mm (the SAM paper's CPM@10 mm).`;

export interface MatchScores {
  method: string;
  points: number;
  mreMm: number;
  medianMm: number;
  cpm5: number;
  cpm10: number;
}

export function scoreErrors(method: string, errors: number[]): MatchScores {
  const n = errors.length;
  const sorted = [...errors].sort((a, b) => a - b);
  return {
    method,
    points: n,
    mreMm: errors.reduce((s, e) => s + e, 0) / n,
    medianMm: n ? (sorted[(n - 1) >> 1] + sorted[n >> 1]) / 2 : NaN,
    cpm5: errors.filter((e) => e <= 5).length / n,
    cpm10: errors.filter((e) => e <= 10).length / n,
  };
}

/** Points inside the fixed image's body whose truth lies inside the moving image, 10 mm in. */
function samplePoints(pair: SyntheticPair, n: number, seed: number): Vec3[] {
  const mask = bodyMask(pair.fixed);
  const rng = createRng(seed);
  const out: Vec3[] = [];
  const [ni, nj, nk] = mask.size;
  for (let tries = 0; out.length < n && tries < 200 * n; tries++) {
    const ijk: Vec3 = [rng.int(0, ni), rng.int(0, nj), rng.int(0, nk)];
    if (!mask.data[ijk[0] + ni * (ijk[1] + nj * ijk[2])]) continue;
    const p = indexToWorld(mask, ijk);
    if (insideGrid(pair.moving, pair.truth(p), 10)) out.push(p);
  }
  return out;
}

export const evalMatchCommand: Command = {
  name: 'eval-match',
  summary: 'point-matching accuracy (MRE, CPM@5/10) on synthetic pairs from a real CT',
  usage: USAGE,
  async run(args) {
    const { values } = parseArgs({
      args,
      options: {
        weights: { type: 'string' },
        config: { type: 'string' },
        pairs: { type: 'string', default: '3' },
        seeds: { type: 'string' },
        points: { type: 'string', default: '200' },
        ct: { type: 'string' },
        'top-k': { type: 'string' },
        'no-ncc': { type: 'boolean', default: false },
        json: { type: 'boolean', default: false },
        device: { type: 'string', default: 'auto' },
      },
    });
    const int = (name: string, v: string) => intOption(name, v);
    const seeds = values.seeds
      ? values.seeds.split(',').map((s) => int('seeds', s.trim()))
      : EVAL_SEEDS.slice(0, int('pairs', values.pairs));
    const nPoints = int('points', values.points);
    const topK = values['top-k'] ? int('top-k', values['top-k']) : undefined;
    const backend = values.device as Device;
    const ctPath = values.ct ?? sharedDataPath(...DEFAULT_CT);
    const log = (s: string) => console.error(s);

    if (!values.ct && !existsSync(ctPath))
      throw new InputError(
        ctPath,
        `no such file: give the source CT with --ct FILE, or set $SAM_DATA_DIR to the folder that holds ${DEFAULT_CT.join('/')}`,
      );
    const source = await readVolume(ctPath);
    // judged on the file itself, not on a noised synthetic pair made from it
    const ct = checkCt(source);
    if (!ct.ok) throw new InputError(ctPath, `not CT in HU: ${ct.reason}`);

    const models: OpenedModel[] = [];
    const weightsFile = values.weights ?? defaultModelPath();
    const trained = existsSync(weightsFile);
    if (trained) models.push(await openModel({ weightsFile }, backend));
    else if (values.weights) throw new InputError(weightsFile, 'no such weights file');
    else log(`no trained model at ${weightsFile}: evaluating random initialisation and NCC only`);
    models.push(await openModel({ config: values.config ?? models[0]?.config.name ?? 'small', seed: 0 }, backend));

    const errors = new Map<string, number[]>([['identity (no matching)', []]]);
    const add = (k: string, e: number[]) => errors.set(k, [...(errors.get(k) ?? []), ...e]);
    // the host matcher's search shared with worker threads (the same answers), stopped after the pairs
    const threads = MatchThreads.start();
    const nccThreads = trained && !values['no-ncc'] ? NccThreads.start() : null;
    try {
      for (const seed of seeds) await evaluatePair(seed);
    } finally {
      threads?.dispose();
      nccThreads?.dispose();
    }
    async function evaluatePair(seed: number): Promise<void> {
      const pair = makeSyntheticPair(source, { seed, spacingMm: 2 });
      const pts = samplePoints(pair, nPoints, seed);
      const truth = pts.map((p) => pair.truth(p));
      const err = (loc: Vec3[]) => loc.map((q, n) => Math.hypot(...q.map((v, a) => v - truth[n][a])));
      log(
        `pair ${seed}: fixed ${pair.fixed.size.join('x')}, moving ${pair.moving.size.join('x')}, ${pts.length} points`,
      );
      add('identity (no matching)', err(pts));
      for (const m of models) {
        const t0 = performance.now();
        const progress = (what: string) => (p: { tile: number; tiles: number }) => {
          if (process.stderr.isTTY)
            process.stderr.write(`\r  ${m.label}: embedding ${what} tile ${p.tile}/${p.tiles}   `);
        };
        const fe = await embedVolume(pair.fixed, m.engine, { onProgress: progress('fixed') });
        const me = await embedVolume(pair.moving, m.engine, { onProgress: progress('moving') });
        const t1 = performance.now();
        const r = await matchPoints(fe, me, pts, { topK, threads });
        const t2 = performance.now();
        if (process.stderr.isTTY) process.stderr.write('\r');
        log(`  ${m.label}: embedded in ${((t1 - t0) / 1000).toFixed(1)} s, matched in ${(t2 - t1).toFixed(0)} ms`);
        add(`SAM ${m.label}`, err(r.map((x) => x.location)));
        if (m === models[0] && trained && !values['no-ncc']) {
          // the registration's default: each match refined by NCC within 8 mm (register/ncc-refine.ts)
          const t3 = performance.now();
          const refined = await nccRefineMatches(pair.fixed, pair.moving, pts, r, { threads: nccThreads });
          const at = refined.map((x, n) => refinedLocation(r[n].location, x));
          log(
            `  refined by NCC in ${((performance.now() - t3) / 1000).toFixed(1)} s, ${at.filter((x) => x.refined).length} of ${at.length} moved`,
          );
          add(`SAM ${m.label}, refined by NCC`, err(at.map((x) => x.location)));
        }
      }
      if (!values['no-ncc']) {
        const t0 = performance.now();
        const r = nccMatch(pair.fixed, pair.moving, pts);
        log(`  NCC: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
        add('NCC template matching', err(r.map((x) => x.location)));
      }
    }
    for (const m of models) await m.engine.dispose();
    const results = [...errors].map(([k, e]) => scoreErrors(k, e));
    if (values.json) {
      console.log(
        JSON.stringify(
          { ct: ctPath, weights: trained ? resolve(weightsFile) : null, seeds, pointsPerPair: nPoints, results },
          null,
          2,
        ),
      );
      return 0;
    }
    console.log(`source ${ctPath}; pairs (seeds) ${seeds.join(', ')}; ${nPoints} points per pair`);
    // which file "trained" is: comparing two models means two runs of this
    if (trained) console.log(`trained model: ${resolve(weightsFile)}`);
    console.log(
      `${'method'.padEnd(44)} ${'points'.padStart(6)} ${'MRE mm'.padStart(7)} ${'median'.padStart(7)} CPM@5  CPM@10`,
    );
    for (const r of results)
      console.log(
        `${r.method.padEnd(44)} ${String(r.points).padStart(6)} ${r.mreMm.toFixed(2).padStart(7)} ${r.medianMm
          .toFixed(2)
          .padStart(7)} ${(100 * r.cpm5).toFixed(1).padStart(5)}% ${(100 * r.cpm10).toFixed(1).padStart(5)}%`,
      );
    return 0;
  },
};
