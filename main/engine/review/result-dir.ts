/**
 * Reading back a `sam register` result folder (register/register-output.ts): warped.nii.gz,
 * displacement.nii.gz (or, without it, the field of affine.tfm / affine.txt on the fixed grid),
 * the affine, pairs.csv (parsed back into SamAffinePair records) and qa.json. Missing optional
 * files are null; a folder with neither a field nor an affine is refused.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { InputError } from '../errors.ts';
import { readAffine } from '../register/affine-io.ts';
import type { Affine3x4 } from '../register/affine-fit.ts';
import { checkField, fieldFromAffine } from '../register/field/field.ts';
import type { SamAffinePair } from '../register/sam-affine.ts';
import type { CoarsePair } from '../register/sam-coarse.ts';
import type { ConfidenceSummary } from './confidence.ts';
import type { QaFlag } from './qa-flags.ts';
import { CONFIDENCE_FILES } from './report.ts';
import { sameGrid, type Geometry } from '../volume/geometry.ts';
import { readVolume } from '../volume/io/index.ts';
import type { Vec3, Volume } from '../volume/volume.ts';

export interface RegistrationResult {
  dir: string;
  warped: Volume | null;
  field: Volume;
  /** Where the field came from. */
  fieldSource: 'displacement.nii.gz' | 'affine';
  affine: Affine3x4 | null;
  pairs: SamAffinePair[] | null;
  qa: Record<string, unknown> | null;
  /** The files read. */
  files: string[];
}

/**
 * The rows of a pairs CSV (pairs.csv, coarse-pairs.csv): each row's fixed and moving point (checked to
 * be numbers) and a reader of its other columns by name (NaN where empty; `optional` columns may be
 * missing, then NaN).
 */
function pairRows<T>(
  text: string,
  source: string,
  file: string,
  columns: string[],
  optional: string[],
  make: (fixed: Vec3, moving: Vec3, value: (name: string) => number) => T,
): T[] {
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '');
  if (lines.length === 0) throw new InputError(source, 'empty pairs file');
  const header = lines[0].split(',').map((s) => s.trim());
  const col = (name: string) => {
    const i = header.indexOf(name);
    if (i < 0) throw new InputError(source, `no '${name}' column (is this a sam register ${file}?)`);
    return i;
  };
  const fx = ['fixed_x', 'fixed_y', 'fixed_z'].map(col);
  const mx = ['moving_x', 'moving_y', 'moving_z'].map(col);
  const at = new Map<string, number>([
    ...columns.map((c) => [c, col(c)] as [string, number]),
    ...optional.map((c) => [c, header.indexOf(c)] as [string, number]),
  ]);
  return lines.slice(1).map((l, n) => {
    const f = l.split(',');
    const v = (i: number) => (i < 0 || f[i] === undefined || f[i].trim() === '' ? NaN : Number(f[i]));
    const fixed = fx.map(v) as Vec3;
    const moving = mx.map(v) as Vec3;
    if (!fixed.every(Number.isFinite) || !moving.every(Number.isFinite))
      throw new InputError(source, `line ${n + 2}: a point coordinate is not a number`);
    return make(fixed, moving, (name) => v(at.get(name)!));
  });
}

/** Parse pairs.csv (register/sam-affine.ts pairsCsv) back into pair records. */
export function parsePairsCsv(text: string, source = 'pairs.csv'): SamAffinePair[] {
  return pairRows(
    text,
    source,
    'pairs.csv',
    ['score', 'residual_mm', 'inlier', 'kept'],
    ['cycle_error_mm'],
    (fixed, moving, v) => {
      const kept = v('kept') === 1;
      const cyc = v('cycle_error_mm');
      return {
        fixed,
        moving,
        score: v('score'),
        // pairs.csv does not record the matcher's verdict; a kept pair was accepted
        accepted: kept,
        kept,
        residualMm: v('residual_mm'),
        inlier: v('inlier') === 1,
        ...(Number.isFinite(cyc) ? { cycleErrorMm: cyc } : {}),
      };
    },
  );
}

/** Parse coarse-pairs.csv (register/register-output.ts coarsePairsCsv) back into pair records. */
export function parseCoarsePairsCsv(text: string, source = 'coarse-pairs.csv'): CoarsePair[] {
  const cols = ['score', 'cycle_error_mm', 'kept', 'residual_mm'];
  // (results written before session 21 have no inlier column: their kept pairs count as inliers)
  return pairRows(text, source, 'coarse-pairs.csv', cols, ['inlier'], (fixed, moving, v) => {
    const kept = v('kept') === 1;
    const inlier = v('inlier');
    return {
      fixed,
      moving,
      score: v('score'),
      cycleErrorMm: v('cycle_error_mm'),
      kept,
      residualMm: v('residual_mm'),
      inlier: Number.isNaN(inlier) ? kept : inlier === 1,
    };
  });
}

