/** NIfTI reader / writer: real files, round trips, qform / sform rules, NIfTI-2, byte order, scaling, refusals. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { dataPath, tempDir } from '../helpers.ts';
import { readNifti, writeNiftiSync } from '../../main/engine/volume/io/nifti.ts';
import { VolumeReadError } from '../../main/engine/errors.ts';
import { geometryProblem, indexToWorld } from '../../main/engine/volume/geometry.ts';
import { makeVolume, type Mat3, type Vec3, type Volume } from '../../main/engine/volume/volume.ts';

const REF = dataPath('TotalSegmentator', 'tests', 'reference_files');
const close = (a: number[], b: number[], tol: number, what = '') =>
  a.forEach((x, i) => assert.ok(Math.abs(x - b[i]) <= tol, `${what}[${i}]: ${x} vs ${b[i]} (tol ${tol})`));

function oblique(): Mat3 {
  // rotation about an oblique axis, then the k axis flipped (left-handed)
  const a = 0.4,
    b = -0.3;
  const rz: Mat3 = [Math.cos(a), -Math.sin(a), 0, Math.sin(a), Math.cos(a), 0, 0, 0, 1];
  const rx: Mat3 = [1, 0, 0, 0, Math.cos(b), -Math.sin(b), 0, Math.sin(b), Math.cos(b)];
  const m = [0, 1, 2].flatMap((r) =>
    [0, 1, 2].map((c) => rz[r * 3] * rx[c] + rz[r * 3 + 1] * rx[3 + c] + rz[r * 3 + 2] * rx[6 + c]),
  );
  return [m[0], m[1], -m[2], m[3], m[4], -m[5], m[6], m[7], -m[8]];
}

function smallVolume(direction: Mat3 = oblique()): Volume<Int16Array> {
  const size: Vec3 = [7, 5, 4];
  const data = new Int16Array(140);
  for (let i = 0; i < data.length; i++) data[i] = ((i * 37) % 2001) - 1000;
  return makeVolume({ size, spacing: [0.8, 1.25, 2.5], origin: [-12.5, 30.25, -101], direction, data });
}

/** Read and patch the uncompressed header of a .nii written by writeNiftiSync. */
function patch(file: string, out: string, edit: (v: DataView, b: Uint8Array) => void): void {
  const b = new Uint8Array(readFileSync(file));
  edit(new DataView(b.buffer), b);
  writeFileSync(out, b);
}

test('example_ct.nii.gz: 122x101x112, 3 mm, geometry from the raw sform (RAS -> LPS)', () => {
  const file = join(REF, 'example_ct.nii.gz');
  const v = readNifti(file);
  // raw header fields, read independently
  const raw = gunzipSync(readFileSync(file));
  const h = new DataView(raw.buffer, raw.byteOffset, 352);
  assert.equal(h.getInt16(70, true), 8, 'datatype int32 (the data README says float32; the header says int32)');
  assert.equal(h.getInt16(254, true), 2, 'sform_code 2 (aligned)');
  assert.equal(h.getInt16(252, true), 0, 'qform_code 0');
  const srow = Array.from({ length: 12 }, (_, i) => h.getFloat32(280 + 4 * i, true));
  assert.deepEqual(v.size, [122, 101, 112]);
  assert.deepEqual(v.spacing, [3, 3, 3]);
  assert.ok(v.data instanceof Int32Array);
  assert.deepEqual(v.direction, [-1, 0, 0, 0, -1, 0, 0, 0, 1]);
  assert.deepEqual(v.origin, [-srow[3], -srow[7], srow[11]]);
  close(v.origin, [177.9563, -11.319, 94.3018], 1e-3, 'origin');
  // last voxel: world = RAS affine applied then x, y negated
  const last = indexToWorld(v, [121, 100, 111]);
  close(last, [-(srow[0] * 121 + srow[3]), -(srow[5] * 100 + srow[7]), srow[10] * 111 + srow[11]], 1e-9, 'last voxel');
  assert.equal(v.components, 1);
  assert.equal(geometryProblem(v), null);
});

test('example_mr_sm.nii.gz (MR) reads; qfac and RAS flips give an LPS identity direction', () => {
  const v = readNifti(join(REF, 'example_mr_sm.nii.gz'));
  assert.deepEqual(v.size, [117, 91, 20]);
  assert.deepEqual(v.direction, [1, 0, 0, 0, 1, 0, 0, 0, 1]); // sform diag(-3, -3, 3) in RAS
  assert.ok(v.data instanceof Int16Array);
});

