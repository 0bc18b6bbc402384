/**
 * `sam bench-reg` on a tiny configuration (one abdomen pair at 6 mm, affine + coarse, elastix with a few
 * iterations): the JSON rows carry TRE, Dice and folding for every method; with elastix off the PATH it
 * skips the elastix rows with a clear message instead of failing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { elastixVersion } from '../../main/engine/bench/elastix.ts';

const ARGS = [
  'bin/sam.mjs',
  'bench-reg',
  '--pairs',
  '1',
  '--sources',
  'abdomen',
  '--spacing',
  '6',
  '--stages',
  'affine,coarse',
  '--json',
];

test('bench-reg (tiny): rows with TRE, Dice and folding; elastix beside when installed', () => {
  const hasElastix = elastixVersion() !== null;
  const r = spawnSync(process.execPath, [...ARGS, '--elastix-iterations', '20'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const rows = JSON.parse(r.stdout) as {
    method: string;
    tre: { mean: number; p95: number };
    diceMean: number;
    foldedPercent: number;
  }[];
  const methods = rows.map((x) => x.method);
  assert.deepEqual(methods.slice(0, 3), ['none', 'SAM affine', 'SAM affine+coarse']);
  if (hasElastix) assert.equal(methods[3], 'elastix affine+bspline');
  else console.log('elastix not installed: its row is skipped');
  for (const x of rows) {
    assert.ok(Number.isFinite(x.tre.mean) && Number.isFinite(x.tre.p95), x.method);
    assert.ok(x.diceMean >= 0 && x.diceMean <= 1, x.method);
    assert.ok(x.foldedPercent >= 0);
  }
  const none = rows[0];
  const sam = rows[2];
  assert.ok(sam.tre.mean < none.tre.mean / 4, `SAM ${sam.tre.mean} vs none ${none.tre.mean}`);
  assert.ok(sam.diceMean > none.diceMean);
});

test('bench-reg without elastix on the PATH: elastix skipped with a message', () => {
  const r = spawnSync(process.execPath, ARGS.filter((a) => a !== '--json').concat(['--stages', 'affine']), {
    encoding: 'utf8',
    env: { ...process.env, PATH: '/nonexistent' },
  });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /elastix\/transformix not found on PATH.*skipping the elastix rows/);
  assert.match(r.stdout, /elastix skipped/);
  assert.doesNotMatch(r.stdout, /elastix affine\+bspline/);
});

test('bench-reg --max-rotation/--max-shift: a pair the cascade refuses gets a row that says why', () => {
  // chest pair 33 with up to 30 degrees and 60 mm: NCC from its rough translation gives an affine
  // no two patients relate by (SAM-affine's limits), which the cascade refuses
  const r = spawnSync(
    process.execPath,
    [
      'bin/sam.mjs', 'bench-reg', '--pairs', '1', '--sources', 'chest', '--spacing', '2', '--seed', '33',
      '--max-rotation', '30', '--max-shift', '60', '--matcher', 'ncc', '--stages', 'affine', '--no-elastix', '--json',
    ],
    { encoding: 'utf8' },
  ); // prettier-ignore
  assert.equal(r.status, 0, r.stderr);
  const rows = JSON.parse(r.stdout) as { method: string; refused?: string; tre: { mean: number } }[];
  assert.deepEqual(
    rows.map((x) => x.method),
    ['none', 'NCC affine'],
  );
  assert.ok(rows[0].tre.mean > 45, `the motion is large: ${rows[0].tre.mean} mm before`);
  assert.match(rows[1].refused ?? '', /not a patient-to-patient transform/);
  assert.match(r.stderr, /chest#33: the cascade refused the pair/);
  const bad = spawnSync(process.execPath, ['bin/sam.mjs', 'bench-reg', '--max-shift', 'far'], { encoding: 'utf8' });
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /--max-shift: a number >= 0, got 'far'/);
});
