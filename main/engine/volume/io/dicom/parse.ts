/**
 * A bounded DICOM element walker: finds the file meta group and transfer syntax, walks the
 * data set up to the (top-level) Pixel Data element and records where every element's value
 * lies, without decoding values or reading pixel bytes. Every length is checked against the
 * bytes present before it is used, nesting is limited, and each step advances, so corrupt
 * input ends in a VolumeReadError naming the file, never a hang or a huge allocation.
 *
 * The caller may pass only the start of the file (`complete: false`); when the walk needs
 * bytes beyond it, NeedMoreBytes is thrown and the caller retries with more.
 */
import { inflateRawSync, inflateSync } from 'node:zlib';
import { VolumeReadError } from '../../../errors.ts';
import { IMPLICIT_VR, PARSED_SEQUENCES, T, tagString } from './tags.ts';
import { EXPLICIT_VR_LE, IMPLICIT_VR_LE, transferSyntax, type TransferSyntax } from './transfer-syntax.ts';

/** Thrown when a prefix of the file was given and the walk needs more of it. */
export class NeedMoreBytes extends Error {
  constructor() {
    super('need more bytes');
  }
}

/** The file is not DICOM at all (a folder scan skips these silently). */
export class NotDicomError extends VolumeReadError {}

export interface DicomElement {
  tag: number;
  vr: string;
  /** Offset of the value in `DicomDataSet.bytes`. */
  offset: number;
  /** Length of the value in bytes (for undefined-length sequences: the bytes they span). */
  length: number;
  /** Items of a parsed sequence. */
  items?: DicomDataSet[];
}

export interface DicomDataSet {
  bytes: Uint8Array;
  view: DataView;
  littleEndian: boolean;
  /** SpecificCharacterSet says UTF-8 (ISO_IR 192); otherwise strings are read as Latin-1. */
  utf8: boolean;
  elements: Map<number, DicomElement>;
}

export interface PixelDataLocation {
  /** Offset of the Pixel Data tag itself. */
  tagOffset: number;
  /** Offset of its value. */
  valueOffset: number;
  /** Value length; null when undefined (encapsulated fragments follow). */
  length: number | null;
}

export interface ParsedDicom {
  syntax: TransferSyntax;
  dataset: DicomDataSet;
  pixelData: PixelDataLocation | null;
  /** The file had the 128-byte preamble and DICM magic. */
  hasPreamble: boolean;
  /** Deflated files: offsets refer to the inflated data set, not to the file. */
  deflated: boolean;
}

const UNDEFINED = 0xffffffff;
const MAX_DEPTH = 12;
const LONG_VRS = new Set('OB OD OF OL OV OW SQ SV UC UN UR UT UV'.split(' '));
const KNOWN_VRS = new Set(
  'AE AS AT CS DA DS DT FD FL IS LO LT OB OD OF OL OV OW PN SH SL SQ SS ST SV TM UC UI UL UN UR US UT UV'.split(' '),
);

