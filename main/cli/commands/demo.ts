/**
 * `sam demo [--out DIR]`: the main job end to end on a built-in default: a pair is made from a real
 * CT of ../shared/data by a known affine (with noise and a cropped field of view), registered with
 * the cascade (affine, coarse, deform), written like `sam register` writes, and the result is scored against the known truth.
 */
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { Command } from '../index.ts';
import { makeSyntheticPair } from '../../engine/bench/synthetic-pair.ts';
import { bodyPoints, tre } from '../../engine/bench/reg-metrics.ts';
import { registerVolumes } from '../../engine/register/cascade.ts';
import { writeRegistration } from '../../engine/register/register-output.ts';
import { readVolume, writeVolume } from '../../engine/volume/io/index.ts';
import { bodyMask } from '../../engine/volume/mask.ts';
import { MODEL_OPTIONS, openModelFromArgs } from '../model-args.ts';
import { intOption } from '../option-values.ts';
import { SHARED_DATA_LABEL, sharedDataPath } from '../shared-data.ts';
import { MATCHER_OPTIONS, MATCHER_USAGE, matcherOptions, useNccDevice } from '../matcher-args.ts';

const CT_IN_DATA = 'TotalSegmentator/tests/reference_files/example_ct.nii.gz';

export const demoCommand: Command = {
  name: 'demo',
  summary: 'register a pair made from a real CT by a known affine, and score the result',
  usage: [
    `usage: sam demo [--ct FILE (default ${CT_IN_DATA} under ${SHARED_DATA_LABEL})] [--out DIR (default sam-demo)] [--seed N]`,
    MATCHER_USAGE,
    '  --weights FILE      SAM model (default resources/sam-small.samw or $SAM_MODEL)',
    '  --device NAME       auto (default), webgpu, onnx, onnx-cuda, tfjs-cpu, ...',
  ].join('\n'),
  async run(args) {
    const { values } = parseArgs({
      args,
      options: {
        ct: { type: 'string' },
        out: { type: 'string', default: 'sam-demo' },
        seed: { type: 'string', default: '5' },
        ...MATCHER_OPTIONS,
        ...MODEL_OPTIONS,
      },
    });
    const ctPath = values.ct ?? sharedDataPath(CT_IN_DATA);
    const ct = await readVolume(ctPath);
    const pair = makeSyntheticPair(ct, {
      seed: intOption('seed', values.seed, 0),
      bumps: 0,
      maxDeformationMm: 0,
      noiseHu: 10,
      maxRotationDeg: 8,
      maxTranslationMm: 15,
    });
    const out = resolve(values.out);
    mkdirSync(out, { recursive: true });
    const fixedPath = join(out, 'fixed.nii.gz');
    const movingPath = join(out, 'moving.nii.gz');
    await writeVolume(fixedPath, pair.fixed, { protect: [ctPath] });
    await writeVolume(movingPath, pair.moving, { protect: [ctPath] });
    const { matcher, refine, nccOnDevice, note } = matcherOptions(values);
    const sam = matcher === 'sam';
    const engine = sam ? (await openModelFromArgs(values, '--matcher ncc')).engine : undefined;
    if (note) console.error(note);
    console.error(
      `pair from ${ctPath} (seed ${values.seed}); matcher: ${sam ? `SAM${refine === 'ncc' ? ', refined by NCC' : ''}` : 'NCC'}`,
    );
    await useNccDevice({ matcher, refine, nccOnDevice });
    const t0 = performance.now();
    const r = await registerVolumes(pair.fixed, pair.moving, {
      matcher,
      refine,
      nccOnDevice,
      engine,
      gridMm: 24,
      onProgress: (stage, done, total) =>
        process.stderr.isTTY && process.stderr.write(`\r${stage} ${done}/${total}   `),
    });
    const seconds = (performance.now() - t0) / 1000;
    const files = await writeRegistration(join(out, 'result'), pair.fixed, pair.moving, r, {
      protect: [fixedPath, movingPath, ctPath],
    });
    await engine?.dispose();
    // score: the recovered map (the whole cascade's field) against the truth over the fixed body
    const points = bodyPoints(bodyMask(pair.fixed), 53);
    const after = tre(r.field, pair.truth, points);
    const before = tre((p) => p, pair.truth, points);
    console.log(
      `registered (${String(r.qa.stages)}) in ${seconds.toFixed(1)} s; ${r.affine.stats.inliers} affine inlier pairs of ${r.affine.stats.kept}; ` +
        `folding ${r.qa.jacobian.foldedPercent.toFixed(3)} %`,
    );
    console.log(
      `error against the known transform over the fixed body: mean ${after.mean.toFixed(2)} mm, 95th percentile ` +
        `${after.p95.toFixed(2)} mm (before registration: mean ${before.mean.toFixed(1)} mm)`,
    );
    for (const f of [fixedPath, movingPath, ...files]) console.log(f);
    return 0;
  },
};
