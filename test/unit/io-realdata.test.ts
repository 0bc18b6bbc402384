/**
 * Every NIfTI, MetaImage and VTI volume under the shared data folder (CT, MR, labels, masks):
 * each reads into a consistent Volume whose geometry matches the raw header fields, decoded
 * here independently of the readers. Files that must be refused are listed with the reason.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { DATA } from '../helpers.ts';
import { readNifti } from '../../main/engine/volume/io/nifti.ts';
import { readMetaImage } from '../../main/engine/volume/io/metaimage.ts';
import { readVti } from '../../main/engine/volume/io/vti.ts';
import { VolumeReadError } from '../../main/engine/errors.ts';
import { geometryProblem } from '../../main/engine/volume/geometry.ts';
import type { Volume } from '../../main/engine/volume/volume.ts';

/** Files that must be refused, and the words the message must contain. */
const REFUSED: Record<string, RegExp> = {
  'spine_report.nii.gz': /RGB24/, // a 2-D RGB screenshot of a report, not a volume
};

function find(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (name.endsWith('.vti'))
      out.push(p); // file or vtk.js folder
    else if (statSync(p).isDirectory()) find(p, out);
    else if (/\.(nii|nii\.gz|mha|mhd)$/.test(name)) out.push(p);
  }
  return out;
}

function consistent(v: Volume, file: string): void {
  assert.equal(v.data.length, v.size[0] * v.size[1] * v.size[2] * v.components, file);
  assert.equal(geometryProblem(v), null, file);
}

const close = (a: number[], b: number[], tol: number, what: string) =>
  a.forEach((x, i) =>
    assert.ok(Math.abs(x - b[i]) <= tol * Math.max(1, Math.abs(b[i])), `${what}[${i}]: ${x} vs ${b[i]}`),
  );

/** Geometry facts straight from the bytes of a little-endian NIfTI-1 header. */
function niftiFacts(file: string) {
  const raw = readFileSync(file);
  const b = file.endsWith('.gz') ? gunzipSync(raw) : raw;
  const h = new DataView(b.buffer, b.byteOffset, 348);
  assert.equal(h.getInt32(0, true), 348, `${file}: little-endian NIfTI-1`);
  const dim = Array.from({ length: 4 }, (_, i) => h.getInt16(40 + 2 * i, true));
  const sform = h.getInt16(254, true);
  const qform = h.getInt16(252, true);
  const srow = Array.from({ length: 12 }, (_, i) => h.getFloat32(280 + 4 * i, true));
  return { dim, sform, qform, srow, datatype: h.getInt16(70, true) };
}

const files = existsSync(DATA) ? find(DATA) : [];
const seen = { nifti: 0, meta: 0, vti: 0, methods: new Set<string>() };

test('the data folder holds NIfTI, MetaImage and VTI volumes', { skip: files.length === 0 && 'no shared data' }, () => {
  assert.ok(files.filter((f) => /\.nii/.test(f)).length > 100);
  assert.ok(files.filter((f) => /\.mh[ad]$/.test(f)).length >= 9);
  assert.equal(files.filter((f) => f.endsWith('.vti')).length, 2);
});

test(
  'every NIfTI file reads with the geometry of its raw sform (or is refused for a stated reason)',
  { skip: files.length === 0 && 'no shared data' },
  () => {
    const types: Record<number, string> = {
      2: 'Uint8Array',
      4: 'Int16Array',
      8: 'Int32Array',
      16: 'Float32Array',
      64: 'Float64Array',
    };
    for (const file of files.filter((f) => /\.nii(\.gz)?$/.test(f))) {
      const base = file.split('/').pop()!;
      if (REFUSED[base]) {
        assert.throws(
          () => readNifti(file),
          (e: Error) => e instanceof VolumeReadError && e.message.startsWith(file) && REFUSED[base].test(e.message),
        );
        continue;
      }
      const v = readNifti(file);
      const f = niftiFacts(file);
      consistent(v, file);
      assert.deepEqual(v.size, [f.dim[1], f.dim[2], f.dim[0] >= 3 ? f.dim[3] : 1], file);
      assert.equal(v.data.constructor.name, types[f.datatype], file);
      assert.ok(f.sform > 0, `${file}: every real file here has an sform`);
      seen.methods.add(`sform_code ${f.sform}, qform_code ${f.qform}`);
      const s = f.srow;
      // LPS origin = RAS origin with x, y negated; spacing = sform column norms
      close(v.origin, [-s[3], -s[7], s[11]], 1e-9, `${base} origin`);
      close(
        v.spacing,
        [0, 1, 2].map((c) => Math.hypot(s[c], s[4 + c], s[8 + c])),
        1e-6,
        `${base} spacing`,
      );
      close(
        v.direction,
        [0, 1, 2].flatMap((r) => [0, 1, 2].map((c) => ((r < 2 ? -1 : 1) * s[r * 4 + c]) / v.spacing[c])),
        1e-6,
        `${base} direction`,
      );
      seen.nifti++;
    }
    assert.ok(seen.nifti > 100);
  },
);

