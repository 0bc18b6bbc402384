/**
 * Transfer syntaxes: the real JPEG 2000 series (values and grid against known facts and its
 * label map), and RLE / JPEG-LS / deflated / big-endian files made here from real slices (RLE
 * by our own encoder below, JPEG-LS by CharLS's encoder), decoded bit-exactly; unsupported
 * syntaxes are refused by UID and name.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { deflateRawSync } from 'node:zlib';
import { VolumeReadError } from '../../main/engine/errors.ts';
import { indexToWorld, worldToIndex } from '../../main/engine/volume/geometry.ts';
import { readDicomSeries } from '../../main/engine/volume/io/dicom/read-series.ts';
import { readNifti } from '../../main/engine/volume/io/nifti.ts';
import type { Vec3 } from '../../main/engine/volume/volume.ts';
import { tempDir } from '../helpers.ts';
import {
  CTHEAD,
  J2K,
  J2K_SEG,
  filesOf,
  loadDicom,
  pixelsOf,
  rleEncode16,
  saveDicom,
  type DicomFile,
} from './dicom-fixtures.ts';

const require = createRequire(import.meta.url);

test('JPEG 2000 series: 512x512x20 int16, first slice raw 0..2460 with intercept -1024', async () => {
  const files = filesOf(J2K);
  assert.equal(loadDicom(files[0]).meta.TransferSyntaxUID, '1.2.840.10008.1.2.4.90');
  const one = await readDicomSeries([files[0]]);
  assert.ok(one.data instanceof Int16Array);
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of one.data) {
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  assert.deepEqual([lo, hi], [0 - 1024, 2460 - 1024]);
  const v = await readDicomSeries(J2K);
  assert.deepEqual(v.size, [512, 512, 20]);
  assert.deepEqual(v.spacing, [0.9765625, 0.9765625, 2]);
  assert.deepEqual(v.origin, [-249.51171875, -437.51171875, -804.5]);
});

test('JPEG 2000 series lies on the grid of example_seg_dicom.nii.gz and its labels fall on the body', async () => {
  // readNifti is main/engine/volume/io/nifti.ts (written separately). The NIfTI stores the same
  // voxel centres with j running the other way (direction diag(1,-1,1)), so grids are compared
  // as sets of voxel centres and voxels are matched through world coordinates.
  const ct = await readDicomSeries(J2K);
  const seg = await Promise.resolve(readNifti(J2K_SEG));
  assert.deepEqual([...seg.size], ct.size);
  for (let a = 0; a < 3; a++) assert.ok(Math.abs(seg.spacing[a] - ct.spacing[a]) < 1e-4);
  for (let c = 0; c < 9; c++) assert.ok(Math.abs(Math.abs(seg.direction[c]) - Math.abs(ct.direction[c])) < 1e-4);
  for (let corner = 0; corner < 8; corner++) {
    const ijk: Vec3 = [corner & 1 ? 511 : 0, corner & 2 ? 511 : 0, corner & 4 ? 19 : 0];
    const mine = worldToIndex(ct, indexToWorld(seg, ijk));
    for (let a = 0; a < 3; a++) {
      assert.ok(Math.abs(mine[a] - Math.round(mine[a])) < 0.01, `corner ${corner} axis ${a}: ${mine[a]}`);
      assert.ok(Math.round(mine[a]) >= 0 && Math.round(mine[a]) < ct.size[a]);
    }
  }
  let labelled = 0;
  let air = 0;
  const [ni, nj, nk] = seg.size;
  for (let k = 0; k < nk; k++)
    for (let j = 0; j < nj; j += 2)
      for (let i = 0; i < ni; i += 2) {
        if (!seg.data[i + ni * (j + nj * k)]) continue;
        const [x, y, z] = worldToIndex(ct, indexToWorld(seg, [i, j, k])).map(Math.round);
        labelled++;
        if (ct.data[x + ni * (y + nj * z)] < -900) air++;
      }
  assert.ok(labelled > 10000, `labelled ${labelled}`);
  assert.ok(air / labelled < 0.05, `labels over air: ${((100 * air) / labelled).toFixed(1)}%`);
});

/** CharLS's JPEG-LS encoder (lossless, 16-bit samples). */
async function jpegLsEncoder(): Promise<(px: Int16Array | Uint16Array, rows: number, cols: number) => ArrayBuffer> {
  const factory = require('@cornerstonejs/codec-charls/wasmjs') as (a: object) => Promise<
    Record<
      string,
      new () => {
        getDecodedBuffer(fi: object): Uint8Array;
        encode(): void;
        getEncodedBuffer(): Uint8Array;
        delete(): void;
      }
    >
  >;
  const m = await factory({ print: () => {}, printErr: () => {} });
  return (px, rows, cols) => {
    const enc = new m.JpegLSEncoder();
    const buf = enc.getDecodedBuffer({
      width: cols,
      height: rows,
      bitsPerSample: 16,
      componentCount: 1,
      isSigned: false,
    });
    buf.set(new Uint8Array(px.buffer, px.byteOffset, px.byteLength));
    enc.encode();
    const out = enc.getEncodedBuffer().slice().buffer;
    enc.delete();
    return out;
  };
}

