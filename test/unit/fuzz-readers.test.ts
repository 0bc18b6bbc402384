/**
 * Seeded fuzzing of the readers on real file bytes: header and data byte flips, truncations,
 * and header numbers overwritten with 0 / -1 / huge / NaN. Every case must either read into a
 * consistent Volume or throw a VolumeReadError naming the file; no other exception, no hang.
 * FUZZ_LOG=1 prints every case and its outcome.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { dataPath, rng, tempDir } from '../helpers.ts';
import { readNifti, encodeNifti } from '../../main/engine/volume/io/nifti.ts';
import { readMetaImage, encodeMetaImage } from '../../main/engine/volume/io/metaimage.ts';
import { encodeVti, readVti } from '../../main/engine/volume/io/vti.ts';
import { readNrrd } from '../../main/engine/volume/io/nrrd.ts';
import { readVolume } from '../../main/engine/volume/io/index.ts';
import { VolumeReadError } from '../../main/engine/errors.ts';
import { geometryProblem } from '../../main/engine/volume/geometry.ts';
import type { Volume } from '../../main/engine/volume/volume.ts';

interface Kind {
  name: string;
  ext: string;
  /** uncompressed form of the file, where header / data mutations apply */
  plain: Uint8Array;
  headerLen: number;
  /** plain -> file bytes (identity or gzip) */
  encode: (plain: Uint8Array) => Uint8Array;
  read: (path: string) => Volume;
  /** binary NIfTI-1 header fields [offset, 'i16' | 'f32'] to overwrite, else numbers in header text */
  fields?: [number, 'i16' | 'f32'][];
}

const NIFTI_FIELDS: [number, 'i16' | 'f32'][] = [
  ...[40, 42, 44, 46, 48, 50, 52, 54, 68, 70, 252, 254].map((o) => [o, 'i16'] as [number, 'i16']),
  ...[
    76,
    80,
    84,
    88,
    92,
    108,
    112,
    116,
    256,
    260,
    264,
    268,
    272,
    276,
    ...Array.from({ length: 12 }, (_, i) => 280 + 4 * i),
  ].map((o) => [o, 'f32'] as [number, 'f32']),
];
const I16 = [0, -1, 1, 2, 3, 5, 7, 32767, -32768, 1006, 1007];
const F32 = [0, -1, NaN, Infinity, -Infinity, 1e30, -1e30, 1e-30, 3, 0.5];
const TEXT = [
  '0',
  '-1',
  '1e308',
  'NaN',
  '99999999999999999999',
  '4294967297',
  '-0',
  '0.0000001',
  'abc',
  '',
  '2147483648',
  '3',
];
const id = (b: Uint8Array) => b;
const gz = (b: Uint8Array) => gzipSync(b, { level: 1 });
const idx = (b: Uint8Array, s: string, after = true) => {
  const i = Buffer.from(b).indexOf(s);
  assert.ok(i >= 0, s);
  return after ? i + s.length : i;
};

