/**
 * One entry point for reading and writing volumes, by file extension (or folder = DICOM series).
 * Each format lives in its own module; this file only dispatches.
 */
import { statSync } from 'node:fs';
import { VolumeReadError, VolumeWriteError } from '../../errors.ts';
import type { Volume } from '../volume.ts';
import { readNifti, writeNifti, writeNiftiSync } from './nifti.ts';
import { readMetaImage, writeMetaImage } from './metaimage.ts';
import { readVti } from './vti.ts';
import { readNrrd } from './nrrd.ts';
import { isVtkJsDataSet, readVtkJsDataSet } from './vtkjs-dataset.ts';
import { readDicomSeries, type DicomReadOptions } from './dicom/read-series.ts';
import { NotDicomError } from './dicom/parse.ts';

export type VolumeFormat = 'nifti' | 'metaimage' | 'vti' | 'nrrd' | 'dicom';

export function formatOfPath(path: string): VolumeFormat | null {
  const p = path.toLowerCase();
  if (p.endsWith('.nii') || p.endsWith('.nii.gz')) return 'nifti';
  if (p.endsWith('.mha') || p.endsWith('.mhd')) return 'metaimage';
  if (p.endsWith('.vti')) return 'vti';
  if (p.endsWith('.nrrd') || p.endsWith('.nhdr')) return 'nrrd';
  if (p.endsWith('.dcm') || p.endsWith('.ima')) return 'dicom';
  return null;
}

export type ReadOptions = DicomReadOptions;

const FORMAT_NAMES: Record<VolumeFormat, string> = {
  nifti: 'NIfTI',
  metaimage: 'MetaImage',
  vti: 'VTK image',
  nrrd: 'NRRD',
  dicom: 'DICOM',
};

/**
 * Read a volume from a file, a DICOM folder, or a list of DICOM files.
 * Throws VolumeReadError naming the file and the problem.
 */
export async function readVolume(input: string | string[], options: ReadOptions = {}): Promise<Volume> {
  if (Array.isArray(input)) return readDicomSeries(input, options);
  let isDir: boolean;
  let bytes: number;
  try {
    const st = statSync(input);
    isDir = st.isDirectory();
    bytes = st.size;
  } catch {
    throw new VolumeReadError(input, 'no such file or folder');
  }
  if (!isDir && bytes === 0) throw new VolumeReadError(input, 'empty file (0 bytes)');
  // A vtk.js HTTP data set (folder with index.json, often named *.vti) or a DICOM folder.
  if (isDir && !isVtkJsDataSet(input)) return readDicomSeries(input, options);
  // a series UID picks one series of a DICOM input: given for another format, it would be ignored
  const format = isDir ? null : formatOfPath(input);
  const kind = isDir ? 'a vtk.js data set' : format && format !== 'dicom' ? `a ${FORMAT_NAMES[format]} file` : null;
  if (options.seriesUid !== undefined && kind)
    throw new VolumeReadError(
      input,
      `a DICOM series UID was given (${options.seriesUid}), but this is ${kind}, not DICOM`,
    );
  if (isDir) return readVtkJsDataSet(input);
  switch (format) {
    case 'nifti':
      return readNifti(input);
    case 'metaimage':
      return readMetaImage(input);
    case 'vti':
      return readVti(input);
    case 'nrrd':
      return readNrrd(input);
    default:
      // Many DICOM files have no extension: let the DICOM reader decide (it checks the magic); a file
      // that is not DICOM either is told what this reads
      try {
        return await readDicomSeries([input], options);
      } catch (e) {
        if (e instanceof NotDicomError) {
          const why = e.problem.replace(/^not a DICOM file\s*/, '').replace(/^\((.*)\)$/, '$1');
          throw new VolumeReadError(
            input,
            `not a volume file this reads: not DICOM (${why}), and its name is not that of ` +
              'NIfTI (.nii, .nii.gz), MetaImage (.mha, .mhd), NRRD (.nrrd, .nhdr) or VTK (.vti)',
            { cause: e },
          );
        }
        throw e;
      }
  }
}

export interface WriteOptions {
  /** Paths that must never be overwritten (the inputs). */
  protect?: string[];
  /** MetaImage only: zlib-compress the voxels (default true for .mha). */
  compress?: boolean;
}

/**
 * Write a volume as NIfTI (.nii / .nii.gz) or MetaImage (.mha / .mhd), atomically; a .nii.gz is
 * compressed on zlib's thread pool (the CPU is free for other work meanwhile).
 */
export async function writeVolume(path: string, volume: Volume, options: WriteOptions = {}): Promise<void> {
  if (formatOfPath(path) === 'nifti') return writeNifti(path, volume, options);
  writeVolumeSync(path, volume, options);
}

/** writeVolume on this thread: for small volumes and synchronous callers. */
export function writeVolumeSync(path: string, volume: Volume, options: WriteOptions = {}): void {
  switch (formatOfPath(path)) {
    case 'nifti':
      return writeNiftiSync(path, volume, options);
    case 'metaimage':
      return writeMetaImage(path, volume, options);
    default:
      throw new VolumeWriteError(
        path,
        'unsupported output format (use .nii.gz, .nii, .mha or .mhd; DICOM via writeDicomSeries)',
      );
  }
}
