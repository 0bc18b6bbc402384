/**
 * `sam bench-reg`: the registration benchmark (bench/reg-bench.ts) from the command line: pairs made
 * from the real CTs in ../shared/data by known transforms, the SAM cascade and elastix side by side,
 * TRE / Dice / folding / time per stage as a table (or --json). The default is small and fast (two
 * pairs at 3 mm); elastix is skipped, with a message, when it is not installed.
 */
import { existsSync } from 'node:fs';
import { basename } from 'node:path';
import { parseArgs } from 'node:util';
import type { Command } from '../index.ts';
import type { Device } from '../../engine/compute/choose-engine.ts';
import { InputError } from '../../engine/errors.ts';
import { BENCH_TRANSFORM, benchRegistration, benchTable, type BenchSource } from '../../engine/bench/reg-bench.ts';
import { elastixVersion } from '../../engine/bench/elastix.ts';
import { checkStages, DEFAULT_FEATURE_WEIGHT, DEFAULT_STAGES } from '../../engine/register/cascade.ts';
import { MATCHER_OPTIONS, MATCHER_USAGE, matcherOptions, useNccDevice } from '../matcher-args.ts';
import { readVolume } from '../../engine/volume/io/index.ts';
import { resample } from '../../engine/volume/resample.ts';
import { defaultModelPath, openModel } from './match.ts';
import { DEFORM_NET_OPTIONS, DEFORM_ON_USAGE, deformOnDevice, openDeformNet } from '../deform-net-args.ts';
import { intOption, numberOption, optionalInt } from '../option-values.ts';
import { startHostStats } from '../bench/host-stats.ts';
import { SHARED_DATA_LABEL, sharedDataPath } from '../shared-data.ts';

const TS = 'TotalSegmentator/tests/reference_files';

const USAGE = `usage: sam bench-reg [options]

  Pairs made from real CT (${SHARED_DATA_LABEL}) by known transforms (affine up to +-15 deg, +-15 % scale, +-30 mm;
  smooth deformation up to 15 mm; noise; cropped field of view), registered by the SAM cascade and by
  elastix (affine + B-spline, resources/elastix/), scored by TRE on dense known correspondences, Dice per
  organ (TotalSegmentator labels) and folding.

  --pairs N          number of pairs (default 2), alternating the sources below
  --sources LIST     comma-separated: abdomen (TotalSegmentator example_ct, 3 mm, organ labels),
                     chest (ITKElastix 00, 141 slices), or the path of any CT (file or DICOM
                     folder; no organ labels) (default abdomen,chest)
  --spacing MM       isotropic grid of both images (default 3)
  --moving-slice MM  the moving image as thick slices of MM along the superior axis, each the mean over
                     its thickness (a thick reconstruction; default: the --spacing grid)
  --seed N           seed of the first pair (default 11; pair n uses seed + n)
  --max-rotation DEG largest rotation of a pair's affine (default ${BENCH_TRANSFORM.maxRotationDeg})
  --max-shift MM     largest shift of a pair's affine (default ${BENCH_TRANSFORM.maxTranslationMm}); larger motions test
                     the matchers' reach: a cascade that refuses a pair (e.g. its affine is no patient-to-
                     patient transform) gets a row that says so
  --stages LIST      cascade stages (default ${DEFAULT_STAGES.join(',')})
  --deform-iters N   Adam iterations per level of the deform stage (default: the cascade's)
  --feature-weight X weight of the SAM local-embedding similarity in the deform stage (SAM matcher;
                     default ${DEFAULT_FEATURE_WEIGHT}: off, see sam register --help)
${MATCHER_USAGE}
  --deform-net FILE  a SAM-deform network (sam train-reg) before the instance optimisation (default
                     resources/sam-deform-net.samw when present; opens the SAM model for its features)
  --no-deform-net    instance optimisation alone
${DEFORM_ON_USAGE}
  --threads N        worker threads of the NCC matcher, the deform stage and the warp/Jacobian on the
                     CPU (default: one per core, at most 8, 4 and 8; 1: none; the result does not
                     depend on it)
  --weights FILE     SAM model
  --device NAME      compute device for SAM (default auto)
  --no-elastix       skip elastix
  --elastix-iterations N  override elastix's iterations per resolution (quick runs)
  --repeat N         run the cascade N times per pair and report the last (default 1): a warm process,
                     the GPU programs compiled by the first run (its total is printed as progress)
  --host-stats       around the last run: WebGPU calls (dispatches, submits, read-backs ...), the main
                     thread's busy and waiting time, GC (cli/bench/host-stats.ts)
  --json             print the rows as JSON instead of the table`;

async function loadSource(name: string): Promise<BenchSource> {
  if (name === 'abdomen') {
    const ct = await readVolume(sharedDataPath(TS, 'example_ct.nii.gz'));
    // example_seg labels example_ct_sm, the first 30 slices of example_ct (same origin and axes):
    // placed on example_ct's grid, unlabelled beyond them
    const seg = await readVolume(sharedDataPath(TS, 'example_seg.nii.gz'));
    const labels = resample(seg, ct, { interpolation: 'nearest', fill: 0, outputType: 'uint16' });
    return { name: 'abdomen', ct, labels };
  }
  if (name === 'chest') return { name: 'chest', ct: await readVolume(sharedDataPath('ITKElastix/examples/data/00')) };
  // any CT the user has (no organ labels: TRE and folding only)
  if (existsSync(name))
    return { name: basename(name).replace(/\.(nii\.gz|nii|mha|mhd|nrrd|vti)$/i, ''), ct: await readVolume(name) };
  throw new InputError('--sources', `unknown source '${name}' (abdomen, chest, or a CT file or DICOM folder)`);
}

