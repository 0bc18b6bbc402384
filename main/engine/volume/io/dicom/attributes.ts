/**
 * The naturalised (dcmjs) attributes of one file, without Pixel Data, kept in Volume.meta.dicom
 * so that a derived series can keep the patient and study identity. Only the header bytes are
 * given to dcmjs. Bulky per-frame functional groups of multi-frame files are left out.
 * dcmjs hangs toJSON/toString functions on person-name values (and so on sequences holding them):
 * they are dropped (plainData), so that a volume can be structured-cloned to a worker (the workstation
 * registers in one) and written back by dcmjs from the plain {Alphabetic, ...} form.
 */
import { readFileSync } from 'node:fs';
import { readHeaderBytes } from './header.ts';
import { dcmjs, quietly, type Attributes } from './dcmjs.ts';

/** Explicit VR LE file meta group holding only the transfer syntax (for files without one). */
function metaGroup(tsUid: string): Uint8Array {
  const ts = tsUid.length % 2 ? `${tsUid}\0` : tsUid;
  const el = new Uint8Array(8 + ts.length);
  const v = new DataView(el.buffer);
  v.setUint16(0, 0x0002, true);
  v.setUint16(2, 0x0010, true);
  el[4] = 0x55; // 'U'
  el[5] = 0x49; // 'I'
  v.setUint16(6, ts.length, true);
  for (let n = 0; n < ts.length; n++) el[8 + n] = ts.charCodeAt(n);
  const len = new Uint8Array(12);
  const lv = new DataView(len.buffer);
  lv.setUint16(0, 0x0002, true);
  lv.setUint16(2, 0x0000, true);
  len[4] = 0x55; // 'U'
  len[5] = 0x4c; // 'L'
  lv.setUint16(6, 4, true);
  lv.setUint32(8, el.length, true);
  const out = new Uint8Array(len.length + el.length);
  out.set(len);
  out.set(el, len.length);
  return out;
}

/** A deep copy holding only data: functions dropped; binary values (ArrayBuffer, typed arrays) kept as they are. */
export function plainData(x: unknown): unknown {
  if (x === null || typeof x !== 'object') return typeof x === 'function' ? undefined : x;
  if (x instanceof ArrayBuffer || ArrayBuffer.isView(x)) return x;
  if (Array.isArray(x)) return x.map(plainData);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(x)) if (typeof v !== 'function') out[k] = plainData(v);
  return out;
}

export function readAttributes(file: string): { attributes: Attributes; warning?: string } {
  try {
    const { parsed, prefix } = readHeaderBytes(file);
    let bytes: Uint8Array;
    if (parsed.deflated) {
      const whole = readFileSync(file);
      bytes = new Uint8Array(whole.buffer, whole.byteOffset, whole.byteLength);
    } else {
      const end = parsed.pixelData ? parsed.pixelData.tagOffset : prefix.length;
      const head = prefix.subarray(0, end);
      if (parsed.hasPreamble) bytes = head;
      else {
        // dcmjs needs the preamble and DICM magic (and a meta group): supply them.
        const rawDataSet = head.length >= 2 && head[0] === 0x08 && head[1] === 0x00;
        const meta = rawDataSet ? metaGroup(parsed.syntax.uid) : new Uint8Array(0);
        bytes = new Uint8Array(132 + meta.length + head.length);
        bytes.set([0x44, 0x49, 0x43, 0x4d], 128);
        bytes.set(meta, 132);
        bytes.set(head, 132 + meta.length);
      }
    }
    const ab = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
    const lib = dcmjs();
    const dict = quietly(() => lib.data.DicomMessage.readFile(ab, { ignoreErrors: true, untilTag: '7FE00010' }));
    const attributes = lib.data.DicomMetaDictionary.naturalizeDataset(dict.dict);
    delete attributes.PixelData;
    delete attributes.PerFrameFunctionalGroupsSequence;
    return { attributes: plainData(attributes) as Attributes };
  } catch (e) {
    return {
      attributes: {},
      warning: `DICOM attributes of ${file} could not be kept (${e instanceof Error ? e.message : String(e)}): a derived series will not carry the patient and study identity`,
    };
  }
}
