/** NRRD reader, on files built by hand (header text + bytes): spaces, encodings, vectors, detached data, refusals. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { tempDir } from '../helpers.ts';
import { readNrrd } from '../../main/engine/volume/io/nrrd.ts';
import { VolumeReadError } from '../../main/engine/errors.ts';
import { geometryProblem, indexToWorld } from '../../main/engine/volume/geometry.ts';

const VALUES = Array.from({ length: 24 }, (_, i) => ((i * 7) % 24) - 5); // 2 x 3 x 4, asymmetric
function int16(xs: number[], le = true): Uint8Array {
  const b = new Uint8Array(xs.length * 2);
  xs.forEach((x, i) => new DataView(b.buffer).setInt16(2 * i, x, le));
  return b;
}
const nrrd = (lines: string[], data: Uint8Array) =>
  Buffer.concat([Buffer.from(['NRRD0004', ...lines, '', ''].join('\n'), 'latin1'), data]);
const BASE = ['type: short', 'dimension: 3', 'sizes: 2 3 4'];

/** Expected LPS geometry of the hand-made headers below (computed by hand). */
const EXPECT = {
  spacing: [2, 1.5, 3],
  // i -> +y (posterior), j -> -x (right), k -> +z
  direction: [0, -1, 0, 1, 0, 0, 0, 0, 1],
  origin: [-10, -20, 30],
  voxel123: [-13, -18, 39], // origin + 1 * (0, 2, 0) + 2 * (-1.5, 0, 0) + 3 * (0, 0, 3)
};
const GEOMETRY: Record<string, string[]> = {
  // the same grid written in three spaces
  RAS: ['space: right-anterior-superior', 'space directions: (0,-2,0) (1.5,0,0) (0,0,3)', 'space origin: (10,20,30)'],
  LPS: ['space: left-posterior-superior', 'space directions: (0,2,0) (-1.5,0,0) (0,0,3)', 'space origin: (-10,-20,30)'],
  LAS: ['space: LAS', 'space directions: (0,-2,0) (-1.5,0,0) (0,0,3)', 'space origin: (-10,20,30)'],
};

for (const [space, lines] of Object.entries(GEOMETRY)) {
  test(`space ${space}: geometry converted to LPS as computed by hand`, () => {
    const { dir, cleanup } = tempDir();
    try {
      const f = join(dir, 'a.nrrd');
      writeFileSync(
        f,
        nrrd([...BASE, ...lines, 'encoding: raw', 'endian: little', 'kinds: domain domain domain'], int16(VALUES)),
      );
      const v = readNrrd(f);
      assert.deepEqual(v.size, [2, 3, 4]);
      assert.deepEqual(v.spacing, EXPECT.spacing);
      assert.deepEqual(v.direction, EXPECT.direction);
      assert.deepEqual(v.origin, EXPECT.origin);
      assert.deepEqual(indexToWorld(v, [1, 2, 3]), EXPECT.voxel123);
      assert.deepEqual(Array.from(v.data), VALUES);
      assert.ok(v.data instanceof Int16Array);
      assert.equal(geometryProblem(v), null);
    } finally {
      cleanup();
    }
  });
}

test('gzip + big-endian, ascii, and detached data (.nhdr, relative path, byte skip, line skip)', () => {
  const { dir, cleanup } = tempDir();
  try {
    const geo = GEOMETRY.LPS;
    writeFileSync(
      join(dir, 'g.nrrd'),
      nrrd([...BASE, ...geo, 'encoding: gzip', 'endian: big'], gzipSync(int16(VALUES, false))),
    );
    assert.deepEqual(Array.from(readNrrd(join(dir, 'g.nrrd')).data), VALUES);
    writeFileSync(
      join(dir, 't.nrrd'),
      nrrd([...BASE, ...geo, 'encoding: ascii'], Buffer.from(VALUES.join(' ') + '\n')),
    );
    assert.deepEqual(Array.from(readNrrd(join(dir, 't.nrrd')).data), VALUES);
    mkdirSync(join(dir, 'd'));
    writeFileSync(join(dir, 'd', 'x.raw'), Buffer.concat([Buffer.from('comment line\nXYZ'), int16(VALUES)]));
    writeFileSync(
      join(dir, 'x.nhdr'),
      Buffer.from(
        [
          'NRRD0004',
          ...BASE,
          ...geo,
          'encoding: raw',
          'endian: little',
          'line skip: 1',
          'byte skip: 3',
          'data file: d/x.raw',
        ].join('\n') + '\n',
      ),
    );
    const d = readNrrd(join(dir, 'x.nhdr'));
    assert.deepEqual(Array.from(d.data), VALUES);
    assert.deepEqual(d.origin, EXPECT.origin);
    writeFileSync(
      join(dir, 'e.nhdr'),
      Buffer.from(
        ['NRRD0004', ...BASE, 'encoding: raw', 'endian: little', 'byte skip: -1', 'data file: d/x.raw', ''].join('\n'),
      ),
    );
    assert.deepEqual(Array.from(readNrrd(join(dir, 'e.nhdr')).data), VALUES);
  } finally {
    cleanup();
  }
});