export const benchRegCommand: Command = {
  name: 'bench-reg',
  summary: 'registration benchmark: SAM cascade vs elastix on pairs with known transforms (TRE, Dice, folding)',
  usage: USAGE,
  async run(args) {
    const { values } = parseArgs({
      args,
      options: {
        pairs: { type: 'string', default: '2' },
        sources: { type: 'string', default: 'abdomen,chest' },
        spacing: { type: 'string', default: '3' },
        seed: { type: 'string', default: '11' },
        'moving-slice': { type: 'string' },
        'max-rotation': { type: 'string' },
        'max-shift': { type: 'string' },
        stages: { type: 'string', default: DEFAULT_STAGES.join(',') },
        ...MATCHER_OPTIONS,
        'deform-iters': { type: 'string' },
        'feature-weight': { type: 'string' },
        threads: { type: 'string' },
        weights: { type: 'string' },
        device: { type: 'string', default: 'auto' },
        'no-elastix': { type: 'boolean', default: false },
        'elastix-iterations': { type: 'string' },
        repeat: { type: 'string' },
        'host-stats': { type: 'boolean', default: false },
        json: { type: 'boolean', default: false },
        help: { type: 'boolean', default: false },
        ...DEFORM_NET_OPTIONS,
      },
    });
    if (values.help) {
      console.log(USAGE);
      return 0;
    }
    const stages = checkStages(values.stages.split(',').map((s) => s.trim()));
    const { matcher, refine, nccOnDevice, note } = matcherOptions(values);
    if (note) console.error(`bench-reg: ${note}`);
    const nPairs = intOption('pairs', values.pairs);
    const spacing = numberOption('spacing', values.spacing, { above: 0 });
    const transform = {
      ...(values['max-rotation'] !== undefined
        ? { maxRotationDeg: numberOption('max-rotation', values['max-rotation'], { min: 0 }) }
        : {}),
      ...(values['max-shift'] !== undefined
        ? { maxTranslationMm: numberOption('max-shift', values['max-shift'], { min: 0 }) }
        : {}),
      ...(values['moving-slice'] !== undefined
        ? { movingSliceMm: numberOption('moving-slice', values['moving-slice'], { above: 0 }) }
        : {}),
    };
    let elastix = !values['no-elastix'];
    if (elastix && !elastixVersion()) {
      console.error(
        'bench-reg: elastix/transformix not found on PATH (Debian: apt install elastix); skipping the elastix rows',
      );
      elastix = false;
    }
    const sources = [];
    for (const s of values.sources.split(',').map((x) => x.trim())) sources.push(await loadSource(s));
    const deformNet = stages.includes('deform') ? await openDeformNet(values) : undefined;
    if (deformNet) console.error(`bench-reg: deform network ${deformNet.file}, then instance optimisation`);
    let engine;
    let deviceModel;
    if (matcher === 'sam' || deformNet) {
      const w = values.weights ?? defaultModelPath();
      if (!existsSync(w)) throw new InputError(w, 'no trained SAM model: pass --weights FILE or use --matcher ncc');
      const model = await openModel({ weightsFile: w }, values.device as Device);
      engine = model.engine;
      deviceModel = model;
    }
    const seed0 = intOption('seed', values.seed, 0);
    const onDevice = stages.includes('deform')
      ? await deformOnDevice(values, (l) => console.error(`bench-reg: ${l}`))
      : false;
    await useNccDevice({ matcher, refine, nccOnDevice });
    try {
      const rows = await benchRegistration(sources, {
        seeds: Array.from({ length: nPairs }, (_, n) => seed0 + n),
        transform,
        spacingMm: spacing,
        stages,
        matcher,
        engine,
        elastix,
        register: {
          deform: {
            onDevice,
            ...(values['deform-iters'] !== undefined
              ? { iterations: intOption('deform-iters', values['deform-iters'], 0) }
              : {}),
          },
          ...(values['feature-weight'] !== undefined
            ? { featureWeight: numberOption('feature-weight', values['feature-weight'], { min: 0 }) }
            : {}),
          refine,
          nccOnDevice,
          deformNet,
          deviceModel,
          threads: optionalInt('threads', values.threads),
        },
        elastixIterations: optionalInt('elastix-iterations', values['elastix-iterations']),
        repeat: optionalInt('repeat', values.repeat),
        hostStats: values['host-stats'] ? startHostStats : undefined,
        onProgress: (what) => console.error(`bench-reg: ${what}`),
      });
      if (values.json) console.log(JSON.stringify(rows, null, 2));
      else {
        console.log(
          `${nPairs} pair(s) at ${spacing} mm, matcher ${matcher}${matcher === 'sam' ? ` (refine ${refine})` : ''}, stages ${stages.join(',')}` +
            (elastix ? `, ${elastixVersion()}` : ', elastix skipped'),
        );
        console.log(benchTable(rows));
      }
      return 0;
    } finally {
      await engine?.dispose();
    }
  },
};
