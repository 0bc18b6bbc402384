/**
 * The operations the product offers, typed once. The Electron IPC handlers, the browser-mode
 * server, the CLI and the tests all call these; nothing here imports Electron or the DOM.
 */
import { readVolume, type ReadOptions } from './volume/io/index.ts';
import { summarizeVolume, type VolumeSummary } from './volume/describe.ts';
import { listDicomSeries } from './volume/io/dicom/read-series.ts';

export type { VolumeSummary };

/** Read a volume (file, DICOM folder or list of DICOM files) and summarise it. */
export async function volumeInfo(input: string | string[], options: ReadOptions = {}): Promise<VolumeSummary> {
  return summarizeVolume(await readVolume(input, options));
}

export { readVolume, listDicomSeries };

/** The workstation (desktop app and browser mode): loaded volumes, registration worker, export, sessions. */
export { Workstation } from './workstation/workstation.ts';
export type * from './workstation/types.ts';
