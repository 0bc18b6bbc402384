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
  const start = lines[0].split(sep).every((t) => Number.isFinite(Number(t))) ? 0 : 1; // optional header row
  return { kind: 'world', points: lines.slice(start).map((l, n) => parseTriple(l, sep, name, n + 1 + start)) };
}

function parseTriple(line: string, sep: RegExp, name: string, lineNo: number): Vec3 {
  const t = line.split(sep).slice(0, 3).map(Number);
  if (t.length !== 3 || !t.every(Number.isFinite))
    throw new InputError(name, `line ${lineNo}: expected three numbers, found "${line}"`);
  return t as Vec3;
}
