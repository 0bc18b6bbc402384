/**
 * `sam match <template> <query> --points FILE`: find template points in the query volume with SAM
 * embeddings (sam/match.ts). Embeddings are cached on disk by file content and model
 * (sam/embedding-cache.ts). Also home of openModel, shared with `sam eval-match`.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { Command } from '../index.ts';
import { MODEL_OPTIONS, openModelFromArgs } from '../model-args.ts';
import { chooseEngine, type Device } from '../../engine/compute/choose-engine.ts';
import type { EmbeddingEngine } from '../../engine/compute/embedding-engine.ts';
import { getSamConfig, type SamConfig } from '../../engine/sam/config.ts';
import { embedVolumeCached, hashModel, hashVolume } from '../../engine/sam/embedding-cache.ts';
import { embedVolumeOnDevice, whenComputed } from '../../engine/sam/device/embed-on-device.ts';
import { MatchThreads } from '../../engine/sam/match-threads.ts';
import { matchPointsOnDevice } from '../../engine/sam/device/match-on-device.ts';
import { matchPoints, type PointMatch } from '../../engine/sam/match.ts';
import { createWeights, type SamWeights } from '../../engine/sam/network.ts';
import { loadModel } from '../../engine/sam/weights-file.ts';
import { NccThreads } from '../../engine/bench/ncc-threads.ts';
import { NccOnDevice } from '../../engine/register/device/ncc-on-device.ts';
import { nccRefineMatches, refinedLocation } from '../../engine/register/ncc-refine.ts';
import { writeFileAtomic } from '../../engine/util/atomic-write.ts';
import { csvField } from '../../engine/util/csv-field.ts';
import { applyAffine, indexToWorld, worldToIndexMatrix } from '../../engine/volume/geometry.ts';
import { bodyMask } from '../../engine/volume/mask.ts';
import type { Vec3, Volume } from '../../engine/volume/volume.ts';
import { readVolume } from '../../engine/volume/io/index.ts';
import { parsePoints } from '../../engine/volume/points.ts';
import { pointFormat, pointsText } from '../../engine/volume/points-out.ts';
import { optionalNumber } from '../option-values.ts';
import { pointNumbers } from '../point-numbers.ts';
import { checkOutputFile } from '../output-file.ts';
import { refineOption } from '../matcher-args.ts';
import { InputError } from '../../engine/errors.ts';

/**
 * Warns of template points outside the body (a RAS file read as LPS puts most there, mirrored through
 * the body's axis; so do points in the wrong scan's coordinates): their matches mean little.
 */
function warnOutsideBody(template: Volume, points: Vec3[], pointsFile: string, templatePath: string): void {
  const mask = bodyMask(template);
  const toIndex = worldToIndexMatrix(mask);
  const outside: number[] = [];
  points.forEach((p, n) => {
    const [i, j, k] = applyAffine(toIndex, p).map(Math.round);
    const [ni, nj, nk] = mask.size;
    if (i < 0 || j < 0 || k < 0 || i >= ni || j >= nj || k >= nk) return; // told apart below (in_template 0)
    if (!mask.data[i + ni * (j + nj * k)]) outside.push(n + 1);
  });
  if (outside.length)
    console.error(
      `sam match: warning: ${outside.length} of ${points.length} points of ${pointsFile} lie outside the body in ` +
        `${templatePath} (${pointNumbers(outside)}): ` +
        'check their coordinate convention (LPS mm here; 3D Slicer shows RAS) and that they belong to this scan',
    );
}

/** Where the trained default model lives (resources/sam-small.samw; $SAM_MODEL overrides). */
export function defaultModelPath(): string {
  return process.env.SAM_MODEL || fileURLToPath(new URL('../../../resources/sam-small.samw', import.meta.url));
}

export interface OpenedModel {
  label: string;
  config: SamConfig;
  /** The network's weights (tfjs tensors; the engine may hold its own copy, e.g. ONNX Runtime). */
  weights: SamWeights;
  engine: EmbeddingEngine;
  /** sha256 of the model (embedding-cache.ts hashModel). */
  hash: string;
}

