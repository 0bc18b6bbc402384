/**
 * Robustness: seeded mutations (byte flips in the header and the pixel data, huge length
 * values, deleted bytes, truncation) of real DICOM files (explicit and implicit VR, JPEG 2000,
 * RLE, an enhanced multi-frame file). Each read must either give a consistent Volume or throw
 * a VolumeReadError naming the file, and quickly: no hang, no crash, no other error type.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { VolumeReadError } from '../../main/engine/errors.ts';
import { geometryProblem } from '../../main/engine/volume/geometry.ts';
import { readDicomSeries } from '../../main/engine/volume/io/dicom/read-series.ts';
import { rng, tempDir } from '../helpers.ts';
import { CHEST, CTHEAD, J2K, SMALL, filesOf, loadDicom, pixelsOf, rleEncode16, saveDicom } from './dicom-fixtures.ts';

/** Offset of the last Pixel Data tag (little-endian): where the header ends. */
function headerEnd(b: Uint8Array): number {
  for (let p = b.length - 4; p >= 0; p--)
    if (b[p] === 0xe0 && b[p + 1] === 0x7f && b[p + 2] === 0x10 && b[p + 3] === 0x00) return p;
  return Math.min(b.length, 4096);
}

function mutate(src: Uint8Array, r: () => number, kind: number): Uint8Array {
  const b = Uint8Array.from(src);
  const head = Math.min(b.length, headerEnd(b) + 64);
  const at = (limit: number) => Math.floor(r() * limit);
  switch (kind % 5) {
    case 0: // a few random bytes in the header
      for (let n = 1 + at(6); n > 0; n--) b[at(head)] = at(256);
      return b;
    case 1: // a huge or random length-like value in the header
      new DataView(b.buffer).setUint32(
        Math.max(0, at(head - 4)),
        [0xffffffff, 0x7fffffff, 0x00010000, at(2 ** 32)][at(4)],
        true,
      );
      return b;
    case 2: {
      // bytes removed from the header
      const p = at(head);
      return Uint8Array.from([...b.subarray(0, p), ...b.subarray(p + 1 + at(16))]);
    }
    case 3: // truncated
      return b.subarray(0, at(b.length));
    default: // random bytes anywhere (mostly the pixel data / codestream)
      for (let n = 1 + at(20); n > 0; n--) b[at(b.length)] = at(256);
      return b;
  }
}

test(
  'mutated real DICOM files give a consistent Volume or a VolumeReadError naming the file, quickly',
  { timeout: 120_000 },
  async () => {
    const { dir, cleanup } = tempDir('sam-dicom-fuzz-');
    try {
      // Sources: real files, plus RLE and enhanced multi-frame files made from real slices.
      const rle = loadDicom(filesOf(CTHEAD)[10]);
      rle.ds.PixelData = [rleEncode16(pixelsOf(rle))];
      rle.meta.TransferSyntaxUID = '1.2.840.10008.1.2.5';
      saveDicom(join(dir, 'rle.dcm'), rle);
      const frames = filesOf(CTHEAD).slice(0, 4).map(loadDicom);
      const first = frames[0];
      const all = new Int16Array(4 * 4096);
      frames.forEach((f, n) => all.set(pixelsOf(f), n * 4096));
      saveDicom(join(dir, 'mf.dcm'), {
        meta: { ...first.meta, MediaStorageSOPClassUID: '1.2.840.10008.5.1.4.1.1.2.1' },
        ds: {
          SOPClassUID: '1.2.840.10008.5.1.4.1.1.2.1',
          SeriesInstanceUID: first.ds.SeriesInstanceUID,
          Modality: 'CT',
          NumberOfFrames: 4,
          Rows: 64,
          Columns: 64,
          SamplesPerPixel: 1,
          PhotometricInterpretation: 'MONOCHROME2',
          BitsAllocated: 16,
          BitsStored: 16,
          HighBit: 15,
          PixelRepresentation: 1,
          SharedFunctionalGroupsSequence: [
            {
              PlaneOrientationSequence: [{ ImageOrientationPatient: first.ds.ImageOrientationPatient }],
              PixelMeasuresSequence: [{ PixelSpacing: first.ds.PixelSpacing, SliceThickness: 1.5 }],
            },
          ],
          PerFrameFunctionalGroupsSequence: frames.map((f) => ({
            PlanePositionSequence: [{ ImagePositionPatient: f.ds.ImagePositionPatient }],
          })),
          PixelData: [all.buffer],
          _vrMap: { PixelData: 'OW' },
        },
      });
      const sources = [
        join(CTHEAD, 'CTHead1.dcm'),
        SMALL,
        join(CHEST, '00-slice070.dcm'),
        filesOf(J2K)[0],
        join(dir, 'rle.dcm'),
        join(dir, 'mf.dcm'),
      ];
      const r = rng(20240611);
      let ok = 0;
      let refused = 0;
      const t0 = performance.now();
      for (const [s, source] of sources.entries()) {
        const bytes = new Uint8Array(readFileSync(source));
        for (let m = 0; m < 12; m++) {
          const file = join(dir, `m${s}-${m}.dcm`);
          writeFileSync(file, mutate(bytes, r, m));
          const start = performance.now();
          try {
            const v = await readDicomSeries([file]);
            assert.equal(v.data.length, v.size[0] * v.size[1] * v.size[2] * v.components, file);
            assert.equal(geometryProblem(v), null, file);
            assert.ok(
              v.spacing.every((x) => Number.isFinite(x) && x > 0),
              file,
            );
            ok++;
          } catch (e) {
            if (!(e instanceof VolumeReadError))
              throw new Error(`${file} (mutation ${m % 5}): ${String(e)}`, { cause: e });
            assert.ok(e.message.startsWith(file), e.message);
            refused++;
          }
          // no mutation may make a reader hang (a loop on a corrupt length): a guard, not a speed target
          assert.ok(performance.now() - start < 30000, `${file} took ${(performance.now() - start).toFixed(0)} ms`);
        }
      }
      assert.equal(ok + refused, sources.length * 12);
      assert.ok(refused > 0 && ok > 0, `${ok} read, ${refused} refused`);
      assert.ok(performance.now() - t0 < 180_000); // a hang guard, not a speed target
    } finally {
      cleanup();
    }
  },
);
