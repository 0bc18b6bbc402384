/**
 * NIfTI reader (NIfTI-1 and NIfTI-2, `.nii` and `.nii.gz`, either byte order) and writer
 * (NIfTI-1, little-endian, `.nii` or `.nii.gz`). Header layout and orientation rules live in
 * nifti-header.ts; see there for the sform / qform / pixdim precedence and RAS -> LPS.
 *
 * Voxels: uint8, int8, int16, uint16, int32, uint32, float32 and float64 keep their type;
 * int64 / uint64 become float64 with a warning; RGB, complex, binary and float128 are refused.
 * scl_slope / scl_inter: when the slope is finite, non-zero and (slope, inter) is not (1, 0),
 * the data are returned as float32 = raw * slope + inter (float64 for float64 raw), as ITK does;
 * otherwise the raw type is kept.
 *
 * Dimensions: dim[0] 1..5. 4-D files are read when dim[4] == 1 (a time series is refused).
 * dim[5] > 1 holds vector components (intent NIFTI_INTENT_VECTOR 1007 or DISPVECT 1006), stored
 * in the file as planes (all voxels of component 0, then 1, ...) and interleaved in the Volume.
 *
 * Vector convention, as ITK >= 5.4 reads (NiftiImageIO, ConvertRASDisplacementVectors on by default):
 * - intent DISPVECT (1006) with 3 components holds vectors in RAS (the NIfTI world, as nibabel,
 *   FSL and NiftyReg expect): x and y are negated on reading to give LPS vectors;
 * - any other vector intent (VECTOR 1007, what ITK and ANTs write) is taken as LPS, unchanged.
 * writeNifti stores vectors as VECTOR (1007), unchanged: the product's displacement fields in LPS mm.
 * Every ITK reads that the same way (ITK before 5.4, e.g. the elastix / transformix 5.0 of Debian
 * 12, reads a DISPVECT file as a scalar image: all three components equal, tens of mm wrong), as do
 * ANTs and elastix; a NIfTI reader that does not know ITK's convention gets LPS components, as
 * documented.
 *
 * Writer geometry: qform and sform both with code 1 (scanner), from origin / spacing / direction
 * converted to RAS; pixdim = spacing, qfac = pixdim[0] = +-1, xyzt_units = mm. Header fields are
 * float32, so geometry round-trips to float32 precision: origin to ~6e-8 relative (1e-4 mm at
 * 1 m), spacing to ~6e-8 relative, direction to ~1e-7. Voxels round-trip bit-exactly, and
 * write -> read -> write gives identical bytes, oblique directions included (see niftiGeometry).
 */
import { gzipSync } from 'node:zlib';
import { gzipParallel } from '../../util/gzip-parallel.ts';
import { VolumeWriteError, wrapReadErrors } from '../../errors.ts';
import { writeFileAtomic } from '../../util/atomic-write.ts';
import { geometryProblem } from '../geometry.ts';
import { allocateVoxels, makeVolume, voxelTypeOf, type Volume, type VoxelArray, type VoxelType } from '../volume.ts';
import {
  checkedCount,
  elementsFromBytes,
  fail,
  gunzipPrefix,
  inflateBounded,
  interleave,
  isGzip,
  littleEndianBytes,
  readFileBytes,
  voxelTypeFor,
  ELEMENT_SIZE,
  MAX_DATA_BYTES,
  type ElementType,
} from './bytes.ts';
import {
  encodeNifti1Header,
  niftiGeometry,
  niftiOrientationFields,
  niftiVersion,
  parseNiftiHeader,
  NIFTI2_HEADER_SIZE,
  NIFTI_INTENT_DISPVECT,
  NIFTI_INTENT_VECTOR,
  type NiftiHeader,
} from './nifti-header.ts';

/** NIfTI datatype codes of the element types read and written here. */
const DATATYPES: Record<number, ElementType> = {
  2: 'uint8',
  4: 'int16',
  8: 'int32',
  16: 'float32',
  64: 'float64',
  256: 'int8',
  512: 'uint16',
  768: 'uint32',
  1024: 'int64',
  1280: 'uint64',
};
const REFUSED: Record<number, string> = {
  0: 'unknown (0)',
  1: 'binary (1 bit)',
  32: 'complex64',
  128: 'RGB24',
  1536: 'float128',
  1792: 'complex128',
  2048: 'complex256',
  2304: 'RGBA32',
};
const CODE_OF: Record<VoxelType, number> = {
  uint8: 2,
  int16: 4,
  int32: 8,
  float32: 16,
  float64: 64,
  int8: 256,
  uint16: 512,
  uint32: 768,
};

