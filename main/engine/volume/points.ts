/**
 * Point lists, read into world LPS mm (or voxel indices): elastix/transformix point files ("point" =
 * world LPS mm, "index" = voxel index), CSV and 3D Slicer's markups (.fcsv, .mrk.json), as used for
 * landmarks, `sam match` and `transform-points`.
 *
 * The coordinate convention is never guessed where the file states it, and a file that states one we
 * do not read is refused, so that a RAS file is not silently taken for LPS (its points would land
 * mirrored through the body axis, hundreds of mm off, with nothing said):
 * - CSV: columns found by their header's names. x, y, z (or x_lps, lps_x, "x (mm)"...) and l, p, s
 *   are LPS; r, a, s (or x_ras, ras_x...) are RAS, converted (x and y negated); i, j, k are voxel
 *   indices (0-based, as elastix's "index" files). Without a header: three numbers, LPS mm. Commas,
 *   semicolons (then a decimal comma is read as a point), tabs or spaces separate the values.
 * - .fcsv: its "# CoordinateSystem" line (LPS, RAS, or Slicer's codes 1 / 0; RAS when absent, as the
 *   Slicer versions that did not write it) and its "# columns" line.
 * - .mrk.json: each markup's coordinateSystem (LPS or RAS) and its control points' positions.
 * A label column (label, name; in .fcsv its label) is kept.
 */
import { InputError } from '../errors.ts';
import type { Vec3 } from './volume.ts';

export interface PointList {
  /** 'world': LPS mm; 'index': continuous voxel indices (i, j, k), 0-based. */
  kind: 'world' | 'index';
  points: Vec3[];
  /** The points' labels, when the file names them. */
  labels?: string[];
  /** The file's points were RAS and were converted to LPS (world lists only). */
  fromRas?: boolean;
}

const rasToLps = (p: Vec3): Vec3 => [-p[0], -p[1], p[2]];

