/** The workstation engine: open, register in a worker thread (progress, cancel), export, sessions, path policy. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Workstation } from '../../main/engine/workstation/workstation.ts';
import { rootedPolicy } from '../../main/engine/workstation/path-policy.ts';
import { startWorkerThread } from '../../main/engine/workstation/worker-runner.ts';
import { defaultModelPath } from '../../main/engine/workstation/workstation.ts';
import { readVolume } from '../../main/engine/volume/io/index.ts';
import { DATA, dataPath, tempDir } from '../helpers.ts';

const FIXED = dataPath('elastix/Testing/Data/3DCT_lung_baseline_small.mha');

/** A browser-mode workstation reading the data folder and writing into `work`, registering in a worker thread. */
function browserWorkstation(work: string): Workstation {
  return new Workstation({ mode: 'browser', policy: rootedPolicy([DATA], work), startWorker: startWorkerThread });
}

test('workstation: register in a worker with progress, export, reopen geometry, session', async () => {
  const t = tempDir();
  const ws = browserWorkstation(t.dir);
  try {
    const f = await ws.openVolume(FIXED);
    const m = await ws.openVolume(FIXED);
    assert.deepEqual(f.size, [57, 78, 64]);
    assert.equal(ws.voxels(f.id).length, 57 * 78 * 64);
    const stages = new Set<string>();
    const r = await ws.register(
      { fixedId: f.id, movingId: m.id, matcher: 'ncc', stages: ['affine'], gridMm: 40 },
      (p) => stages.add(p.stage),
    );
    assert.ok(
      [...stages].some((s) => s.startsWith('affine')),
      [...stages].join(),
    );
    assert.deepEqual(r.warped.size, f.size);
    // identity pair: the affine is close to identity
    assert.ok(Math.abs(r.affine[0] - 1) < 0.05 && Math.abs(r.affine[3]) < 3, String(r.affine));
    // review: the readout at a voxel is the fixed voxel and the warped voxel there, J near 1
    const fixedVoxels = ws.voxels(f.id);
    const warpedVoxels = ws.voxels(r.warped.id);
    const c = f.origin.map((o, a) => o + 20 * f.spacing[a] * f.direction[a * 4]) as [number, number, number];
    const ro = ws.readout(c);
    const n = ro.index[0] + 57 * (ro.index[1] + 78 * ro.index[2]);
    assert.equal(ro.fixedHu, fixedVoxels[n]);
    assert.equal(Math.round(ro.warpedHu!), warpedVoxels[n]);
    assert.ok(Math.abs(ro.jacobian - 1) < 0.1, String(ro.jacobian));
    const qa = ws.fieldQa();
    assert.ok(qa.jacobian.min <= ro.jacobian && ro.jacobian <= qa.jacobian.max);
    assert.equal(qa.jacobian.foldedPercent, 0);
    const jm = ws.voxels(qa.jacobianMap.id);
    assert.equal(jm[n], Math.round(ro.jacobian * 1000));
    // the displacement magnitude map: |u| x 10 at the same voxel
    const mm = ws.voxels(qa.magnitudeMap.id);
    assert.deepEqual(qa.magnitudeMap.size, f.size);
    assert.equal(mm[n], Math.round(Math.hypot(...ro.displacement) * 10));
    assert.equal(r.gridMm, 40);
    // the slice overlay through the readout's voxel: on its axial slice, glyphs every 8 voxels
    const so = ws.sliceOverlay({ orientation: 'axial', point: ro.point, every: 8 });
    assert.equal(so.slice, ro.index[2]);
    assert.equal(so.glyphs.length, Math.ceil((57 - 4) / 8) * Math.ceil((78 - 4) / 8));
    const lines = (n: number) => Math.ceil(n / 8) + ((n - 1) % 8 ? 1 : 0); // every 8th and the last
    assert.equal(so.lines.length, lines(57) + lines(78));
    for (const g of so.glyphs) assert.ok(Math.abs(g.position[2] - ro.point[2]) < 1e-3);
    assert.throws(() => ws.sliceOverlay({ orientation: 'axial', point: ro.point, every: 0 }), /every/);
    // the slice a view shows wins over the point (a point halfway between slices may round either way)
    assert.equal(ws.sliceOverlay({ orientation: 'axial', point: ro.point, every: 8, slice: 1 }).slice, 1);
    assert.throws(() => ws.sliceOverlay({ orientation: 'axial', point: ro.point, every: 8, slice: 999 }), /outside/);
    assert.throws(() => ws.readout([NaN, 0, 0]), /finite/);
    // the affine pairs in the summary; a refit without none of them gives the registration's RMS back
    assert.ok(r.pairs && r.pairs.length > 4 && r.pairs.every((p, i) => p.index === i));
    const same = ws.refitAffine([]);
    assert.ok(Math.abs(same.rmsMm - r.affineRmsMm!) < 1e-9, `${same.rmsMm} vs ${r.affineRmsMm}`);
    const kept = r.pairs!.filter((p) => p.kept);
    const worst = kept.reduce((a, p) => (p.residualMm > a.residualMm ? p : a)).index;
    const refit = ws.refitAffine([worst]);
    assert.equal(refit.residuals[worst].kept, false);
    assert.equal(refit.fitted, same.fitted - 1);
    assert.throws(() => ws.refitAffine([r.pairs!.length]), /not in/);
    const e = await ws.exportResult(join(t.dir, 'out'), {
      decision: 'rejected',
      comment: 'shift at the apex',
      reviewer: 'dr test',
    });
    assert.ok(existsSync(join(e.dir, 'warped.nii.gz')) && existsSync(join(e.dir, 'qa.json')));
    const report = JSON.parse(readFileSync(join(e.dir, 'report.json'), 'utf8'));
    assert.equal(report.signOff.decision, 'rejected');
    assert.equal(report.signOff.comment, 'shift at the apex');
    assert.ok(e.files.some((p) => p.endsWith('report.html')));
    // the report holds what the reviewer saw: the field QA's numbers (same body mask), the affine pairs
    assert.ok(Math.abs(report.displacementMm.mean - qa.displacementMm.mean) < 1e-3);
    assert.equal(report.jacobian.folded, qa.jacobian.folded);
    assert.equal(report.residuals.pairs, r.pairs!.length);
    assert.ok(
      Math.abs(report.residuals.rmsMm - r.affineRmsMm!) < 1e-3,
      `${report.residuals.rmsMm} vs ${r.affineRmsMm}`,
    );
    // without a sign-off the report is written too, and says so
    const unsigned = await ws.exportResult(join(t.dir, 'out-unsigned'));
    assert.equal(JSON.parse(readFileSync(join(unsigned.dir, 'report.json'), 'utf8')).signOff, null);
    assert.match(readFileSync(join(unsigned.dir, 'report.html'), 'utf8'), /not signed off/);
    // a saved session reopens the exported result for review: the same pairs, affine, field QA, readout
    const reopened = await ws.openResult({ dir: e.dir, fixedId: f.id, movingId: m.id });
    assert.equal(reopened.pairs!.length, r.pairs!.length);
    assert.ok(Math.abs(reopened.affineRmsMm! - r.affineRmsMm!) < 1e-6);
    reopened.affine.forEach((x, i) => assert.ok(Math.abs(x - r.affine[i]) < 1e-6, `${x} vs ${r.affine[i]}`));
    const qa2 = ws.fieldQa();
    assert.equal(qa2.jacobian.folded, qa.jacobian.folded);
    assert.ok(Math.abs(qa2.displacementMm.mean - qa.displacementMm.mean) < 1e-3);
    const ro2 = ws.readout(c);
    assert.deepEqual(ro2.index, ro.index);
    assert.ok(Math.abs(ro2.warpedHu! - ro.warpedHu!) < 1e-3, `${ro2.warpedHu} vs ${ro.warpedHu}`);
    const again = await ws.exportResult(join(t.dir, 'out-again'));
    assert.ok(existsSync(join(again.dir, 'displacement.nii.gz')) && existsSync(join(again.dir, 'report.json')));
    await assert.rejects(
      ws.openResult({ dir: join(t.dir, 'nowhere'), fixedId: f.id, movingId: m.id }),
      /no such result folder/,
    );
    const back = await readVolume(join(e.dir, 'warped.nii.gz'));
    assert.deepEqual(back.size, f.size);
    back.spacing.forEach((s, i) => assert.ok(Math.abs(s - f.spacing[i]) < 1e-4));
    const session = {
      format: 'sam-workstation-session' as const,
      version: 1 as const,
      savedAt: new Date().toISOString(),
      fixed: { path: FIXED },
      settings: {
        matcher: 'ncc' as const,
        stages: ['affine' as const],
        gridMm: 40,
        window: 1500,
        level: -600,
        opacity: 0.5,
      },
      results: { exportDir: e.dir },
    };
    const saved = ws.saveSession('s.json', session);
    assert.equal(saved.replaced, false);
    const sp = saved.path;
    assert.equal(ws.openSession(sp).results?.exportDir, e.dir);
    // saving again replaces the session file (and says so); a file of another kind is never replaced
    assert.equal(ws.saveSession('s.json', session).replaced, true);
    writeFileSync(join(t.dir, 'notes.json'), '{"mine": true}\n');
    assert.throws(() => ws.saveSession('notes.json', session), /notes\.json: exists and is not a SAM session file/);
    assert.equal(readFileSync(join(t.dir, 'notes.json'), 'utf8'), '{"mine": true}\n');
    // the browser-mode policy: no reading outside the roots, no writing outside the work folder
    assert.throws(() => ws.saveSession(join(DATA, 'x.json'), ws.openSession(sp)), /outside the work folder/);
    await assert.rejects(ws.openVolume('/etc/passwd'), /outside the folders/);
    // an image registration will refuse says so when it is opened (a CT in HU does not)
    assert.equal(f.notCt, undefined);
    const mr = await ws.openVolume(join(DATA, 'TotalSegmentator/tests/reference_files/example_mr_sm.nii.gz'));
    assert.match(mr.notCt ?? '', /^not a CT in Hounsfield units: .*registration will refuse it$/);
  } finally {
    ws.dispose();
    t.cleanup();
  }
});

