/**
 * Decoding element values found by the walker (parse.ts): strings, decimal/integer strings and
 * binary numbers, and sequence items. Decoding is lazy: only the values the reader asks for.
 */
import type { DicomDataSet, DicomElement } from './parse.ts';
import { IMPLICIT_VR } from './tags.ts';

const BINARY_SIZE: Record<string, number> = { US: 2, SS: 2, UL: 4, SL: 4, FL: 4, FD: 8, AT: 4, SV: 8, UV: 8 };

function vrOf(el: DicomElement): string {
  // Anonymisers sometimes re-encode known tags as UN: decode them with their real VR.
  return el.vr === 'UN' ? (IMPLICIT_VR.get(el.tag) ?? 'UN') : el.vr;
}

function text(ds: DicomDataSet, el: DicomElement): string {
  const b = Buffer.from(ds.bytes.buffer, ds.bytes.byteOffset + el.offset, el.length);
  return b.toString(ds.utf8 ? 'utf8' : 'latin1');
}

/** The value as one string, without trailing padding (NUL or space) and leading spaces. */
export function getString(ds: DicomDataSet, t: number): string | undefined {
  const el = ds.elements.get(t);
  if (!el) return undefined;
  return text(ds, el)
    .replace(/[\0 ]+$/, '')
    .replace(/^ +/, '');
}

/** The values of a multi-valued string element (split on backslash, each trimmed). */
export function getStrings(ds: DicomDataSet, t: number): string[] {
  const s = getString(ds, t);
  if (s === undefined || s === '') return [];
  return s.split('\\').map((x) => x.replace(/^[\0 ]+|[\0 ]+$/g, ''));
}

/** Numbers of a DS/IS string element or a binary numeric element; unparsable values are NaN. */
export function getNumbers(ds: DicomDataSet, t: number): number[] {
  const el = ds.elements.get(t);
  if (!el) return [];
  const vr = vrOf(el);
  const size = BINARY_SIZE[vr];
  if (size) {
    const n = Math.floor(el.length / size);
    const out: number[] = [];
    const v = ds.view;
    const le = ds.littleEndian;
    for (let i = 0; i < n; i++) {
      const o = el.offset + i * size;
      switch (vr) {
        case 'US':
          out.push(v.getUint16(o, le));
          break;
        case 'SS':
          out.push(v.getInt16(o, le));
          break;
        case 'UL':
        case 'AT':
          out.push(v.getUint32(o, le));
          break;
        case 'SL':
          out.push(v.getInt32(o, le));
          break;
        case 'FL':
          out.push(v.getFloat32(o, le));
          break;
        case 'FD':
          out.push(v.getFloat64(o, le));
          break;
        case 'SV':
          out.push(Number(v.getBigInt64(o, le)));
          break;
        case 'UV':
          out.push(Number(v.getBigUint64(o, le)));
          break;
      }
    }
    return out;
  }
  return getStrings(ds, t).map((s) => (s.trim() === '' ? NaN : Number(s.trim())));
}

/** The first number of an element, or undefined when absent or empty. */
export function getNumber(ds: DicomDataSet, t: number): number | undefined {
  const v = getNumbers(ds, t);
  return v.length > 0 ? v[0] : undefined;
}

/** Items of a parsed sequence (empty when absent). */
export function getItems(ds: DicomDataSet, t: number): DicomDataSet[] {
  return ds.elements.get(t)?.items ?? [];
}

/** First item of a functional group sequence in a per-frame item, else in the shared item. */
export function functionalGroup(
  perFrame: DicomDataSet | undefined,
  shared: DicomDataSet | undefined,
  t: number,
): DicomDataSet | undefined {
  return (perFrame && getItems(perFrame, t)[0]) ?? (shared && getItems(shared, t)[0]);
}
