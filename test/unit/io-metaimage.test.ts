/** MetaImage reader / writer: real files, round trips, TransformMatrix layout, byte order, data files, refusals. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { deflateSync, gzipSync } from 'node:zlib';
import { dataPath, tempDir } from '../helpers.ts';
import { readMetaImage, writeMetaImage } from '../../main/engine/volume/io/metaimage.ts';
import { VolumeReadError } from '../../main/engine/errors.ts';
import { geometryProblem, indexToWorld } from '../../main/engine/volume/geometry.ts';
import { makeVolume, type Mat3, type Volume } from '../../main/engine/volume/volume.ts';

const LUNG = dataPath('elastix', 'Testing', 'Data', '3DCT_lung_baseline_small.mha');
const bytesOf = (v: Volume) => Buffer.from(v.data.buffer, v.data.byteOffset, v.data.byteLength);

test('3DCT_lung_baseline_small.mha: 57x78x64, 2.732x2.732x5 mm, int16, origin from Offset', () => {
  const v = readMetaImage(LUNG);
  assert.deepEqual(v.size, [57, 78, 64]);
  assert.deepEqual(v.spacing, [2.732, 2.732, 5]);
  assert.deepEqual(v.origin, [-152.461, -148.986, -1432]);
  assert.deepEqual(v.direction, [1, 0, 0, 0, 1, 0, 0, 0, 1]);
  assert.ok(v.data instanceof Int16Array);
  assert.equal(v.data.length, 57 * 78 * 64);
  // HU: air below -900 somewhere, tissue / bone above 0
  let lo = Infinity,
    hi = -Infinity;
  for (const x of v.data) {
    lo = Math.min(lo, x);
    hi = Math.max(hi, x);
  }
  assert.ok(lo < -900 && hi > 100, `range ${lo}..${hi}`);
  assert.equal(geometryProblem(v), null);
});

test('masks (uint8) and a 2-D slice (NDims 2 -> nk = 1)', () => {
  const m = readMetaImage(dataPath('elastix', 'Testing', 'Data', '3DCT_lung_followup_mask.mha'));
  assert.deepEqual(m.size, [115, 166, 131]);
  assert.ok(m.data instanceof Uint8Array);
  const s = readMetaImage(dataPath('ITKElastix', 'examples', 'data', 'CT_2D_head_fixed.mha'));
  assert.deepEqual(s.size, [256, 256, 1]);
  assert.deepEqual(s.spacing, [1, 1, 1]);
  assert.ok(s.data instanceof Int16Array);
});

const oblique: Mat3 = (() => {
  const c = Math.cos(0.35),
    s = Math.sin(0.35);
  return [c, 0, s, 0, -1, 0, s, 0, -c]; // columns (c, 0, s), (0, -1, 0), (s, 0, -c): orthonormal
})();

for (const [name, make] of [
  ['int16 CT', () => readMetaImage(LUNG)],
  ['uint8 mask', () => readMetaImage(dataPath('elastix', 'Testing', 'Data', '3DCT_lung_baseline_mask.mha'))],
  [
    'float32, oblique',
    () => {
      const v = readMetaImage(LUNG);
      return makeVolume({
        ...v,
        direction: oblique,
        origin: [-1 / 3, 2 / 7, 1e-9],
        data: Float32Array.from(v.data, (x) => x / 7),
      });
    },
  ],
  [
    '3-component float32 vectors',
    () => {
      const v = readMetaImage(LUNG);
      const n = 57 * 78 * 16; // the first 16 slices
      const data = new Float32Array(n * 3);
      for (let i = 0; i < n; i++) data.set([v.data[i] / 3, -i / 11, i % 5], 3 * i);
      return makeVolume({ ...v, size: [57, 78, 16], components: 3, data });
    },
  ],
] as [string, () => Volume][]) {
  test(`round trip bit-exact (.mha zlib / raw, .mhd + .raw / .zraw), identical re-write: ${name}`, () => {
    const { dir, cleanup } = tempDir();
    try {
      const v = make();
      for (const [file, compress] of [
        ['a.mha', undefined],
        ['b.mha', false],
        ['c.mhd', undefined],
        ['d.mhd', true],
      ] as [string, boolean | undefined][]) {
        const f = join(dir, file);
        writeMetaImage(f, v, { compress });
        const r = readMetaImage(f);
        assert.deepEqual(bytesOf(r), bytesOf(v));
        assert.equal(r.data.constructor, v.data.constructor);
        assert.equal(r.components, v.components);
        assert.deepEqual([r.size, r.spacing, r.origin, r.direction], [v.size, v.spacing, v.origin, v.direction]);
        const f2 = join(dir, `re-${file}`);
        writeMetaImage(f2, r, { compress });
        const strip = (t: Buffer) => t.toString('latin1').replace(/ElementDataFile = .*/, '');
        assert.equal(strip(readFileSync(f2)), strip(readFileSync(f)), `${file}: second write differs`);
      }
      assert.match(readFileSync(join(dir, 'c.mhd'), 'latin1'), /ElementDataFile = c\.raw\n$/);
      assert.match(
        readFileSync(join(dir, 'd.mhd'), 'latin1'),
        /CompressedData = True[\s\S]*ElementDataFile = d\.zraw\n$/,
      );
    } finally {
      cleanup();
    }
  });
}

