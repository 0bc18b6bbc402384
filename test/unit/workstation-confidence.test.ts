/**
 * The workstation's review tools that need SAM (confidence map, point tracking), run in the worker
 * thread on a deformed synthetic pair of real CT (review-fixtures.ts) with the shipped model:
 * affine-only registration is flagged by the confidence rules, the map equals review/confidence.ts
 * computed here on the same embeddings and field, the readout's SAM similarity is the map's value,
 * a tracked point lands near the true correspondence, and a model-less workstation says why it cannot.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Workstation } from '../../main/engine/workstation/workstation.ts';
import { rootedPolicy } from '../../main/engine/workstation/path-policy.ts';
import { startWorkerThread } from '../../main/engine/workstation/worker-runner.ts';
import { CONFIDENCE_NO_DATA } from '../../main/engine/workstation/register-protocol.ts';
import { writeVolume } from '../../main/engine/volume/io/index.ts';
import { confidenceGrid } from '../../main/engine/review/confidence.ts';
import { fieldFromAffine } from '../../main/engine/register/field/field.ts';
import { indexToWorld } from '../../main/engine/volume/geometry.ts';
import { resample } from '../../main/engine/volume/resample.ts';
import type { Vec3 } from '../../main/engine/volume/volume.ts';
import { DATA, tempDir } from '../helpers.ts';
import { deformedSetup, SHIPPED_MODEL } from './review-fixtures.ts';

/** The deformed pair written into a temporary work folder and opened in a browser-mode workstation with the shipped model. */
async function deformedWorkstation() {
  const s = await deformedSetup();
  const dir = tempDir();
  const ws = new Workstation({
    mode: 'browser',
    policy: rootedPolicy([DATA], dir.dir),
    startWorker: startWorkerThread,
    modelPath: SHIPPED_MODEL,
  });
  await writeVolume(join(dir.dir, 'fixed.nii.gz'), s.pair.fixed);
  await writeVolume(join(dir.dir, 'moving.nii.gz'), s.pair.moving);
  const f = await ws.openVolume('fixed.nii.gz');
  const m = await ws.openVolume('moving.nii.gz');
  return { s, dir, ws, f, m };
}

test('workstation: confidence map and point tracking in the worker flag an affine-only registration of a deformed pair', async (t) => {
  const { s, dir, ws, f, m } = await deformedWorkstation();
  try {
    await assert.rejects(ws.confidence(), /run a registration first/);
    const r = await ws.register(
      { fixedId: f.id, movingId: m.id, matcher: 'ncc', stages: ['affine'], gridMm: 16 },
      () => {},
    );
    const stages = new Set<string>();
    const t0 = performance.now();
    const c = await ws.confidence((p) => stages.add(p.stage));
    t.diagnostic(
      `confidence in ${((performance.now() - t0) / 1000).toFixed(1)} s (${JSON.stringify(c.seconds)}); stages ${[...stages].join(', ')}`,
    );
    t.diagnostic(`flags: ${c.flags.map((x) => x.message).join('; ')}`);
    assert.ok(stages.has('embedding fixed') && stages.has('confidence map'));
    assert.ok(
      c.flags.some((x) => x.code === 'low-confidence'),
      'an affine-only registration of a deformed pair is flagged',
    );
    // the same call again is the cached result
    assert.equal((await ws.confidence()).map.id, c.map.id);

    // the map equals review/confidence.ts on the same embeddings and the registration's affine
    const field = fieldFromAffine(s.pair.fixed, r.affine as never);
    const direct = resample(confidenceGrid(s.embeddings, field), s.pair.fixed, { fill: NaN, outputType: 'float32' });
    const map = ws.voxels(c.map.id);
    let compared = 0;
    for (let n = 0; n < map.length; n += 97) {
      const d = direct.data[n];
      if (map[n] === CONFIDENCE_NO_DATA) {
        assert.ok(!Number.isFinite(d));
        continue;
      }
      assert.ok(Math.abs(map[n] / 1000 - d) < 2e-3, `voxel ${n}: ${map[n] / 1000} vs ${d}`);
      compared++;
    }
    assert.ok(compared > 1000, String(compared));

    // readout: its SAM similarity is the map's value at that voxel
    const [ni, nj, nk] = s.pair.fixed.size;
    const centre = indexToWorld(s.pair.fixed, [ni >> 1, nj >> 1, nk >> 1]);
    const ro = ws.readout(centre);
    const v = map[ro.index[0] + ni * (ro.index[1] + nj * ro.index[2])];
    assert.equal(ro.samSimilarity, v === CONFIDENCE_NO_DATA ? null : v / 1000);

    // tracking: a body point near the centre lands near its true correspondence; mapped = the affine
    const p: Vec3 = centre;
    const tr = await ws.trackPoint(p);
    const truth = s.pair.truth(p);
    const err = Math.hypot(...tr.matched.map((x, a) => x - truth[a]));
    t.diagnostic(
      `tracked: score ${tr.score.toFixed(3)}, ${err.toFixed(2)} mm from the truth, ${tr.distanceMm?.toFixed(2)} mm from the affine's mapping`,
    );
    assert.ok(err < 8, `tracked point ${err.toFixed(1)} mm from the truth`);
    const a = r.affine;
    const mapped = [0, 1, 2].map((i) => a[4 * i] * p[0] + a[4 * i + 1] * p[1] + a[4 * i + 2] * p[2] + a[4 * i + 3]);
    mapped.forEach((x, i) => assert.ok(Math.abs(x - tr.mapped![i]) < 0.05, `${x} vs ${tr.mapped![i]}`));
    await assert.rejects(ws.trackPoint([NaN, 0, 0]), /finite/);

    // the export's report carries the confidence summary and the flags
    const e = await ws.exportResult(join(dir.dir, 'out'), {
      decision: 'rejected',
      comment: 'affine only',
      reviewer: 'qa',
    });
    const { readFileSync } = await import('node:fs');
    const rep = JSON.parse(readFileSync(join(e.dir, 'report.json'), 'utf8'));
    assert.deepEqual(rep.confidence.body, c.summary.body);
    assert.ok(rep.flags.some((x: { code: string }) => x.code === 'low-confidence'));
    assert.ok(
      e.files.some((x) => x.endsWith('confidence.nii.gz')) && e.files.some((x) => x.endsWith('low-confidence.nii.gz')),
    );

    // reopening the export restores the map without the model's work: every voxel, the summary, the
    // flags, the readout's similarity; a new export writes the same summary again
    const re = await ws.openResult({ dir: e.dir, fixedId: f.id, movingId: m.id });
    assert.ok(re.confidence, 'the reopened result carries its confidence map');
    assert.equal(re.confidenceNotRead, undefined);
    assert.deepEqual(re.confidence.summary, c.summary);
    assert.deepEqual(re.confidence.flags, c.flags);
    assert.deepEqual(ws.voxels(re.confidence.map.id), map);
    assert.equal(ws.readout(centre).samSimilarity, ro.samSimilarity);
    const e2 = await ws.exportResult(join(dir.dir, 'out-2'));
    assert.deepEqual(JSON.parse(readFileSync(join(e2.dir, 'report.json'), 'utf8')).confidence, rep.confidence);
    // a stored map off the fixed grid is named, and the result opens without it
    const { copyFileSync } = await import('node:fs');
    copyFileSync(join(dir.dir, 'moving.nii.gz'), join(e2.dir, 'confidence.nii.gz'));
    const bad = await ws.openResult({ dir: e2.dir, fixedId: f.id, movingId: m.id });
    assert.equal(bad.confidence, undefined);
    assert.match(bad.confidenceNotRead ?? '', /confidence\.nii\.gz.*not on the fixed image grid/);
    assert.equal(ws.readout(centre).samSimilarity, null);
  } finally {
    ws.dispose();
    dir.cleanup();
  }
});

