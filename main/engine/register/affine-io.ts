/**
 * Reading and writing affine transforms: a plain text format and ITK Transform files (.tfm).
 *
 * Direction: every affine here maps points of the FIXED image to points of the MOVING image, world
 * LPS mm: y = A x + t (3x4 row-major [A | t], register/affine-fit.ts). ITK transforms use the same
 * direction (the resampling convention: a registration's transform takes fixed-space points to
 * moving-space points, so that the moving image resampled through it lines up with the fixed) and
 * the same LPS physical space, so [A | t] goes to ITK as it is, with no inversion. (3D Slicer shows
 * a loaded .tfm "from parent", i.e. the inverse, in RAS: that is Slicer's display, not the file.)
 *
 * Plain text (.txt), one comment line or more starting with '#', then the matrix as 3 rows of
 * 4 numbers (A row, then the translation component), whitespace or commas between them; a 4th row
 * "0 0 0 1" may follow. Numbers are written with full double precision (round trip exact):
 *   # SAM workstation affine: fixed world LPS mm -> moving world LPS mm, y = A x + t
 *   # rows: A_r0 A_r1 A_r2 t_r
 *   1.02 0.01 0 -3.5
 *   ...
 *
 * ITK (.tfm), "#Insight Transform File V1.0": Transform: AffineTransform_double_3_3, Parameters: the
 * 9 entries of A row by row then the 3 of the translation, FixedParameters: the centre c. ITK maps
 * T(x) = A (x - c) + c + translation, so with c = (0, 0, 0) (what we write) translation = t. Reading
 * accepts any centre (t = translation + c - A c), AffineTransform / MatrixOffsetTransformBase in
 * double or float, alone or as the only member of a CompositeTransform.
 */
import { readFileSync } from 'node:fs';
import { InputError } from '../errors.ts';
import { writeFileAtomic } from '../util/atomic-write.ts';
import type { Affine3x4 } from '../volume/geometry.ts';

const num = (x: number) => String(x === 0 ? 0 : x); // shortest exact representation; no "-0"

/** The plain text form; `comments` become extra '#' lines (e.g. how the affine was found). */
export function formatAffineText(m: Affine3x4, comments: string[] = []): string {
  const lines = [
    '# SAM workstation affine: fixed world LPS mm -> moving world LPS mm, y = A x + t',
    '# rows: A_r0 A_r1 A_r2 t_r',
    ...comments.map((c) => `# ${c.replace(/\r?\n/g, ' ')}`),
  ];
  for (let r = 0; r < 3; r++)
    lines.push(
      m
        .slice(r * 4, r * 4 + 4)
        .map(num)
        .join(' '),
    );
  return `${lines.join('\n')}\n`;
}

/** Parse the plain text form; `source` names the file in errors. */
export function parseAffineText(text: string, source = 'affine'): Affine3x4 {
  const rows: number[][] = [];
  text.split(/\r?\n/).forEach((line, n) => {
    const s = line.trim();
    if (!s || s.startsWith('#')) return;
    const v = s.split(/[\s,]+/).map(Number);
    if (v.length !== 4 || !v.every(Number.isFinite))
      throw new InputError(source, `line ${n + 1}: expected 4 numbers, got '${s.slice(0, 80)}'`);
    rows.push(v);
  });
  if (rows.length === 4) {
    if (rows[3].some((x, i) => x !== (i === 3 ? 1 : 0)))
      throw new InputError(source, `the 4th row of a 4x4 affine must be 0 0 0 1, got ${rows[3].join(' ')}`);
    rows.pop();
  }
  if (rows.length !== 3) throw new InputError(source, `expected 3 rows of 4 numbers, found ${rows.length}`);
  return rows.flat() as Affine3x4;
}

