/**
 * `sam register <fixed> <moving> --out <dir>`: the registration cascade from the command line.
 * Stages: affine (SAM-affine), coarse (SAM-coarse), deform (SAM-deform by instance optimisation);
 * default all three. Writes the result folder (register-output.ts).
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { Command } from '../index.ts';
import { QA_LIMITS } from '../../engine/review/qa-flags.ts';
import { MIRROR_CHECK_RMS_MM } from '../../engine/register/mirror-check.ts';
import { checkFolderCanBeMade, checkOutputFolder } from '../../engine/util/paths.ts';
import { commandInterrupt } from '../interrupt.ts';
import { MODEL_OPTIONS, openModelFromArgs } from '../model-args.ts';
import {
  checkDeformNetArgs,
  DEFORM_NET_OPTIONS,
  DEFORM_ON_USAGE,
  deformOnDevice,
  openDeformNet,
} from '../deform-net-args.ts';
import { disposeDeformWeights } from '../../engine/register/deform-net/network.ts';
import { CancelledError, InputError } from '../../engine/errors.ts';
import { checkStages, DEFAULT_FEATURE_WEIGHT, DEFAULT_STAGES, registerVolumes } from '../../engine/register/cascade.ts';
import { checkResultFolder, writeRegistration } from '../../engine/register/register-output.ts';
import { readVolume } from '../../engine/volume/io/index.ts';
import { MultipleSeriesError } from '../../engine/volume/io/dicom/read-series.ts';
import { ProgressLine } from '../progress.ts';
import { intOption, numberOption, optionalInt } from '../option-values.ts';
import { MATCHER_OPTIONS, MATCHER_USAGE, matcherOptions, useNccDevice } from '../matcher-args.ts';

const USAGE = `usage: sam register <fixed> <moving> --out DIR [options]

  <fixed>, <moving>   CT volumes (NIfTI, MetaImage, NRRD, VTI, DICOM folder)
  --out DIR           result folder: warped.nii.gz (+ warped-dicom/ for DICOM input), displacement.nii.gz,
                      affine.txt, affine.tfm, pairs.csv, coarse-pairs.csv, qa.json; never writes over the inputs
  --stages LIST       comma-separated, in order: affine[,coarse][,deform] (default affine,coarse,deform)
${MATCHER_USAGE}
  --weights FILE      SAM model (default resources/sam-small.samw or $SAM_MODEL)
  --random-init SEED  the untrained network instead (testing only)
  --device NAME       auto (default), webgpu, onnx, onnx-cuda, tfjs-cpu, ...
  --grid MM           grid spacing of the affine stage's matched points (default 16)
  --coarse-grid MM    grid spacing of the coarse stage's matched points (default 10)
  --deform-iters N    Adam iterations per level of the deform stage (default 40)
  --feature-weight X  weight of the SAM local-embedding similarity in the deform stage, beside local NCC
                      (SAM matcher; default ${DEFAULT_FEATURE_WEIGHT}: off, the shipped model's features
                      made the measured registrations worse; SAME++ uses it, e.g. 0.5)
  --deform-net FILE   a SAM-deform network (sam train-reg): its field starts the deform stage, which
                      instance optimisation then refines (default resources/sam-deform-net.samw when
                      present); it reads SAM features, so the SAM model is opened with any matcher
  --no-deform-net     instance optimisation alone
${DEFORM_ON_USAGE}
  --threads N         worker threads of the NCC matcher, the deform stage and the warp/Jacobian on the
                      CPU (default: one per core, at most 8, 4 and 8; 1: none; the result does not
                      depend on it)
  --no-field          do not write the displacement field
  --fixed-series UID  the fixed series, by SeriesInstanceUID, in a DICOM folder holding several
  --moving-series UID the moving series, likewise (\`sam info <folder>\` lists a folder's series)
  --allow-gaps        interpolate across missing slices of a DICOM series (refused otherwise)`;

export const registerCommand: Command = {
  name: 'register',
  summary: 'register a moving CT onto a fixed CT (affine, coarse, deform) and write the results',
  usage: USAGE,
  async run(args) {
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: {
        out: { type: 'string' },
        stages: { type: 'string', default: DEFAULT_STAGES.join(',') },
        ...MATCHER_OPTIONS,
        ...MODEL_OPTIONS,
        grid: { type: 'string', default: '16' },
        'coarse-grid': { type: 'string', default: '10' },
        'deform-iters': { type: 'string', default: '40' },
        'feature-weight': { type: 'string', default: String(DEFAULT_FEATURE_WEIGHT) },
        threads: { type: 'string' },
        'no-field': { type: 'boolean', default: false },
        'allow-gaps': { type: 'boolean', default: false },
        'fixed-series': { type: 'string' },
        'moving-series': { type: 'string' },
        ...DEFORM_NET_OPTIONS,
      },
    });
    if (positionals.length !== 2 || !values.out) {
      const missing =
        positionals.length !== 2
          ? `give a fixed and a moving image (${positionals.length} given)`
          : 'give the result folder with --out DIR';
      console.error(`sam register: ${missing}\n\n${USAGE}`);
      return 2;
    }
    const stages = checkStages(values.stages.split(',').map((s) => s.trim()));
    const { matcher, refine, nccOnDevice, note } = matcherOptions(values);
    checkDeformNetArgs(values);
    // numbers first: a mistyped option is refused before the inputs are read
    const gridMm = numberOption('grid', values.grid, { above: 0 });
    const coarseGridMm = numberOption('coarse-grid', values['coarse-grid'], { above: 0 });
    const deformIterations = intOption('deform-iters', values['deform-iters'], 0);
    const featureWeight = numberOption('feature-weight', values['feature-weight'], { min: 0 });
    const threads = optionalInt('threads', values.threads);
    const [fixedPath, movingPath] = positionals;
    const out = resolve(values.out);
    checkOutputFolder(values.out, [fixedPath, movingPath]);
    // (before the minutes of work: a file in the way is found now, not when the result is written)
    checkFolderCanBeMade(values.out);
    checkResultFolder(out, [fixedPath, movingPath]);
    const progress = new ProgressLine(process.stderr, 5);
    progress.update(`read fixed: ${fixedPath}`, true);
    const read = (path: string, role: 'fixed' | 'moving') =>
      readVolume(path, { allowGaps: values['allow-gaps'], seriesUid: values[`${role}-series`] }).catch((e) => {
        // a folder of several series: say which option picks one
        if (e instanceof MultipleSeriesError)
          throw new InputError(path, `${e.problem}\nchoose the ${role} one with --${role}-series UID`);
        throw e;
      });
    const fixed = await read(fixedPath, 'fixed');
    progress.update(`read moving: ${movingPath}`, true);
    const moving = await read(movingPath, 'moving');
    const deformNet = stages.includes('deform') ? await openDeformNet(values) : undefined;
    if (deformNet)
      console.error(`deform network: ${deformNet.file} (${deformNet.config.name}), then instance optimisation`);
    let engine;
    let deviceModel;
    if (note) console.error(note);
    if (matcher === 'sam' || deformNet) {
      const model = await openModelFromArgs(values, matcher === 'sam' ? '--matcher ncc' : '--no-deform-net');
      engine = model.engine;
      deviceModel = model;
      console.error(
        `${matcher === 'sam' ? `matcher: SAM${refine === 'ncc' ? ' refined by NCC' : ''}, model` : 'SAM features for the deform network:'} ${model.label}${model.weightsFile ? ` (${model.weightsFile})` : ''}`,
      );
    }
    if (matcher === 'ncc') console.error('matcher: NCC template matching');
    const onDevice = stages.includes('deform') ? await deformOnDevice(values, (l) => console.error(l)) : false;
    await useNccDevice({ matcher, refine, nccOnDevice });
    const interrupt = commandInterrupt({
      interrupted: 'interrupted: stopping; no result is written (Ctrl-C again to quit at once)',
      terminated: 'terminated: stopping; no result is written',
      quitting: `quitting at once: no result written to ${out}`,
    });
    try {
      const r = await registerVolumes(fixed, moving, {
        stages,
        matcher,
        refine,
        nccOnDevice,
        engine,
        deviceModel,
        gridMm,
        coarse: { gridMm: coarseGridMm },
        deform: { iterations: deformIterations, onDevice },
        featureWeight,
        deformNet,
        threads,
        signal: interrupt.signal,
        onProgress: (stage, done, total) => progress.update(`${stage} ${done}/${total}`),
      });
      const files = await writeRegistration(out, fixed, moving, r, {
        signal: interrupt.signal,
        protect: [fixedPath, movingPath],
        inputPaths: { fixed: fixedPath, moving: movingPath },
        field: !values['no-field'],
        onArchived: (folder) => progress.note(`sam register: the earlier result in ${out} moved to ${folder}`),
        onWriting: (p) => progress.update(`write ${p}`, true),
        onNote: (n) => progress.note(`sam register: ${n}`),
      });
      const nonFinite = r.qa.nonFiniteVoxelsAsAir as { fixed: number; moving: number } | undefined;
      if (nonFinite)
        progress.note(
          `sam register: warning: NaN or infinite voxels read as air (-1024 HU): ` +
            [
              nonFinite.fixed ? `${nonFinite.fixed} in ${fixedPath}` : '',
              nonFinite.moving ? `${nonFinite.moving} in ${movingPath}` : '',
            ]
              .filter(Boolean)
              .join(', '),
        );
      const s = r.affine.stats;
      progress.done(
        `affine from ${s.inliers} inlier pairs of ${s.kept} kept (${s.pairs} grid points): residual RMS ${s.rmsMm.toFixed(2)} mm, ` +
          `p95 ${s.p95ResidualMm.toFixed(2)} mm`,
      );
      const q = r.qa;
      const parts = [`stages ${stages.join(',')} in ${q.secondsTotal.toFixed(1)} s`];
      if (r.coarse)
        parts.push(
          `coarse from ${r.coarse.stats.inliers} pairs: residual mean ${r.coarse.stats.affineResidualMm.mean.toFixed(2)} -> ` +
            `${r.coarse.stats.coarseResidualMm.mean.toFixed(2)} mm` +
            (r.coarse.stats.used === false
              ? ` (not used: image NCC ${r.coarse.stats.nccAffine?.toFixed(4)} with the affine alone, ${r.coarse.stats.nccCoarse?.toFixed(4)} with it)`
              : ''),
        );
      if (r.deformNet)
        parts.push(
          `deform network ${r.deformNet.stats.meanDisplacementMm.toFixed(2)} mm mean, LNCC ${r.deformNet.stats.lnccBefore.toFixed(3)} -> ${r.deformNet.stats.lnccAfter.toFixed(3)}`,
        );
      if (r.deform)
        parts.push(
          !r.deform.stats.kept
            ? `deform: no improvement on the earlier stages (LNCC ${r.deform.stats.lnccStart.toFixed(3)}), field left as they made it`
            : r.deform.stats.used === false
              ? `deform LNCC ${r.deform.stats.lnccStart.toFixed(3)} -> ${r.deform.stats.lnccEnd.toFixed(3)} but the unbiased LNCC ${r.deform.stats.nccBefore?.toFixed(4)} -> ${r.deform.stats.nccAfter?.toFixed(4)}: not used, field left as the earlier stages made it`
              : `deform LNCC ${r.deform.stats.lnccStart.toFixed(3)} -> ${r.deform.stats.lnccEnd.toFixed(3)}`,
        );
      const o = q.nccWhereMovingHasData;
      parts.push(
        `NCC where the moving image has data ${o.before.toFixed(3)} -> ${o.after.toFixed(3)} ` +
          `(${o.afterPercent.toFixed(0)} % of the fixed body)`,
      );
      const J = q.jacobian;
      parts.push(`Jacobian ${J.min.toFixed(2)}-${J.max.toFixed(2)}, folding ${J.foldedPercent.toFixed(3)} %`);
      console.error(parts.join('; '));
      // what a reviewer should look at before using the result
      const doubts = [
        ...(J.min < QA_LIMITS.jacobianMin || J.max > QA_LIMITS.jacobianMax
          ? [
              `local volume change beyond [${QA_LIMITS.jacobianMin}, ${QA_LIMITS.jacobianMax}] (Jacobian ${J.min.toFixed(2)}-${J.max.toFixed(2)})`,
            ]
          : []),
        ...(s.rmsMm > MIRROR_CHECK_RMS_MM
          ? [`the affine's residual RMS is ${s.rmsMm.toFixed(1)} mm (about 1 when the scans agree)`]
          : []),
      ];
      if (doubts.length)
        console.error(
          `sam register: check this result: ${doubts.join('; ')}; ` +
            `sam review ${fixedPath} ${movingPath} ${out} maps SAM's confidence in it and flags what looks wrong`,
        );
      for (const f of files) console.log(f);
      return 0;
    } catch (e) {
      if (!(e instanceof CancelledError)) throw e;
      progress.done(`sam register: ${e.message}: nothing written to ${out}`);
      return interrupt.exitCode();
    } finally {
      interrupt.dispose();
      await engine?.dispose();
      if (deformNet) disposeDeformWeights(deformNet.weights);
    }
  },
};