test('workstation: a cancel inside the SAM embedding (an ONNX Runtime run) leaves the process and the next registration working', async () => {
  // ending the worker thread during an ONNX Runtime run aborted the whole server (Napi::Error); the
  // worker is now set aside until it reports back
  const t = tempDir();
  const ws = new Workstation({
    mode: 'browser',
    policy: rootedPolicy([DATA], t.dir),
    startWorker: startWorkerThread,
    modelPath: defaultModelPath(),
  });
  try {
    const chest = await ws.openVolume(dataPath('ITKElastix/examples/data/00'));
    let cancelledAt = '';
    const run = ws.register(
      { fixedId: chest.id, movingId: chest.id, matcher: 'sam', stages: ['affine'], gridMm: 40 },
      (p) => {
        if (!cancelledAt && p.stage.startsWith('embed')) {
          cancelledAt = p.stage;
          ws.cancelRegistration();
        }
      },
    );
    await assert.rejects(run, /cancelled/);
    assert.match(cancelledAt, /^embed/);
    const small = await ws.openVolume(FIXED);
    const r = await ws.register(
      { fixedId: small.id, movingId: small.id, matcher: 'ncc', stages: ['affine'], gridMm: 40 },
      () => {},
    );
    assert.deepEqual(r.warped.size, small.size);
  } finally {
    ws.dispose();
    t.cleanup();
  }
});

test('workstation: cancel stops a running registration', async () => {
  const t = tempDir();
  const ws = browserWorkstation(t.dir);
  try {
    const f = await ws.openVolume(FIXED);
    const run = ws.register({ fixedId: f.id, movingId: f.id, matcher: 'ncc', stages: ['affine'], gridMm: 12 }, () => {
      ws.cancelRegistration();
    });
    await assert.rejects(run, /cancelled/);
    await assert.rejects(ws.exportResult(join(t.dir, 'o')), /nothing to export/);
  } finally {
    ws.dispose();
    t.cleanup();
  }
});