class Cursor {
  pos = 0;
  /** Top-level tags must ascend (checked for files without the DICM magic, to reject non-DICOM). */
  strictOrder = false;
  readonly view: DataView;
  constructor(
    readonly bytes: Uint8Array,
    readonly littleEndian: boolean,
    /** The bytes are the whole (possibly inflated) data; running out means truncation. */
    readonly complete: boolean,
    readonly file: string,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  need(n: number, what = 'element'): void {
    if (this.pos + n <= this.bytes.length) return;
    if (!this.complete) throw new NeedMoreBytes();
    throw new VolumeReadError(
      this.file,
      `truncated file: ${what} at byte ${this.pos} runs past the end (${this.bytes.length} bytes)`,
    );
  }
  u16(): number {
    const v = this.view.getUint16(this.pos, this.littleEndian);
    this.pos += 2;
    return v;
  }
  u32(): number {
    const v = this.view.getUint32(this.pos, this.littleEndian);
    this.pos += 4;
    return v;
  }
  vr(): string {
    const s = String.fromCharCode(this.bytes[this.pos], this.bytes[this.pos + 1]);
    this.pos += 2;
    return s;
  }
  fail(problem: string): never {
    throw new VolumeReadError(this.file, `corrupt DICOM header: ${problem}`);
  }
}

function isVrAt(bytes: Uint8Array, pos: number): boolean {
  return pos + 2 <= bytes.length && KNOWN_VRS.has(String.fromCharCode(bytes[pos], bytes[pos + 1]));
}

/**
 * Parse the meta group and the data set up to the top-level Pixel Data element.
 * `bytes` is the start of the file (the whole file when `complete`); `fileSize` its full size.
 */
export function parseDicom(
  bytes: Uint8Array,
  opts: { file: string; fileSize: number; complete: boolean },
): ParsedDicom {
  const { file, fileSize, complete } = opts;
  let pos: number;
  let hasPreamble = false;
  let rawDataSet = false;
  if (bytes.length >= 132 && bytes[128] === 0x44 && bytes[129] === 0x49 && bytes[130] === 0x43 && bytes[131] === 0x4d) {
    pos = 132;
    hasPreamble = true;
  } else {
    // No preamble: accept a meta group or a raw data set starting at byte 0 (as GDCM does).
    const group = bytes.length >= 8 ? bytes[0] | (bytes[1] << 8) : -1;
    if (group !== 0x0002 && group !== 0x0008) {
      throw new NotDicomError(
        file,
        fileSize < 132 ? `not a DICOM file (only ${fileSize} bytes)` : 'not a DICOM file (no DICM magic at byte 128)',
      );
    }
    pos = 0;
    rawDataSet = group === 0x0008;
  }
  try {
    return parseFrom(bytes, pos, hasPreamble, rawDataSet, file, fileSize, complete);
  } catch (e) {
    // Without the magic, a file that does not parse is most likely not DICOM at all.
    if (!hasPreamble && e instanceof VolumeReadError && !(e instanceof NotDicomError))
      throw new NotDicomError(file, `not a DICOM file (no DICM magic, and not a readable raw data set: ${e.problem})`);
    throw e;
  }
}

function parseFrom(
  bytes: Uint8Array,
  start: number,
  hasPreamble: boolean,
  rawDataSet: boolean,
  file: string,
  fileSize: number,
  complete: boolean,
): ParsedDicom {
  const meta = new Cursor(bytes, true, complete, file);
  meta.pos = start;
  let tsUid: string | null = null;
  if (!rawDataSet) {
    // File meta group: always Explicit VR Little Endian; read while the group is 0002.
    for (;;) {
      meta.need(8, 'file meta element');
      if (meta.view.getUint16(meta.pos, true) !== 0x0002) break;
      const t = ((meta.u16() << 16) | meta.u16()) >>> 0;
      if (!isVrAt(bytes, meta.pos)) meta.fail(`invalid VR in file meta element ${tagString(t)} at byte ${meta.pos}`);
      const vr = meta.vr();
      let len: number;
      if (LONG_VRS.has(vr)) {
        meta.need(6, 'file meta element');
        meta.pos += 2;
        len = meta.u32();
      } else len = meta.u16();
      if (len === UNDEFINED) meta.fail(`undefined length in file meta element ${tagString(t)}`);
      meta.need(len, `file meta element ${tagString(t)}`);
      if (t === T.TransferSyntaxUID)
        tsUid = latin1(bytes, meta.pos, len)
          .replace(/[\0 ]+$/, '')
          .trim();
      meta.pos += len;
    }
  }
  const dataStart = meta.pos;
  if (!tsUid) {
    // No transfer syntax given: guess from the first element (explicit VRs are two letters).
    meta.need(8, 'first data element');
    tsUid = isVrAt(bytes, dataStart + 4) ? EXPLICIT_VR_LE : IMPLICIT_VR_LE;
  }
  const syntax = transferSyntax(tsUid);

  let dataBytes = bytes;
  let cursorStart = dataStart;
  if (syntax.deflated) {
    if (!complete) throw new NeedMoreBytes();
    dataBytes = inflate(bytes.subarray(dataStart), file);
    cursorStart = 0;
  }
  const c = new Cursor(dataBytes, syntax.littleEndian, complete || syntax.deflated, file);
  c.pos = cursorStart;
  c.strictOrder = !hasPreamble;
  const explicit = syntax.explicitVr;
  const limit = syntax.deflated ? dataBytes.length : fileSize;
  const result: { pixel: PixelDataLocation | null } = { pixel: null };
  const dataset = walkDataSet(c, Infinity, 0, explicit, result, limit);
  const cs = dataset.elements.get(T.SpecificCharacterSet);
  const utf8 = cs ? /ISO_IR 192/i.test(latin1(dataBytes, cs.offset, cs.length)) : false;
  setCharset(dataset, utf8);
  return { syntax, dataset, pixelData: result.pixel, hasPreamble, deflated: syntax.deflated };
}

function setCharset(ds: DicomDataSet, utf8: boolean): void {
  ds.utf8 = utf8;
  for (const el of ds.elements.values()) for (const item of el.items ?? []) setCharset(item, utf8);
}

function inflate(data: Uint8Array, file: string): Uint8Array {
  const maxOutputLength = 2 ** 31 - 1;
  try {
    return inflateRawSync(data, { maxOutputLength });
  } catch {
    try {
      return inflateSync(data, { maxOutputLength });
    } catch (e) {
      throw new VolumeReadError(file, `corrupt deflated data set (${(e as Error).message})`);
    }
  }
}

export function latin1(bytes: Uint8Array, offset: number, length: number): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset + offset, length).toString('latin1');
}