test('legacy spacings without space; float 3-vectors on a leading axis (RAS vectors converted to LPS)', () => {
  const { dir, cleanup } = tempDir();
  try {
    writeFileSync(
      join(dir, 's.nrrd'),
      nrrd([...BASE, 'spacings: 0.5 0.75 2', 'encoding: raw', 'endian: little'], int16(VALUES)),
    );
    const s = readNrrd(join(dir, 's.nrrd'));
    assert.deepEqual(s.spacing, [0.5, 0.75, 2]);
    assert.deepEqual(s.direction, [1, 0, 0, 0, 1, 0, 0, 0, 1]);
    assert.ok(s.meta.warnings.some((w) => /spacings/.test(w)));
    const vec = new Float32Array(3 * 2 * 3 * 4).map((_, i) => i + 0.5);
    writeFileSync(
      join(dir, 'v.nrrd'),
      nrrd(
        [
          'type: float',
          'dimension: 4',
          'sizes: 3 2 3 4',
          'kinds: vector domain domain domain',
          ...GEOMETRY.RAS.map((l) => (l.startsWith('space directions') ? l.replace(': ', ': none ') : l)),
          'encoding: raw',
          'endian: little',
        ],
        new Uint8Array(vec.buffer),
      ),
    );
    const v = readNrrd(join(dir, 'v.nrrd'));
    assert.equal(v.components, 3);
    assert.deepEqual(v.size, [2, 3, 4]);
    assert.deepEqual(v.direction, EXPECT.direction);
    assert.deepEqual(Array.from(v.data.subarray(0, 6)), [-0.5, -1.5, 2.5, -3.5, -4.5, 5.5]);
  } finally {
    cleanup();
  }
});

test('refusals name the file and the problem', () => {
  const { dir, cleanup } = tempDir();
  try {
    const geo = GEOMETRY.LPS;
    const raw = ['encoding: raw', 'endian: little'];
    const cases: [string, Uint8Array, RegExp][] = [
      ['magic', Buffer.from('P5\n2 3\n255\n'), /not a NRRD/],
      ['nosizes', nrrd(['type: short', 'dimension: 3', ...raw], int16(VALUES)), /sizes/],
      ['type', nrrd(['type: block', 'dimension: 3', 'sizes: 2 3 4', ...raw], int16(VALUES)), /type/],
      ['trunc', nrrd([...BASE, ...geo, ...raw], int16(VALUES).subarray(0, 30)), /truncated/],
      [
        'gzip',
        nrrd([...BASE, ...geo, 'encoding: gzip', 'endian: little'], Buffer.from('not gzip at all, really')),
        /corrupt/,
      ],
      ['bzip', nrrd([...BASE, ...geo, 'encoding: bzip2', 'endian: little'], int16(VALUES)), /bzip2/],
      [
        'space',
        nrrd([...BASE, 'space: scanner-xyz', 'space directions: (1,0,0) (0,1,0) (0,0,1)', ...raw], int16(VALUES)),
        /space/,
      ],
      [
        'nandir',
        nrrd([...BASE, 'space: LPS', 'space directions: (1,0,0) (0,NaN,0) (0,0,1)', ...raw], int16(VALUES)),
        /space directions/,
      ],
      [
        'zerodir',
        nrrd([...BASE, 'space: LPS', 'space directions: (1,0,0) (0,0,0) (0,0,1)', ...raw], int16(VALUES)),
        /spacing|column|zero/,
      ],
      [
        'shear',
        nrrd([...BASE, 'space: LPS', 'space directions: (1,0,0) (0.5,1,0) (0,0,1)', ...raw], int16(VALUES)),
        /orthonormal/,
      ],
      ['endian', nrrd([...BASE, ...geo, 'encoding: raw'], int16(VALUES)), /endian/],
      [
        'huge',
        nrrd(['type: short', 'dimension: 3', 'sizes: 100000 100000 100000', ...raw], int16(VALUES)),
        /too large/,
      ],
      ['5d', nrrd(['type: short', 'dimension: 5', 'sizes: 1 2 3 4 1', ...raw], int16(VALUES)), /dimension/],
      [
        'nodatafile',
        nrrd([...BASE, ...geo, ...raw, 'data file: gone.raw'], new Uint8Array()),
        /gone\.raw: no such file/,
      ],
    ];
    for (const [name, bytes, re] of cases) {
      const f = join(dir, `${name}.nrrd`);
      writeFileSync(f, bytes);
      assert.throws(
        () => readNrrd(f),
        (e: Error) => e instanceof VolumeReadError && e.message.includes(dir) && re.test(e.message),
        `${name}: ${re}`,
      );
    }
  } finally {
    cleanup();
  }
});
