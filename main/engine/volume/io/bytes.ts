/**
 * Shared helpers of the file-format readers and writers (NIfTI, MetaImage, VTI, NRRD):
 * reading files with typed errors, bounded decompression, element types and typed arrays from
 * bytes of either endianness, and the checks that turn header geometry into a valid Volume
 * geometry (spacing, orthonormal direction, finite origin).
 *
 * Rule of every reader here: no allocation is sized from an unchecked header value. Sizes from
 * headers are compared with the bytes actually available (or, for compressed data, with what
 * those bytes can at most inflate to) before anything is allocated.
 */
import { readFileSync } from 'node:fs';
import { gunzipSync, inflateSync, unzipSync, constants as zc } from 'node:zlib';
import { VolumeReadError } from '../../errors.ts';
import { column, fromColumns, geometryProblem, mul3, norm, orthonormalize, scale, transpose3 } from '../geometry.ts';
import { ORTHONORMAL_TOLERANCE } from '../geometry.ts';
import type { Mat3, Vec3, VoxelArray, VoxelType } from '../volume.ts';

/** Element types found in files: the voxel types plus 64-bit integers (read as float64). */
export type ElementType = VoxelType | 'int64' | 'uint64';

export const ELEMENT_SIZE: Record<ElementType, number> = {
  int8: 1,
  uint8: 1,
  int16: 2,
  uint16: 2,
  int32: 4,
  uint32: 4,
  float32: 4,
  float64: 8,
  int64: 8,
  uint64: 8,
};

export const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Deflate cannot expand data by more than about 1032:1; used to bound what compressed bytes can hold. */
export const MAX_INFLATE_RATIO = 1032;

/** Largest number of data bytes any reader here accepts (the largest Node buffer). */
export const MAX_DATA_BYTES = 2 ** 32 - 1;

/** Throwing shorthand for readers: `fail(file, 'problem')`. */
export function fail(file: string, problem: string): never {
  throw new VolumeReadError(file, problem);
}

/** Whole file as bytes, with a VolumeReadError naming the file when it cannot be read. */
export function readFileBytes(file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') fail(file, 'no such file');
    if (code === 'EISDIR') fail(file, 'is a folder, not a file');
    if (code === 'ERR_FS_FILE_TOO_LARGE') fail(file, 'file too large to read (over 2 GiB)');
    return fail(file, `cannot read file (${(e as Error).message})`);
  }
}

export function isGzip(b: Uint8Array): boolean {
  return b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b;
}

/**
 * Inflate gzip ('gzip'), zlib ('zlib') or either ('auto') data, expecting `expected` bytes.
 * Refuses before inflating when the compressed bytes cannot hold that much, never produces more
 * than `expected + slack` bytes, and reports corrupt or truncated streams as VolumeReadError.
 * Returns at least `expected` bytes (more only when the stream holds trailing data within slack).
 */
export function inflateBounded(
  file: string,
  what: string,
  compressed: Uint8Array,
  expected: number,
  kind: 'gzip' | 'zlib' | 'auto',
  slack = 0,
): Buffer {
  if (expected > compressed.length * MAX_INFLATE_RATIO + 1024)
    fail(
      file,
      `${what}: ${compressed.length} compressed bytes cannot hold the ${expected} bytes the header describes (truncated file or corrupt header)`,
    );
  const opts = { maxOutputLength: Math.max(1, Math.min(expected + slack, MAX_DATA_BYTES)) };
  let out: Buffer;
  try {
    out =
      kind === 'gzip'
        ? gunzipSync(compressed, opts)
        : kind === 'zlib'
          ? inflateSync(compressed, opts)
          : unzipSync(compressed, opts);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ERR_BUFFER_TOO_LARGE')
      return fail(file, `${what}: compressed data holds more than the ${expected} bytes the header describes`);
    return fail(file, `${what}: corrupt or truncated ${kind === 'auto' ? 'zlib/gzip' : kind} data (${err.message})`);
  }
  if (out.length < expected)
    fail(file, `${what}: truncated: decompressed ${out.length} bytes, the header describes ${expected}`);
  return out;
}

/**
 * The first `want` bytes of a gzip stream, for reading a header inside a .gz file before deciding
 * how much to inflate. Inflates growing prefixes of the compressed bytes (whose output is bounded
 * by MAX_INFLATE_RATIO, so this never allocates more than ~1 MiB for a normal header); returns
 * fewer bytes only when the whole stream holds fewer. Corrupt data gives a VolumeReadError.
 */
