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
 * The files are written into a staging folder inside it (.sam-writing-<host>-<pid>-<id>/) and moved into
 * place only once all of them are written, qa.json last: an interrupted or cancelled write (the
 * signal is checked before each file) leaves the folder as it was, never a partial result; a staging
 * folder left by a killed process is removed by the next write into the folder. Only then is a
 * previous result in the folder moved into previous-<time>/ (previous-result.ts).
 */
import { mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { CancelledError, InputError, VolumeWriteError } from '../errors.ts';
import { isInside, realPathOf } from '../util/paths.ts';
import { writeFileAtomic } from '../util/atomic-write.ts';
import { writeVolume } from '../volume/io/index.ts';
import { writeDicomSeries } from '../volume/io/dicom/write-series.ts';
import type { Volume } from '../volume/volume.ts';
import { writeAffine } from './affine-io.ts';
import type { RegisterResult } from './cascade.ts';
import { writePairsCsv } from './sam-affine.ts';
import type { CoarsePair } from './sam-coarse.ts';
import { archivePreviousResult, RESULT_ENTRIES } from './previous-result.ts';
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

/** Staging folders of writeRegistration: .sam-writing-<host>-<pid>-<id>. */
const STAGING = /^\.sam-writing-(.+)-(\d+)-[0-9a-f]+$/;

/**
 * This process's staging folders (their paths) while it writes files into them: the stale-folder
 * clean-up spares them, and an abrupt exit (a second Ctrl-C) removes them. (Moving a result into place
 * is synchronous: no signal handler runs during it.)
 */
const active = new Set<string>();
let exitHook = false;

function host(): string {
  return hostname().replace(/[^A-Za-z0-9.]/g, '_') || 'host';
}

/**
 * Removes staging folders in `dir` left by a writer that is gone: one of this machine (by its host
 * name: a folder on a shared disk written from another machine is left alone) whose process is not
 * running, or is this process (a restarted container's same pid) but not among its writes now.
 */
function removeStaleStaging(dir: string): void {
  for (const name of readdirSync(dir)) {
    const m = STAGING.exec(name);
    if (!m || m[1] !== host()) continue;
    const pid = Number(m[2]);
    const gone = pid === process.pid ? !active.has(join(dir, name)) : !processAlive(pid);
    if (gone) rmSync(join(dir, name), { recursive: true, force: true });
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: it exists, another user's
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Refuses an output folder where an input lies among (or inside) the files a result writes there: it
 * would be moved aside with an earlier result. Called before the work (sam register) and by the writer.
 */
export function checkResultFolder(dir: string, inputs: readonly string[]): void {
  for (const name of RESULT_ENTRIES) {
    const entry = realPathOf(join(dir, name));
    for (const p of inputs)
      if (isInside(entry, realPathOf(p)))
        throw new InputError(
          p,
          `is an input and lies in the output folder ${dir} among a result's files (${name}): give another output folder`,
        );
  }
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
    /** Checked before each file: a cancel leaves the folder as it was. */
    signal?: AbortSignal;
  },
): Promise<string[]> {
  const protect = options.protect;
  // an input among the earlier result's files would be moved aside with them: refused before any work
  checkResultFolder(dir, protect);
  mkdirSync(dir, { recursive: true });
  removeStaleStaging(dir);
  const staging = join(dir, `.sam-writing-${host()}-${process.pid}-${randomBytes(4).toString('hex')}`);
  mkdirSync(staging);
  active.add(staging);
  if (!exitHook) {
    exitHook = true;
    // an abrupt exit (process.exit on a second Ctrl-C): the staging folders still being written go
    process.on('exit', () => {
      for (const p of active) rmSync(p, { recursive: true, force: true });
    });
  }
  const names: string[] = [];
  const file = (name: string) => {
    if (options.signal?.aborted) throw new CancelledError('writing the result');
    names.push(name);
    options.onWriting?.(join(dir, name));
    return join(staging, name);
  };
  try {
    await writeVolume(file('warped.nii.gz'), r.warped, { protect });
    if (moving.meta.dicom) {
      // the moving patient's study, in the fixed scan's frame of reference (its voxels are on the fixed grid)
      const method = `${r.qa.matcher === 'ncc' ? 'NCC' : 'SAM'} ${usedStages(r).join('+')}`;
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
    if (options.signal?.aborted) throw new CancelledError('writing the result');
  } catch (e) {
    // nothing moved yet: the folder is as it was
    rmSync(staging, { recursive: true, force: true });
    throw e;
  } finally {
    active.delete(staging);
  }
  // all written: the earlier result aside, then the new one in place (qa.json, which marks a whole
  // result, last). A failure from here keeps the staging folder (what was not moved yet) and says where.
  try {
    const archived = archivePreviousResult(dir);
    if (archived) options.onArchived?.(archived);
    for (const name of [...names.filter((n) => n !== 'qa.json'), 'qa.json'])
      renameSync(join(staging, name), join(dir, name));
  } catch (e) {
    throw new VolumeWriteError(
      dir,
      `could not move the new result into place (${(e as Error).message}); its files not moved yet are in ${staging}`,
      { cause: e },
    );
  }
  rmSync(staging, { recursive: true, force: true });
  return names.map((n) => join(dir, n));
}

/**
 * The stages whose correction the result holds: the affine, and the coarse and deform stages unless
 * their check found the images agreeing no better with them (qa.json keeps every stage that ran).
 */
export function usedStages(r: RegisterResult): string[] {
  return (r.qa.stages as string[]).filter(
    (st) =>
      !(st === 'coarse' && r.coarse?.stats.used === false) &&
      // (the deform stage's network field stays in the map even when the instance optimisation's does not)
      !(st === 'deform' && !r.deformNet && r.deform?.stats.used === false),
  );
}