test('workstation: a result reopened after another registration gets the confidence map of its own images', async () => {
  // the worker keeps the inputs of the last registration it ran; a reopened result used to be
  // reviewed on those (another pair), now its images and field go to the worker with the request
  const { s, dir, ws, f, m } = await deformedWorkstation();
  try {
    const r = await ws.register(
      { fixedId: f.id, movingId: m.id, matcher: 'ncc', stages: ['affine'], gridMm: 16 },
      () => {},
    );
    const e = await ws.exportResult(join(dir.dir, 'out'));
    // another pair registered: the worker now holds it
    const other = await ws.openVolume(join(DATA, 'elastix/Testing/Data/3DCT_lung_baseline_small.mha'));
    await ws.register(
      { fixedId: other.id, movingId: other.id, matcher: 'ncc', stages: ['affine'], gridMm: 40 },
      () => {},
    );
    await ws.openResult({ dir: e.dir, fixedId: f.id, movingId: m.id });
    const c = await ws.confidence();
    const map = ws.voxels(c.map.id);
    assert.equal(map.length, s.pair.fixed.size[0] * s.pair.fixed.size[1] * s.pair.fixed.size[2]);
    const field = fieldFromAffine(s.pair.fixed, r.affine as never);
    const direct = resample(confidenceGrid(s.embeddings, field), s.pair.fixed, { fill: NaN, outputType: 'float32' });
    let compared = 0;
    for (let n = 0; n < map.length; n += 97) {
      if (map[n] === CONFIDENCE_NO_DATA || !Number.isFinite(direct.data[n])) continue;
      // the affine read back from affine.txt: within its printed precision
      assert.ok(Math.abs(map[n] / 1000 - direct.data[n]) < 5e-3, `voxel ${n}: ${map[n] / 1000} vs ${direct.data[n]}`);
      compared++;
    }
    assert.ok(compared > 1000, String(compared));
    // tracking works on it too (the worker holds its embeddings now)
    const [ni, nj, nk] = s.pair.fixed.size;
    const tr = await ws.trackPoint(indexToWorld(s.pair.fixed, [ni >> 1, nj >> 1, nk >> 1]));
    assert.ok(Number.isFinite(tr.score));
  } finally {
    ws.dispose();
    dir.cleanup();
  }
});

test('workstation: without a SAM model, confidence and tracking say why', async () => {
  const dir = tempDir();
  const ws = new Workstation({
    mode: 'browser',
    policy: rootedPolicy([DATA], dir.dir),
    startWorker: startWorkerThread,
    modelPath: join(dir.dir, 'absent.samw'),
  });
  try {
    const f = await ws.openVolume(join(DATA, 'elastix/Testing/Data/3DCT_lung_baseline_small.mha'));
    await ws.register({ fixedId: f.id, movingId: f.id, matcher: 'ncc', stages: ['affine'], gridMm: 40 }, () => {});
    await assert.rejects(ws.confidence(), /needs the SAM model/);
    await assert.rejects(ws.trackPoint([0, 0, 0]), /needs the SAM model/);
    assert.equal(ws.readout([0, 0, 0]).samSimilarity, null);
  } finally {
    ws.dispose();
    dir.cleanup();
  }
});
