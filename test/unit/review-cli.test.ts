// `sam review` end to end on a result folder of a known-affine pair from real CT (written here the
// way `sam register` writes it), with the shipped model and the TotalSegmentator label map: maps
// on the fixed grid, report.json numbers, self-contained report.html with PNG slices, sign-off,
// inputs never overwritten. Plus the report module's checks (sign-off rules, slice images).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeSyntheticPair } from '../../main/engine/bench/synthetic-pair.ts';
import { writeAffine } from '../../main/engine/register/affine-io.ts';
import { fieldFromAffine } from '../../main/engine/register/field/field.ts';
import { warpWithAffine } from '../../main/engine/register/field/warp.ts';
import { samAffineFromPairs, writePairsCsv } from '../../main/engine/register/sam-affine.ts';
import { checkerboardImage, makeSignOff, sliceImage, writeReviewReport } from '../../main/engine/review/report.ts';
import { parseCoarsePairsCsv, parsePairsCsv } from '../../main/engine/review/result-dir.ts';
import { coarsePairsCsv } from '../../main/engine/register/register-output.ts';
import { openReviewSession } from '../../main/engine/review/session.ts';
import { parseLabelNames } from '../../main/engine/review/label-names.ts';
import { affineDeterminant } from '../../main/engine/register/affine-fit.ts';
import { indexToWorld } from '../../main/engine/volume/geometry.ts';
import { readVolume, writeVolume } from '../../main/engine/volume/io/index.ts';
import { bodyMask } from '../../main/engine/volume/mask.ts';
import { cropIndex } from '../../main/engine/volume/crop.ts';
import { makeVolume, type Vec3 } from '../../main/engine/volume/volume.ts';
import { dataPath, rng, tempDir } from '../helpers.ts';
import { EXAMPLE_CT } from './embed-fixtures.ts';
import { bestAffine } from './review-fixtures.ts';