interface Layout {
  size: [number, number, number];
  components: number;
  count: number;
  type: ElementType;
  offset: number;
}

/** Sizes, element type and data offset of a header, all checked (but not yet against the file). */
function layoutOf(file: string, h: NiftiHeader): Layout {
  const dim = h.dim;
  const nd = dim[0];
  if (!Number.isInteger(nd) || nd < 1 || nd > 7) fail(file, `invalid dim[0] = ${nd} (must be 1..7)`);
  if (nd > 5) fail(file, `${nd}-D NIfTI images are not supported (at most 5-D: x, y, z, time = 1, components)`);
  const at = (i: number) => (i <= nd ? dim[i] : 1);
  const size: [number, number, number] = [at(1), at(2), at(3)];
  const nt = at(4);
  const components = at(5);
  checkedCount(file, [...size, nt, components], 'dimensions');
  if (nt > 1) fail(file, `4-D time series (${nt} volumes) are not supported: extract one volume`);
  if (components > 16) fail(file, `${components} components per voxel are not supported`);
  const type = DATATYPES[h.datatype];
  if (!type) fail(file, `unsupported NIfTI datatype ${REFUSED[h.datatype] ?? h.datatype}`);
  const offset = h.voxOffset;
  const min = h.version === 1 ? 348 : NIFTI2_HEADER_SIZE;
  if (!Number.isFinite(offset) || offset < min || offset > MAX_DATA_BYTES)
    fail(file, `invalid vox_offset ${offset} (must be at least ${min})`);
  const count = size[0] * size[1] * size[2] * components;
  if (count * ELEMENT_SIZE[type] > MAX_DATA_BYTES) fail(file, `image of ${count} ${type} values is too large`);
  return { size, components, count, type, offset: Math.floor(offset) };
}

/** Read a `.nii` or `.nii.gz` file (see the file comment for conventions). Throws VolumeReadError. */
export function readNifti(path: string): Volume {
  return wrapReadErrors(path, () => {
    const raw = readFileBytes(path);
    const gz = isGzip(raw);
    const head = gz ? gunzipPrefix(path, raw, NIFTI2_HEADER_SIZE) : raw;
    if (!niftiVersion(head))
      fail(
        path,
        gz
          ? 'not a NIfTI file (gzip data without a NIfTI header)'
          : 'not a NIfTI file (sizeof_hdr is neither 348 nor 540)',
      );
    const h = parseNiftiHeader(path, head);
    const warnings: string[] = [];
    const lay = layoutOf(path, h);
    const dataBytes = lay.count * ELEMENT_SIZE[lay.type];
    const bytes = gz ? inflateBounded(path, 'gzip', raw, lay.offset + dataBytes, 'gzip', 1 << 20) : raw;
    if (bytes.length < lay.offset + dataBytes)
      fail(
        path,
        `truncated: ${Math.max(0, bytes.length - lay.offset)} data bytes after vox_offset ${lay.offset}, ${lay.size.join('x')}${lay.components > 1 ? ` x ${lay.components}` : ''} ${lay.type} needs ${dataBytes}`,
      );
    const geom = niftiGeometry(path, h, warnings);

    let data: VoxelArray = elementsFromBytes(path, bytes, lay.offset, lay.count, lay.type, h.littleEndian);
    const conv = voxelTypeFor(lay.type);
    if (conv.warning) warnings.push(conv.warning);
    data = applyScaling(data, h, warnings);
    if (lay.components > 1) {
      data = interleave(data, lay.components);
      if (h.intentCode === NIFTI_INTENT_DISPVECT && lay.components === 3) {
        if (data instanceof Uint8Array || data instanceof Uint16Array || data instanceof Uint32Array)
          warnings.push('unsigned displacement vectors cannot be converted from RAS to LPS: left as stored');
        else flipVectorsXY(data);
      } else if (h.intentCode !== NIFTI_INTENT_VECTOR)
        warnings.push(
          `dim[5] = ${lay.components} with intent ${h.intentCode}: read as ${lay.components}-component vectors, taken as LPS`,
        );
    }
    const problem = geometryProblem({ size: lay.size, ...geom });
    if (problem) fail(path, problem);
    return makeVolume({
      size: lay.size,
      spacing: geom.spacing,
      origin: geom.origin,
      direction: geom.direction,
      components: lay.components,
      data,
      meta: { source: path, description: h.descrip || undefined, warnings },
    });
  });
}