/** The ITK .tfm text (centre 0 0 0). */
export function formatItkTransform(m: Affine3x4): string {
  const A = [0, 1, 2, 4, 5, 6, 8, 9, 10].map((k) => m[k]);
  const t = [m[3], m[7], m[11]];
  return [
    '#Insight Transform File V1.0',
    '#Transform 0',
    'Transform: AffineTransform_double_3_3',
    `Parameters: ${[...A, ...t].map(num).join(' ')}`,
    'FixedParameters: 0 0 0',
    '',
  ].join('\n');
}

const AFFINE_TYPE = /^(AffineTransform|MatrixOffsetTransformBase)_(double|float)_3_3$/;

/** Parse an ITK .tfm holding one 3D affine; `source` names the file in errors. */
export function parseItkTransform(text: string, source = 'transform'): Affine3x4 {
  const blocks: { type: string; params?: number[]; fixed?: number[] }[] = [];
  const nums = (s: string, what: string, line: number) => {
    const v = s.trim() ? s.trim().split(/\s+/).map(Number) : [];
    if (!v.every(Number.isFinite)) throw new InputError(source, `line ${line}: ${what} are not all numbers`);
    return v;
  };
  text.split(/\r?\n/).forEach((raw, n) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    const colon = line.indexOf(':');
    if (colon < 0) throw new InputError(source, `line ${n + 1}: expected 'Key: value', got '${line.slice(0, 80)}'`);
    const key = line.slice(0, colon).trim();
    const value = line.slice(colon + 1);
    if (key === 'Transform') blocks.push({ type: value.trim() });
    else if (key === 'Parameters' || key === 'FixedParameters') {
      const b = blocks[blocks.length - 1];
      if (!b) throw new InputError(source, `line ${n + 1}: ${key} before any 'Transform:' line`);
      if (key === 'Parameters') b.params = nums(value, 'Parameters', n + 1);
      else b.fixed = nums(value, 'FixedParameters', n + 1);
    }
  });
  if (blocks.length === 0) throw new InputError(source, "not an ITK transform file (no 'Transform:' line)");
  const members = blocks.filter((b) => !b.type.startsWith('CompositeTransform_'));
  if (members.length !== 1)
    throw new InputError(
      source,
      `expected one affine transform, found ${members.length} (${members.map((b) => b.type).join(', ')})`,
    );
  const b = members[0];
  if (!AFFINE_TYPE.test(b.type))
    throw new InputError(source, `unsupported transform type '${b.type}' (expected AffineTransform_double_3_3)`);
  if (!b.params || b.params.length !== 12)
    throw new InputError(source, `${b.type} needs 12 Parameters, found ${b.params?.length ?? 0}`);
  const c = b.fixed ?? [0, 0, 0];
  if (c.length !== 3) throw new InputError(source, `${b.type} needs 3 FixedParameters (the centre), found ${c.length}`);
  const p = b.params;
  const m: number[] = [];
  for (let r = 0; r < 3; r++) {
    const row = p.slice(r * 3, r * 3 + 3);
    m.push(...row, p[9 + r] + c[r] - (row[0] * c[0] + row[1] * c[1] + row[2] * c[2]));
  }
  return m as Affine3x4;
}

function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new InputError(path, `cannot read (${(e as Error).message})`);
  }
}

const isTfm = (path: string) => /\.tfm$/i.test(path);

/** Write an affine: ITK format for '.tfm', the plain text form otherwise (atomic). */
export function writeAffine(path: string, m: Affine3x4, options: { comments?: string[]; protect?: string[] } = {}) {
  const text = isTfm(path) ? formatItkTransform(m) : formatAffineText(m, options.comments);
  writeFileAtomic(path, new TextEncoder().encode(text), { protect: options.protect });
}

/** Read an affine written by writeAffine, or a .tfm with one affine written by ITK, SimpleITK, Slicer. */
export function readAffine(path: string): Affine3x4 {
  const text = readText(path);
  return isTfm(path) || /^#Insight Transform File/.test(text)
    ? parseItkTransform(text, path)
    : parseAffineText(text, path);
}
