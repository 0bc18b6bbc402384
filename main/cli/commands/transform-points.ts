/**
 * `sam transform-points <result dir> <points>`: maps fixed-space points (world LPS mm; CSV or an
 * elastix point file, "index" files in the fixed grid need --fixed) into moving space through the
 * result, as `transformix -def` does: through displacement.nii.gz when present (x -> x + u(x),
 * trilinear, clamped at the field's border), otherwise through affine.tfm.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { Command } from '../index.ts';
import { checkOutputFile } from '../output-file.ts';
import { pointNumbers } from '../point-numbers.ts';
import { InputError } from '../../engine/errors.ts';
import { readAffine } from '../../engine/register/affine-io.ts';
import { affineApply } from '../../engine/register/affine-fit.ts';
import { RESULT_ENTRIES } from '../../engine/register/previous-result.ts';
import { transformPoints } from '../../engine/register/field/field.ts';
import { writeFileAtomic } from '../../engine/util/atomic-write.ts';
import { isInside } from '../../engine/util/paths.ts';
import {
  applyAffine,
  indexToWorld,
  insideExtent,
  worldToIndexMatrix,
  type Geometry,
} from '../../engine/volume/geometry.ts';
import { readVolume } from '../../engine/volume/io/index.ts';
import { parsePoints } from '../../engine/volume/points.ts';
import { pointFormat, pointsText } from '../../engine/volume/points-out.ts';
import type { Vec3 } from '../../engine/volume/volume.ts';
import { checkRecordedInput, type InputRecord } from '../../engine/register/provenance.ts';

/** The result's qa.json, or null when it has none. */
function readQa(dir: string): Record<string, unknown> | null {
  const qaPath = join(dir, 'qa.json');
  if (!existsSync(qaPath)) return null;
  try {
    return JSON.parse(readFileSync(qaPath, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new InputError(qaPath, `is not valid JSON (${e instanceof Error ? e.message : String(e)})`);
  }
}

/**
 * Warns of mapped points outside the moving image the result was registered with (its grid is recorded
 * in qa.json `inputs`): the anatomy there was not in the moving scan, so nothing confirms the mapping.
 */
function warnOutsideMoving(dir: string, mapped: Vec3[]): void {
  const moving = (readQa(dir) as { inputs?: { moving?: Partial<InputRecord> } } | null)?.inputs?.moving;
  if (!moving?.size || !moving.spacing || !moving.origin || !moving.direction) return;
  const toIndex = worldToIndexMatrix(moving as Geometry);
  const outside = mapped.flatMap((p, n) => {
    const idx = applyAffine(toIndex, p);
    // within half a voxel of the outermost voxel centres counts as inside
    return moving.size!.every((s, a) => idx[a] >= -0.5 && idx[a] <= s - 0.5) ? [] : [n + 1];
  });
  if (outside.length)
    console.error(
      `sam transform-points: warning: ${outside.length} of ${mapped.length} points map outside the moving image ` +
        `(${pointNumbers(outside)}): ` +
        "the moving scan does not show them; their positions are the transform's extrapolation",
    );
}

export const transformPointsCommand: Command = {
  name: 'transform-points',
  summary: 'map fixed-space points into moving space through a registration result',
  usage: [
    'usage: sam transform-points <result dir> <points.csv|elastix points.txt> [--out FILE] [--format csv|elastix] [--fixed VOLUME]',
    '  points: x,y,z world LPS mm per line (CSV, optional header; a header of r,a,s or x_ras,... is RAS,',
    '          of i,j,k 0-based voxel indices of the fixed image), an elastix file ("point" or "index",',
    '          0-based), or 3D Slicer markups (.fcsv, .mrk.json: in the coordinate system they state)',
    '  --fixed   the fixed volume, needed for voxel-index points',
    '  --format  csv (default; x,y,z, after a label column when the input names its points), elastix',
    '            ("point", count, then x y z per line) or fcsv (3D Slicer markups, LPS stated)',
    '  --out     the file to write (default: standard output); an existing file only with --force',
    '  --force   replace an existing --out file (never an input or a file of the result)',
  ].join('\n'),
  async run(args) {
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: {
        out: { type: 'string' },
        format: { type: 'string', default: 'csv' },
        fixed: { type: 'string' },
        force: { type: 'boolean' },
      },
    });
    if (positionals.length !== 2) {
      console.error(this.usage);
      return 2;
    }
    const [dir, pointsFile] = positionals;
    const format = pointFormat(values.format ?? 'csv');
    const st = statSync(dir, { throwIfNoEntry: false });
    if (st && !st.isDirectory())
      throw new InputError(
        dir,
        'is a file, not a result folder: the result folder comes first (sam transform-points <result dir> <points>)',
      );
    if (!st) throw new InputError(dir, 'no such result folder (give the --out folder of sam register)');
    if (!existsSync(pointsFile)) throw new InputError(pointsFile, 'no such points file');
    // the inputs and every file of the result are never written over (--out given as one of them)
    const protect = [pointsFile, ...(values.fixed ? [values.fixed] : []), ...RESULT_ENTRIES.map((f) => join(dir, f))];
    if (values.out) {
      const target = resolve(values.out);
      if (protect.some((p) => isInside(resolve(p), target)))
        throw new InputError(values.out, 'is an input or a file of the registration result: give another --out');
      checkOutputFile(values.out, { inputs: protect, force: values.force });
    }
    const list = parsePoints(readFileSync(pointsFile, 'utf8'), pointsFile);
    if (list.fromRas)
      console.error(`sam transform-points: ${pointsFile} holds RAS coordinates (as it says): converted to LPS`);
    let points = list.points;
    if (list.kind === 'index') {
      if (!values.fixed) throw new InputError(pointsFile, 'index points need the fixed volume (--fixed)');
      const fixed = await readVolume(values.fixed);
      // its voxel indices are only this result's if it is the fixed image registered (qa.json's record)
      checkRecordedInput(readQa(dir), 'fixed', fixed, values.fixed);
      points = points.map((p) => indexToWorld(fixed, p));
    } else if (values.fixed)
      console.error(
        `sam transform-points: --fixed is not used: ${pointsFile} holds world coordinates, not voxel indices`,
      );
    const fieldPath = join(dir, 'displacement.nii.gz');
    const affinePath = join(dir, 'affine.tfm');
    let mapped: Vec3[];
    if (existsSync(fieldPath)) {
      const field = await readVolume(fieldPath);
      mapped = transformPoints(field, points);
      // beyond the fixed grid the field holds nothing: such points go through the affine alone, the
      // best estimate there (transformix reads the field's border value, silently: 64 mm off at
      // 1 m from a 5 degree rotation's centre), and the user is told
      const toIndex = worldToIndexMatrix(field);
      const outside = points
        .map((p, n) => ({ n, idx: applyAffine(toIndex, p) }))
        .filter(({ idx }) => !insideExtent(field.size, idx[0], idx[1], idx[2]));
      const affine = outside.length && existsSync(affinePath) ? readAffine(affinePath) : null;
      if (affine) for (const { n } of outside) mapped[n] = affineApply(affine, points[n]);
      if (outside.length)
        console.error(
          `sam transform-points: warning: ${outside.length} of ${points.length} points lie outside the fixed image ` +
            `(${pointNumbers(
              outside.map((o) => o.n + 1),
              5,
            )}): ` +
            (affine
              ? 'mapped by the affine alone (the later stages are defined on the fixed image only)'
              : 'mapped with the displacement at its border'),
        );
    } else if (existsSync(affinePath)) {
      // a result written with --no-field: say that its later stages are not applied
      const stages = (readQa(dir) as { stages?: string[] } | null)?.stages ?? [];
      if (stages?.some((s) => s !== 'affine'))
        console.error(
          `sam transform-points: warning: ${dir} has no displacement.nii.gz (written with --no-field?): mapped through ` +
            `the affine alone, without the ${stages.filter((s) => s !== 'affine').join(' and ')} stage(s)`,
        );
      const a = readAffine(affinePath);
      mapped = points.map((p) => affineApply(a, p));
    } else throw new InputError(dir, 'no displacement.nii.gz or affine.tfm: not a sam register result folder');
    warnOutsideMoving(dir, mapped);
    const text = pointsText(mapped, format, list.labels);
    if (values.out) writeFileAtomic(values.out, Buffer.from(text), { protect });
    else process.stdout.write(text);
    return 0;
  },
};
