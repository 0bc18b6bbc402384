import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parsePoints } from '../../main/engine/volume/points.ts';

test('elastix point and index files, and CSV with or without header', () => {
  assert.deepEqual(parsePoints('point\n2\n1 2 3\n-4.5 5 6e1\n', 'a.txt'), {
    kind: 'world',
    points: [
      [1, 2, 3],
      [-4.5, 5, 60],
    ],
  });
  assert.deepEqual(parsePoints('index\n1\n1 2 3\n', 'a.txt').kind, 'index');
  assert.deepEqual(parsePoints('x,y,z\n1,2,3\n', 'p.csv').points, [[1, 2, 3]]);
  assert.deepEqual(parsePoints('1, 2, 3\n4,5,6', 'p.csv').points, [
    [1, 2, 3],
    [4, 5, 6],
  ]);
});

test('bad point files are refused with the file name and the line', () => {
  assert.throws(() => parsePoints('point\n3\n1 2 3\n', 'lm.txt'), /lm\.txt: header says 3 points, file has 1/);
  assert.throws(() => parsePoints('point\n1\n1 2 x\n', 'lm.txt'), /lm\.txt: line 3: expected three numbers/);
  assert.throws(() => parsePoints('', 'empty.csv'), /empty\.csv: no points/);
});

test('CSV: empty fields are refused; a header chooses the x, y, z columns by name', () => {
  assert.throws(() => parsePoints('10,20,\n', 'p.csv'), /p\.csv: line 1: expected three numbers/);
  assert.throws(() => parsePoints('1,,3\n', 'p.csv'), /line 1/);
  assert.deepEqual(parsePoints('id,x,y,z\n7,10,20,30\n', 'p.csv').points, [[10, 20, 30]]);
  assert.deepEqual(parsePoints('x,y,z,label\n1,2,3,lesion\n', 'p.csv').points, [[1, 2, 3]]);
  assert.throws(() => parsePoints('a,b,c,d\n1,2,3,4\n', 'p.csv'), /no x, y, z names/);
  // four numbers and no header: an id column or a stray value, never silently the first three
  assert.throws(() => parsePoints('1,-5,-161,262\n', 'p.csv'), /p\.csv: line 1 has 4 values and there is no header/);
  assert.throws(() => parsePoints('1 -5 -161 262\n', 'p.txt'), /no header/);
  // semicolons (a spreadsheet's export): not a header, not three numbers
  assert.throws(
    () => parsePoints('1;2;3\n', 'p.csv'),
    /p\.csv: line 1 "1;2;3" is neither three numbers separated by commas or spaces/,
  );
});
