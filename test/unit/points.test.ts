import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parsePoints } from '../../main/engine/volume/points.ts';
import { pointFormat, pointsText } from '../../main/engine/volume/points-out.ts';

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
  assert.throws(() => parsePoints('a,b,c,d\n1,2,3,4\n', 'p.csv'), /names no coordinate columns/);
  // four numbers and no header: an id column or a stray value, never silently the first three
  assert.throws(() => parsePoints('1,-5,-161,262\n', 'p.csv'), /p\.csv: line 1 has 4 values and there is no header/);
  assert.throws(() => parsePoints('1 -5 -161 262\n', 'p.txt'), /no header/);
  // semicolons (a spreadsheet's export in a decimal-comma locale)
  assert.deepEqual(parsePoints('x;y;z\n1,5;-2;3,25\n', 'p.csv').points, [[1.5, -2, 3.25]]);
  assert.deepEqual(parsePoints('1;2;3\n', 'p.csv').points, [[1, 2, 3]]);
  assert.deepEqual(parsePoints('1\t2\t3\n', 'p.tsv').points, [[1, 2, 3]]);
  assert.throws(() => parsePoints('1|2|3\n', 'p.csv'), /p\.csv: line 1 "1\|2\|3" is neither three numbers/);
});

test('the coordinate convention a file states is applied, never guessed: RAS converted, voxel indices as such', () => {
  // one point, 10 mm to the patient's right, 20 anterior, 30 superior: LPS (-10, -20, 30)
  const lps = [[-10, -20, 30]];
  for (const header of ['x,y,z', 'l,p,s', 'x_lps,y_lps,z_lps', 'label,x (mm),y (mm),z (mm)'])
    assert.deepEqual(
      parsePoints(`${header}\n${header.startsWith('label') ? 'a,' : ''}-10,-20,30\n`, 'p.csv').points,
      lps,
      header,
    );
  for (const header of ['r,a,s', 'x_ras,y_ras,z_ras', 'ras_x,ras_y,ras_z']) {
    const l = parsePoints(`${header}\n10,20,30\n`, 'p.csv');
    assert.deepEqual(l.points, lps, header);
    assert.equal(l.fromRas, true);
  }
  const ijk = parsePoints('i,j,k\n4,5,6\n', 'p.csv');
  assert.equal(ijk.kind, 'index');
  assert.deepEqual(ijk.points, [[4, 5, 6]]);
  // labels are kept
  assert.deepEqual(parsePoints('name,x,y,z\nnodule,1,2,3\n', 'p.csv').labels, ['nodule']);
  assert.throws(() => parsePoints('point\n0\n', 'lm.txt'), /lm\.txt: no points \(the elastix header says 0\)/);
});

test('3D Slicer markups: .fcsv in RAS (stated or, in old files, not) or LPS; .mrk.json per markup', () => {
  const fcsv = (system: string | null) =>
    [
      '# Markups fiducial file version = 4.11',
      ...(system ? [`# CoordinateSystem = ${system}`] : []),
      '# columns = id,x,y,z,ow,ox,oy,oz,vis,sel,lock,label,desc,associatedNodeID',
      'vtkMRMLMarkupsFiducialNode_0,10,20,30,0,0,0,1,1,1,0,F-1,,',
      'vtkMRMLMarkupsFiducialNode_1,-5.5,0,12,0,0,0,1,1,1,0,nodule,,',
    ].join('\n');
  for (const system of ['RAS', '0', null]) {
    const l = parsePoints(fcsv(system), 'F.fcsv');
    assert.deepEqual(l.points, [
      [-10, -20, 30],
      [5.5, -0, 12],
    ]);
    assert.deepEqual(l.labels, ['F-1', 'nodule']);
    assert.equal(l.fromRas, true);
  }
  for (const system of ['LPS', '1']) assert.deepEqual(parsePoints(fcsv(system), 'F.fcsv').points[0], [10, 20, 30]);
  assert.throws(() => parsePoints(fcsv('IJK'), 'F.fcsv'), /F\.fcsv: coordinate system "IJK" is neither LPS nor RAS/);
  const json = JSON.stringify({
    '@schema':
      'https://raw.githubusercontent.com/slicer/slicer/master/Modules/Loadable/Markups/Resources/Schema/markups-schema-v1.0.3.json#',
    markups: [
      { type: 'Fiducial', coordinateSystem: 'LPS', controlPoints: [{ label: 'a', position: [1, 2, 3] }] },
      { type: 'Fiducial', coordinateSystem: 'RAS', controlPoints: [{ label: 'b', position: [1, 2, 3] }] },
    ],
  });
  const m = parsePoints(json, 'F.mrk.json');
  assert.deepEqual(m.points, [
    [1, 2, 3],
    [-1, -2, 3],
  ]);
  assert.deepEqual(m.labels, ['a', 'b']);
  assert.throws(() => parsePoints('{"a": 1}', 'x.json'), /not a Slicer markups file/);
});

test('written point files read back to the same LPS points and labels: csv, elastix, Slicer .fcsv', () => {
  const pts: [number, number, number][] = [
    [-10.5, 20.25, -300.125],
    [0, -0.5, 12],
  ];
  const labels = ['nodule, left', 'L1'];
  for (const format of ['csv', 'elastix', 'fcsv'] as const) {
    const back = parsePoints(pointsText(pts, format, labels, ['a', 'b']), `p.${format}`);
    assert.deepEqual(back.points, pts, format);
    assert.equal(back.fromRas, undefined, `${format}: stated as LPS`);
    if (format === 'csv') assert.deepEqual(back.labels, labels);
    if (format === 'fcsv') assert.deepEqual(back.labels, ['nodule  left', 'L1'], 'no comma in a .fcsv field');
  }
  assert.throws(() => pointFormat('slicer'), /--format: use csv, elastix, fcsv, got 'slicer'/);
});
