/**
 * Point lists: elastix/transformix point files ("point" = world LPS mm, "index" = voxel index)
 * and CSV (x,y,z per line, optional header), as used for landmarks and `transform-points`.
 */
import { InputError } from '../errors.ts';
import type { Vec3 } from './volume.ts';

export interface PointList {
  /** 'world': LPS mm; 'index': continuous voxel indices (i, j, k). */
  kind: 'world' | 'index';
  points: Vec3[];
}

/** Parse an elastix point file or a CSV of x,y,z. `name` is used in error messages. */
export function parsePoints(text: string, name: string): PointList {
  const lines = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  if (lines.length === 0) throw new InputError(name, 'no points');
  const head = lines[0].toLowerCase();
  if (head === 'point' || head === 'index') {
    const count = Number(lines[1]);
    if (!Number.isInteger(count) || count < 0)
      throw new InputError(name, `line 2 should be the number of points, found "${lines[1]}"`);
    const body = lines.slice(2);
    if (body.length !== count) throw new InputError(name, `header says ${count} points, file has ${body.length}`);
    return {
      kind: head === 'point' ? 'world' : 'index',
      points: body.map((l, n) => parseTriple(l, /\s+/, name, n + 3)),
    };
  }
  const sep = lines[0].includes(',') ? /\s*,\s*/ : /\s+/;
  const first = lines[0].split(sep);
  const hasHeader = first.some((t) => t.trim() !== '' && !Number.isFinite(Number(t)));
  // With a header, the x, y, z columns are found by name (e.g. "id,x,y,z"); without one, the first three.
  let cols = [0, 1, 2];
  if (hasHeader) {
    const names = first.map((t) => t.trim().toLowerCase().replace(/^"|"$/g, ''));
    const found = ['x', 'y', 'z'].map((c) =>
      names.findIndex((n) => n === c || n.startsWith(`${c} `) || n.startsWith(`${c}(`) || n.startsWith(`${c}_`)),
    );
    if (found.every((c) => c >= 0)) cols = found;
    else if (names.length < 3)
      throw new InputError(
        name,
        `line 1 "${lines[0]}" is neither three numbers separated by commas or spaces (x, y, z in mm) nor a header naming x, y, z`,
      );
    else if (names.length > 3)
      throw new InputError(name, `header "${lines[0]}" has more than three columns but no x, y, z names`);
  }
  const start = hasHeader ? 1 : 0;
  if (lines.length <= start) throw new InputError(name, 'no points (only a header)');
  // without a header, more than three numbers (an id column? a fourth coordinate?) cannot be read safely
  const filled = first.filter((t) => t.trim() !== '').length;
  if (!hasHeader && filled > 3)
    throw new InputError(
      name,
      `line 1 has ${filled} values and there is no header: give the x, y, z columns names (e.g. "id,x,y,z") or keep three`,
    );
  return {
    kind: 'world',
    points: lines.slice(start).map((l, n) => {
      const t = l.split(sep);
      return parseTriple(cols.map((c) => t[c] ?? '').join(' '), /\s+/, name, n + 1 + start, l);
    }),
  };
}

function parseTriple(line: string, sep: RegExp, name: string, lineNo: number, original = line): Vec3 {
  const fields = line.trim().split(sep);
  const t = fields.slice(0, 3).map((f) => (f.trim() === '' ? NaN : Number(f)));
  if (fields.length < 3 || t.length !== 3 || !t.every(Number.isFinite))
    throw new InputError(name, `line ${lineNo}: expected three numbers, found "${original}"`);
  return t as Vec3;
}