/**
 * Walk elements until `end` (defined-length item), an item delimiter (undefined-length item,
 * end = Infinity, depth > 0), the top-level Pixel Data element, or the end of the data.
 */
function walkDataSet(
  c: Cursor,
  end: number,
  depth: number,
  explicit: boolean,
  result: { pixel: PixelDataLocation | null },
  limit: number,
): DicomDataSet {
  if (depth > MAX_DEPTH) c.fail(`sequences nested more than ${MAX_DEPTH} deep`);
  const elements = new Map<number, DicomElement>();
  const ds: DicomDataSet = { bytes: c.bytes, view: c.view, littleEndian: c.littleEndian, utf8: false, elements };
  const top = depth === 0;
  let lastTag = -1;
  while (c.pos < end) {
    if (top && c.pos >= limit) break; // end of the file
    if (top && c.complete && c.pos + 8 > c.bytes.length) {
      if (c.pos === c.bytes.length) break;
      // A few stray bytes at the end of a file (padding) are tolerated.
      break;
    }
    const tagOffset = c.pos;
    c.need(8);
    const t = ((c.u16() << 16) | c.u16()) >>> 0;
    if (t === T.ItemDelimitation) {
      c.pos += 4;
      if (end !== Infinity || top) c.fail(`unexpected item delimiter at byte ${tagOffset}`);
      return ds;
    }
    if (t === T.SequenceDelimitation || t === T.Item) c.fail(`unexpected ${tagString(t)} at byte ${tagOffset}`);
    if (top && c.strictOrder) {
      if (t <= lastTag) c.fail(`elements out of order at byte ${tagOffset}`);
      lastTag = t;
    }
    let vr: string;
    let len: number;
    if (explicit) {
      if (!isVrAt(c.bytes, c.pos)) c.fail(`invalid VR for ${tagString(t)} at byte ${c.pos}`);
      vr = c.vr();
      if (LONG_VRS.has(vr)) {
        c.need(6);
        c.pos += 2;
        len = c.u32();
      } else len = c.u16();
    } else {
      len = c.u32();
      vr = IMPLICIT_VR.get(t) ?? (len === UNDEFINED ? 'SQ' : 'UN');
    }
    const valueOffset = c.pos;
    if (top && t === T.PixelData) {
      if (len !== UNDEFINED && valueOffset + len > limit)
        throw new VolumeReadError(
          c.file,
          `truncated file: Pixel Data says ${len} bytes but only ${Math.max(0, limit - valueOffset)} follow`,
        );
      result.pixel = { tagOffset, valueOffset, length: len === UNDEFINED ? null : len };
      return ds;
    }
    let items: DicomDataSet[] | undefined;
    if (len === UNDEFINED) {
      if (vr === 'SQ' || vr === 'UN') {
        // An undefined-length UN holds a sequence encoded in Implicit VR Little Endian.
        items = walkSequence(c, Infinity, depth + 1, vr === 'UN' ? false : explicit, result, limit);
      } else if (vr === 'OB' || vr === 'OW') {
        skipFragments(c);
      } else c.fail(`undefined length for ${tagString(t)} (VR ${vr}) at byte ${tagOffset}`);
      if (!elements.has(t)) elements.set(t, { tag: t, vr, offset: valueOffset, length: c.pos - valueOffset, items });
      continue;
    }
    if (valueOffset + len > end) c.fail(`element ${tagString(t)} at byte ${tagOffset} runs past the end of its item`);
    if (valueOffset + len > limit)
      throw new VolumeReadError(
        c.file,
        `truncated file: element ${tagString(t)} at byte ${tagOffset} says ${len} bytes, past the end of the file`,
      );
    if (vr === 'SQ' && PARSED_SEQUENCES.has(t)) {
      c.need(len, `sequence ${tagString(t)}`);
      items = walkSequence(c, valueOffset + len, depth + 1, explicit, result, limit);
    } else if (depth > 0 || t < T.PixelData) {
      // Values we may decode must be present; top-level skipping needs only the next header.
      c.need(len, `element ${tagString(t)}`);
    }
    c.pos = valueOffset + len;
    if (!elements.has(t)) elements.set(t, { tag: t, vr, offset: valueOffset, length: len, items });
  }
  if (end !== Infinity && c.pos !== end)
    c.fail(`item contents do not end at the item's length (byte ${c.pos}, expected ${end})`);
  if (end === Infinity && !top) {
    if (!c.complete) throw new NeedMoreBytes();
    c.fail('undefined-length item without an item delimiter');
  }
  return ds;
}

