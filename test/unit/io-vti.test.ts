/** VTI reader: vtk.js data sets in the real data, VTK XML files in every encoding, extents, Direction, refusals. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import { dataPath, tempDir } from '../helpers.ts';
import { encodeVti, readVti, type VtiWriteOptions } from '../../main/engine/volume/io/vti.ts';
import { VolumeReadError } from '../../main/engine/errors.ts';
import { geometryProblem, indexToWorld } from '../../main/engine/volume/geometry.ts';
import { makeVolume, type Volume } from '../../main/engine/volume/volume.ts';

const HEADSQ = dataPath('vtk-js', 'Data', 'volume', 'headsq.vti');
const LIDC = dataPath('vtk-js', 'Data', 'volume', 'LIDC2.vti');

test('headsq.vti (a vtk.js data set folder): 64x64x93, 3.2x3.2x1.5 mm, int16, rotated 30 degrees about z', () => {
  const v = readVti(HEADSQ);
  assert.deepEqual(v.size, [64, 64, 93]);
  assert.deepEqual(v.spacing, [3.2, 3.2, 1.5]);
  assert.deepEqual(v.origin, [0, 0, 0]);
  assert.ok(v.data instanceof Int16Array);
  // index.json direction [0.866, 0.5, 0, -0.5, 0.866, 0, 0, 0, 1]: triples are the axes (vtk.js)
  const i = indexToWorld(v, [1, 0, 0]);
  assert.ok(Math.abs(i[0] - 3.2 * 0.866) < 1e-3 && Math.abs(i[1] - 3.2 * 0.5) < 1e-3, `i axis ${i}`);
  assert.equal(geometryProblem(v), null);
});

test('LIDC2.vti: 256x256x133 uint8, 1.40625 x 1.40625 x 2.5 mm', () => {
  const v = readVti(LIDC);
  assert.deepEqual(v.size, [256, 256, 133]);
  assert.deepEqual(v.spacing, [1.40625, 1.40625, 2.5]);
  assert.ok(v.data instanceof Uint8Array);
  assert.equal(v.data.length, 256 * 256 * 133);
});

const FORMATS: VtiWriteOptions[] = [
  { format: 'appended' },
  { format: 'appended', compress: false },
  { format: 'appended', encoding: 'base64' },
  { format: 'appended', encoding: 'base64', compress: false, headerType: 'UInt64' },
  { format: 'binary' },
  { format: 'binary', compress: false },
  { format: 'binary', headerType: 'UInt64', blockSize: 1000 },
  { format: 'appended', bigEndian: true, headerType: 'UInt64', blockSize: 4096 },
  { format: 'appended', extentStart: [5, -3, 10] },
];

test('VTK XML files of the real headsq voxels, every encoding: identical voxels and geometry', () => {
  const { dir, cleanup } = tempDir();
  try {
    const ref = readVti(HEADSQ);
    for (const o of FORMATS) {
      const f = join(dir, 'h.vti');
      writeFileSync(f, encodeVti(ref, o));
      const v = readVti(f);
      assert.deepEqual(v.data, ref.data, JSON.stringify(o));
      assert.deepEqual(v.size, ref.size);
      assert.deepEqual(v.spacing, ref.spacing);
      // the vtk.js reader keeps 0.866 / 0.5 as stored, the XML reader re-orthonormalises it
      v.direction.forEach((x, n) => assert.ok(Math.abs(x - ref.direction[n]) < 1e-4, `direction ${n}`));
      for (let a = 0; a < 3; a++)
        assert.ok(
          Math.abs(v.origin[a] - ref.origin[a]) < (o.extentStart ? 1e-3 : 1e-12),
          `${JSON.stringify(o)} origin`,
        );
    }
  } finally {
    cleanup();
  }
});

test('ascii format, a float64 3-component array, non-zero extent start and a row-major Direction', () => {
  const { dir, cleanup } = tempDir();
  try {
    // i axis -> -y, j axis -> +x (Direction row-major: rows are world x, y, z)
    const xml = `<?xml version="1.0"?>
<!-- hand written -->
<VTKFile type="ImageData" version="1.0" byte_order="LittleEndian">
  <ImageData WholeExtent="2 3 -1 0 4 4" Origin="100 200 300" Spacing="0.5 2 3" Direction="0 1 0 -1 0 0 0 0 1">
    <Piece Extent="2 3 -1 0 4 4">
      <PointData Vectors="v">
        <DataArray type="Float64" Name="other" format="ascii">1 2 3 4</DataArray>
        <DataArray type="Float64" Name="v" NumberOfComponents="3" format="ascii">
          0 0 0  1 1 1  2 2 2  3 3 3
        </DataArray>
      </PointData>
    </Piece>
  </ImageData>
</VTKFile>`;
    const f = join(dir, 'a.vti');
    writeFileSync(f, xml);
    const v = readVti(f);
    assert.deepEqual(v.size, [2, 2, 1]);
    assert.equal(v.components, 1, 'no Scalars attribute: the first array');
    assert.deepEqual(Array.from(v.data), [1, 2, 3, 4]);
    // voxel (0,0,0) is extent (2,-1,4): Origin + D * (spacing * (2, -1, 4)) = Origin + D * (1, -2, 12)
    // with D rows (0 1 0), (-1 0 0), (0 0 1): (100 - 2, 200 - 1, 300 + 12)
    assert.deepEqual(v.origin, [98, 199, 312]);
    assert.deepEqual(indexToWorld(v, [1, 0, 0]), [98, 198.5, 312]);
    assert.deepEqual(indexToWorld(v, [0, 1, 0]), [100, 199, 312]);
    writeFileSync(f, xml.replace('PointData Vectors="v"', 'PointData Scalars="v"'));
    const w = readVti(f);
    assert.equal(w.components, 3);
    assert.deepEqual(Array.from(w.data), [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]);
    assert.ok(w.data instanceof Float64Array);
  } finally {
    cleanup();
  }
});

test('inline base64 with the header and data as ONE stream (as some writers do)', () => {
  const { dir, cleanup } = tempDir();
  try {
    const data = new Int16Array([1, -2, 3, -4, 5, -6]);
    const head = new Uint8Array(4);
    new DataView(head.buffer).setUint32(0, 12, true);
    const one = Buffer.concat([head, Buffer.from(data.buffer)]).toString('base64');
    const z = deflateSync(Buffer.from(data.buffer));
    const zh = new Uint8Array(16);
    [1, 12, 12, z.length].forEach((x, i) => new DataView(zh.buffer).setUint32(4 * i, x, true));
    const onez = Buffer.concat([zh, z]).toString('base64');
    for (const [body, comp] of [
      [one, ''],
      [onez, ' compressor="vtkZLibDataCompressor"'],
    ]) {
      const f = join(dir, 'one.vti');
      writeFileSync(
        f,
        `<VTKFile type="ImageData" byte_order="LittleEndian"${comp}><ImageData WholeExtent="0 2 0 1 0 0"><Piece><PointData><DataArray type="Int16" format="binary">\n${body}\n</DataArray></PointData></Piece></ImageData></VTKFile>`,
      );
      assert.deepEqual(Array.from(readVti(f).data), Array.from(data));
    }
  } finally {
    cleanup();
  }
});

test('refusals name the file and the problem', () => {
  const { dir, cleanup } = tempDir();
  try {
    const small = makeVolume({
      size: [4, 3, 2],
      spacing: [1, 1, 1],
      origin: [0, 0, 0],
      data: Int16Array.from({ length: 24 }, (_, i) => i),
    });
    const good = Buffer.from(encodeVti(small, { format: 'appended', compress: false })).toString('latin1');
    const goodz = Buffer.from(encodeVti(small as Volume, { format: 'binary' })).toString('latin1');
    const cases: [string, string, RegExp][] = [
      ['notxml', 'hello world', /not a VTK XML/],
      ['poly', good.replace('type="ImageData"', 'type="PolyData"'), /not ImageData/],
      ['extent', good.replace(/WholeExtent="[^"]*"/, 'WholeExtent="0 3 0 2"'), /WholeExtent/],
      [
        'negext',
        good.replace(/WholeExtent="[^"]*"/, 'WholeExtent="0 -3 0 2 0 1"').replace(/Piece Extent="[^"]*"/, 'Piece'),
        /invalid extent/,
      ],
      ['spacing', good.replace(/Spacing="[^"]*"/, 'Spacing="1 0 1"'), /Spacing/],
      ['nanorigin', good.replace(/Origin="[^"]*"/, 'Origin="1 NaN 1"'), /Origin/],
      ['shear', good.replace(/Direction="[^"]*"/, 'Direction="1 0.3 0 0 1 0 0 0 1"'), /not orthonormal/],
      ['type', good.replace('type="Int16"', 'type="String"'), /DataArray type/],
      ['truncated', good.slice(0, good.length - 40), /truncated/],
      ['lz4', goodz.replace('vtkZLibDataCompressor', 'vtkLZ4DataCompressor'), /compressor/],
      ['base64', goodz.replace(/(format="binary">)(....)/, '$1!!!!'), /base64|truncated|corrupt/],
      ['pieces', good.replace('</Piece>', '</Piece><Piece></Piece>'), /pieces/],
      ['nodata', good.replace(/<PointData[\s\S]*<\/PointData>/, '<PointData/>'), /no PointData/],
    ];
    for (const [name, text, re] of cases) {
      const f = join(dir, `${name}.vti`);
      writeFileSync(f, Buffer.from(text, 'latin1'));
      assert.throws(
        () => readVti(f),
        (e: Error) => e instanceof VolumeReadError && e.message.includes(f) && re.test(e.message),
        `${name}: ${re}`,
      );
    }
  } finally {
    cleanup();
  }
});