test('sam review: maps, report.json and report.html for a register result, with sign-off', async (t) => {
  const { dir, cleanup } = tempDir();
  try {
    // the lower 70 slices of the example CT (the label map covers its lowest 30), cropped in-plane
    const ct = cropIndex(await readVolume(EXAMPLE_CT), [11, 6, 0], [111, 96, 70]);
    const pair = makeSyntheticPair(ct, { seed: 5, bumps: 0, maxDeformationMm: 0, noiseHu: 5 });
    const fixedPath = join(dir, 'fixed.nii.gz');
    const movingPath = join(dir, 'moving.nii.gz');
    await writeVolume(fixedPath, pair.fixed);
    await writeVolume(movingPath, pair.moving);
    // a result folder as sam register writes it: the exact affine, pairs with 10% outliers
    const mask = bodyMask(pair.fixed);
    const A = bestAffine(pair, mask);
    const r = rng(1);
    const cands = [];
    for (let n = 0; n < 300; n++) {
      const x = indexToWorld(pair.fixed, [8 + r() * 84, 8 + r() * 74, 6 + r() * 58]);
      const y = pair.truth(x).map((v) => v + (n % 10 === 0 ? 30 * (r() - 0.5) : 0.5 * (r() - 0.5))) as Vec3;
      cands.push({ fixed: x, moving: y, score: 0.9, accepted: true });
    }
    const fit = samAffineFromPairs(cands);
    const res = join(dir, 'result');
    await writeVolume(join(res, 'warped.nii.gz'), warpWithAffine(pair.moving, pair.fixed, A, { fill: -1024 }));
    await writeVolume(join(res, 'displacement.nii.gz'), fieldFromAffine(pair.fixed, A));
    writeAffine(join(res, 'affine.tfm'), A);
    writePairsCsv(join(res, 'pairs.csv'), fit.pairs);
    writeFileSync(
      join(res, 'qa.json'),
      JSON.stringify({ stages: ['affine'], matcher: 'sam', secondsPerStage: { embedding: 4.2, affine: 0.8 } }),
    );
    const out = join(dir, 'review');
    const labels = dataPath('TotalSegmentator/tests/reference_files/example_seg.nii.gz');
    const names = join(dir, 'names.csv');
    writeFileSync(names, 'label,name\n5,liver\n1,spleen\n');
    const t0 = performance.now();
    const run = spawnSync(
      process.execPath,
      [
        'bin/sam.mjs',
        'review',
        fixedPath,
        movingPath,
        res,
        '--labels',
        labels,
        '--label-names',
        names,
        '--out',
        out,
        '--reject',
        '--comment',
        'liver dome off',
        '--reviewer',
        'Dr Test',
        '--device',
        'onnx',
        '--no-cache',
        '--cache-dir',
        join(dir, 'cache'),
      ],
      { encoding: 'utf8', env: { ...process.env, SAM_MODEL: '' } },
    );
    t.diagnostic(
      `sam review took ${((performance.now() - t0) / 1000).toFixed(1)} s; ${run.stderr.trim().split('\n').pop()}`,
    );
    assert.equal(run.status, 0, run.stderr);
    // maps on the fixed grid
    const conf = await readVolume(join(out, 'confidence.nii.gz'));
    const jac = await readVolume(join(out, 'jacobian.nii.gz'));
    assert.deepEqual(conf.size, pair.fixed.size);
    assert.deepEqual(jac.size, pair.fixed.size);
    const det = affineDeterminant(A);
    for (let n = 0; n < jac.data.length; n += 997) assert.ok(Math.abs(jac.data[n] - det) < 1e-4);
    // report.json
    const rep = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8'));
    assert.equal(rep.signOff.decision, 'rejected');
    assert.equal(rep.signOff.reviewer, 'Dr Test');
    assert.equal(rep.signOff.comment, 'liver dome off');
    assert.equal(rep.jacobian.folded, 0);
    assert.equal(rep.residuals.pairs, 300);
    assert.equal(rep.residuals.inliers, fit.stats.inliers);
    assert.ok(Math.abs(rep.residuals.rmsMm - fit.stats.rmsMm) < 1e-3);
    assert.equal(rep.registrationQa.secondsPerStage.embedding, 4.2);
    const c = rep.confidence;
    t.diagnostic(
      `exact affine: body similarity ${c.body.meanSimilarity.toFixed(3)}, ${c.body.percentBelow.toFixed(2)}% below ${c.threshold}`,
    );
    assert.ok(c.body.meanSimilarity > 0.85 && c.body.percentBelow < 3);
    assert.equal(c.thirds.length, 3);
    assert.equal(c.octants.length, 8);
    assert.ok(c.labels.length > 20);
    const liver = c.labels.find((x: { label: number }) => x.label === 5);
    assert.equal(liver.name, 'liver');
    assert.equal(c.labels.find((x: { label: number }) => x.label === 2).name, 'label 2');
    // report.html: self-contained, images embedded, numbers present
    const html = readFileSync(join(out, 'report.html'), 'utf8');
    assert.ok(!/src="(?!data:)/.test(html), 'no external resources');
    assert.equal((html.match(/data:image\/png;base64,/g) ?? []).length, 12);
    assert.match(html, /REJECTED/);
    assert.match(html, /liver dome off/);
    assert.match(html, new RegExp(c.body.meanSimilarity.toFixed(3)));
    // never writes over the result's inputs: --out defaults to the result folder, whose files are protected
    const before = statSync(join(res, 'warped.nii.gz')).mtimeMs;
    const again = spawnSync(
      process.execPath,
      ['bin/sam.mjs', 'review', fixedPath, movingPath, res, '--no-sam', '--approve', '--reviewer', 'X'],
      { encoding: 'utf8' },
    );
    assert.equal(again.status, 0, again.stderr);
    assert.equal(statSync(join(res, 'warped.nii.gz')).mtimeMs, before);
    assert.equal(JSON.parse(readFileSync(join(res, 'report.json'), 'utf8')).signOff.decision, 'approved');
    // a second review there keeps the first one's sign-off: moved aside, not overwritten
    const third = spawnSync(
      process.execPath,
      [
        'bin/sam.mjs',
        'review',
        fixedPath,
        movingPath,
        res,
        '--no-sam',
        '--reject',
        '--reviewer',
        'Y',
        '--comment',
        'no',
      ],
      { encoding: 'utf8' },
    );
    assert.equal(third.status, 0, third.stderr);
    const kept = /the earlier review in .* moved to (.*previous-review-[0-9-]+)/.exec(third.stderr)?.[1];
    assert.ok(kept, third.stderr);
    assert.equal(JSON.parse(readFileSync(join(kept, 'report.json'), 'utf8')).signOff.reviewer, 'X');
    assert.equal(JSON.parse(readFileSync(join(res, 'report.json'), 'utf8')).signOff.reviewer, 'Y');
    // the same folder opened as a review session (what the workstation calls), without a model
    const session = await openReviewSession({ fixed: fixedPath, moving: movingPath, resultDir: res });
    assert.equal(session.result.fieldSource, 'displacement.nii.gz');
    assert.equal(session.result.pairs!.length, 300);
    assert.equal(session.readout(indexToWorld(pair.fixed, [50, 45, 35])).jacobian.toFixed(4), det.toFixed(4));
    // a rejection without a comment is refused
    const bad = spawnSync(
      process.execPath,
      ['bin/sam.mjs', 'review', fixedPath, movingPath, res, '--no-sam', '--reject', '--reviewer', 'X'],
      {
        encoding: 'utf8',
      },
    );
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /rejection needs a comment/);
  } finally {
    cleanup();
  }
});