/** A trained model from a weights file, or the network of a configuration at random initialisation. */
export async function openModel(
  source: { weightsFile: string } | { config: string; seed: number },
  device: Device = 'auto',
): Promise<OpenedModel> {
  const trained = 'weightsFile' in source;
  const { config, weights } = trained
    ? loadModel(source.weightsFile)
    : (() => {
        const c = getSamConfig(source.config);
        return { config: c, weights: createWeights(c, source.seed) };
      })();
  const { engine, reason } = await chooseEngine(config, weights, device);
  const label = trained ? `trained (${config.name})` : `random init (${config.name}, seed ${source.seed})`;
  console.error(`engine for the ${label} network: ${engine.name} (${reason})`);
  return {
    label,
    config,
    weights,
    engine,
    hash: trained ? hashModel(source) : hashModel({ config, seed: source.seed }),
  };
}

const USAGE = `usage: sam match <template> <query> --points FILE [options]

  <template>, <query>   CT volumes (any format sam reads; DICOM folders too)
  --points FILE         template points: CSV of x,y,z in world LPS mm (optional header; a header of
                        r,a,s or x_ras,... is RAS, of i,j,k 0-based voxel indices of the template), an
                        elastix point file ("point": world mm, "index": 0-based voxel indices), or
                        3D Slicer markups (.fcsv, .mrk.json: in the coordinate system they state)
  --weights FILE        trained model (default resources/sam-small.samw, or $SAM_MODEL)
  --random-init SEED    use the network at random initialisation instead (testing only)
  --config NAME         configuration for --random-init: small (default), paper, tiny
  --out FILE            write the matches (default: standard output); an existing file only with
                        --force
  --format csv|fcsv     csv (default: every point, the columns below) or fcsv: the accepted matches
                        as 3D Slicer markups (LPS stated; labels kept, score and cycle error in desc)
  --force               replace an existing --out file (never an input)
  --top-k N             global candidates searched locally (default 20)
  --no-cycle            accept matches without the forward-backward check (by default a match is
                        accepted only if the query point matches back within --cycle-threshold MM,
                        default 10, of the template point: a point whose anatomy the query lacks, e.g.
                        outside its field of view, still gets a best match, with a score as high as a
                        good one's)
  --min-score X         do not accept matches scoring below X
  --refine ncc|none     refine each accepted match by NCC template matching within 8 mm of it (the
                        registration's default, register/ncc-refine.ts): its location moves where the
                        NCC is >= 0.5 and matches back within 4 mm (default none: SAM's locations)
  --cache-dir DIR       embedding cache (default $SAM_CACHE_DIR or ~/.cache/sam-workstation; not used
                        on WebGPU, where embeddings are made and matched on the GPU)
  --no-cache            always recompute the embeddings
  --fp16                keep embeddings in half precision (half the memory)
  --device NAME         auto (default: a GPU through WebGPU, else ONNX Runtime on the CPU), webgpu,
                        onnx, onnx-cuda, onnx-dml, onnx-coreml, tfjs-cpu, tfjs-node
  --allow-gaps          interpolate across missing slices of a DICOM series (refused otherwise)

A same-patient pair is usually followed more accurately through a registration: sam register, then
sam transform-points on the same points (0.16 mm mean against 0.9 mm for match --refine ncc on a known
pair). sam match needs no registration and serves where none holds (another patient, large change)
or as an independent check: where the two disagree by more than a few mm, look at both.

Output columns, a row per point in input order: label (when the points file has labels), x,y,z (matched, world LPS mm), score, global, local
(global and local: the cosine similarity, in [-1, 1], of the point's global and local embedding in the
template with the query's at the match; score: their mean, what the match maximises and --min-score tests),
cycle_error_mm, accepted, in_template (0: the point lies outside the template's field of view, its row
is left empty); with --refine ncc also ncc_score and refined (1: the location is NCC's).`;