/** Rewrite CTHead slices into `dir` with a transfer syntax and re-encoded pixel data. */
function reencode(dir: string, ts: string, encode: (f: DicomFile) => ArrayBuffer, count = 12): string[] {
  return filesOf(CTHEAD)
    .slice(0, count)
    .map((src, n) => {
      const d = loadDicom(src);
      d.ds.PixelData = [encode(d)];
      d.meta.TransferSyntaxUID = ts;
      const p = join(dir, `${n}.dcm`);
      saveDicom(p, d);
      return p;
    });
}

test('RLE Lossless files made from real slices by our encoder decode bit-exactly', async () => {
  const { dir, cleanup } = tempDir('sam-dicom-rle-');
  try {
    const files = reencode(dir, '1.2.840.10008.1.2.5', (d) => rleEncode16(pixelsOf(d)));
    assert.equal(loadDicom(files[0]).meta.TransferSyntaxUID, '1.2.840.10008.1.2.5');
    const got = await readDicomSeries(dir);
    const ref = await readDicomSeries(filesOf(CTHEAD).slice(0, 12));
    assert.deepEqual(got.size, ref.size);
    assert.deepEqual(Buffer.from(got.data.buffer), Buffer.from(ref.data.buffer));
  } finally {
    cleanup();
  }
});

test('JPEG-LS files made from real slices with CharLS decode bit-exactly', async () => {
  const { dir, cleanup } = tempDir('sam-dicom-jls-');
  try {
    const encode = await jpegLsEncoder();
    reencode(dir, '1.2.840.10008.1.2.4.80', (d) => encode(pixelsOf(d), d.ds.Rows as number, d.ds.Columns as number));
    const got = await readDicomSeries(dir);
    const ref = await readDicomSeries(filesOf(CTHEAD).slice(0, 12));
    assert.deepEqual(Buffer.from(got.data.buffer), Buffer.from(ref.data.buffer));
  } finally {
    cleanup();
  }
});

test('Deflated Explicit VR Little Endian and Explicit VR Big Endian files read like the originals', async () => {
  const { dir, cleanup } = tempDir('sam-dicom-deflate-');
  try {
    const srcs = filesOf(CTHEAD).slice(0, 4);
    const deflated = srcs.map((src, n) => {
      const d = loadDicom(src);
      d.meta.TransferSyntaxUID = '1.2.840.10008.1.2.1.99';
      const p = join(dir, `d${n}.dcm`);
      saveDicom(p, d); // dcmjs writes the data set plainly: deflate it here
      const b = readFileSync(p);
      const metaEnd = 132 + 12 + b.readUInt32LE(140);
      writeFileSync(p, Buffer.concat([b.subarray(0, metaEnd), deflateRawSync(b.subarray(metaEnd))]));
      return p;
    });
    const bigEndian = srcs.map((src, n) => {
      const d = loadDicom(src);
      d.meta.TransferSyntaxUID = '1.2.840.10008.1.2.2';
      const px = Buffer.from((d.ds.PixelData as ArrayBuffer[])[0].slice(0));
      px.swap16();
      d.ds.PixelData = [px.buffer.slice(px.byteOffset, px.byteOffset + px.byteLength)];
      const p = join(dir, `b${n}.dcm`);
      saveDicom(p, d);
      return p;
    });
    const ref = await readDicomSeries(srcs);
    for (const files of [deflated, bigEndian]) {
      const got = await readDicomSeries(files);
      assert.deepEqual(got.size, ref.size);
      assert.deepEqual(got.origin, ref.origin);
      assert.deepEqual(Buffer.from(got.data.buffer), Buffer.from(ref.data.buffer));
      assert.equal(got.meta.dicom!.attributes.PatientID, ref.meta.dicom!.attributes.PatientID);
    }
  } finally {
    cleanup();
  }
});

test('an unsupported transfer syntax is refused naming the file, the UID and its name', async () => {
  const { dir, cleanup } = tempDir('sam-dicom-ts-');
  try {
    const [file] = reencode(dir, '1.2.840.10008.1.2.4.100', () => new Uint8Array(64).buffer, 1);
    await assert.rejects(readDicomSeries(file), (e: unknown) => {
      assert.ok(e instanceof VolumeReadError);
      assert.ok(e.message.startsWith(file), e.message);
      assert.ok(e.message.includes('1.2.840.10008.1.2.4.100') && e.message.includes('MPEG2'), e.message);
      return true;
    });
  } finally {
    cleanup();
  }
});