test('report: sign-off rules, slice and checkerboard images, pairs.csv round trip, atomic writes refuse inputs', () => {
  assert.throws(() => makeSignOff({ decision: 'maybe', reviewer: 'a' }), /approved' or 'rejected/);
  assert.deepEqual(parseLabelNames('{"1": "spleen", "5": "liver"}'), { 1: 'spleen', 5: 'liver' });
  assert.deepEqual(parseLabelNames('# TotalSegmentator\nlabel\tname\n1\tspleen\n2, "kidney right"\n'), {
    1: 'spleen',
    2: 'kidney right',
  });
  assert.throws(() => parseLabelNames('1,a\nxx'), /line 2/);
  assert.throws(() => makeSignOff({ decision: 'approved', reviewer: ' ' }), /reviewer/);
  const s = makeSignOff({ decision: 'approved', reviewer: 'A', time: '2026-01-02T03:04:05Z' });
  assert.equal(s.time, '2026-01-02T03:04:05.000Z');
  // a 4 x 3 x 2 grid, spacing 1 x 2 x 3, LPS: axial images are 4 wide, 5 high (square 1 mm pixels)
  const v = makeVolume({
    size: [4, 3, 2],
    spacing: [1, 2, 3],
    origin: [0, 0, 0],
    data: Float32Array.from({ length: 24 }, (_, n) => n * 10),
  });
  const img = sliceImage(v, 'axial', { slice: 1, window: 240, level: 120 });
  assert.equal(img.width, 4);
  assert.equal(img.height, 5);
  // top-left pixel: i = 0 (patient right), j = 0 (anterior), k = 1 -> voxel 12 -> 120 HU -> mid grey
  assert.equal(img.pixels[0], 128);
  const cb = checkerboardImage(v, { ...v, data: new Float32Array(24) }, 'axial', {
    slice: 1,
    squares: 2,
    window: 240,
    level: 120,
  });
  assert.equal(cb.pixels[0], 128);
  assert.equal(cb.pixels[img.width - 1], 0); // the other image in the next square
  // pairs.csv round trip
  const pairs = [
    {
      fixed: [1, 2, 3] as Vec3,
      moving: [4, 5, 6] as Vec3,
      score: 0.8,
      accepted: true,
      kept: true,
      residualMm: 0.5,
      inlier: true,
      cycleErrorMm: 1.5,
    },
    {
      fixed: [7, 8, 9] as Vec3,
      moving: [1, 1, 1] as Vec3,
      score: 0.5,
      accepted: false,
      kept: false,
      residualMm: 9,
      inlier: false,
    },
  ];
  const { dir, cleanup } = tempDir();
  try {
    writePairsCsv(join(dir, 'pairs.csv'), pairs);
    assert.deepEqual(parsePairsCsv(readFileSync(join(dir, 'pairs.csv'), 'utf8')), pairs);
    // coarse-pairs.csv too (a reopened result writes it again on export); NaN residual: not kept
    const coarse = [
      {
        fixed: [1.5, -2, 3] as Vec3,
        moving: [4, 5.25, -6] as Vec3,
        score: 0.91,
        cycleErrorMm: 1.2,
        kept: true,
        residualMm: 0.8,
        inlier: true,
      },
      {
        fixed: [2, 2, 2] as Vec3,
        moving: [9, 9, 9] as Vec3,
        score: 0.8,
        cycleErrorMm: 2.5,
        kept: true,
        residualMm: 7.5,
        inlier: false,
      },
      {
        fixed: [0, 0, 0] as Vec3,
        moving: [1, 1, 1] as Vec3,
        score: 0.4,
        cycleErrorMm: 30.5,
        kept: false,
        residualMm: NaN,
        inlier: false,
      },
    ];
    assert.deepEqual(parseCoarsePairsCsv(coarsePairsCsv(coarse)), coarse);
    // an older result's file, without the inlier column: its kept pairs read as inliers
    const old = coarsePairsCsv(coarse)
      .split('\n')
      .map((l) => l.replace(/,[^,]*$/, ''))
      .join('\n');
    assert.deepEqual(
      parseCoarsePairsCsv(old).map((p) => p.inlier),
      [true, true, false],
    );
    assert.throws(() => parseCoarsePairsCsv('a,b\n1,2\n', 'x.csv'), /x.csv.*no 'fixed_x' column/);
    const rep = {
      createdAt: 'now',
      inputs: { fixed: 'f', moving: 'm', resultDir: dir },
      registrationQa: null,
      residuals: null,
      jacobian: { min: 1, max: 1, mean: 1, std: 0, folded: 0, foldedPercent: 0, voxels: 1 },
      displacementMm: { mean: 0, p95: 0, max: 0 },
      confidence: null,
      flags: [],
      reviewSeconds: {},
      files: [],
      signOff: s,
    };
    assert.throws(
      () => writeReviewReport(dir, rep, [], { protect: [join(dir, 'report.html')] }),
      /refusing to overwrite/,
    );
    const files = writeReviewReport(dir, rep, []);
    assert.equal(files.length, 2);
  } finally {
    cleanup();
  }
});