test('known facts from the data README', { skip: files.length === 0 && 'no shared data' }, () => {
  const ref = join(DATA, 'TotalSegmentator', 'tests', 'reference_files');
  const ct = readNifti(join(ref, 'example_ct.nii.gz'));
  assert.deepEqual(
    [ct.size, ct.spacing],
    [
      [122, 101, 112],
      [3, 3, 3],
    ],
  );
  const seg = readNifti(join(ref, 'example_seg.nii.gz'));
  assert.deepEqual(seg.size, [122, 101, 30], 'example_seg labels the first 30 slices (as example_ct_sm)');
  const crop = readNifti(join(ref, 'aorta_report', 'test_result', 'models', 'ct_cropped.nii.gz'));
  assert.deepEqual(
    [crop.size, crop.spacing, crop.data.constructor.name],
    [[120, 126, 164], [1.5, 1.5, 1.5], 'Int16Array'],
  );
  const lung = readMetaImage(join(DATA, 'elastix', 'Testing', 'Baselines', '3DCT_lung.mha'));
  assert.deepEqual(
    [lung.size, lung.spacing],
    [
      [115, 157, 129],
      [1.366, 1.366, 2.5],
    ],
  );
  const masks = readMetaImage(join(DATA, 'ITKElastix', 'examples', 'data', 'CT_3D_lung_fixed_mask.mha'));
  assert.deepEqual(masks.size, [115, 157, 129]);
});

test(
  'every MetaImage file reads with the geometry of its header text',
  { skip: files.length === 0 && 'no shared data' },
  () => {
    for (const file of files.filter((f) => /\.mh[ad]$/.test(f))) {
      const v = readMetaImage(file);
      consistent(v, file);
      const text = readFileSync(file).subarray(0, 2048).toString('latin1');
      const field = (k: string) =>
        text
          .match(new RegExp(`^${k} = (.*)$`, 'm'))![1]
          .trim()
          .split(/\s+/)
          .map(Number);
      const dims = field('DimSize');
      assert.deepEqual(v.size, [dims[0], dims[1], dims[2] ?? 1], file);
      assert.deepEqual(v.spacing.slice(0, dims.length), field('ElementSpacing'), file);
      assert.deepEqual(v.origin.slice(0, dims.length), field('Offset'), file);
      seen.meta++;
    }
    assert.ok(seen.meta >= 9);
  },
);

test(
  'every VTI volume (vtk.js data set folders) reads with the geometry of its index.json',
  { skip: files.length === 0 && 'no shared data' },
  () => {
    for (const file of files.filter((f) => f.endsWith('.vti'))) {
      const v = readVti(file);
      consistent(v, file);
      const index = JSON.parse(readFileSync(join(file, 'index.json'), 'utf8'));
      const e = index.extent;
      assert.deepEqual(v.size, [e[1] - e[0] + 1, e[3] - e[2] + 1, e[5] - e[4] + 1]);
      assert.deepEqual(v.spacing, index.spacing);
      assert.deepEqual(v.origin, index.origin, 'extent starts at 0: origin as stored');
      seen.vti++;
    }
    assert.equal(seen.vti, 2);
  },
);
