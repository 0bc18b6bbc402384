/**
 * Writes a registration result into a folder, every file atomically and never over an input:
 *   warped.nii.gz          the moving image resampled on the fixed grid (plus warped-dicom/ when the
 *                          moving input was DICOM: a derived series keeping the moving patient and
 *                          study, in the fixed scan's frame of reference)
 *   displacement.nii.gz    the displacement field of the whole cascade (affine composed with the coarse
 *                          and deform corrections) on the fixed grid, 3 components, mm: fixed point x maps
 *                          to moving point x + u(x) (LPS mm; a NIfTI VECTOR (1007) image with the LPS
 *                          components, as ITK and ANTs write and every ITK, transformix included, reads)
 *   affine.txt, affine.tfm the affine (fixed -> moving, LPS mm; ITK's resampling convention)
 *   pairs.csv              matched point pairs of the affine stage with residuals and inlier flags
 *   coarse-pairs.csv       matched point pairs of the coarse stage (when it ran)
 *   qa.json                per-stage times, residual and Jacobian statistics (folding %), image similarity
 * A previous result in the folder is first moved into previous-<time>/ (previous-result.ts).
 */
import { join } from 'node:path';
import { writeFileAtomic } from '../util/atomic-write.ts';
import { writeVolume } from '../volume/io/index.ts';
import { writeDicomSeries } from '../volume/io/dicom/write-series.ts';
import type { Volume } from '../volume/volume.ts';
import { writeAffine } from './affine-io.ts';
import type { RegisterResult } from './cascade.ts';
import { writePairsCsv } from './sam-affine.ts';
import type { CoarsePair } from './sam-coarse.ts';
import { archivePreviousResult } from './previous-result.ts';
import { inputRecord } from './provenance.ts';

/** coarse-pairs.csv: fixed and moving point (LPS mm), score, cycle error, kept (1/0), residual after the fit. */
export function coarsePairsCsv(pairs: CoarsePair[]): string {
  const f = (x: number) => (Number.isFinite(x) ? String(+x.toFixed(4)) : '');
  const lines = ['fixed_x,fixed_y,fixed_z,moving_x,moving_y,moving_z,score,cycle_error_mm,kept,residual_mm,inlier'];
  for (const p of pairs)
    lines.push(
      [
        ...p.fixed.map(f),
        ...p.moving.map(f),
        f(p.score),
        f(p.cycleErrorMm),
        p.kept ? 1 : 0,
        f(p.residualMm),
        p.inlier ? 1 : 0,
      ].join(','),
    );
  return `${lines.join('\n')}\n`;
}

export async function writeRegistration(
  dir: string,
  fixed: Volume,
  moving: Volume,
  r: RegisterResult,
  options: {
    protect: string[];
    field?: boolean;
    onArchived?: (folder: string) => void;
    /** Called before each file or folder is written (large volumes take seconds). */
    onWriting?: (path: string) => void;
    /** A decision the user should hear of (the DICOM writer's notes, e.g. a new frame of reference). */
    onNote?: (text: string) => void;
    /** The coarse stage's pairs when the result holds no coarse stage of its own (a result read back). */
    coarsePairs?: CoarsePair[];
    /** The inputs' paths: recorded with their grids and DICOM identity in qa.json `inputs` (provenance.ts). */
    inputPaths?: { fixed: string; moving: string };
  },
): Promise<string[]> {
  const protect = options.protect;
  const archived = archivePreviousResult(dir);
  if (archived) options.onArchived?.(archived);
  const out: string[] = [];
  const file = (name: string) => {
    const p = join(dir, name);
    out.push(p);
    options.onWriting?.(p);
    return p;
  };
  await writeVolume(file('warped.nii.gz'), r.warped, { protect });
  if (moving.meta.dicom) {
    // the moving patient's study, in the fixed scan's frame of reference (its voxels are on the fixed grid)
    const method = `${r.qa.matcher === 'ncc' ? 'NCC' : 'SAM'} ${(r.qa.stages as string[]).join('+')}`;
    const d = await writeDicomSeries(file('warped-dicom'), r.warped, {
      source: moving,
      frameOfReference: fixed,
      seriesDescription: `${moving.meta.description?.trim() || 'CT'} registered to fixed (${method})`.slice(0, 64),
      protect,
    });
    for (const n of d.notes) options.onNote?.(`warped-dicom: ${n}`);
  }
  if (options.field !== false) await writeVolume(file('displacement.nii.gz'), r.field, { protect });
  writeAffine(file('affine.txt'), r.affine.affine, { protect });
  writeAffine(file('affine.tfm'), r.affine.affine, { protect });
  writePairsCsv(file('pairs.csv'), r.affine.pairs, { protect });
  const coarse = r.coarse?.pairs ?? options.coarsePairs;
  if (coarse) writeFileAtomic(file('coarse-pairs.csv'), Buffer.from(coarsePairsCsv(coarse)), { protect });
  const qa = options.inputPaths
    ? {
        ...r.qa,
        inputs: {
          fixed: inputRecord(options.inputPaths.fixed, fixed),
          moving: inputRecord(options.inputPaths.moving, moving),
        },
        writtenAt: new Date().toISOString(),
      }
    : r.qa;
  writeFileAtomic(file('qa.json'), Buffer.from(JSON.stringify(qa, null, 2)), { protect });
  return out;
}
