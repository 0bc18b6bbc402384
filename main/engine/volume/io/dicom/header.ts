/**
 * Read one file's header (only the bytes before the pixel data, growing the read as needed)
 * and turn it into a checked FileHeader: identity, pixel format, pixel data location and the
 * frames it holds. Pixel-format values are validated here, against the bytes present, before
 * anything is allocated from them.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { VolumeReadError } from '../../../errors.ts';
import { getNumber, getString, getStrings } from './elements.ts';
import { classicFrameValues } from './frame-values.ts';
import { framesOfMultiFrame, isEnhanced } from './multiframe.ts';
import { NeedMoreBytes, parseDicom, type DicomDataSet, type ParsedDicom } from './parse.ts';
import { T } from './tags.ts';
import type { FileHeader, PixelFormat } from './types.ts';

/** A DICOM file without image pixel data (DICOMDIR, structured report...): skipped in folders. */
export class NotAnImageError extends VolumeReadError {}

const FIRST_READ = 64 * 1024;

/** Read and parse the header of a file, reading only as much of it as the header needs. */
export function readHeaderBytes(file: string): { parsed: ParsedDicom; prefix: Uint8Array; fileSize: number } {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (e) {
    throw new VolumeReadError(file, `cannot open (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  try {
    const fileSize = fstatSync(fd).size;
    let want = Math.min(fileSize, FIRST_READ);
    for (;;) {
      const buf = new Uint8Array(want);
      let got = 0;
      while (got < want) {
        const n = readSync(fd, buf, got, want - got, got);
        if (n <= 0) break;
        got += n;
      }
      const prefix = got < want ? buf.subarray(0, got) : buf;
      const complete = got >= fileSize || got < want;
      try {
        return { parsed: parseDicom(prefix, { file, fileSize, complete }), prefix, fileSize };
      } catch (e) {
        if (!(e instanceof NeedMoreBytes) || complete) throw e;
        want = Math.min(fileSize, want * 16);
      }
    }
  } finally {
    closeSync(fd);
  }
}

export function readFileHeader(file: string): FileHeader {
  const { parsed, fileSize } = readHeaderBytes(file);
  return buildFileHeader(parsed, file, fileSize);
}

function need(ds: DicomDataSet, t: number, name: string, file: string): number {
  const v = getNumber(ds, t);
  if (v === undefined || !Number.isFinite(v)) throw new VolumeReadError(file, `missing or invalid ${name} attribute`);
  return v;
}

function pixelFormat(ds: DicomDataSet, file: string): PixelFormat {
  const rows = need(ds, T.Rows, 'Rows (0028,0010)', file);
  const columns = need(ds, T.Columns, 'Columns (0028,0011)', file);
  if (!Number.isInteger(rows) || !Number.isInteger(columns) || rows < 1 || columns < 1)
    throw new VolumeReadError(file, `invalid image size ${columns}x${rows}`);
  const ba = need(ds, T.BitsAllocated, 'BitsAllocated (0028,0100)', file);
  if (ba !== 8 && ba !== 16 && ba !== 32)
    throw new VolumeReadError(file, `BitsAllocated ${ba} is not supported (8, 16 or 32)`);
  const bitsStored = getNumber(ds, T.BitsStored) ?? ba;
  if (!Number.isInteger(bitsStored) || bitsStored < 1 || bitsStored > ba)
    throw new VolumeReadError(file, `invalid BitsStored ${bitsStored} for BitsAllocated ${ba}`);
  let highBit = getNumber(ds, T.HighBit) ?? bitsStored - 1;
  if (!Number.isInteger(highBit) || highBit >= ba || highBit + 1 < bitsStored) highBit = bitsStored - 1;
  const pr = getNumber(ds, T.PixelRepresentation) ?? 0;
  if (pr !== 0 && pr !== 1) throw new VolumeReadError(file, `invalid PixelRepresentation ${pr}`);
  const spp = getNumber(ds, T.SamplesPerPixel) ?? 1;
  if (spp !== 1)
    throw new VolumeReadError(file, `SamplesPerPixel ${spp} (colour) is not supported: only greyscale images are read`);
  const photometric = (getString(ds, T.PhotometricInterpretation) ?? 'MONOCHROME2').toUpperCase();
  if (photometric !== 'MONOCHROME1' && photometric !== 'MONOCHROME2')
    throw new VolumeReadError(file, `PhotometricInterpretation ${photometric} is not supported (greyscale only)`);
  return { rows, columns, bitsAllocated: ba, bitsStored, highBit, pixelRepresentation: pr, photometric };
}

export function buildFileHeader(parsed: ParsedDicom, file: string, fileSize: number): FileHeader {
  const ds = parsed.dataset;
  const pixel = parsed.pixelData;
  if (!pixel) {
    const sop = getString(ds, T.SOPClassUID);
    throw new NotAnImageError(file, `no Pixel Data: not an image${sop ? ` (SOP class ${sop})` : ''}`);
  }
  const format = pixelFormat(ds, file);
  const nfRaw = getNumber(ds, T.NumberOfFrames);
  const numberOfFrames = nfRaw === undefined ? 1 : nfRaw;
  if (!Number.isInteger(numberOfFrames) || numberOfFrames < 1)
    throw new VolumeReadError(file, `invalid NumberOfFrames ${nfRaw}`);
  const available = (parsed.deflated ? ds.bytes.length : fileSize) - pixel.valueOffset;
  if (parsed.syntax.encoding === 'native') {
    if (pixel.length === null)
      throw new VolumeReadError(file, `Pixel Data is encapsulated but the transfer syntax ${parsed.syntax.uid} is not`);
    const frameBytes = format.rows * format.columns * (format.bitsAllocated / 8);
    const needed = frameBytes * numberOfFrames;
    if (needed > pixel.length)
      throw new VolumeReadError(
        file,
        `Pixel Data has ${pixel.length} bytes but ${format.columns}x${format.rows}x${numberOfFrames} frames of ${format.bitsAllocated} bits need ${needed}`,
      );
  } else if (parsed.syntax.encoding !== 'unsupported') {
    if (pixel.length !== null)
      throw new VolumeReadError(
        file,
        `Pixel Data is not encapsulated but the transfer syntax ${parsed.syntax.uid} is compressed`,
      );
    if (numberOfFrames * 8 > available)
      throw new VolumeReadError(
        file,
        `NumberOfFrames ${numberOfFrames} is more than the encapsulated Pixel Data can hold`,
      );
  }
  const notes: string[] = [];
  const header: FileHeader = {
    file,
    fileSize,
    syntax: parsed.syntax,
    pixel,
    deflated: parsed.deflated,
    seriesUid: getString(ds, T.SeriesInstanceUID) ?? '',
    sopInstanceUid: getString(ds, T.SOPInstanceUID) ?? '',
    studyUid: getString(ds, T.StudyInstanceUID),
    frameOfReferenceUid: getString(ds, T.FrameOfReferenceUID),
    modality: (getString(ds, T.Modality) ?? '').toUpperCase(),
    description: getString(ds, T.SeriesDescription) ?? '',
    seriesNumber: getNumber(ds, T.SeriesNumber),
    instanceNumber: getNumber(ds, T.InstanceNumber),
    gantryTilt: getNumber(ds, T.GantryDetectorTilt),
    imageType: getStrings(ds, T.ImageType).map((x) => x.toUpperCase()),
    format,
    numberOfFrames,
    frames: [],
    notes,
  };
  if (numberOfFrames > 1 || isEnhanced(ds)) {
    header.frames = framesOfMultiFrame(ds, header, notes);
  } else {
    header.frames = [{ header, frameIndex: 0, ...classicFrameValues(ds, notes) }];
  }
  return header;
}