/** scl_slope / scl_inter as documented above (non-finite values count as absent, as nifti_clib). */
function applyScaling(data: VoxelArray, h: NiftiHeader, warnings: string[]): VoxelArray {
  const slope = Number.isFinite(h.sclSlope) ? h.sclSlope : 0;
  const inter = Number.isFinite(h.sclInter) ? h.sclInter : 0;
  if (slope === 0 || (slope === 1 && inter === 0)) return data;
  const out = allocateVoxels(data instanceof Float64Array ? 'float64' : 'float32', data.length);
  for (let i = 0; i < data.length; i++) out[i] = data[i] * slope + inter;
  warnings.push(`scl_slope ${slope} / scl_inter ${inter} applied: values converted to ${voxelTypeOf(out)}`);
  return out;
}

/** Negate the x and y components of interleaved 3-vectors (RAS <-> LPS), in place. */
function flipVectorsXY(data: VoxelArray): void {
  for (let i = 0; i < data.length; i += 3) {
    data[i] = -data[i];
    data[i + 1] = -data[i + 1];
  }
}

export interface NiftiWriteOptions {
  /** Paths that must never be overwritten (the inputs). */
  protect?: string[];
  /** Header description (80 bytes at most); default: the volume's description. */
  description?: string;
}

/** Encode a volume as NIfTI-1 bytes (uncompressed). */
export function encodeNifti(vol: Volume, description?: string): Uint8Array[] {
  const type = voxelTypeOf(vol.data);
  const nc = vol.components;
  const big = [...vol.size, nc].find((n) => n > 32767);
  if (big !== undefined) throw new Error(`dimension ${big} does not fit a NIfTI-1 header (at most 32767)`);
  const problem = geometryProblem(vol);
  if (problem) throw new Error(problem);
  const o = niftiOrientationFields(vol);
  const intent = nc === 1 ? 0 : NIFTI_INTENT_VECTOR;
  const header = encodeNifti1Header({
    dim: nc === 1 ? [3, ...vol.size, 1, 1, 1, 1] : [5, ...vol.size, 1, nc, 1, 1],
    intentCode: intent,
    datatype: CODE_OF[type],
    bitpix: vol.data.BYTES_PER_ELEMENT * 8,
    pixdim: [o.qfac, ...vol.spacing, 1, 1, 1, 1],
    voxOffset: 352,
    sclSlope: 1,
    sclInter: 0,
    xyztUnits: 2, // NIFTI_UNITS_MM
    descrip: description ?? vol.meta.description ?? 'sam-workstation',
    qformCode: 1,
    sformCode: 1,
    quatern: o.quatern,
    qoffset: o.qoffset,
    srow: o.srow,
  });
  return [header, littleEndianBytes(interleave(vol.data, nc, true))];
}

/**
 * Write `.nii` or `.nii.gz` (by extension), atomically; `.gz` is compressed on zlib's thread pool
 * (gzip-parallel.ts: one standard gzip member). Rejects with VolumeWriteError.
 */
export async function writeNifti(path: string, vol: Volume, options: NiftiWriteOptions = {}): Promise<void> {
  const { chunks, gz } = niftiFile(path, vol, options);
  let out = chunks;
  try {
    if (gz) out = await gzipParallel(chunks);
  } catch (e) {
    throw encodeError(path, e);
  }
  writeFileAtomic(path, out, { protect: options.protect });
}

/** writeNifti on this thread (zlib's one-call gzip): for small files and synchronous callers. */
export function writeNiftiSync(path: string, vol: Volume, options: NiftiWriteOptions = {}): void {
  const { chunks, gz } = niftiFile(path, vol, options);
  let out = chunks;
  try {
    if (gz) out = [gzipSync(Buffer.concat(chunks))];
  } catch (e) {
    throw encodeError(path, e);
  }
  writeFileAtomic(path, out, { protect: options.protect });
}

/** The file name checked and the volume encoded (not yet compressed). */
function niftiFile(path: string, vol: Volume, options: NiftiWriteOptions): { chunks: Uint8Array[]; gz: boolean } {
  const lower = path.toLowerCase();
  if (!lower.endsWith('.nii') && !lower.endsWith('.nii.gz'))
    throw new VolumeWriteError(path, 'a NIfTI file name must end in .nii or .nii.gz');
  try {
    return { chunks: encodeNifti(vol, options.description), gz: lower.endsWith('.gz') };
  } catch (e) {
    throw encodeError(path, e);
  }
}

function encodeError(path: string, e: unknown): VolumeWriteError {
  return new VolumeWriteError(path, `cannot encode as NIfTI (${(e as Error).message})`, { cause: e });
}
