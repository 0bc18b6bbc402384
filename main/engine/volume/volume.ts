/**
 * The Volume type: one convention for the whole product, modelled on itk-wasm's Image.
 *
 * - World coordinates are millimetres in LPS (x grows to the patient's Left, y to Posterior,
 *   z to Superior), as in DICOM and ITK.
 * - `size` is [ni, nj, nk]; index (i, j, k) addresses voxel centres.
 * - `direction` is a 3x3 matrix stored row-major (`direction[r * 3 + c]`); its column c is the
 *   unit world direction of index axis c. It is orthonormal (det +1 or -1).
 * - world = origin + direction * diag(spacing) * [i, j, k]  (see geometry.ts; never inline it).
 * - `data` is flat with i fastest, then j, then k (NIfTI / ITK / VTK order); for vector images
 *   the `components` of one voxel are adjacent:  offset = c + components * (i + ni * (j + nj * k)).
 * - The voxel type of the input is kept (int16 CT stays int16); values are HU for CT after
 *   any rescale slope/intercept has been applied.
 */

export type Vec3 = [number, number, number];
/** Row-major 3x3 matrix; column c = world direction of index axis c. */
export type Mat3 = [number, number, number, number, number, number, number, number, number];

export type VoxelArray =
  Int8Array | Uint8Array | Int16Array | Uint16Array | Int32Array | Uint32Array | Float32Array | Float64Array;

export type VoxelType = 'int8' | 'uint8' | 'int16' | 'uint16' | 'int32' | 'uint32' | 'float32' | 'float64';

/** Identity of the DICOM source, kept so that derived series stay with the patient and study. */
export interface DicomSourceInfo {
  /** Naturalised (dcmjs) top-level attributes of the first slice, without pixel data. */
  attributes: Record<string, unknown>;
}

export interface VolumeMeta {
  /** DICOM Modality when known ('CT', 'MR', ...); undefined for formats that do not record it. */
  modality?: string;
  /** Where the volume came from: a file path or a folder. */
  source?: string;
  /** Free-text description (SeriesDescription for DICOM). */
  description?: string;
  seriesInstanceUid?: string;
  /** Things the reader did that the user should know about (resampled gantry tilt, ...). */
  warnings: string[];
  /** Present when read from DICOM: what a derived series needs to keep. */
  dicom?: DicomSourceInfo;
}

export interface Volume<T extends VoxelArray = VoxelArray> {
  size: Vec3;
  spacing: Vec3;
  origin: Vec3;
  direction: Mat3;
  components: number;
  data: T;
  meta: VolumeMeta;
}

export const IDENTITY3: Mat3 = [1, 0, 0, 0, 1, 0, 0, 0, 1];

export function voxelTypeOf(data: VoxelArray): VoxelType {
  if (data instanceof Int8Array) return 'int8';
  if (data instanceof Uint8Array) return 'uint8';
  if (data instanceof Int16Array) return 'int16';
  if (data instanceof Uint16Array) return 'uint16';
  if (data instanceof Int32Array) return 'int32';
  if (data instanceof Uint32Array) return 'uint32';
  if (data instanceof Float32Array) return 'float32';
  return 'float64';
}

export function allocateVoxels(type: VoxelType, length: number): VoxelArray {
  switch (type) {
    case 'int8':
      return new Int8Array(length);
    case 'uint8':
      return new Uint8Array(length);
    case 'int16':
      return new Int16Array(length);
    case 'uint16':
      return new Uint16Array(length);
    case 'int32':
      return new Int32Array(length);
    case 'uint32':
      return new Uint32Array(length);
    case 'float32':
      return new Float32Array(length);
    case 'float64':
      return new Float64Array(length);
  }
}

export function voxelCount(size: Vec3): number {
  return size[0] * size[1] * size[2];
}

/** Build a volume, checking that data length and geometry are consistent (see geometry.ts). */
export function makeVolume<T extends VoxelArray>(v: {
  size: Vec3;
  spacing: Vec3;
  origin: Vec3;
  direction?: Mat3;
  components?: number;
  data: T;
  meta?: Partial<VolumeMeta>;
}): Volume<T> {
  const components = v.components ?? 1;
  const expected = voxelCount(v.size) * components;
  if (v.data.length !== expected) {
    throw new RangeError(
      `volume data has ${v.data.length} values, size ${v.size.join('x')} x ${components} needs ${expected}`,
    );
  }
  return {
    size: [...v.size] as Vec3,
    spacing: [...v.spacing] as Vec3,
    origin: [...v.origin] as Vec3,
    direction: [...(v.direction ?? IDENTITY3)] as Mat3,
    components,
    data: v.data,
    meta: { warnings: [], ...v.meta },
  };
}

/** Same geometry, new data (and optionally another component count). */
export function withData<T extends VoxelArray>(
  like: Volume,
  data: T,
  components = like.components,
  meta: Partial<VolumeMeta> = {},
): Volume<T> {
  return makeVolume({
    size: like.size,
    spacing: like.spacing,
    origin: like.origin,
    direction: like.direction,
    components,
    data,
    meta: { ...like.meta, warnings: [...like.meta.warnings], ...meta },
  });
}

/** Minimum and maximum of the data (NaN ignored). */
export function valueRange(data: ArrayLike<number>): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (let n = 0; n < data.length; n++) {
    const v = data[n];
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return [lo, hi];
}