export function gunzipPrefix(file: string, gz: Uint8Array, want: number): Buffer {
  for (let p = 1024; ; p *= 8) {
    const chunk = gz.subarray(0, Math.min(gz.length, p));
    let out: Buffer;
    try {
      out = gunzipSync(chunk, {
        finishFlush: zc.Z_SYNC_FLUSH,
        maxOutputLength: chunk.length * MAX_INFLATE_RATIO + (1 << 16),
      });
    } catch (e) {
      return fail(file, `corrupt gzip data (${(e as Error).message})`);
    }
    if (out.length >= want || chunk.length === gz.length) return out.subarray(0, want);
  }
}

/**
 * Typed array of `count` elements of `type` from `bytes` at `offset`, in the file's byte order.
 * Always copies (the result owns an aligned buffer). 64-bit integers become float64 (exact up to
 * 2^53). The caller has checked that the bytes are there; this re-checks as a safety net.
 */
export function elementsFromBytes(
  file: string,
  bytes: Uint8Array,
  offset: number,
  count: number,
  type: ElementType,
  littleEndian: boolean,
): VoxelArray {
  const size = ELEMENT_SIZE[type];
  const n = count * size;
  if (!Number.isSafeInteger(offset) || offset < 0 || offset + n > bytes.length)
    fail(
      file,
      `truncated data: needs ${n} bytes at offset ${offset}, the file has ${Math.max(0, bytes.length - offset)}`,
    );
  const copy = new Uint8Array(n);
  copy.set(bytes.subarray(offset, offset + n));
  if (size > 1 && littleEndian !== HOST_LITTLE_ENDIAN) swapBytes(copy, size);
  switch (type) {
    case 'int8':
      return new Int8Array(copy.buffer);
    case 'uint8':
      return copy;
    case 'int16':
      return new Int16Array(copy.buffer);
    case 'uint16':
      return new Uint16Array(copy.buffer);
    case 'int32':
      return new Int32Array(copy.buffer);
    case 'uint32':
      return new Uint32Array(copy.buffer);
    case 'float32':
      return new Float32Array(copy.buffer);
    case 'float64':
      return new Float64Array(copy.buffer);
    case 'int64':
    case 'uint64': {
      const src = type === 'int64' ? new BigInt64Array(copy.buffer) : new BigUint64Array(copy.buffer);
      const out = new Float64Array(count);
      for (let i = 0; i < count; i++) out[i] = Number(src[i]);
      return out;
    }
  }
}

/** Reverse the byte order of each `size`-byte element, in place. */
export function swapBytes(b: Uint8Array, size: number): void {
  for (let i = 0; i + size <= b.length; i += size)
    for (let a = i, z = i + size - 1; a < z; a++, z--) {
      const t = b[a];
      b[a] = b[z];
      b[z] = t;
    }
}

/** Little-endian bytes of a typed array (a view when the host is little-endian, else a swapped copy). */
export function littleEndianBytes(a: VoxelArray): Uint8Array {
  const view = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  if (HOST_LITTLE_ENDIAN || a.BYTES_PER_ELEMENT === 1) return view;
  const copy = view.slice();
  swapBytes(copy, a.BYTES_PER_ELEMENT);
  return copy;
}

/** The voxel type an element type is read into, and a warning when it is converted. */
export function voxelTypeFor(type: ElementType): { type: VoxelType; warning?: string } {
  if (type === 'int64' || type === 'uint64')
    return { type: 'float64', warning: `${type} voxels converted to float64 (exact up to 2^53)` };
  return { type };
}

/**
 * Checked number of elements of a grid: every size a positive integer and the product a safe
 * integer no larger than MAX_DATA_BYTES. `sizes` may include the component count.
 */
export function checkedCount(file: string, sizes: number[], what = 'size'): number {
  let n = 1;
  for (const s of sizes) {
    if (!Number.isInteger(s) || s < 1) fail(file, `invalid ${what} ${sizes.join('x')}`);
    n *= s;
    if (n > MAX_DATA_BYTES) fail(file, `${what} ${sizes.join('x')} is too large`);
  }
  return n;
}

/** Largest |D^T D - I| entry of a 3x3 matrix (0 for an exactly orthonormal one). */
export function orthonormalityError(d: Mat3): number {
  const dtd = mul3(transpose3(d), d);
  let e = 0;
  for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) e = Math.max(e, Math.abs(dtd[i * 3 + j] - (i === j ? 1 : 0)));
  return Number.isNaN(e) ? Infinity : e;
}