/** Largest distance (mm) between grid corners for a stored volume to count as on the fixed grid. */
export const GRID_TOLERANCE_MM = 0.01;

function onFixedGrid<T extends Volume>(v: T, g: Geometry): T {
  return {
    ...v,
    size: [...g.size] as Vec3,
    spacing: [...g.spacing] as Vec3,
    origin: [...g.origin] as Vec3,
    direction: [...g.direction] as Geometry['direction'],
  };
}

/**
 * Read a result folder. The field and the warped image are checked to lie on the fixed grid (within
 * GRID_TOLERANCE_MM) and then given its exact geometry.
 */
export async function readRegistrationResult(dir: string, fixedGrid: Geometry): Promise<RegistrationResult> {
  if (!existsSync(dir)) throw new InputError(dir, 'no such result folder');
  const files: string[] = [];
  const path = (name: string) => {
    const p = join(dir, name);
    if (!existsSync(p)) return null;
    files.push(p);
    return p;
  };
  const warpedPath = path('warped.nii.gz');
  const fieldPath = path('displacement.nii.gz');
  const affinePath = path('affine.tfm') ?? path('affine.txt');
  const pairsPath = path('pairs.csv');
  const qaPath = path('qa.json');
  const affine = affinePath ? readAffine(affinePath) : null;
  let field: Volume;
  let fieldSource: RegistrationResult['fieldSource'];
  if (fieldPath) {
    field = await readVolume(fieldPath);
    checkField(field, fieldPath);
    if (!sameGrid(field, fixedGrid, GRID_TOLERANCE_MM))
      throw new InputError(fieldPath, 'the displacement field is not on the fixed image grid (wrong fixed image?)');
    fieldSource = 'displacement.nii.gz';
  } else if (affine) {
    field = fieldFromAffine(fixedGrid, affine);
    fieldSource = 'affine';
  } else throw new InputError(dir, 'no displacement.nii.gz and no affine.tfm: not a sam register result folder');
  let warped = warpedPath ? await readVolume(warpedPath) : null;
  if (warped && !sameGrid(warped, fixedGrid, GRID_TOLERANCE_MM))
    throw new InputError(warpedPath!, 'the warped image is not on the fixed image grid (wrong fixed image?)');
  // on the fixed grid within the tolerance: take its exact geometry (stored headers round it)
  field = onFixedGrid(field, fixedGrid);
  if (warped) warped = onFixedGrid(warped, fixedGrid);
  let qa: Record<string, unknown> | null = null;
  if (qaPath) {
    try {
      qa = JSON.parse(readFileSync(qaPath, 'utf8')) as Record<string, unknown>;
    } catch (e) {
      throw new InputError(qaPath, `not valid JSON (${(e as Error).message})`);
    }
  }
  return {
    dir,
    warped,
    field,
    fieldSource,
    affine,
    pairs: pairsPath ? parsePairsCsv(readFileSync(pairsPath, 'utf8'), pairsPath) : null,
    qa,
    files,
  };
}

/** A confidence map stored with a result (the app's export, or `sam review` into the result folder). */
export interface StoredConfidenceMap {
  /** Similarity on the fixed grid, NaN where undefined. */
  map: Volume;
  summary: ConfidenceSummary;
  /** The QA flags the report gave with it (confidence and Jacobian rules). */
  flags: QaFlag[];
}

/**
 * The confidence map of a result folder: confidence.nii.gz with report.json's confidence summary and
 * flags (written together by an export after the map was computed). Null when the folder has none
 * (no confidence.nii.gz, or no report.json, or a report without a confidence summary); an error
 * naming the file when one is there but unreadable or off the fixed grid.
 */
export async function readStoredConfidence(dir: string, fixedGrid: Geometry): Promise<StoredConfidenceMap | null> {
  const mapPath = join(dir, CONFIDENCE_FILES.map);
  const reportPath = join(dir, 'report.json');
  if (!existsSync(mapPath) || !existsSync(reportPath)) return null;
  let report: { confidence?: ConfidenceSummary | null; flags?: QaFlag[] };
  try {
    report = JSON.parse(readFileSync(reportPath, 'utf8')) as typeof report;
  } catch (e) {
    throw new InputError(reportPath, `not valid JSON (${(e as Error).message})`);
  }
  const summary = report.confidence;
  if (!summary) return null;
  if (typeof summary.threshold !== 'number' || !summary.body || !Array.isArray(summary.thirds))
    throw new InputError(reportPath, 'its confidence summary lacks the threshold, body or thirds');
  const map = await readVolume(mapPath);
  if (map.components !== 1) throw new InputError(mapPath, `${map.components} components per voxel, not 1`);
  if (!sameGrid(map, fixedGrid, GRID_TOLERANCE_MM))
    throw new InputError(mapPath, 'the confidence map is not on the fixed image grid (wrong fixed image?)');
  return { map: onFixedGrid(map, fixedGrid), summary, flags: Array.isArray(report.flags) ? report.flags : [] };
}