/** A MetaImage header from lines, then the data bytes. */
function mha(lines: string[], data: Uint8Array): Uint8Array {
  return Buffer.concat([Buffer.from(lines.join('\n') + '\n', 'latin1'), data]);
}
const int16 = (xs: number[], le = true) => {
  const b = new Uint8Array(xs.length * 2);
  xs.forEach((x, i) => new DataView(b.buffer).setInt16(2 * i, x, le));
  return b;
};
const VALUES = Array.from({ length: 24 }, (_, i) => i * 10 - 120);
const HEAD = ['ObjectType = Image', 'NDims = 3', 'DimSize = 2 3 4', 'ElementType = MET_SHORT'];

test('TransformMatrix: consecutive triples are the direction columns (ITK MetaImageIO)', () => {
  const { dir, cleanup } = tempDir();
  try {
    const f = join(dir, 't.mha');
    // index axis i points to +y, j to -x, k to +z
    writeFileSync(
      f,
      mha(
        [
          ...HEAD,
          'TransformMatrix = 0 1 0 -1 0 0 0 0 1',
          'Offset = 10 20 30',
          'ElementSpacing = 2 3 4',
          'AnatomicalOrientation = RAI',
          'ElementDataFile = LOCAL',
        ],
        int16(VALUES),
      ),
    );
    const v = readMetaImage(f);
    assert.deepEqual(indexToWorld(v, [1, 0, 0]), [10, 22, 30]);
    assert.deepEqual(indexToWorld(v, [0, 1, 0]), [7, 20, 30]);
    assert.deepEqual(indexToWorld(v, [0, 0, 1]), [10, 20, 34]);
    assert.deepEqual(Array.from(v.data), VALUES);
    // the writer writes the same layout back
    writeMetaImage(join(dir, 'w.mha'), v, { compress: false });
    assert.match(readFileSync(join(dir, 'w.mha'), 'latin1'), /TransformMatrix = 0 1 0 -1 0 0 0 0 1\n/);
  } finally {
    cleanup();
  }
});

test('big-endian data, Origin / Rotation synonyms, HeaderSize, ElementNumberOfChannels, gzip and no CompressedDataSize', () => {
  const { dir, cleanup } = tempDir();
  try {
    const be = join(dir, 'be.mha');
    writeFileSync(
      be,
      mha(
        [
          ...HEAD,
          'BinaryDataByteOrderMSB = True',
          'Origin = 1 2 3',
          'Rotation = 1 0 0 0 1 0 0 0 1',
          'ElementDataFile = LOCAL',
        ],
        int16(VALUES, false),
      ),
    );
    const v = readMetaImage(be);
    assert.deepEqual(Array.from(v.data), VALUES);
    assert.deepEqual(v.origin, [1, 2, 3]);
    // detached data in a sub-folder with a 5-byte header to skip, and the same at the end (-1)
    mkdirSync(join(dir, 'sub'));
    writeFileSync(join(dir, 'sub', 'd.raw'), Buffer.concat([Buffer.from('JUNK!'), int16(VALUES)]));
    writeFileSync(
      join(dir, 'skip.mhd'),
      mha([...HEAD, 'HeaderSize = 5', 'ElementDataFile = sub/d.raw'], new Uint8Array()),
    );
    assert.deepEqual(Array.from(readMetaImage(join(dir, 'skip.mhd')).data), VALUES);
    writeFileSync(
      join(dir, 'end.mhd'),
      mha([...HEAD, 'HeaderSize = -1', 'ElementDataFile = sub/d.raw'], new Uint8Array()),
    );
    assert.deepEqual(Array.from(readMetaImage(join(dir, 'end.mhd')).data), VALUES);
    // 2 channels, zlib without CompressedDataSize; then gzip
    const two = [
      'ObjectType = Image',
      'NDims = 3',
      'DimSize = 2 3 2',
      'ElementNumberOfChannels = 2',
      'ElementType = MET_SHORT',
      'CompressedData = True',
    ];
    writeFileSync(join(dir, 'ch.mha'), mha([...two, 'ElementDataFile = LOCAL'], deflateSync(int16(VALUES))));
    const ch = readMetaImage(join(dir, 'ch.mha'));
    assert.equal(ch.components, 2);
    assert.deepEqual(Array.from(ch.data), VALUES);
    writeFileSync(join(dir, 'gz.mha'), mha([...two, 'ElementDataFile = LOCAL'], gzipSync(int16(VALUES))));
    assert.deepEqual(Array.from(readMetaImage(join(dir, 'gz.mha')).data), VALUES);
  } finally {
    cleanup();
  }
});