export const matchCommand: Command = {
  name: 'match',
  summary: 'find template points in a query CT with SAM embeddings',
  usage: USAGE,
  async run(args) {
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: {
        points: { type: 'string' },
        ...MODEL_OPTIONS,
        out: { type: 'string' },
        format: { type: 'string', default: 'csv' },
        force: { type: 'boolean' },
        'top-k': { type: 'string' },
        cycle: { type: 'boolean', default: false },
        'no-cycle': { type: 'boolean', default: false },
        'cycle-threshold': { type: 'string' },
        'min-score': { type: 'string' },
        refine: { type: 'string', default: 'none' },
        'cache-dir': { type: 'string' },
        'no-cache': { type: 'boolean', default: false },
        fp16: { type: 'boolean', default: false },
        'allow-gaps': { type: 'boolean', default: false },
      },
    });
    if (positionals.length !== 2 || !values.points) {
      console.error(USAGE);
      return 2;
    }
    const [templatePath, queryPath] = positionals;
    const refine = refineOption(values.refine);
    const format = pointFormat(values.format ?? 'csv');
    if (format === 'elastix') throw new InputError('--format', 'sam match writes csv or fcsv');
    // before the embeddings: a refused --out should not cost minutes
    if (values.out)
      checkOutputFile(values.out, { inputs: [templatePath, queryPath, values.points], force: values.force });
    const num = (name: string, v: string | undefined) => optionalNumber(name, v);
    const template = await readVolume(templatePath, { allowGaps: values['allow-gaps'] });
    const query = await readVolume(queryPath, { allowGaps: values['allow-gaps'] });
    const list = parsePoints(readFileSync(values.points, 'utf8'), values.points);
    const points = list.kind === 'index' ? list.points.map((p) => indexToWorld(template, p)) : list.points;
    if (list.fromRas) console.error(`sam match: ${values.points} holds RAS coordinates (as it says): converted to LPS`);
    if (values.cycle && values['no-cycle']) throw new InputError('--no-cycle', 'contradicts --cycle: give one of them');
    warnOutsideBody(template, points, values.points, templatePath);

    const model = await openModelFromArgs(values, '--random-init');
    if (!model.weightsFile)
      console.error(`sam match: using the ${model.label} network: matches are not anatomically meaningful`);
    const tty = process.stderr.isTTY;
    const embed = async (volume: typeof template, path: string, what: string) => {
      const t0 = performance.now();
      const e = await embedVolumeCached(volume, model.engine, {
        // keyed by the voxels and geometry: a .mhd/.nhdr header alone does not identify its data
        inputHash: hashVolume(volume),
        modelHash: model.hash,
        cacheDir: values['cache-dir'],
        refresh: values['no-cache'],
        fp16: values.fp16,
        onProgress: (p) => tty && process.stderr.write(`\rembedding ${what}: tile ${p.tile}/${p.tiles}`),
      });
      const dt = ((performance.now() - t0) / 1000).toFixed(1);
      console.error(`${tty ? '\r' : ''}embedding ${what}: ${e.cached ? 'from cache' : 'computed'} (${dt} s)`);
      return e;
    };
    const matchOptions = {
      topK: num('top-k', values['top-k']),
      cycleCheck: !values['no-cycle'],
      cycleThresholdMm: num('cycle-threshold', values['cycle-threshold']),
      minScore: num('min-score', values['min-score']),
    };
    let matches: PointMatch[];
    let t0: number;
    let where = 'on the GPU';
    if (model.engine.name === 'tfjs-webgpu') {
      // on a GPU: embeddings made and matched there (sam/device/), no cache (recomputing beats reading it)
      const onDevice = async (volume: typeof template, what: string) => {
        const t = performance.now();
        const e = await embedVolumeOnDevice(volume, model);
        await whenComputed(e);
        console.error(`embedding ${what}: on the GPU (${((performance.now() - t) / 1000).toFixed(1)} s)`);
        return e;
      };
      const te = await onDevice(template, 'template');
      const qe = await onDevice(query, 'query');
      t0 = performance.now();
      try {
        matches = await matchPointsOnDevice(te, qe, points, matchOptions);
      } finally {
        te.dispose();
        qe.dispose();
      }
    } else {
      // the search shared with worker threads when the points are many (started now: they load meanwhile)
      const threads = points.length >= 64 ? MatchThreads.start() : null;
      try {
        const te = await embed(template, templatePath, 'template');
        const qe = await embed(query, queryPath, 'query');
        t0 = performance.now();
        matches = await matchPoints(te, qe, points, { ...matchOptions, threads });
        where = threads ? `search shared with ${threads.size} worker thread(s)` : 'in one thread';
      } finally {
        threads?.dispose();
      }
    }
    const accepted = matches.filter((m) => m.accepted).length;
    console.error(
      `matched ${matches.length} points in ${(performance.now() - t0).toFixed(0)} ms (${where}); ${accepted} accepted`,
    );
    let refined: { score: number; refined: boolean }[] | null = null;
    if (refine === 'ncc') {
      const t1 = performance.now();
      // on the GPU where the embeddings were made there (register/device/ncc-on-device.ts), else
      // worker threads for more than a few points
      const onGpu = model.engine.name === 'tfjs-webgpu';
      const threads = onGpu ? new NccOnDevice() : points.length >= 64 ? NccThreads.start() : null;
      try {
        const r = await nccRefineMatches(template, query, points, matches, { threads });
        refined = r.map((x, n) => {
          const at = refinedLocation(matches[n].location, x);
          matches[n] = { ...matches[n], location: at.location };
          return { score: x.score, refined: at.refined };
        });
      } finally {
        threads?.dispose();
      }
      console.error(
        `refined by NCC in ${(performance.now() - t1).toFixed(0)} ms${onGpu ? ' on the GPU' : ''}: ${refined.filter((x) => x.refined).length} of ${accepted} accepted matches moved`,
      );
    }
    // a point outside the template has no embedding of its own: no match is written for it
    const outside = matches.flatMap((m, n) => (m.inTemplate ? [] : [n + 1]));
    if (outside.length)
      console.error(
        `sam match: ${outside.length} of ${matches.length} points lie outside the template's field of view ` +
          `(${pointNumbers(outside)}): ` +
          'their rows are left empty (in_template 0)',
      );
    if (outside.length === matches.length) {
      await model.engine.dispose();
      throw new InputError(
        values.points,
        `none of its ${matches.length} points lies inside the template ${templatePath}`,
      );
    }
    const f = (x: number) => (Number.isFinite(x) ? +x.toFixed(3) : '');
    const labels = list.labels;
    const lines = [
      (labels ? 'label,' : '') +
        'x,y,z,score,global,local,cycle_error_mm,accepted,in_template' +
        (refined ? ',ncc_score,refined' : ''),
    ];
    matches.forEach((m, n) =>
      lines.push(
        (labels ? `${csvField(labels[n])},` : '') +
          (m.inTemplate
            ? [
                ...m.location.map(f),
                f(m.score),
                f(m.globalScore),
                f(m.localScore),
                f(m.cycleErrorMm ?? NaN),
                m.accepted ? 1 : 0,
                1,
              ].join(',')
            : ',,,,,,,0,0') +
          (refined ? `,${f(refined[n].score)},${refined[n].refined ? 1 : 0}` : ''),
      ),
    );
    const kept = matches.flatMap((m, n) => (m.inTemplate && m.accepted ? [n] : []));
    const csv =
      format === 'fcsv'
        ? pointsText(
            kept.map((n) => matches[n].location),
            'fcsv',
            kept.map((n) => labels?.[n] || `P-${n + 1}`),
            kept.map(
              (n) =>
                `score ${f(matches[n].score)}` +
                (matches[n].cycleErrorMm !== undefined ? ` cycle ${f(matches[n].cycleErrorMm!)} mm` : '') +
                (refined?.[n].refined ? ` NCC ${f(refined[n].score)}` : ''),
            ),
          )
        : `${lines.join('\n')}\n`;
    if (format === 'fcsv')
      console.error(`sam match: ${kept.length} accepted matches of ${matches.length} points in the .fcsv`);
    if (values.out) {
      writeFileAtomic(values.out, new TextEncoder().encode(csv), { protect: [templatePath, queryPath, values.points] });
      console.error(`wrote ${values.out}`);
    } else process.stdout.write(csv);
    await model.engine.dispose();
    return 0;
  },
};