test('example_seg_dicom.nii.gz: label map with a y-flipped sform', () => {
  const v = readNifti(join(REF, 'example_seg_dicom.nii.gz'));
  assert.deepEqual(v.size, [512, 512, 20]);
  close(v.spacing, [0.9765625, 0.9765625, 2], 1e-6, 'spacing');
  assert.deepEqual(v.direction, [1, 0, 0, 0, -1, 0, 0, 0, 1]);
  assert.ok(v.data instanceof Uint8Array);
});

for (const [name, make] of [
  ['int16 CT crop', () => readNifti(join(REF, 'aorta_report', 'test_result', 'models', 'ct_cropped.nii.gz'))],
  ['uint8 labels', () => readNifti(join(REF, 'example_seg.nii.gz'))],
  ['int32 CT', () => readNifti(join(REF, 'example_ct_sm.nii.gz'))],
  [
    'float32 from real CT',
    () => {
      const v = readNifti(join(REF, 'example_ct_sm.nii.gz'));
      return makeVolume({ ...v, data: Float32Array.from(v.data, (x, i) => x + (i % 4) * 0.3) });
    },
  ],
] as [string, () => Volume][]) {
  test(`round trip bit-exact, write->read->write identical bytes: ${name}`, () => {
    const { dir, cleanup } = tempDir();
    try {
      const v = make();
      for (const ext of ['.nii.gz', '.nii']) {
        const a = join(dir, `a${ext}`);
        const b = join(dir, `b${ext}`);
        writeNiftiSync(a, v);
        const r = readNifti(a);
        assert.equal(r.data.constructor, v.data.constructor);
        assert.deepEqual(
          Buffer.from(r.data.buffer, r.data.byteOffset, r.data.byteLength),
          Buffer.from(v.data.buffer, v.data.byteOffset, v.data.byteLength),
        );
        assert.deepEqual(r.size, v.size);
        close(r.spacing, v.spacing, 1e-6 * Math.max(...v.spacing), 'spacing');
        close(r.origin, v.origin, 1e-4, 'origin');
        close(r.direction, v.direction, 1e-7, 'direction');
        writeNiftiSync(b, r);
        assert.ok(readFileSync(a).equals(readFileSync(b)), `${ext}: second write differs`);
      }
    } finally {
      cleanup();
    }
  });
}

test('oblique, left-handed geometry round-trips within float32 precision; re-write gives identical bytes', () => {
  const { dir, cleanup } = tempDir();
  try {
    const v = smallVolume();
    const f = join(dir, 'o.nii');
    writeNiftiSync(f, v);
    const r = readNifti(f);
    close(r.direction, v.direction, 2e-7, 'direction');
    close(r.spacing, v.spacing, 1e-6, 'spacing');
    close(indexToWorld(r, [6, 4, 3]), indexToWorld(v, [6, 4, 3]), 1e-4, 'corner');
    assert.deepEqual(r.data, v.data);
    writeNiftiSync(join(dir, 'o2.nii'), r);
    assert.ok(readFileSync(f).equals(readFileSync(join(dir, 'o2.nii'))), 'oblique: second write differs');
    // sform and qform in the file agree: qform alone gives the same geometry
    patch(f, join(dir, 'q.nii'), (h) => h.setInt16(254, 0, true));
    const q = readNifti(join(dir, 'q.nii'));
    close(q.direction, v.direction, 1e-6, 'qform direction');
    close(q.origin, v.origin, 1e-4, 'qform origin');
    close(q.spacing, v.spacing, 1e-6, 'qform spacing');
  } finally {
    cleanup();
  }
});

