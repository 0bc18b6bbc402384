/**
 * Finding DICOM files and grouping them into series: walk a folder (recursively) or take a list
 * of files, read each header (header.ts), skip what is not a DICOM image when scanning a folder
 * (but report it when a file was named explicitly), and group by SeriesInstanceUID.
 */
import { yieldToEventLoop } from '../../../util/yield.ts';
import { readdirSync, realpathSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { CancelledError, VolumeReadError } from '../../../errors.ts';
import { NotAnImageError, readFileHeader } from './header.ts';
import { NotDicomError } from './parse.ts';
import type { DicomSeriesSummary, FileHeader } from './types.ts';

export interface ScanResult {
  /** The folder, or the first file of a list: what error messages name. */
  label: string;
  isFolder: boolean;
  headers: FileHeader[];
  /** Files of a folder that are not DICOM images (not DICOM, or DICOM without pixels). */
  skipped: number;
  /** DICOM files of a folder whose header could not be read. */
  unreadable: VolumeReadError[];
}

export interface ScanOptions {
  signal?: AbortSignal;
  onFile?: (done: number, total: number) => void;
}

export function checkAbort(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new CancelledError('DICOM reading');
}

/** Let an abort (or progress display) in through the event loop. */
export { yieldToEventLoop };

/** All regular files under a folder, sorted, following links but never looping. */
export function listFilesRecursive(folder: string): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  const walk = (dir: string): void => {
    let real: string;
    try {
      real = realpathSync(dir);
    } catch {
      return;
    }
    if (seen.has(real)) return;
    seen.add(real);
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch (e) {
      throw new VolumeReadError(
        dir,
        `cannot list folder (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
      );
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      const p = join(dir, e.name);
      let isDir = e.isDirectory();
      let isFile = e.isFile();
      if (e.isSymbolicLink()) {
        try {
          const s = statSync(p);
          isDir = s.isDirectory();
          isFile = s.isFile();
        } catch {
          continue; // dangling link
        }
      }
      if (isDir) walk(p);
      else if (isFile) out.push(p);
    }
  };
  walk(folder);
  return out;
}

export async function scanInput(input: string | string[], options: ScanOptions = {}): Promise<ScanResult> {
  let files: string[];
  let isFolder = false;
  let label: string;
  if (Array.isArray(input)) {
    if (input.length === 0) throw new VolumeReadError('(no files)', 'no DICOM files given');
    files = input;
    label = input.length === 1 ? input[0] : `${input[0]} (and ${input.length - 1} more files)`;
  } else {
    label = input;
    let st;
    try {
      st = statSync(input);
    } catch {
      throw new VolumeReadError(input, 'no such file or folder');
    }
    isFolder = st.isDirectory();
    files = isFolder ? listFilesRecursive(input) : [input];
  }
  const headers: FileHeader[] = [];
  const unreadable: VolumeReadError[] = [];
  let skipped = 0;
  let lastYield = performance.now();
  for (let n = 0; n < files.length; n++) {
    checkAbort(options.signal);
    const file = files[n];
    try {
      headers.push(readFileHeader(file));
    } catch (e) {
      if (!isFolder) throw asReadError(file, e);
      if (e instanceof NotDicomError || e instanceof NotAnImageError) skipped++;
      else unreadable.push(asReadError(file, e));
    }
    options.onFile?.(n + 1, files.length);
    if (performance.now() - lastYield > 20) {
      await yieldToEventLoop();
      lastYield = performance.now();
    }
  }
  checkAbort(options.signal);
  if (headers.length === 0) {
    if (!isFolder) throw new VolumeReadError(label, 'no DICOM image');
    const why = unreadable.length
      ? `; ${unreadable.length} DICOM file(s) could not be read, e.g. ${unreadable[0].message}`
      : '';
    throw new VolumeReadError(label, `no DICOM images found (${files.length} file(s) looked at${why})`);
  }
  return { label, isFolder, headers, skipped, unreadable };
}

function asReadError(file: string, e: unknown): VolumeReadError {
  if (e instanceof VolumeReadError) return e;
  if (e instanceof CancelledError) throw e;
  return new VolumeReadError(file, `unreadable or corrupt file (${e instanceof Error ? e.message : String(e)})`, {
    cause: e,
  });
}

/** Files grouped by SeriesInstanceUID, in order of first appearance. */
export function groupBySeries(headers: FileHeader[]): Map<string, FileHeader[]> {
  const groups = new Map<string, FileHeader[]>();
  for (const h of headers) {
    const g = groups.get(h.seriesUid);
    if (g) g.push(h);
    else groups.set(h.seriesUid, [h]);
  }
  return groups;
}

export function summarize(files: FileHeader[]): DicomSeriesSummary {
  const h = files[0];
  return {
    seriesInstanceUid: h.seriesUid,
    description: h.description,
    modality: h.modality,
    sliceCount: files.reduce((n, f) => n + f.frames.length, 0),
    fileCount: files.length,
    seriesNumber: h.seriesNumber,
    studyInstanceUid: h.studyUid,
    rows: h.format.rows,
    columns: h.format.columns,
    transferSyntaxUid: h.syntax.uid,
    firstFile: h.file,
  };
}

/** One line per series, for the several-series error and for listings. */
export function describeSeries(s: DicomSeriesSummary): string {
  const desc = s.description ? `"${s.description}"` : '(no description)';
  return `${s.seriesInstanceUid || '(no SeriesInstanceUID)'}  ${desc}  ${s.modality || '?'}  ${s.sliceCount} slice(s), ${s.columns}x${s.rows}`;
}

/**
 * The image series in a folder (recursively) or a list of files: UID, description, modality,
 * slice count... Files that are not DICOM images are ignored.
 */
export async function listDicomSeries(
  folder: string | string[],
  options: { signal?: AbortSignal } = {},
): Promise<DicomSeriesSummary[]> {
  const scan = await scanInput(folder, options);
  return [...groupBySeries(scan.headers).values()].map(summarize);
}