test('a direction rounded in the header (0.866 / 0.5) is re-orthonormalised; a sheared one is refused', () => {
  const { dir, cleanup } = tempDir();
  try {
    const f = join(dir, 'r.mha');
    writeFileSync(
      f,
      mha([...HEAD, 'TransformMatrix = 0.866 0.5 0 -0.5 0.866 0 0 0 1', 'ElementDataFile = LOCAL'], int16(VALUES)),
    );
    const v = readMetaImage(f);
    assert.equal(geometryProblem(v), null);
    assert.ok(Math.abs(v.direction[0] - Math.sqrt(3) / 2) < 1e-4 && Math.abs(v.direction[3] - 0.5) < 1e-4);
    writeFileSync(f, mha([...HEAD, 'TransformMatrix = 1 0.2 0 0 1 0 0 0 1', 'ElementDataFile = LOCAL'], int16(VALUES)));
    assert.throws(
      () => readMetaImage(f),
      (e: Error) => e instanceof VolumeReadError && /not orthonormal/.test(e.message),
    );
  } finally {
    cleanup();
  }
});

test('refusals name the file and the problem', () => {
  const { dir, cleanup } = tempDir();
  try {
    const cases: [string, Uint8Array, RegExp][] = [
      [
        'nodims',
        mha(['NDims = 3', 'ElementType = MET_SHORT', 'ElementDataFile = LOCAL'], int16(VALUES)),
        /missing DimSize/,
      ],
      [
        'notype',
        mha(['NDims = 3', 'DimSize = 2 3 4', 'ElementDataFile = LOCAL'], int16(VALUES)),
        /missing ElementType/,
      ],
      ['nofile', mha(HEAD, int16(VALUES)), /without ElementDataFile/],
      ['binary', new Uint8Array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]), /not a MetaImage/],
      ['trunc', mha([...HEAD, 'ElementDataFile = LOCAL'], int16(VALUES).subarray(0, 40)), /truncated/],
      [
        'ndims',
        mha(['NDims = 4', 'DimSize = 2 3 4 1', 'ElementType = MET_SHORT', 'ElementDataFile = LOCAL'], int16(VALUES)),
        /NDims 4/,
      ],
      [
        'type',
        mha(
          ['NDims = 3', 'DimSize = 2 3 4', 'ElementType = MET_FLOAT_ARRAY', 'ElementDataFile = LOCAL'],
          int16(VALUES),
        ),
        /ElementType/,
      ],
      ['nan', mha([...HEAD, 'ElementSpacing = 1 NaN 1', 'ElementDataFile = LOCAL'], int16(VALUES)), /ElementSpacing/],
      ['zero', mha([...HEAD, 'ElementSpacing = 1 0 1', 'ElementDataFile = LOCAL'], int16(VALUES)), /ElementSpacing/],
      [
        'negdim',
        mha(['NDims = 3', 'DimSize = 2 -3 4', 'ElementType = MET_SHORT', 'ElementDataFile = LOCAL'], int16(VALUES)),
        /DimSize/,
      ],
      [
        'huge',
        mha(
          ['NDims = 3', 'DimSize = 100000 100000 100000', 'ElementType = MET_SHORT', 'ElementDataFile = LOCAL'],
          int16(VALUES),
        ),
        /too large/,
      ],
      [
        'hugez',
        mha(
          [
            'NDims = 3',
            'DimSize = 1000 1000 1000',
            'ElementType = MET_SHORT',
            'CompressedData = True',
            'ElementDataFile = LOCAL',
          ],
          deflateSync(int16(VALUES)),
        ),
        /cannot hold/,
      ],
      [
        'zlib',
        mha([...HEAD, 'CompressedData = True', 'ElementDataFile = LOCAL'], new Uint8Array(40).fill(7)),
        /corrupt/,
      ],
      [
        'csize',
        mha(
          [...HEAD, 'CompressedData = True', 'CompressedDataSize = 9999', 'ElementDataFile = LOCAL'],
          deflateSync(int16(VALUES)),
        ),
        /truncated/,
      ],
      ['ascii', mha([...HEAD, 'BinaryData = False', 'ElementDataFile = LOCAL'], Buffer.from('1 2 3')), /ASCII/],
      ['list', mha([...HEAD, 'ElementDataFile = LIST'], Buffer.from('a.raw\n')), /LIST/],
      ['missingraw', mha([...HEAD, 'ElementDataFile = nothere.raw'], new Uint8Array()), /nothere\.raw: no such file/],
      [
        'object',
        mha(['ObjectType = Mesh', ...HEAD.slice(1), 'ElementDataFile = LOCAL'], int16(VALUES)),
        /not an Image/,
      ],
    ];
    for (const [name, bytes, re] of cases) {
      const f = join(dir, `${name}.mha`);
      writeFileSync(f, bytes);
      assert.throws(
        () => readMetaImage(f),
        (e: Error) => e instanceof VolumeReadError && e.message.includes(dir) && re.test(e.message),
        `${name}: expected ${re}`,
      );
    }
  } finally {
    cleanup();
  }
});