/** Directions orthonormal up to this are accepted after re-orthonormalisation (rounded headers). */
export const DIRECTION_REPAIR_TOLERANCE = 1e-3;
/** Below this the direction is kept exactly as read (float32 headers are accurate to ~1e-7). */
const DIRECTION_KEEP_TOLERANCE = 1e-6;

/**
 * Validate a direction matrix read from a header (columns = index axes, any length): columns
 * are normalised; a matrix orthonormal up to header rounding (1e-3) is re-orthonormalised (with
 * a warning past ORTHONORMAL_TOLERANCE); anything else (shear, degenerate axes) is refused.
 */
export function checkedDirection(file: string, d: Mat3, warnings: string[], what = 'direction'): Mat3 {
  if (!d.every(Number.isFinite)) fail(file, `invalid ${what} (${d.join(', ')})`);
  const cols = [0, 1, 2].map((c) => column(d, c));
  if (cols.some((c) => !(norm(c) > 0))) fail(file, `invalid ${what}: an axis has zero length (${d.join(', ')})`);
  let u = fromColumns(...(cols.map((c) => scale(c, 1 / norm(c))) as [Vec3, Vec3, Vec3]));
  const err = orthonormalityError(u);
  if (err > DIRECTION_REPAIR_TOLERANCE)
    fail(file, `${what} is not orthonormal (axes not perpendicular: ${u.map((x) => +x.toFixed(6)).join(', ')})`);
  if (err > DIRECTION_KEEP_TOLERANCE) {
    if (err > ORTHONORMAL_TOLERANCE) warnings.push(`${what} re-orthonormalised (deviation ${err.toExponential(1)})`);
    u = orthonormalize(u);
  }
  return u.map((x) => x + 0) as Mat3; // no -0 entries
}

/**
 * Geometry from an index-to-world 3x3 matrix whose columns are axis direction x spacing (LPS)
 * and an origin: spacing = column norms, direction = normalised columns (see checkedDirection).
 */
export function geometryFromColumns(
  file: string,
  m: Mat3,
  origin: Vec3,
  warnings: string[],
  what = 'orientation matrix',
): { spacing: Vec3; direction: Mat3; origin: Vec3 } {
  const spacing = [0, 1, 2].map((c) => norm(column(m, c))) as Vec3;
  checkSpacing(file, spacing, `${what} column lengths`);
  checkOrigin(file, origin);
  return { spacing, direction: checkedDirection(file, m, warnings, what), origin: origin.map((x) => x + 0) as Vec3 };
}

export function checkSpacing(file: string, spacing: number[], what = 'spacing'): void {
  if (!spacing.every((s) => Number.isFinite(s) && s > 0))
    fail(file, `invalid ${what} ${spacing.join(', ')} (must be positive and finite)`);
}

export function checkOrigin(file: string, origin: number[]): void {
  if (!origin.every(Number.isFinite)) fail(file, `invalid origin ${origin.join(', ')}`);
}

/** Last check before a reader returns: the geometry module's own validation. */
export function assertGeometry(file: string, g: { size: Vec3; spacing: Vec3; origin: Vec3; direction: Mat3 }): void {
  const problem = geometryProblem(g);
  if (problem) fail(file, problem);
}

/** Shortest decimal text that reads back to exactly the same double (for text headers). */
export function formatNumber(x: number): string {
  return Object.is(x, -0) ? '0' : String(x);
}

/**
 * Parse whitespace-separated finite numbers of a header value; null when any token is not a
 * finite number or the count differs from `count` (when given).
 */
export function parseNumbers(text: string, count?: number): number[] | null {
  const tokens = text
    .trim()
    .split(/[\s,]+/)
    .filter(Boolean);
  if (count !== undefined && tokens.length !== count) return null;
  const out = tokens.map(Number);
  return out.every(Number.isFinite) ? out : null;
}

/** ASCII/Latin-1 text of bytes (header text; never fails). */
export function latin1(b: Uint8Array, start = 0, end = b.length): string {
  return Buffer.from(b.buffer, b.byteOffset + start, Math.max(0, end - start)).toString('latin1');
}

/**
 * Interleave planar components (all voxels of component 0, then 1, ...) into the Volume layout
 * (components of one voxel adjacent), or the reverse with `toPlanar`.
 */
export function interleave<T extends VoxelArray>(src: T, components: number, toPlanar = false): T {
  if (components === 1) return src;
  const n = src.length / components;
  const out = new (src.constructor as new (len: number) => T)(src.length);
  for (let c = 0; c < components; c++)
    for (let v = 0; v < n; v++) {
      if (toPlanar) out[c * n + v] = src[v * components + c];
      else out[v * components + c] = src[c * n + v];
    }
  return out;
}
