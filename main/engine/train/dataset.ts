/**
 * The training set: every CT found under the given folders / files / list files, read, checked to
 * be CT in HU (label maps, masks, MR and windowed copies are skipped with the reason), resampled
 * to the network grid with its body mask (prepareCt), and kept in memory.
 */
import { closeSync, existsSync, lstatSync, openSync, readdirSync, readFileSync, readSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { CancelledError, InputError, VolumeReadError } from '../errors.ts';
import { MultipleSeriesError } from '../volume/io/dicom/read-series.ts';
import type { Volume } from '../volume/volume.ts';
import { formatOfPath, readVolume, type ReadOptions } from '../volume/io/index.ts';
import { checkCt } from '../volume/intensity.ts';
import { prepareCt, type PreparedCt } from './patch-pairs.ts';
import { realPathOf } from '../util/paths.ts';

export interface TrainingCase {
  source: string;
  ct: PreparedCt;
}

export interface SkippedInput {
  source: string;
  reason: string;
}

/** A training input: a volume file or data set, or DICOM files of one folder `source`. */
export interface TrainingInput {
  source: string;
  /**
   * The DICOM files to read together (as their series): the folder's own (its subfolders are
   * inputs of their own), or those named one by one in the inputs (`named`).
   */
  files?: string[];
  named?: boolean;
}

/**
 * Find candidate volumes: volume files, vtk.js data sets, folders holding DICOM files, and DICOM files
 * named one by one (in --data or a list: grouped by folder, read together as their series). A path
 * that cannot be looked at (a list's line naming no file, a broken link, no permission) goes to
 * `onSkip` with the reason (without it: an InputError); an input given by name must exist.
 */
export function findTrainingInputs(
  inputs: string[],
  onSkip?: (source: string, reason: string) => void,
): TrainingInput[] {
  // keyed by real path: the same file or folder reached twice (a symlink, a list naming it again) is one input
  const found = new Map<string, TrainingInput>();
  const named = new Map<string, string[]>();
  const add = (input: TrainingInput): void => {
    const key = realPathOf(input.source);
    const before = found.get(key);
    if (!before) found.set(key, input);
    else if (before.source !== input.source) onSkip?.(input.source, `the same file or folder as ${before.source}`);
  };
  const skip = (p: string, reason: string): void => {
    if (!onSkip) throw new InputError(p, reason);
    onSkip(p, reason);
  };
  const kind = (p: string): 'dir' | 'file' | undefined => {
    try {
      return statSync(p).isDirectory() ? 'dir' : 'file';
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      const link = code === 'ENOENT' && lstatExists(p);
      skip(
        p,
        link
          ? 'broken link (its target does not exist)'
          : code === 'EACCES'
            ? 'permission denied'
            : 'no such file or folder',
      );
      return undefined;
    }
  };
  const visit = (p: string): void => {
    const k = kind(p);
    if (!k) return;
    if (k === 'file') {
      if (formatOfPath(p) && formatOfPath(p) !== 'dicom') add({ source: p });
      else if (isDicomFile(p)) {
        const group = named.get(dirname(p)) ?? [];
        if (!group.includes(p)) group.push(p);
        named.set(dirname(p), group);
      } else skip(p, 'not a volume file this reads (NIfTI, MetaImage, NRRD, VTI, DICOM)');
      return;
    }
    if (existsSync(join(p, 'index.json'))) {
      add({ source: p });
      return;
    }
    let entries: string[];
    try {
      entries = readdirSync(p).sort();
    } catch (e) {
      skip(p, `cannot list the folder (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
      return;
    }
    const dicom = dicomFilesIn(p, entries);
    if (dicom.length) add({ source: p, files: dicom });
    for (const e of entries) {
      const q = join(p, e);
      const kq = kind(q);
      if (kq === 'dir') visit(q);
      else if (kq === 'file' && formatOfPath(q) && formatOfPath(q) !== 'dicom') add({ source: q });
    }
  };
  for (const input of inputs) {
    if (!existsSync(input)) throw new InputError(input, 'no such file or folder');
    if (statSync(input).isFile() && input.toLowerCase().endsWith('.txt')) {
      // a list file: one path per line, relative to the list's folder
      readFileSync(input, 'utf8')
        .split(/\r?\n/)
        .forEach((line, n) => {
          const t = line.trim();
          if (!t || t.startsWith('#')) return;
          const p = resolve(dirname(input), t);
          if (!existsSync(p) && !lstatExists(p)) skip(p, `listed in ${input} (line ${n + 1}) but not found`);
          else visit(p);
        });
    } else visit(input);
  }
  return [...found.values(), ...[...named].map(([source, files]) => ({ source, files, named: true }))];
}

/** findTrainingInputs as paths: DICOM files named one by one stand for their folder. */
export function findVolumeInputs(inputs: string[], onSkip?: (source: string, reason: string) => void): string[] {
  return [...new Set(findTrainingInputs(inputs, onSkip).map((i) => i.source))];
}

function lstatExists(p: string): boolean {
  try {
    lstatSync(p);
    return true;
  } catch {
    return false;
  }
}

/**
 * The DICOM files directly in a folder (not its subfolders, which are inputs of their own); a
 * DICOMDIR (the index of a CD or PACS export) is no image.
 */
export function dicomFilesIn(folder: string, entries: string[] = readdirSync(folder).sort()): string[] {
  return entries
    .filter((e) => e.toUpperCase() !== 'DICOMDIR' && isDicomFile(join(folder, e)))
    .map((e) => join(folder, e));
}

function isDicomFile(p: string): boolean {
  try {
    if (!statSync(p).isFile()) return false;
    if (p.toLowerCase().endsWith('.dcm')) return true;
    const fd = openSync(p, 'r');
    try {
      const magic = Buffer.alloc(4);
      return readSync(fd, magic, 0, 4, 128) === 4 && magic.toString('latin1') === 'DICM';
    } finally {
      closeSync(fd);
    }
  } catch {
    return false;
  }
}

export interface LoadOptions {
  spacingMm?: number;
  /** Interpolate across missing slices of DICOM series (see readDicomSeries). */
  allowGaps?: boolean;
  onCase?: (source: string, ok: boolean, reason: string) => void;
  signal?: AbortSignal;
}

/**
 * The volumes of one input: itself, or, for a DICOM folder holding several series, each series (its
 * own input, named by its UID and description).
 */
async function* volumesOf(
  { source: folder, files, named }: TrainingInput,
  options: ReadOptions,
): AsyncGenerator<{ source: string; label: string; read: () => Promise<Volume> }> {
  const source = named ? `${folder} (${files!.length} file(s) named)` : folder;
  // what a skip names: the file itself when a folder holds one DICOM file beside other volumes
  const label = !named && files?.length === 1 ? files[0] : source;
  let first: Volume | undefined;
  let series: MultipleSeriesError | undefined;
  let failure: unknown;
  const input = files ?? folder;
  try {
    first = await readVolume(input, options);
  } catch (e) {
    if (e instanceof MultipleSeriesError) series = e;
    else failure = e;
  }
  if (first) yield { source, label, read: async () => first! };
  else if (series)
    for (const s of series.series) {
      const which = `(series ${s.seriesInstanceUid || 'without a SeriesInstanceUID'}${s.description ? ` '${s.description}'` : ''})`;
      yield {
        source: `${source} ${which}`,
        label: `${label} ${which}`,
        read: () => readVolume(input, { ...options, seriesUid: s.seriesInstanceUid }),
      };
    }
  else
    yield {
      source,
      label,
      read: () => Promise.reject(failure),
    };
}

/** Read and prepare every CT among the inputs; throws when none is usable. */
export async function loadTrainingSet(
  inputs: string[],
  options: LoadOptions = {},
): Promise<{ cases: TrainingCase[]; skipped: SkippedInput[] }> {
  const cases: TrainingCase[] = [];
  const skipped: SkippedInput[] = [];
  const skip = (source: string, reason: string): void => {
    skipped.push({ source, reason });
    options.onCase?.(source, false, reason);
  };
  const seen = new Map<string, string>();
  const aborted = (): void => {
    if (options.signal?.aborted) throw new CancelledError('reading the training data');
  };
  for (const input of findTrainingInputs(inputs, skip)) {
    aborted();
    for await (const { source, label, read } of volumesOf(input, {
      signal: options.signal,
      allowGaps: options.allowGaps,
    })) {
      aborted();
      let reason: string;
      try {
        const v = await read();
        // a DICOM folder is read with its subfolders, which are inputs too: each series once
        const uid = v.meta?.seriesInstanceUid;
        const before = uid ? seen.get(uid) : undefined;
        if (before) {
          skip(label, `the same DICOM series as ${before}`);
          continue;
        }
        if (uid) seen.set(uid, source);
        const thin = Math.min(...v.size);
        if (thin < 4) {
          skip(label, `${thin} voxel(s) thick (size ${v.size.join('x')}): too thin for training patches`);
          continue;
        }
        const c = checkCt(v);
        if (c.ok) {
          cases.push({ source, ct: prepareCt(v, { spacingMm: options.spacingMm ?? 2 }) });
          options.onCase?.(source, true, c.reason);
          continue;
        }
        reason = `not CT in HU: ${c.reason}`;
      } catch (e) {
        if (e instanceof CancelledError) throw new CancelledError('reading the training data');
        // the line names the input already: its problem alone, or the message naming another file
        reason =
          e instanceof VolumeReadError && (e.file === source || e.file === label) ? e.problem : (e as Error).message;
      }
      skip(label, reason);
    }
  }
  aborted();
  if (cases.length === 0)
    throw new InputError(
      inputs.join(', '),
      `no CT volume in HU found for training${skipped.length ? ` (${skipped.length} input(s) skipped, each with its reason above)` : ' (no volume files found)'}`,
    );
  return { cases, skipped };
}