/** Items of a sequence, up to `end` (defined length) or the sequence delimiter. */
function walkSequence(
  c: Cursor,
  end: number,
  depth: number,
  explicit: boolean,
  result: { pixel: PixelDataLocation | null },
  limit: number,
): DicomDataSet[] {
  const items: DicomDataSet[] = [];
  while (c.pos < end) {
    const at = c.pos;
    c.need(8, 'sequence item');
    const t = ((c.u16() << 16) | c.u16()) >>> 0;
    const len = c.u32();
    if (t === T.SequenceDelimitation) {
      if (end !== Infinity) c.fail(`sequence delimiter inside a defined-length sequence at byte ${at}`);
      return items;
    }
    if (t !== T.Item) c.fail(`expected a sequence item at byte ${at}, found ${tagString(t)}`);
    if (len === UNDEFINED) {
      items.push(walkDataSet(c, Infinity, depth, explicit, result, limit));
    } else {
      const itemEnd = c.pos + len;
      if (itemEnd > end) c.fail(`sequence item at byte ${at} runs past the end of its sequence`);
      c.need(len, 'sequence item');
      items.push(walkDataSet(c, itemEnd, depth, explicit, result, limit));
      c.pos = itemEnd;
    }
  }
  if (end === Infinity) {
    if (!c.complete) throw new NeedMoreBytes();
    c.fail('sequence without a sequence delimiter');
  }
  if (c.pos !== end) c.fail(`sequence items do not end at the sequence's length`);
  return items;
}

/** Skip an undefined-length OB/OW value made of fragments (e.g. an encapsulated icon). */
function skipFragments(c: Cursor): void {
  for (;;) {
    const at = c.pos;
    c.need(8, 'fragment');
    const t = ((c.u16() << 16) | c.u16()) >>> 0;
    const len = c.u32();
    if (t === T.SequenceDelimitation) return;
    if (t !== T.Item || len === UNDEFINED) c.fail(`bad fragment at byte ${at}`);
    c.need(len, 'fragment');
    c.pos += len;
  }
}