test('qform-only file (sform_code 0, garbage srow) uses the quaternion and qfac', () => {
  const { dir, cleanup } = tempDir();
  try {
    const v = smallVolume();
    writeNiftiSync(join(dir, 'a.nii'), v);
    patch(join(dir, 'a.nii'), join(dir, 'q.nii'), (h) => {
      h.setInt16(254, 0, true);
      for (let i = 0; i < 12; i++) h.setFloat32(280 + 4 * i, 1e6, true);
    });
    const q = readNifti(join(dir, 'q.nii'));
    // (a small file's Buffer may be a view into Node's shared pool: read at its own offset)
    const bytes = readFileSync(join(dir, 'q.nii'));
    assert.ok(
      new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getFloat32(76, true) === -1,
      'qfac -1 (left-handed)',
    );
    close(q.direction, v.direction, 1e-6, 'direction');
    close(q.origin, v.origin, 1e-4, 'origin');
  } finally {
    cleanup();
  }
});

test('sform and qform that disagree: the sform (the standard), with a warning giving the distance', () => {
  const { dir, cleanup } = tempDir();
  try {
    const v = smallVolume([1, 0, 0, 0, 1, 0, 0, 0, 1]);
    writeNiftiSync(join(dir, 'a.nii'), v);
    assert.deepEqual(readNifti(join(dir, 'a.nii')).meta.warnings, [], 'as written: they agree');
    // qoffset_x (byte 268) 30 mm off
    patch(join(dir, 'a.nii'), join(dir, 'd.nii'), (h) => h.setFloat32(268, h.getFloat32(268, true) + 30, true));
    const d = readNifti(join(dir, 'd.nii'));
    close(d.origin, v.origin, 1e-4, 'origin from the sform');
    assert.ok(
      d.meta.warnings.some((w) =>
        /sform and qform disagree \(the grid's corners up to 30\.0 mm apart\): using the sform/.test(w),
      ),
      d.meta.warnings.join('; '),
    );
  } finally {
    cleanup();
  }
});

test('sform with shear falls back to the qform with a warning; without a qform it is refused', () => {
  const { dir, cleanup } = tempDir();
  try {
    const v = smallVolume([1, 0, 0, 0, 1, 0, 0, 0, 1]);
    writeNiftiSync(join(dir, 'a.nii'), v);
    patch(join(dir, 'a.nii'), join(dir, 's.nii'), (h) => h.setFloat32(280 + 4, 0.7, true)); // srow_x[1]: shear
    const s = readNifti(join(dir, 's.nii'));
    assert.ok(
      s.meta.warnings.some((w) => /shear/.test(w) && /qform/.test(w)),
      s.meta.warnings.join('; '),
    );
    close(s.direction, v.direction, 1e-7, 'direction');
    patch(join(dir, 's.nii'), join(dir, 'n.nii'), (h) => h.setInt16(252, 0, true));
    assert.throws(
      () => readNifti(join(dir, 'n.nii')),
      (e: Error) => e instanceof VolumeReadError && /shear/.test(e.message) && e.message.includes(join(dir, 'n.nii')),
    );
  } finally {
    cleanup();
  }
});

test('no qform and no sform: pixdim only (method 1) with a warning', () => {
  const { dir, cleanup } = tempDir();
  try {
    writeNiftiSync(join(dir, 'a.nii'), smallVolume());
    patch(join(dir, 'a.nii'), join(dir, 'm.nii'), (h) => {
      h.setInt16(252, 0, true);
      h.setInt16(254, 0, true);
    });
    const m = readNifti(join(dir, 'm.nii'));
    assert.deepEqual(m.origin, [0, 0, 0]);
    assert.deepEqual(m.direction, [-1, 0, 0, 0, -1, 0, 0, 0, 1]);
    close(m.spacing, [0.8, 1.25, 2.5], 1e-6);
    assert.ok(m.meta.warnings.some((w) => /pixdim/.test(w)));
  } finally {
    cleanup();
  }
});

/** NIfTI-1 or NIfTI-2 file built field by field (any byte order), with an sform. */
function buildNifti(
  version: 1 | 2,
  le: boolean,
  opts: {
    dims: number[];
    datatype: number;
    data: Uint8Array;
    srow: number[];
    slope?: number;
    inter?: number;
    voxOffset?: number;
    intent?: number;
  },
): Uint8Array {
  const hsz = version === 1 ? 348 : 540;
  const off = opts.voxOffset ?? (version === 1 ? 352 : 544);
  const b = new Uint8Array(off + opts.data.length);
  const v = new DataView(b.buffer);
  v.setInt32(0, hsz, le);
  const dim = [opts.dims.length, ...opts.dims, ...Array(7 - opts.dims.length).fill(1)];
  const pix = [1, ...opts.dims.map(() => 1), ...Array(7 - opts.dims.length).fill(1)];
  if (version === 1) {
    dim.forEach((d, i) => v.setInt16(40 + 2 * i, d, le));
    v.setInt16(68, opts.intent ?? 0, le);
    v.setInt16(70, opts.datatype, le);
    pix.forEach((p, i) => v.setFloat32(76 + 4 * i, p, le));
    v.setFloat32(108, off, le);
    v.setFloat32(112, opts.slope ?? 0, le);
    v.setFloat32(116, opts.inter ?? 0, le);
    v.setInt16(254, 1, le);
    opts.srow.forEach((s, i) => v.setFloat32(280 + 4 * i, s, le));
    b.set(Buffer.from('n+1\0', 'latin1'), 344);
  } else {
    b.set(Buffer.from('n+2\0\r\n\x1a\n', 'latin1'), 4);
    v.setInt16(12, opts.datatype, le);
    dim.forEach((d, i) => v.setBigInt64(16 + 8 * i, BigInt(d), le));
    pix.forEach((p, i) => v.setFloat64(104 + 8 * i, p, le));
    v.setBigInt64(168, BigInt(off), le);
    v.setFloat64(176, opts.slope ?? 0, le);
    v.setFloat64(184, opts.inter ?? 0, le);
    v.setInt32(348, 1, le);
    opts.srow.forEach((s, i) => v.setFloat64(400 + 8 * i, s, le));
    v.setInt32(504, opts.intent ?? 0, le);
  }
  b.set(opts.data, off);
  return b;
}

// RAS sform: i -> -y (posterior) 0.5 mm, j -> +x (right) 2 mm, k -> +z 3 mm; origin RAS (10, 20, -30)
const SROW = [0, 2, 0, 10, -0.5, 0, 0, 20, 0, 0, 3, -30];
function int16Bytes(values: number[], le: boolean): Uint8Array {
  const b = new Uint8Array(values.length * 2);
  values.forEach((x, i) => new DataView(b.buffer).setInt16(2 * i, x, le));
  return b;
}

for (const [version, le] of [
  [2, true],
  [2, false],
  [1, false],
] as [1 | 2, boolean][]) {
  test(`NIfTI-${version} ${le ? 'little' : 'big'}-endian file built by hand`, () => {
    const { dir, cleanup } = tempDir();
    try {
      const values = Array.from({ length: 24 }, (_, i) => i * 100 - 1000);
      const f = join(dir, `h${version}.nii.gz`);
      writeFileSync(
        f,
        gzipSync(buildNifti(version, le, { dims: [2, 3, 4], datatype: 4, data: int16Bytes(values, le), srow: SROW })),
      );
      const v = readNifti(f);
      assert.deepEqual(v.size, [2, 3, 4]);
      assert.deepEqual(Array.from(v.data), values);
      assert.ok(v.data instanceof Int16Array);
      close(v.spacing, [0.5, 2, 3], 1e-12, 'spacing');
      // LPS direction: RAS columns (0,-0.5,0)/0.5 -> (0,-1,0) -> LPS (0,1,0); (2,0,0)/2 -> (1,0,0) -> (-1,0,0)
      assert.deepEqual(v.direction, [0, -1, 0, 1, 0, 0, 0, 0, 1]);
      assert.deepEqual(v.origin, [-10, -20, -30]);
    } finally {
      cleanup();
    }
  });
}

test('4-D file with dim[4] = 1 reads as a volume', () => {
  const { dir, cleanup } = tempDir();
  try {
    const values = Array.from({ length: 24 }, (_, i) => 3 * i - 20);
    const f = join(dir, 'four.nii');
    writeFileSync(
      f,
      buildNifti(1, true, { dims: [2, 3, 4, 1], datatype: 4, data: int16Bytes(values, true), srow: SROW }),
    );
    const v = readNifti(f);
    assert.deepEqual(v.size, [2, 3, 4]);
    assert.equal(v.components, 1);
    assert.deepEqual(Array.from(v.data), values);
  } finally {
    cleanup();
  }
});

test('scl_slope / scl_inter: float32 = raw * slope + inter; (1, 0) and slope 0 keep the raw type', () => {
  const { dir, cleanup } = tempDir();
  try {
    const values = [0, 1, 2, 3, 400, 4095, -7, 12];
    const mk = (slope: number, inter: number) => {
      const f = join(dir, `s${slope}_${inter}.nii`);
      writeFileSync(
        f,
        buildNifti(1, true, { dims: [2, 2, 2], datatype: 4, data: int16Bytes(values, true), srow: SROW, slope, inter }),
      );
      return readNifti(f);
    };
    const s = mk(2, -1024);
    assert.ok(s.data instanceof Float32Array);
    assert.deepEqual(
      Array.from(s.data),
      values.map((x) => x * 2 - 1024),
    );
    assert.ok(mk(1, 0).data instanceof Int16Array);
    assert.ok(mk(0, 5).data instanceof Int16Array);
    const frac = mk(0.5, 0.25);
    assert.deepEqual(
      Array.from(frac.data),
      values.map((x) => x * 0.5 + 0.25),
    );
  } finally {
    cleanup();
  }
});

test('int64 voxels become float64 with a warning; vox_offset is honoured', () => {
  const { dir, cleanup } = tempDir();
  try {
    const d = new Uint8Array(8 * 8);
    const dv = new DataView(d.buffer);
    [5, -6, 7, 2 ** 40, 0, 1, 2, 3].forEach((x, i) => dv.setBigInt64(8 * i, BigInt(x), true));
    const f = join(dir, 'i64.nii');
    const bytes = buildNifti(1, true, { dims: [2, 2, 2], datatype: 1024, data: d, srow: SROW, voxOffset: 400 });
    bytes.fill(0x55, 352, 400); // junk between header and vox_offset
    writeFileSync(f, bytes);
    const v = readNifti(f);
    assert.ok(v.data instanceof Float64Array);
    assert.deepEqual(Array.from(v.data), [5, -6, 7, 2 ** 40, 0, 1, 2, 3]);
    assert.ok(v.meta.warnings.some((w) => /int64/.test(w)));
  } finally {
    cleanup();
  }
});

test("3-component vector field: stored as VECTOR (1007) with LPS vectors as ITK reads them; a DISPVECT file's RAS vectors read as LPS", () => {
  const { dir, cleanup } = tempDir();
  try {
    const base = smallVolume([0, 1, 0, -1, 0, 0, 0, 0, 1]);
    const n = 140;
    const data = new Float32Array(n * 3);
    for (let v = 0; v < n; v++) data.set([v * 0.5 + 0.25, -v * 0.125 - 1, v % 7], v * 3);
    const vec = makeVolume({ ...base, components: 3, data });
    const f = join(dir, 'field.nii.gz');
    writeNiftiSync(f, vec);
    const r = readNifti(f);
    assert.equal(r.components, 3);
    assert.deepEqual(r.data, data);
    assert.deepEqual(r.direction, base.direction);
    writeNiftiSync(join(dir, 'again.nii.gz'), r);
    assert.ok(readFileSync(f).equals(readFileSync(join(dir, 'again.nii.gz'))), 'second write differs');
    // in the file: dim = [5, 7, 5, 4, 1, 3], intent 1007, planes of x, y, z as given (LPS)
    const raw = gunzipSync(readFileSync(f));
    const h = new DataView(raw.buffer, raw.byteOffset);
    assert.deepEqual(
      [0, 1, 2, 3, 4, 5].map((i) => h.getInt16(40 + 2 * i, true)),
      [5, 7, 5, 4, 1, 3],
    );
    assert.equal(h.getInt16(68, true), 1007);
    const planes = new Float32Array(raw.buffer.slice(raw.byteOffset + 352, raw.byteOffset + 352 + n * 12));
    assert.equal(planes[1], data[3]); // x of voxel 1
    assert.equal(planes[n + 1], data[4]); // y of voxel 1
    assert.equal(planes[2 * n + 1], data[5]); // z
    // the same bytes with intent DISPVECT (1006: RAS vectors, nibabel / NiftyReg / ITK >= 5.4) are
    // converted: x and y negated
    const raw2 = new Uint8Array(raw);
    new DataView(raw2.buffer).setInt16(68, 1006, true);
    writeFileSync(join(dir, 'ras.nii'), raw2);
    const ras = readNifti(join(dir, 'ras.nii'));
    assert.equal(ras.data[3], -data[3]);
    assert.equal(ras.data[4], -data[4]);
    assert.equal(ras.data[5], data[5]);
  } finally {
    cleanup();
  }
});

test('refusals name the file and the problem', () => {
  const { dir, cleanup } = tempDir();
  try {
    const expectFail = (f: string, re: RegExp) =>
      assert.throws(
        () => readNifti(f),
        (e: Error) => e instanceof VolumeReadError && e.message.startsWith(f) && re.test(e.message),
        re.source,
      );
    expectFail(join(REF, 'spine_report', 'example_ct_report', 'spine_report.nii.gz'), /RGB24/);
    expectFail(join(dir, 'missing.nii'), /no such file/);
    writeNiftiSync(join(dir, 'a.nii'), smallVolume());
    const good = readFileSync(join(dir, 'a.nii'));
    const cases: [string, (b: Uint8Array, v: DataView) => Uint8Array, RegExp][] = [
      ['magic', (b) => (b.set([0x6e, 0x69, 0x31, 0], 344), b), /\.hdr\/\.img/],
      ['analyze', (b) => (b.set([0, 0, 0, 0], 344), b), /not a single-file NIfTI-1/],
      ['sizeof', (b, v) => (v.setInt32(0, 349, true), b), /not a NIfTI file/],
      ['truncated', (b) => b.subarray(0, b.length - 3), /truncated/],
      ['header', (b) => b.subarray(0, 200), /not a NIfTI|truncated/],
      ['time', (b, v) => (v.setInt16(40, 4, true), v.setInt16(48, 2, true), b), /time series/],
      ['dim0', (b, v) => (v.setInt16(40, 0, true), b), /dim\[0\]/],
      ['negdim', (b, v) => (v.setInt16(44, -5, true), b), /invalid dimensions/],
      ['huge', (b, v) => (v.setInt16(42, 32767, true), v.setInt16(44, 32767, true), b), /truncated|too large/],
      ['datatype', (b, v) => (v.setInt16(70, 32, true), b), /complex64/],
      ['voxoffset', (b, v) => (v.setFloat32(108, 10, true), b), /vox_offset/],
      ['spacing', (b, v) => (v.setInt16(254, 0, true), v.setFloat32(80, 0, true), b), /pixdim/],
      ['nanspacing', (b, v) => (v.setInt16(254, 0, true), v.setFloat32(84, NaN, true), b), /pixdim/],
      ['quaternion', (b, v) => (v.setInt16(254, 0, true), v.setFloat32(256, 2, true), b), /quaternion/],
      [
        'zero-axis',
        (b, v) => ([280, 296, 312].forEach((o) => v.setFloat32(o, 0, true)), v.setInt16(252, 0, true), b),
        /shear|zero length/,
      ],
    ];
    for (const [name, edit, re] of cases) {
      const b = new Uint8Array(good);
      const f = join(dir, `${name}.nii`);
      writeFileSync(f, edit(b, new DataView(b.buffer)));
      expectFail(f, re);
    }
    const gz = gzipSync(good);
    writeFileSync(join(dir, 'cut.nii.gz'), gz.subarray(0, gz.length - 20));
    expectFail(join(dir, 'cut.nii.gz'), /corrupt or truncated|truncated/);
    const bad = Buffer.from(gz);
    bad[bad.length - 6] ^= 0xff; // CRC
    writeFileSync(join(dir, 'crc.nii.gz'), bad);
    expectFail(join(dir, 'crc.nii.gz'), /corrupt/);
  } finally {
    cleanup();
  }
});

test('writer refuses an invalid geometry and a bad extension with VolumeWriteError', () => {
  const { dir, cleanup } = tempDir();
  try {
    const v = smallVolume();
    assert.throws(() => writeNiftiSync(join(dir, 'x.nrrd'), v), /\.nii/);
    const bad = { ...v, direction: [1, 0.5, 0, 0, 1, 0, 0, 0, 1] as Mat3 };
    assert.throws(
      () => writeNiftiSync(join(dir, 'x.nii'), bad),
      (e: Error) => e.name === 'VolumeWriteError' && /orthonormal/.test(e.message),
    );
    assert.throws(() => writeNiftiSync(join(dir, 'x.nii'), v, { protect: [join(dir, 'x.nii')] }), /refusing/);
  } finally {
    cleanup();
  }
});
