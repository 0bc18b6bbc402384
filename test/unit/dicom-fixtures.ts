/**
 * Helpers for the DICOM tests (not a test file itself): where the real series are, and reading /
 * writing whole DICOM files with dcmjs (an implementation independent of the reader under test)
 * to derive edge-case files from real slices.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { dcmjs, quietly, type Attributes } from '../../main/engine/volume/io/dicom/dcmjs.ts';
import { dataPath } from '../helpers.ts';

export const CTHEAD = dataPath('Slicer', 'Testing', 'Data', 'Input', 'CTHeadAxialDicom');
export const CHEST = dataPath('ITKElastix', 'examples', 'data', '00');
export const J2K = dataPath('TotalSegmentator', 'tests', 'reference_files', 'example_ct_dicom');
export const J2K_SEG = dataPath('TotalSegmentator', 'tests', 'reference_files', 'example_seg_dicom.nii.gz');
export const GE = dataPath('dcm_qa_ct', 'In', 'GE');
export const SMALL = dataPath('pydicom-deb', 'CT_small.dcm');

/** Files of a folder, sorted by the number in their names (CTHead1 .. CTHead93). */
export function filesOf(dir: string): string[] {
  const num = (s: string) => Number(s.match(/(\d+)\D*$/)?.[1] ?? 0);
  return readdirSync(dir)
    .sort((a, b) => num(a) - num(b) || (a < b ? -1 : 1))
    .map((f) => join(dir, f));
}

export interface DicomFile {
  meta: Attributes;
  ds: Attributes;
  /** The raw dataset by tag (e.g. "00185100"): shows that an empty Type 2 element is present. */
  dict?: Record<string, unknown>;
}

/** A whole DICOM file, naturalised by dcmjs (PixelData: one ArrayBuffer per frame or fragment). */
export function loadDicom(file: string): DicomFile {
  const b = readFileSync(file);
  const ab = b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
  const lib = dcmjs();
  return quietly(() => {
    const d = lib.data.DicomMessage.readFile(ab);
    return {
      meta: lib.data.DicomMetaDictionary.naturalizeDataset(d.meta),
      ds: lib.data.DicomMetaDictionary.naturalizeDataset(d.dict),
      dict: d.dict as Record<string, unknown>,
    };
  });
}

/** Write naturalised attributes as a DICOM file (transfer syntax from meta.TransferSyntaxUID). */
export function saveDicom(file: string, f: DicomFile): void {
  const lib = dcmjs();
  const bytes = quietly(() => {
    const dict = new lib.data.DicomDict(lib.data.DicomMetaDictionary.denaturalizeDataset(f.meta));
    dict.dict = lib.data.DicomMetaDictionary.denaturalizeDataset(f.ds);
    return dict.write();
  });
  writeFileSync(file, new Uint8Array(bytes));
}

/** The native pixel data of a single-frame file as int16 / uint16 samples. */
export function pixelsOf(f: DicomFile): Int16Array | Uint16Array {
  const pd = f.ds.PixelData as ArrayBuffer[];
  const buf = pd[0].slice(0);
  return f.ds.PixelRepresentation === 1 ? new Int16Array(buf) : new Uint16Array(buf);
}

/** PackBits (the DICOM RLE segment coding). */
function packBits(src: Uint8Array): number[] {
  const out: number[] = [];
  let i = 0;
  while (i < src.length) {
    let run = 1;
    while (i + run < src.length && run < 128 && src[i + run] === src[i]) run++;
    if (run >= 2) {
      out.push(257 - run, src[i]);
      i += run;
      continue;
    }
    let j = i + 1;
    while (j < src.length && j - i < 128 && !(j + 1 < src.length && src[j] === src[j + 1])) j++;
    out.push(j - i - 1, ...src.subarray(i, j));
    i = j;
  }
  if (out.length % 2) out.push(0x80); // pad to even length with a no-op
  return out;
}

/** One RLE frame of 16-bit samples: segment 1 = high bytes, segment 2 = low bytes. */
export function rleEncode16(px: Int16Array | Uint16Array): ArrayBuffer {
  const u = new Uint16Array(px.buffer, px.byteOffset, px.length);
  const hiB = new Uint8Array(u.length);
  const loB = new Uint8Array(u.length);
  u.forEach((v, n) => {
    hiB[n] = v >> 8;
    loB[n] = v & 0xff;
  });
  const s0 = packBits(hiB);
  const s1 = packBits(loB);
  const out = new Uint8Array(64 + s0.length + s1.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, 2, true);
  dv.setUint32(4, 64, true);
  dv.setUint32(8, 64 + s0.length, true);
  out.set(s0, 64);
  out.set(s1, 64 + s0.length);
  return out.buffer;
}
