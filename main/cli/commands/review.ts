/**
 * `sam review <fixed> <moving> <result dir>`: the numbers behind the registration review (issue #7)
 * for a `sam register` result folder: SAM confidence map, Jacobian determinant map, summaries,
 * residual statistics, key slices, an optional sign-off, written as NIfTI maps plus report.json and
 * a self-contained report.html (engine/review/).
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { Command } from '../index.ts';
import { MODEL_OPTIONS, openModelFromArgs } from '../model-args.ts';
import { InputError } from '../../engine/errors.ts';
import { readRegistrationResult } from '../../engine/review/result-dir.ts';
import { checkRecordedMoving } from '../../engine/register/provenance.ts';
import { parseLabelNames } from '../../engine/review/label-names.ts';
import { makeSignOff, writeConfidenceMaps, writeReviewReport } from '../../engine/review/report.ts';
import { archivePreviousReview } from '../../engine/register/previous-result.ts';
import { reviewRegistration } from '../../engine/review/review.ts';
import { embedVolumeCached, hashVolume } from '../../engine/sam/embedding-cache.ts';
import { readVolume, writeVolume } from '../../engine/volume/io/index.ts';
import type { Volume } from '../../engine/volume/volume.ts';
import { optionalNumber } from '../option-values.ts';

const USAGE = `usage: sam review <fixed> <moving> <result dir> [options]

  <result dir>         a 'sam register' folder (warped.nii.gz, displacement.nii.gz or affine.tfm,
                       pairs.csv, qa.json)
  --out DIR            where to write (default: the result folder): confidence.nii.gz,
                       low-confidence.nii.gz, jacobian.nii.gz, folded.nii.gz, report.json, report.html
  --labels FILE        label map (e.g. TotalSegmentator) for per-organ confidence summaries
  --label-names FILE   names of its labels: JSON {"1": "spleen"} or lines '1,spleen'
  --threshold X        similarity below which a voxel is flagged (default 0.6)
  --approve | --reject sign the review off (--reviewer NAME required; --comment TEXT, required to reject)
  --weights FILE       SAM model (default resources/sam-small.samw or $SAM_MODEL)
  --random-init SEED   the untrained network instead (testing only); --config NAME (default small)
  --no-sam             skip the SAM confidence map (no model needed)
  --device NAME        auto (default), webgpu, onnx, tfjs-cpu, ...
  --cache-dir DIR      embedding cache (default $SAM_CACHE_DIR or ~/.cache/sam-workstation); --no-cache`;

export const reviewCommand: Command = {
  name: 'review',
  summary: 'QA numbers and report of a registration result (confidence, Jacobian, residuals, sign-off)',
  usage: USAGE,
  async run(args) {
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: {
        out: { type: 'string' },
        labels: { type: 'string' },
        'label-names': { type: 'string' },
        threshold: { type: 'string' },
        approve: { type: 'boolean', default: false },
        reject: { type: 'boolean', default: false },
        comment: { type: 'string' },
        reviewer: { type: 'string' },
        ...MODEL_OPTIONS,
        'no-sam': { type: 'boolean', default: false },
        'cache-dir': { type: 'string' },
        'no-cache': { type: 'boolean', default: false },
      },
    });
    if (positionals.length !== 3) {
      console.error(USAGE);
      return 2;
    }
    const [fixedPath, movingPath, resultDir] = positionals;
    if (values.approve && values.reject) throw new InputError('--approve/--reject', 'give one of them, not both');
    const signOff =
      values.approve || values.reject
        ? makeSignOff({
            decision: values.approve ? 'approved' : 'rejected',
            comment: values.comment,
            reviewer: values.reviewer ?? '',
          })
        : null;
    if (!signOff && (values.comment !== undefined || values.reviewer !== undefined))
      throw new InputError('--comment/--reviewer', 'only with --approve or --reject');
    const threshold = optionalNumber('threshold', values.threshold);
    const out = resolve(values.out ?? resultDir);

    const fixed = await readVolume(fixedPath);
    const moving = await readVolume(movingPath);
    const result = await readRegistrationResult(resultDir, fixed);
    // the fixed image is checked by the result's grid; the moving one by the grid recorded in qa.json
    checkRecordedMoving(result.qa, moving, movingPath);
    const labels = values.labels ? await readVolume(values.labels) : undefined;
    const ln = values['label-names'];
    const labelNames = ln ? parseLabelNames(readFileSync(ln, 'utf8'), ln) : undefined;
    const protect = [fixedPath, movingPath, ...[values.labels, ln].filter((p): p is string => !!p), ...result.files];

    let embeddings;
    if (!values['no-sam']) {
      const model = await openModelFromArgs(values, '--no-sam');
      try {
        const embed = async (v: Volume, what: string) => {
          const t0 = performance.now();
          const e = await embedVolumeCached(v, model.engine, {
            inputHash: hashVolume(v),
            modelHash: model.hash,
            cacheDir: values['cache-dir'],
            refresh: values['no-cache'],
          });
          console.error(
            `embedding ${what}: ${e.cached ? 'from cache' : 'computed'} (${((performance.now() - t0) / 1000).toFixed(1)} s)`,
          );
          return e;
        };
        embeddings = { fixed: await embed(fixed, 'fixed'), moving: await embed(moving, 'moving') };
      } finally {
        await model.engine.dispose();
      }
    }
    const r = reviewRegistration({
      fixed,
      moving,
      result,
      names: { fixed: fixedPath, moving: movingPath, labels: values.labels },
      embeddings,
      labels,
      labelNames,
      threshold,
      signOff,
    });
    mkdirSync(out, { recursive: true });
    // an earlier review (its sign-off, its maps) is kept, moved aside, never overwritten or mixed in
    const archived = archivePreviousReview(out);
    if (archived) console.error(`sam review: the earlier review in ${out} moved to ${archived}`);
    const files: string[] = [];
    const write = async (name: string, v: Volume) => {
      const p = join(out, name);
      await writeVolume(p, v, { protect });
      files.push(p);
    };
    if (r.confidence) files.push(...(await writeConfidenceMaps(out, r.confidence, { protect })));
    await write('jacobian.nii.gz', r.fieldStats.jacobian.det);
    await write('folded.nii.gz', r.fieldStats.jacobian.foldedMask);
    r.report.files = files;
    files.push(...writeReviewReport(out, r.report, r.images, { protect }));
    const j = r.report.jacobian;
    const c = r.report.confidence;
    console.error(
      `Jacobian ${j.min.toFixed(3)}..${j.max.toFixed(3)}, folded ${j.foldedPercent.toFixed(3)}%` +
        (c
          ? `; SAM confidence in the body ${c.body.meanSimilarity.toFixed(3)}, ${c.body.percentBelow.toFixed(1)}% below ${c.threshold}`
          : '') +
        (signOff ? `; ${signOff.decision} by ${signOff.reviewer}` : ''),
    );
    const flags = r.report.flags;
    console.error(
      flags.length ? flags.map((f) => `QA flag: ${f.code}: ${f.message}`).join('\n') : 'QA: nothing flagged',
    );
    for (const f of files) console.log(f);
    return 0;
  },
};