function kinds(): Kind[] {
  const ref = dataPath('TotalSegmentator', 'tests', 'reference_files');
  const realGz = readFileSync(join(ref, 'example_seg_fast', 'aorta.nii.gz'));
  const seg = readNifti(join(ref, 'example_seg_fast', 'liver.nii.gz'));
  const niiPlain = Buffer.concat(encodeNifti(seg));
  const maskFile = readFileSync(dataPath('elastix', 'Testing', 'Data', '3DCT_lung_baseline_mask.mha'));
  const lung = readMetaImage(dataPath('elastix', 'Testing', 'Data', '3DCT_lung_baseline_small.mha'));
  const raw = encodeMetaImage(lung, false, 'LOCAL');
  const mhaRaw = Buffer.concat([Buffer.from(raw.header, 'latin1'), raw.data]);
  const head = readVti(dataPath('vtk-js', 'Data', 'volume', 'headsq.vti'));
  const vtiZ = encodeVti(head, { format: 'appended', blockSize: 65536 });
  const vtiB = encodeVti(head, { format: 'binary', compress: false });
  const nrrdHeader = `NRRD0004\ntype: short\ndimension: 3\nsizes: ${lung.size.join(' ')}\nspace: left-posterior-superior\nspace directions: (2.732,0,0) (0,2.732,0) (0,0,5)\nspace origin: (-152.461,-148.986,-1432)\nendian: little\nencoding: gzip\n\n`;
  const nrrdPlain = Buffer.concat([Buffer.from(nrrdHeader, 'latin1'), Buffer.from(lung.data.buffer)]);
  const nrrdEncode = (b: Uint8Array) => {
    const h = Math.min(b.length, nrrdHeader.length);
    return Buffer.concat([b.subarray(0, h), gzipSync(b.subarray(h), { level: 1 })]);
  };
  return [
    {
      name: 'nifti .nii.gz (real file)',
      ext: '.nii.gz',
      plain: gunzipSync(realGz),
      headerLen: 352,
      encode: gz,
      read: readNifti,
      fields: NIFTI_FIELDS,
    },
    {
      name: 'nifti .nii (written from a real label map)',
      ext: '.nii',
      plain: niiPlain,
      headerLen: 352,
      encode: id,
      read: readNifti,
      fields: NIFTI_FIELDS,
    },
    {
      name: 'metaimage .mha zlib (real file)',
      ext: '.mha',
      plain: maskFile,
      headerLen: idx(maskFile, 'ElementDataFile = LOCAL\n'),
      encode: id,
      read: readMetaImage,
    },
    {
      name: 'metaimage .mha raw (real CT)',
      ext: '.mha',
      plain: mhaRaw,
      headerLen: raw.header.length,
      encode: id,
      read: readMetaImage,
    },
    {
      name: 'vti appended zlib (real headsq voxels)',
      ext: '.vti',
      plain: vtiZ,
      headerLen: idx(vtiZ, '_'),
      encode: id,
      read: readVti,
    },
    {
      name: 'vti inline base64 (real headsq voxels)',
      ext: '.vti',
      plain: vtiB,
      headerLen: idx(vtiB, 'format="binary">'),
      encode: id,
      read: readVti,
    },
    {
      name: 'nrrd gzip (real CT)',
      ext: '.nrrd',
      plain: nrrdPlain,
      headerLen: nrrdHeader.length,
      encode: nrrdEncode,
      read: readNrrd,
    },
  ];
}

type Mutation = (k: Kind, r: () => number) => { bytes: Uint8Array; what: string };
const pick = <T>(r: () => number, xs: T[]) => xs[Math.floor(r() * xs.length)];

const MUTATIONS: Mutation[] = [
  function headerFlip(k, r) {
    const b = new Uint8Array(k.plain);
    const n = 1 + Math.floor(r() * 6);
    const at: number[] = [];
    for (let i = 0; i < n; i++) at.push(Math.floor(r() * k.headerLen));
    for (const a of at) b[a] ^= 1 + Math.floor(r() * 255);
    return { bytes: k.encode(b), what: `header bytes ${at.join(',')} flipped` };
  },
  function dataFlip(k, r) {
    const b = new Uint8Array(k.plain);
    const at = k.headerLen + Math.floor(r() * (b.length - k.headerLen));
    b[at] ^= 1 + Math.floor(r() * 255);
    return { bytes: k.encode(b), what: `data byte ${at} flipped` };
  },
  function fileFlip(k, r) {
    const b = new Uint8Array(k.encode(k.plain));
    const at = Math.floor(r() * b.length);
    b[at] ^= 1 + Math.floor(r() * 255);
    return { bytes: b, what: `file byte ${at} flipped` };
  },
  function truncate(k, r) {
    const b = k.encode(k.plain);
    const len = r() < 0.3 ? Math.floor(r() * Math.min(b.length, 2 * k.headerLen)) : Math.floor(r() * b.length);
    return { bytes: b.subarray(0, len), what: `truncated to ${len}` };
  },
  function numbers(k, r) {
    const b = new Uint8Array(k.plain);
    if (k.fields) {
      const [off, t] = pick(r, k.fields);
      const v = new DataView(b.buffer);
      const x = t === 'i16' ? pick(r, I16) : pick(r, F32);
      if (t === 'i16') v.setInt16(off, x, true);
      else v.setFloat32(off, x, true);
      return { bytes: k.encode(b), what: `field @${off} = ${x}` };
    }
    const text = Buffer.from(b.subarray(0, k.headerLen)).toString('latin1');
    const hits = [...text.matchAll(/-?\d+(\.\d+)?(e[-+]?\d+)?/gi)];
    const h = pick(r, hits);
    const repl = pick(r, TEXT);
    const out = text.slice(0, h.index) + repl + text.slice(h.index! + h[0].length);
    return {
      bytes: k.encode(Buffer.concat([Buffer.from(out, 'latin1'), b.subarray(k.headerLen)])),
      what: `"${h[0]}" at ${h.index} -> "${repl}"`,
    };
  },
];

