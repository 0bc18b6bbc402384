// Affine files (register/affine-io.ts): plain text and ITK .tfm round trips are exact, a hand-written
// .tfm (with a centre) maps a point as computed by hand (ITK's fixed -> moving convention: no
// inversion), writes are atomic and never overwrite inputs, and parse errors name the file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  formatItkTransform,
  parseAffineText,
  parseItkTransform,
  readAffine,
  writeAffine,
} from '../../main/engine/register/affine-io.ts';
import { affineApply, affineFromParts } from '../../main/engine/register/affine-fit.ts';
import { tempDir } from '../helpers.ts';

const M = affineFromParts({
  rotationDeg: [7.3, -4.1, 12.9],
  scales: [1.1, 0.93, 1.04],
  shear: [0.03, -0.02, 0.01],
  translation: [12.5, -31.25, 7 / 3],
  centre: [3, -70, 120],
});

test('plain text and .tfm round trips are exact; writes are atomic', () => {
  const { dir, cleanup } = tempDir();
  try {
    for (const name of ['a.txt', 'a.tfm', 'A.TFM']) {
      const path = join(dir, name);
      writeAffine(path, M, { comments: ['method ransac+irls', 'two\nlines'] });
      assert.deepEqual(readAffine(path), M, name);
    }
    assert.match(readFileSync(join(dir, 'a.tfm'), 'utf8'), /^#Insight Transform File V1.0\n/);
    assert.match(readFileSync(join(dir, 'a.txt'), 'utf8'), /^# SAM workstation affine: fixed .* -> moving/);
    assert.match(readFileSync(join(dir, 'a.txt'), 'utf8'), /# two lines\n/);
    assert.deepEqual(readdirSync(dir).sort(), ['A.TFM', 'a.tfm', 'a.txt']); // no temporary files left
    // an input is never overwritten
    assert.throws(() => writeAffine(join(dir, 'a.txt'), M, { protect: [join(dir, 'a.txt')] }), /refusing/);
    // a 4x4 with commas reads too
    assert.deepEqual(parseAffineText('1,0,0,5\n0,1,0,6\n0,0,1,7\n0,0,0,1\n'), [1, 0, 0, 5, 0, 1, 0, 6, 0, 0, 1, 7]);
  } finally {
    cleanup();
  }
});

test('a hand-written ITK transform maps a point as computed by hand (fixed -> moving, LPS)', () => {
  // T(x) = A (x - c) + c + t with A = [[2,0,0],[0,1,-1],[0,1,1]], c = (10, 20, 30), t = (1, 2, 3)
  const tfm = [
    '#Insight Transform File V1.0',
    '#Transform 0',
    'Transform: AffineTransform_double_3_3',
    'Parameters: 2 0 0 0 1 -1 0 1 1 1 2 3',
    'FixedParameters: 10 20 30',
    '',
  ].join('\n');
  const m = parseItkTransform(tfm, 'hand.tfm');
  // x = (11, 25, 32): x - c = (1, 5, 2); A (x - c) = (2, 3, 7); + c + t = (13, 25, 40)
  assert.deepEqual(affineApply(m, [11, 25, 32]), [13, 25, 40]);
  // our matrix: translation = t + c - A c = (1 + 10 - 20, 2 + 20 - (20 - 30), 3 + 30 - (20 + 30)) = (-9, 32, -17)
  assert.deepEqual(m, [2, 0, 0, -9, 0, 1, -1, 32, 0, 1, 1, -17]);
  // written back with centre 0: the same mapping, the matrix unchanged (no inversion)
  const text = formatItkTransform(m);
  assert.match(text, /\nParameters: 2 0 0 0 1 -1 0 1 1 -9 32 -17\nFixedParameters: 0 0 0\n/);
  assert.deepEqual(affineApply(parseItkTransform(text), [11, 25, 32]), [13, 25, 40]);
  // the only member of a composite transform, in float
  const composite = tfm
    .replace('#Transform 0', '#Transform 0\nTransform: CompositeTransform_double_3_3\n#Transform 1')
    .replace('double_3_3\nParameters', 'float_3_3\nParameters');
  assert.deepEqual(parseItkTransform(composite), m);
});

test('parse errors name the file and the problem', () => {
  const { dir, cleanup } = tempDir();
  try {
    const bad = (name: string, text: string, re: RegExp) => {
      const path = join(dir, name);
      writeFileSync(path, text);
      assert.throws(
        () => readAffine(path),
        (e: Error) => e.message.startsWith(path) && re.test(e.message),
        name,
      );
    };
    bad('short.txt', '1 0 0 0\n0 1 0 0\n', /expected 3 rows of 4 numbers, found 2/);
    bad('word.txt', '1 0 0 0\n0 1 x 0\n0 0 1 0\n', /line 2: expected 4 numbers/);
    bad('last.txt', '1 0 0 0\n0 1 0 0\n0 0 1 0\n1 0 0 1\n', /0 0 0 1/);
    bad('euler.tfm', 'Transform: Euler3DTransform_double_3_3\nParameters: 0 0 0 1 2 3\n', /unsupported transform type/);
    bad('few.tfm', 'Transform: AffineTransform_double_3_3\nParameters: 1 0 0\n', /12 Parameters, found 3/);
    bad('nan.tfm', 'Transform: AffineTransform_double_3_3\nParameters: 1 0 0 a\n', /not all numbers/);
    bad('two.tfm', `${formatItkTransform(M)}${formatItkTransform(M).replace(/^#.*\n/, '')}`, /found 2/);
    bad('empty.tfm', '#Insight Transform File V1.0\n', /no 'Transform:' line/);
    const missing = join(dir, 'missing.tfm');
    assert.throws(
      () => readAffine(missing),
      (e: Error) => e.message.startsWith(`${missing}: cannot read`),
    );
  } finally {
    cleanup();
  }
});
