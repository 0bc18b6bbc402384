/**
 * Entry point of the DICOM reader: a folder (recursive), one file or a list of files -> one
 * Volume (LPS mm, i along rows, j down columns, k along the slice normal; see volume.ts).
 *
 * Two passes keep it fast and lean: first every header is parsed (only the bytes before the
 * pixel data), the series is chosen, the slices are sorted and the grid computed (geometry.ts);
 * then the output array is allocated once and each slice's pixels are read (only those bytes),
 * decoded if compressed, converted (pixels.ts) and written straight into place. Series off a
 * regular grid are resampled afterwards (resample.ts), with a warning.
 *
 * Behaviour worth knowing:
 * - several series and no `seriesUid`: an error listing them (see listDicomSeries);
 * - a single slice is read as a volume with nk = 1 and slice spacing = SliceThickness (or 1 mm);
 * - missing slices are refused unless `allowGaps`;
 * - a non-CT modality is read; meta.modality says what it is (callers decide);
 * - every failure is a VolumeReadError naming the file or folder (CancelledError on abort).
 */
import { dirname } from 'node:path';
import { VolumeReadError, wrapReadErrorsAsync } from '../../../errors.ts';
import { geometryProblem } from '../../geometry.ts';
import { makeVolume, type Volume } from '../../volume.ts';
import { readAttributes } from './attributes.ts';
import { FrameSource } from './frame-source.ts';
import { seriesGrid } from './geometry.ts';
import { makeScratch, storedValues, VoxelSink } from './pixels.ts';
import { resampleSlices } from './resample.ts';
import { checkAbort, describeSeries, groupBySeries, scanInput, summarize, yieldToEventLoop } from './scan.ts';
import { describeTransferSyntax } from './transfer-syntax.ts';
import type { DicomReadOptions, DicomSeriesSummary, FileHeader } from './types.ts';

export type { DicomReadOptions, DicomSeriesSummary } from './types.ts';
export { listDicomSeries } from './scan.ts';

/** A folder or file list holding several series and no seriesUid to choose one: each one's summary. */
export class MultipleSeriesError extends VolumeReadError {
  constructor(
    file: string,
    problem: string,
    readonly series: DicomSeriesSummary[],
  ) {
    super(file, problem);
  }
}

function chooseSeries(groups: Map<string, FileHeader[]>, label: string, seriesUid: string | undefined): FileHeader[] {
  const list = () => [...groups.values()].map((g) => `  ${describeSeries(summarize(g))}`).join('\n');
  if (seriesUid !== undefined) {
    const g = groups.get(seriesUid);
    if (!g)
      throw new VolumeReadError(
        label,
        `no series with SeriesInstanceUID ${seriesUid}; the series here are:\n${list()}`,
      );
    return g;
  }
  if (groups.size > 1)
    throw new MultipleSeriesError(
      label,
      `holds ${groups.size} DICOM series; choose one by its SeriesInstanceUID:\n${list()}`,
      [...groups.values()].map(summarize),
    );
  return [...groups.values()][0];
}

export async function readDicomSeries(input: string | string[], options: DicomReadOptions = {}): Promise<Volume> {
  const where = Array.isArray(input) ? (input[0] ?? '(no files)') : input;
  return wrapReadErrorsAsync(where, () => read(input, options));
}

async function read(input: string | string[], options: DicomReadOptions): Promise<Volume> {
  const { signal, onProgress } = options;
  let scanned = 0;
  const scan = await scanInput(input, {
    signal,
    onFile: (done, total) => {
      scanned = total;
      onProgress?.(done, 2 * total);
    },
  });
  let files = chooseSeries(groupBySeries(scan.headers), scan.label, options.seriesUid);
  // A scout (localizer) image filed in the same series as the slices is left out, as dcm2niix does.
  const localizers = files.filter((h) => h.imageType.includes('LOCALIZER'));
  const dropLocalizers = localizers.length > 0 && localizers.length < files.length;
  if (dropLocalizers) files = files.filter((h) => !localizers.includes(h));
  for (const h of files)
    if (h.syntax.encoding === 'unsupported')
      throw new VolumeReadError(h.file, `unsupported transfer syntax ${describeTransferSyntax(h.syntax.uid)}`);

  let grid: ReturnType<typeof seriesGrid>;
  try {
    grid = seriesGrid(
      files.flatMap((h) => h.frames),
      scan.label,
      options.allowGaps === true,
    );
  } catch (e) {
    // a slice that could not be read looks like a missing one: name it
    if (!(e instanceof VolumeReadError) || !scan.unreadable.length) throw e;
    throw new VolumeReadError(
      e.file,
      `${e.problem}; ${scan.unreadable.length} DICOM file(s) here could not be read and were left out, e.g. ${scan.unreadable[0].message}`,
    );
  }
  const frames = grid.frames;
  for (const f of frames) {
    if (!Number.isFinite(f.slope) || f.slope === 0 || !Number.isFinite(f.intercept))
      throw new VolumeReadError(f.header.file, `invalid RescaleSlope ${f.slope} / RescaleIntercept ${f.intercept}`);
  }
  const problem = geometryProblem(grid);
  if (problem) throw new VolumeReadError(scan.label, problem);

  const [ni, nj] = grid.size;
  const plane = ni * nj;
  const stackSlices = frames.length;
  const integer = frames.every((f) => f.slope === 1 && Number.isInteger(f.intercept));
  let sink: VoxelSink;
  try {
    sink = new VoxelSink(plane * stackSlices, integer);
  } catch {
    throw new VolumeReadError(scan.label, `too large to hold in memory (${ni}x${nj}x${stackSlices} voxels)`);
  }

  const total = scanned + stackSlices;
  const source = new FrameSource();
  const scratch = makeScratch(plane);
  let lastYield = performance.now();
  try {
    for (let k = 0; k < stackSlices; k++) {
      checkAbort(signal);
      const f = frames[k];
      const raw = await source.read(f);
      const values = storedValues(raw.bytes, f.header.format, raw.littleEndian, plane, scratch);
      sink.put(values, plane, f.slope, f.intercept, k * plane);
      onProgress?.(scanned + k + 1, total);
      if (performance.now() - lastYield > 20) {
        await yieldToEventLoop();
        lastYield = performance.now();
      }
    }
  } finally {
    source.close();
  }
  checkAbort(signal);

  const data = grid.resampling ? resampleSlices(sink.data, ni, nj, grid.resampling) : sink.data;
  const first = frames[0].header;
  const warnings = [...grid.warnings];
  if (dropLocalizers)
    warnings.push(`${localizers.length} localizer (scout) image(s) in the series left out, e.g. ${localizers[0].file}`);
  for (const n of new Set(files.flatMap((h) => h.notes))) warnings.push(n);
  if (scan.unreadable.length)
    warnings.push(
      `${scan.unreadable.length} DICOM file(s) in the folder could not be read and were left out, e.g. ${scan.unreadable[0].message}`,
    );
  const attrs = readAttributes(first.file);
  if (attrs.warning) warnings.push(attrs.warning);
  const sourcePath = Array.isArray(input) ? (input.length === 1 ? input[0] : dirname(input[0])) : input;
  return makeVolume({
    size: grid.size,
    spacing: grid.spacing,
    origin: grid.origin,
    direction: grid.direction,
    data,
    meta: {
      modality: first.modality || undefined,
      source: sourcePath,
      description: first.description,
      seriesInstanceUid: first.seriesUid || undefined,
      warnings,
      dicom: { attributes: attrs.attributes },
    },
  });
}