test(
  'readers survive mutated real files: consistent Volume or VolumeReadError naming the file',
  { timeout: 120_000 },
  () => {
    const { dir, cleanup } = tempDir('sam-fuzz-');
    const stats = { cases: 0, read: 0, refused: 0 };
    try {
      const all = kinds();
      for (const [ki, k] of all.entries()) {
        const r = rng(1234 + ki);
        const file = join(dir, `fuzz${ki}${k.ext}`);
        for (let n = 0; n < 55; n++) {
          const { bytes, what } = MUTATIONS[n % MUTATIONS.length](k, r);
          writeFileSync(file, bytes);
          stats.cases++;
          let v: Volume;
          try {
            v = k.read(file);
          } catch (e) {
            if (!(e instanceof VolumeReadError) || !e.message.includes(file))
              assert.fail(
                `${k.name}, case ${n} (${what}): ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`,
              );
            stats.refused++;
            if (process.env.FUZZ_LOG) console.log(`${k.name} | ${what} | ${e.problem}`);
            continue;
          }
          const expect = v.size[0] * v.size[1] * v.size[2] * v.components;
          assert.equal(v.data.length, expect, `${k.name}, case ${n} (${what}): data length`);
          assert.equal(geometryProblem(v), null, `${k.name}, case ${n} (${what}): geometry`);
          assert.ok(Number.isInteger(v.components) && v.components >= 1);
          stats.read++;
          if (process.env.FUZZ_LOG) console.log(`${k.name} | ${what} | READ ${v.meta.warnings.join('; ')}`);
        }
      }
    } finally {
      cleanup();
    }
    assert.ok(stats.cases >= 350, `${stats.cases} cases`);
    assert.ok(stats.read > 20 && stats.refused > 100, JSON.stringify(stats));
  },
);

test('a file that is no volume format by name and not DICOM is told what the reader reads', async () => {
  const t = tempDir();
  try {
    const f = join(t.dir, 'session.json');
    writeFileSync(f, '{"format":"sam-workstation-session"}');
    await assert.rejects(
      readVolume(f),
      (e: Error) =>
        e instanceof VolumeReadError &&
        e.message.startsWith(f) &&
        /not a volume file this reads: not DICOM \(.*\), .*NIfTI \(\.nii, \.nii\.gz\), MetaImage/.test(e.message),
    );
  } finally {
    t.cleanup();
  }
});

test('an empty file of any format is called empty, not a header problem', async () => {
  const t = tempDir();
  try {
    for (const name of ['empty.nii.gz', 'empty.mha', 'empty.nrrd', 'empty']) {
      const f = join(t.dir, name);
      writeFileSync(f, '');
      await assert.rejects(
        readVolume(f),
        (e: Error) => e instanceof VolumeReadError && e.message === `${f}: empty file (0 bytes)`,
      );
    }
  } finally {
    t.cleanup();
  }
});
