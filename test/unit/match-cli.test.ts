// `sam match` and `sam eval-match` as a user runs them: CSV out, embeddings cached by content and
// model, a clear message when the trained model is missing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parsePoints } from '../../main/engine/volume/points.ts';
import { dataPath, tempDir } from '../helpers.ts';

const LUNG = dataPath('elastix', 'Testing', 'Data', '3DCT_lung_baseline_small.mha');

function sam(env: Record<string, string>, ...args: string[]) {
  const r = spawnSync(process.execPath, ['bin/sam.mjs', ...args], {
    encoding: 'utf8',
    env: { ...process.env, SAM_TF_BACKEND: 'cpu', ...env },
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test('sam match: CSV of matches, embeddings cached, missing model explained', () => {
  const { dir, cleanup } = tempDir();
  try {
    const env = { SAM_CACHE_DIR: join(dir, 'cache'), SAM_MODEL: join(dir, 'absent.samw') };
    const pts = join(dir, 'points.txt');
    // elastix landmarks: the second lies beyond the template's x extent (-152.5..0.5 mm), the third far outside
    writeFileSync(pts, 'point\n3\n-36.351 -36.974 -1204.5\n42.877 -68.392 -1209.5\n5000 0 -1204.5\n');
    const none = sam(env, 'match', LUNG, LUNG, '--points', pts);
    assert.equal(none.code, 1);
    assert.match(none.err, /absent\.samw: no trained model here yet/);
    const args = ['match', LUNG, LUNG, '--points', pts, '--random-init', '1', '--config', 'tiny'];
    const out = join(dir, 'm.csv');
    const r = sam(env, ...args, '--top-k', '100000', '--out', out);
    assert.equal(r.code, 0, r.err);
    // template and query are the same file: embedded once, read back from the cache for the query
    assert.match(r.err, /embedding template: computed/);
    assert.match(r.err, /embedding query: from cache/);
    const lines = readFileSync(out, 'utf8').trim().split('\n');
    assert.equal(lines[0], 'x,y,z,score,global,local,cycle_error_mm,accepted,in_template');
    assert.equal(lines.length, 4);
    // the points outside: empty rows and a warning naming them, not confident matches at the edge
    assert.equal(lines[2], ',,,,,,,0,0');
    assert.equal(lines[3], ',,,,,,,0,0');
    assert.match(r.err, /2 of 3 points lie outside the template's field of view \(points 2, 3\)/);
    for (const l of lines.slice(1, 2)) {
      // (a random network: the plumbing is tested here, the accuracy elsewhere)
      const [x, y, z, score, , , cyc, acc] = l.split(',').map(Number);
      assert.ok(Number.isFinite(x + y + z + cyc) && score > 0.9 && score <= 1 && (acc === 0 || acc === 1), l);
    }
    // --refine ncc: the same scan as template and query, so NCC puts the point on itself (the random
    // network's match lands within 8 mm of it, or the row keeps SAM's location with refined 0)
    const rf = sam(env, ...args, '--refine', 'ncc');
    assert.equal(rf.code, 0, rf.err);
    const rl = rf.out.trim().split('\n');
    assert.equal(rl[0], 'x,y,z,score,global,local,cycle_error_mm,accepted,in_template,ncc_score,refined');
    assert.equal(rl[2], ',,,,,,,0,0,,0');
    const c = rl[1].split(',').map(Number);
    const sam0 = lines[1].split(',').map(Number);
    const p0 = [-36.351, -36.974, -1204.5];
    if (c[10] === 1) {
      p0.forEach((x, a) => assert.ok(Math.abs(c[a] - x) < 0.2, `refined ${rl[1]} vs the point ${p0}`));
      assert.ok(c[9] > 0.99, rl[1]);
    } else for (let a = 0; a < 3; a++) assert.equal(c[a], sam0[a], 'not refined: SAM location kept');
    assert.match(rf.err, /refined by NCC in \d+ ms: [01] of [01] accepted matches moved/);
    const bad = sam(env, ...args, '--refine', 'icp');
    assert.equal(bad.code, 1);
    assert.match(bad.err, /--refine: use ncc or none, got 'icp'/);
    const again = sam(env, ...args);
    assert.equal(again.code, 0, again.err);
    assert.match(again.err, /embedding template: from cache/);
    assert.equal(again.out.trim().split('\n').length, 4);
    assert.equal(readdirSync(join(dir, 'cache')).length, 1);
    // a labelled RAS file: said, converted (the same match as the LPS point), labels kept; a point given
    // as a voxel index at the template's corner lies in the air around the body: warned
    const rasPts = join(dir, 'ras.csv');
    writeFileSync(rasPts, 'label,r,a,s\nnodule,36.351,36.974,-1204.5\n');
    const ras = sam(env, ...args, '--points', rasPts);
    assert.equal(ras.code, 0, ras.err);
    assert.match(ras.err, /ras\.csv holds RAS coordinates \(as it says\): converted to LPS/);
    const rasRows = ras.out.trim().split('\n');
    assert.equal(rasRows[0], 'label,x,y,z,score,global,local,cycle_error_mm,accepted,in_template');
    assert.equal(rasRows[1], `nodule,${lines[1]}`);
    // the accepted matches as Slicer markups: labelled, LPS stated, read back to the CSV's location
    const fcsv = sam(env, ...args, '--points', rasPts, '--format', 'fcsv');
    assert.equal(fcsv.code, 0, fcsv.err);
    if (rasRows[1].split(',')[8] === '1') {
      assert.match(fcsv.out, /# CoordinateSystem = LPS/);
      const m = parsePoints(fcsv.out, 'm.fcsv');
      assert.deepEqual(m.labels, ['nodule']);
      m.points[0].forEach((v, a) => assert.ok(Math.abs(v - Number(rasRows[1].split(',')[a + 1])) < 1e-3));
    } else assert.match(fcsv.err, /0 accepted matches of 1 points in the \.fcsv/);
    const cornerPts = join(dir, 'corner.csv');
    writeFileSync(cornerPts, 'i,j,k\n0,0,0\n');
    const corner = sam(env, ...args, '--points', cornerPts);
    assert.equal(corner.code, 0, corner.err);
    assert.match(corner.err, /warning: 1 of 1 points of .*corner\.csv lie outside the body in .*\(point 1\)/);
    const both = sam(env, ...args, '--cycle', '--no-cycle');
    assert.equal(both.code, 1);
    assert.match(both.err, /--no-cycle: contradicts --cycle/);
    // 100 points (enough to share the search with worker threads, from the cached embeddings: shared
    // memory): the command ends, one row a point, the same rows as a point at a time
    const many: string[] = [];
    for (let k = 0; k < 4; k++)
      for (let j = 0; j < 5; j++)
        for (let i = 0; i < 5; i++) many.push(`${-60 + 8 * i} ${-60 + 8 * j} ${-1216 + 8 * k}`);
    const manyPts = join(dir, 'many.txt');
    writeFileSync(manyPts, `point\n${many.length}\n${many.join('\n')}\n`);
    const all = sam(env, ...args, '--points', manyPts);
    assert.equal(all.code, 0, all.err);
    const rows = all.out.trim().split('\n');
    assert.equal(rows.length, 101);
    writeFileSync(manyPts, `point\n1\n${many[37]}\n`);
    const one = sam(env, ...args, '--points', manyPts);
    assert.equal(one.out.trim().split('\n')[1], rows[38]);
  } finally {
    cleanup();
  }
});

test('sam eval-match: MRE and CPM for random initialisation and NCC when no trained model exists', () => {
  const { dir, cleanup } = tempDir();
  try {
    const r = sam(
      { SAM_MODEL: join(dir, 'absent.samw') },
      'eval-match', '--ct', LUNG, '--config', 'tiny', '--pairs', '1', '--points', '20', '--json',
    ); // prettier-ignore
    assert.equal(r.code, 0, r.err);
    assert.match(r.err, /no trained model at .*absent\.samw: evaluating random initialisation and NCC only/);
    const j = JSON.parse(r.out);
    assert.deepEqual(j.seeds, [1101]);
    assert.deepEqual(
      j.results.map((x: { method: string }) => x.method),
      ['identity (no matching)', 'SAM random init (tiny, seed 0)', 'NCC template matching'],
    );
    for (const x of j.results) {
      assert.equal(x.points, 20);
      assert.ok(x.mreMm >= 0 && x.cpm5 <= x.cpm10 && x.cpm10 <= 1);
    }
  } finally {
    cleanup();
  }
});