/** Parse a point file (format told by its content; `name` is its path, for messages and the extension). */
export function parsePoints(text: string, name: string): PointList {
  // (an image or an archive given as the points: say so, not quote its bytes)
  const start = text.slice(0, 4096);
  if (start.includes('\0') || (start.match(/\uFFFD/g)?.length ?? 0) > 8)
    throw new InputError(name, 'is a binary file (an image?), not a text file of points');
  if (/\.json$/i.test(name) || /^\s*\{/.test(text)) return parseMarkupsJson(text, name);
  const all = text.split(/\r?\n/).map((l) => l.trim());
  const comments = all.filter((l) => l.startsWith('#'));
  const lines = all.filter((l) => l && !l.startsWith('#'));
  // a Slicer .fcsv: its header is in the comments
  const columns = comments.map((c) => /^#\s*columns\s*=\s*(.*)$/i.exec(c)).find((m) => m);
  if (columns) return parseFcsv(lines, columns[1], comments, name);
  if (lines.length === 0) throw new InputError(name, 'no points');
  const head = lines[0].toLowerCase();
  if (head === 'point' || head === 'index') {
    const count = Number(lines[1]);
    if (!Number.isInteger(count) || count < 0)
      throw new InputError(name, `line 2 should be the number of points, found "${lines[1]}"`);
    if (count === 0) throw new InputError(name, 'no points (the elastix header says 0)');
    const body = lines.slice(2);
    if (body.length !== count) throw new InputError(name, `header says ${count} points, file has ${body.length}`);
    return {
      kind: head === 'point' ? 'world' : 'index',
      points: body.map((l, n) => parseTriple(l.split(/\s+/), name, n + 3, l)),
    };
  }
  const sep = separatorOf(lines[0]);
  const first = splitLine(lines[0], sep);
  const hasHeader = first.some((t) => t !== '' && !Number.isFinite(numberOf(t, sep)));
  if (!hasHeader) {
    const filled = first.filter((t) => t !== '').length;
    // more than three numbers (an id column? a fourth coordinate?) cannot be read safely
    if (filled > 3)
      throw new InputError(
        name,
        `line 1 has ${filled} values and there is no header: give the x, y, z columns names (e.g. "id,x,y,z") or keep three`,
      );
    return {
      kind: 'world',
      points: lines.map((l, n) => parseTriple(splitLine(l, sep), name, n + 1, l, sep)),
    };
  }
  const names = first.map((t) => t.toLowerCase().replace(/^"|"$/g, '').trim());
  const header = headerColumns(names);
  if (!header) {
    if (names.length < 3)
      throw new InputError(
        name,
        `line 1 "${lines[0]}" is neither three numbers separated by commas, semicolons, tabs or spaces ` +
          '(x, y, z in LPS mm) nor a header naming the columns (x,y,z for LPS mm; r,a,s for RAS; i,j,k for voxel indices)',
      );
    throw new InputError(
      name,
      `header "${lines[0]}" names no coordinate columns: name them x,y,z (LPS mm), r,a,s (RAS mm) or i,j,k (voxel indices)`,
    );
  }
  if (lines.length <= 1) throw new InputError(name, 'no points (only a header)');
  const rows = lines.slice(1).map((l) => splitLine(l, sep));
  const points = rows.map((t, n) =>
    parseTriple(
      header.cols.map((c) => t[c] ?? ''),
      name,
      n + 2,
      lines[n + 1],
      sep,
    ),
  );
  const label = names.findIndex((n) => n === 'label' || n === 'name');
  return {
    kind: header.system === 'index' ? 'index' : 'world',
    points: header.system === 'RAS' ? points.map(rasToLps) : points,
    ...(label >= 0 ? { labels: rows.map((t) => (t[label] ?? '').replace(/^"|"$/g, '')) } : {}),
    ...(header.system === 'RAS' ? { fromRas: true } : {}),
  };
}

type System = 'LPS' | 'RAS' | 'index';

/** The coordinate columns a header names, and what they are in. */
function headerColumns(names: string[]): { cols: number[]; system: System } | null {
  const find = (axis: string, system: string | null) =>
    names.findIndex((n) => {
      const bare = n.replace(/\s*\(.*\)$/, '').replace(/\s*\[.*\]$/, '');
      if (system === null) return bare === axis || bare === `${axis}_mm` || bare === `${axis} mm`;
      return bare === `${axis}_${system}` || bare === `${system}_${axis}` || bare === `${system}${axis}`;
    });
  const try3 = (axes: string[], system: string | null) => {
    const cols = axes.map((a) => find(a, system));
    return cols.every((c) => c >= 0) ? cols : null;
  };
  const candidates: [string[], string | null, System][] = [
    [['x', 'y', 'z'], 'ras', 'RAS'],
    [['x', 'y', 'z'], 'lps', 'LPS'],
    [['r', 'a', 's'], null, 'RAS'],
    [['l', 'p', 's'], null, 'LPS'],
    [['i', 'j', 'k'], null, 'index'],
    [['x', 'y', 'z'], null, 'LPS'],
  ];
  for (const [axes, system, kind] of candidates) {
    const cols = try3(axes, system);
    if (cols) return { cols, system: kind };
  }
  // a header that says RAS (or LPS) but names its columns otherwise is not guessed at
  return null;
}

/** Slicer's .fcsv: "# columns = id,x,y,z,...,label,..." and "# CoordinateSystem = LPS|RAS|1|0". */
function parseFcsv(lines: string[], columns: string, comments: string[], name: string): PointList {
  const names = columns.split(',').map((c) => c.trim().toLowerCase());
  const cols = ['x', 'y', 'z'].map((a) => names.indexOf(a));
  if (cols.some((c) => c < 0)) throw new InputError(name, `its "# columns" line names no x, y, z: "${columns}"`);
  const sysLine = comments.map((c) => /^#\s*coordinatesystem\s*=\s*(\S+)/i.exec(c)).find((m) => m);
  const sys = sysLine ? sysLine[1].toUpperCase() : 'RAS';
  const ras = sys === 'RAS' || sys === '0';
  if (!ras && !(sys === 'LPS' || sys === '1'))
    throw new InputError(name, `coordinate system "${sysLine?.[1]}" is neither LPS nor RAS`);
  if (lines.length === 0) throw new InputError(name, 'no points');
  const label = names.indexOf('label');
  const rows = lines.map((l) => l.split(','));
  const points = rows.map((t, n) =>
    parseTriple(
      cols.map((c) => t[c] ?? ''),
      name,
      n + 1,
      lines[n],
    ),
  );
  return {
    kind: 'world',
    points: ras ? points.map(rasToLps) : points,
    ...(label >= 0 ? { labels: rows.map((t) => t[label] ?? '') } : {}),
    ...(ras ? { fromRas: true } : {}),
  };
}

/** Slicer's markups JSON (.mrk.json): every markup's control points, each in its coordinateSystem. */
function parseMarkupsJson(text: string, name: string): PointList {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new InputError(name, `is not valid JSON (${e instanceof Error ? e.message : String(e)})`);
  }
  const markups = (doc as { markups?: unknown }).markups;
  if (!Array.isArray(markups)) throw new InputError(name, 'is JSON but not a Slicer markups file (no "markups" list)');
  const points: Vec3[] = [];
  const labels: string[] = [];
  let fromRas = false;
  for (const m of markups as { coordinateSystem?: string; controlPoints?: unknown[] }[]) {
    const sys = (m.coordinateSystem ?? 'LPS').toUpperCase();
    if (sys !== 'LPS' && sys !== 'RAS')
      throw new InputError(name, `coordinate system "${m.coordinateSystem}" is neither LPS nor RAS`);
    for (const cp of (m.controlPoints ?? []) as { position?: unknown; label?: string }[]) {
      const p = cp.position;
      if (!Array.isArray(p) || p.length !== 3 || !p.every((v) => typeof v === 'number' && Number.isFinite(v)))
        throw new InputError(name, `control point ${points.length + 1} has no position of three numbers`);
      points.push(sys === 'RAS' ? rasToLps(p as Vec3) : (p as Vec3));
      labels.push(cp.label ?? '');
      if (sys === 'RAS') fromRas = true;
    }
  }
  if (points.length === 0) throw new InputError(name, 'no control points');
  return { kind: 'world', points, labels, ...(fromRas ? { fromRas } : {}) };
}

type Separator = ',' | ';' | '\t' | ' ';

function separatorOf(line: string): Separator {
  if (line.includes(';')) return ';';
  if (line.includes(',')) return ',';
  if (line.includes('\t')) return '\t';
  return ' ';
}

/** A line's fields; a field in double quotes (RFC 4180: a doubled quote inside) may hold the separator. */
function splitLine(line: string, sep: Separator): string[] {
  if (sep === ' ') return line.trim().split(/\s+/);
  const out: string[] = [];
  let field = '';
  let quoted = false;
  for (let n = 0; n < line.length; n++) {
    const c = line[n];
    if (quoted) {
      if (c === '"' && line[n + 1] === '"') {
        field += '"';
        n++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"' && field.trim() === '') {
      field = '';
      quoted = true;
    } else if (c === sep) {
      out.push(field.trim());
      field = '';
    } else field += c;
  }
  out.push(field.trim());
  return out;
}

/** A number; after semicolons a decimal comma ("12,5") is a decimal point. */
function numberOf(t: string, sep?: Separator): number {
  const s = t.trim();
  if (s === '') return NaN;
  return Number(sep === ';' && /^[-+]?\d+,\d+$/.test(s) ? s.replace(',', '.') : s);
}

function parseTriple(fields: string[], name: string, lineNo: number, original: string, sep?: Separator): Vec3 {
  const t = fields.slice(0, 3).map((f) => numberOf(f, sep));
  if (fields.length < 3 || t.length !== 3 || !t.every(Number.isFinite))
    throw new InputError(name, `line ${lineNo}: expected three numbers, found "${original}"`);
  return t as Vec3;
}
