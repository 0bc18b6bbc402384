/**
 * NIfTI-1 / NIfTI-2 header layout: parse either version in either byte order, encode a NIfTI-1
 * header, and convert between the header's orientation fields and a Volume geometry.
 *
 * Orientation precedence when reading (nibabel's `get_best_affine`, which matches the intent of
 * the NIfTI standard): the sform when sform_code > 0, else the qform when qform_code > 0, else
 * the standard's "method 1" (pixdim scaling only, origin 0) with a warning. An sform whose 3x3
 * part is not a rotation times per-axis scales (shear or non-perpendicular axes) cannot be held
 * by a Volume: the qform is used instead with a warning when qform_code > 0, otherwise the file is
 * refused. When both forms are valid, the direction is oblique and the two describe the same grid
 * to float32 rounding, the qform's exact rotation and pixdim spacing stand for the sform (a
 * difference below 1e-5 that makes re-writing stable).
 *
 * NIfTI world coordinates are RAS; Volume world is LPS, so the first two rows of the affine (and
 * the origin's x, y) are negated. The fallback method 1 is read as RAS too (as ITK does).
 */
import type { Mat3, Vec3 } from '../volume.ts';
import { det3 } from '../geometry.ts';
import { fail, geometryFromColumns, orthonormalityError, DIRECTION_REPAIR_TOLERANCE } from './bytes.ts';

export interface NiftiHeader {
  version: 1 | 2;
  littleEndian: boolean;
  /** dim[0..7] */
  dim: number[];
  intentCode: number;
  datatype: number;
  bitpix: number;
  /** pixdim[0..7]; pixdim[0] is qfac */
  pixdim: number[];
  voxOffset: number;
  sclSlope: number;
  sclInter: number;
  xyztUnits: number;
  descrip: string;
  qformCode: number;
  sformCode: number;
  /** quatern_b, c, d */
  quatern: Vec3;
  /** qoffset_x, y, z */
  qoffset: Vec3;
  /** srow_x, srow_y, srow_z (4 each) */
  srow: number[];
}

export const NIFTI1_HEADER_SIZE = 348;
export const NIFTI2_HEADER_SIZE = 540;
export const NIFTI_INTENT_DISPVECT = 1006;
export const NIFTI_INTENT_VECTOR = 1007;

function cString(b: Uint8Array, start: number, len: number): string {
  let end = start;
  while (end < start + len && b[end] !== 0) end++;
  return Buffer.from(b.buffer, b.byteOffset + start, end - start).toString('latin1');
}

/** Version and byte order from sizeof_hdr (348 or 540, possibly byte-swapped), or null. */
export function niftiVersion(b: Uint8Array): { version: 1 | 2; littleEndian: boolean } | null {
  if (b.length < 4) return null;
  const v = new DataView(b.buffer, b.byteOffset, 4);
  for (const le of [true, false]) {
    const n = v.getInt32(0, le);
    if (n === NIFTI1_HEADER_SIZE) return { version: 1, littleEndian: le };
    if (n === NIFTI2_HEADER_SIZE) return { version: 2, littleEndian: le };
  }
  return null;
}

/** Parse a NIfTI header from the first bytes of a file; refuses Analyze, .hdr/.img pairs, bad magic. */
export function parseNiftiHeader(file: string, b: Uint8Array): NiftiHeader {
  const ver = niftiVersion(b);
  if (!ver) return fail(file, 'not a NIfTI file (sizeof_hdr is neither 348 nor 540)');
  const { version, littleEndian: le } = ver;
  const size = version === 1 ? NIFTI1_HEADER_SIZE : NIFTI2_HEADER_SIZE;
  if (b.length < size) fail(file, `truncated NIfTI-${version} header (${b.length} of ${size} bytes)`);
  const v = new DataView(b.buffer, b.byteOffset, size);
  const f32 = (o: number) => v.getFloat32(o, le);
  const f64 = (o: number) => v.getFloat64(o, le);
  const i64 = (o: number) => {
    const x = v.getBigInt64(o, le);
    return x > BigInt(Number.MAX_SAFE_INTEGER) || x < -BigInt(Number.MAX_SAFE_INTEGER) ? NaN : Number(x);
  };
  if (version === 1) {
    const magic = cString(b, 344, 4);
    if (magic === 'ni1')
      fail(file, 'NIfTI header/image pair (.hdr/.img) is not supported: convert it to a single .nii file');
    if (magic !== 'n+1')
      fail(file, `not a single-file NIfTI-1 (magic "${magic}"; Analyze 7.5 files are not supported)`);
    return {
      version,
      littleEndian: le,
      dim: Array.from({ length: 8 }, (_, i) => v.getInt16(40 + 2 * i, le)),
      intentCode: v.getInt16(68, le),
      datatype: v.getInt16(70, le),
      bitpix: v.getInt16(72, le),
      pixdim: Array.from({ length: 8 }, (_, i) => f32(76 + 4 * i)),
      voxOffset: f32(108),
      sclSlope: f32(112),
      sclInter: f32(116),
      xyztUnits: b[123],
      descrip: cString(b, 148, 80),
      qformCode: v.getInt16(252, le),
      sformCode: v.getInt16(254, le),
      quatern: [f32(256), f32(260), f32(264)],
      qoffset: [f32(268), f32(272), f32(276)],
      srow: Array.from({ length: 12 }, (_, i) => f32(280 + 4 * i)),
    };
  }
  const magic = cString(b, 4, 8);
  if (magic === 'ni2') fail(file, 'NIfTI-2 header/image pair (.hdr/.img) is not supported');
  if (magic !== 'n+2') fail(file, `not a single-file NIfTI-2 (magic "${magic}")`);
  return {
    version,
    littleEndian: le,
    dim: Array.from({ length: 8 }, (_, i) => i64(16 + 8 * i)),
    intentCode: v.getInt32(504, le),
    datatype: v.getInt16(12, le),
    bitpix: v.getInt16(14, le),
    pixdim: Array.from({ length: 8 }, (_, i) => f64(104 + 8 * i)),
    voxOffset: i64(168),
    sclSlope: f64(176),
    sclInter: f64(184),
    xyztUnits: v.getInt32(500, le),
    descrip: cString(b, 240, 80),
    qformCode: v.getInt32(344, le),
    sformCode: v.getInt32(348, le),
    quatern: [f64(352), f64(360), f64(368)],
    qoffset: [f64(376), f64(384), f64(392)],
    srow: Array.from({ length: 12 }, (_, i) => f64(400 + 8 * i)),
  };
}

/** Encode a little-endian NIfTI-1 header (348 bytes) followed by 4 zero extension bytes. */
export function encodeNifti1Header(h: Omit<NiftiHeader, 'version' | 'littleEndian'>): Uint8Array {
  const b = new Uint8Array(352);
  const v = new DataView(b.buffer);
  v.setInt32(0, NIFTI1_HEADER_SIZE, true);
  b[38] = 'r'.charCodeAt(0); // "regular", as Analyze readers expect
  h.dim.forEach((d, i) => v.setInt16(40 + 2 * i, d, true));
  v.setInt16(68, h.intentCode, true);
  v.setInt16(70, h.datatype, true);
  v.setInt16(72, h.bitpix, true);
  h.pixdim.forEach((p, i) => v.setFloat32(76 + 4 * i, p, true));
  v.setFloat32(108, h.voxOffset, true);
  v.setFloat32(112, h.sclSlope, true);
  v.setFloat32(116, h.sclInter, true);
  b[123] = h.xyztUnits;
  const descrip = Buffer.from(h.descrip.replace(/[^\x20-\x7e]/g, '?').slice(0, 79), 'latin1');
  b.set(descrip, 148);
  v.setInt16(252, h.qformCode, true);
  v.setInt16(254, h.sformCode, true);
  h.quatern.forEach((q, i) => v.setFloat32(256 + 4 * i, q, true));
  h.qoffset.forEach((q, i) => v.setFloat32(268 + 4 * i, q, true));
  h.srow.forEach((s, i) => v.setFloat32(280 + 4 * i, s, true));
  b.set([0x6e, 0x2b, 0x31, 0], 344); // "n+1\0"
  return b;
}

/** Rotation matrix (row-major, RAS) of a NIfTI quaternion (b, c, d), a = sqrt(1 - b^2 - c^2 - d^2). */
export function quaternionToMatrix(bq: number, cq: number, dq: number): Mat3 {
  let a = 1 - (bq * bq + cq * cq + dq * dq);
  let b = bq,
    c = cq,
    d = dq;
  if (a < 1e-7) {
    // nifti1_io: a 180-degree rotation; renormalise (b, c, d)
    const s = 1 / Math.sqrt(b * b + c * c + d * d);
    b *= s;
    c *= s;
    d *= s;
    a = 0;
  } else a = Math.sqrt(a);
  // prettier-ignore
  return [
    a * a + b * b - c * c - d * d, 2 * (b * c - a * d), 2 * (b * d + a * c),
    2 * (b * c + a * d), a * a + c * c - b * b - d * d, 2 * (c * d - a * b),
    2 * (b * d - a * c), 2 * (c * d + a * b), a * a + d * d - c * c - b * b,
  ];
}

/**
 * Quaternion (b, c, d) and qfac of a rotation-or-reflection matrix (row-major, orthonormal), as
 * nifti_mat44_to_quatern: a reflection is stored as qfac = -1 with the third column negated.
 */
export function matrixToQuaternion(m: Mat3): { quatern: Vec3; qfac: number } {
  const r = [...m];
  let qfac = 1;
  if (det3(m) < 0) {
    qfac = -1;
    r[2] = -r[2];
    r[5] = -r[5];
    r[8] = -r[8];
  }
  const [r11, r12, r13, r21, r22, r23, r31, r32, r33] = r;
  let a = r11 + r22 + r33 + 1;
  let b: number, c: number, d: number;
  if (a > 0.5) {
    a = 0.5 * Math.sqrt(a);
    b = (0.25 * (r32 - r23)) / a;
    c = (0.25 * (r13 - r31)) / a;
    d = (0.25 * (r21 - r12)) / a;
  } else {
    const xd = 1 + r11 - (r22 + r33);
    const yd = 1 + r22 - (r11 + r33);
    const zd = 1 + r33 - (r11 + r22);
    if (xd > 1) {
      b = 0.5 * Math.sqrt(xd);
      c = (0.25 * (r12 + r21)) / b;
      d = (0.25 * (r13 + r31)) / b;
      a = (0.25 * (r32 - r23)) / b;
    } else if (yd > 1) {
      c = 0.5 * Math.sqrt(yd);
      b = (0.25 * (r12 + r21)) / c;
      d = (0.25 * (r23 + r32)) / c;
      a = (0.25 * (r13 - r31)) / c;
    } else {
      d = 0.5 * Math.sqrt(zd);
      b = (0.25 * (r13 + r31)) / d;
      c = (0.25 * (r23 + r32)) / d;
      a = (0.25 * (r21 - r12)) / d;
    }
    if (a < 0) {
      b = -b;
      c = -c;
      d = -d;
    }
  }
  return { quatern: [b + 0, c + 0, d + 0], qfac };
}

/** RAS <-> LPS on a 3x3 (negate the first two rows) and on a point (negate x, y). */
const flipRows = (m: Mat3): Mat3 => [-m[0], -m[1], -m[2], -m[3], -m[4], -m[5], m[6], m[7], m[8]];
const flipPoint = (p: Vec3): Vec3 => [-p[0] + 0, -p[1] + 0, p[2]];

export interface NiftiGeometry {
  spacing: Vec3;
  origin: Vec3;
  direction: Mat3;
  /** which header fields gave the geometry */
  method: 'sform' | 'qform' | 'pixdim';
}

/** The largest cosine between two sform columns: 0 for perpendicular axes. */
function shearOf(m: Mat3): number {
  const col = (c: number) => [m[c], m[3 + c], m[6 + c]];
  let worst = 0;
  for (const [p, q] of [
    [0, 1],
    [0, 2],
    [1, 2],
  ]) {
    const a = col(p),
      b = col(q);
    const na = Math.hypot(a[0], a[1], a[2]),
      nb = Math.hypot(b[0], b[1], b[2]);
    if (!(na > 0 && nb > 0)) return Infinity;
    worst = Math.max(worst, Math.abs(a[0] * b[0] + a[1] * b[1] + a[2] * b[2]) / (na * nb));
  }
  return Number.isNaN(worst) ? Infinity : worst;
}

/** Geometry of the qform (quaternion, qfac = sign of pixdim[0], pixdim spacing, qoffset). */
function qformGeometry(file: string, h: NiftiHeader, warnings: string[]): NiftiGeometry {
  const p = h.pixdim;
  const [b, c, d] = h.quatern;
  if (![b, c, d, ...h.qoffset].every(Number.isFinite) || b * b + c * c + d * d > 1 + 1e-4)
    fail(file, `invalid qform quaternion (${h.quatern.join(', ')})`);
  const r = quaternionToMatrix(b, c, d);
  if (p[0] < 0) [2, 5, 8].forEach((n) => (r[n] = -r[n]));
  // prettier-ignore
  const cols: Mat3 = [
    r[0] * p[1], r[1] * p[2], r[2] * p[3],
    r[3] * p[1], r[4] * p[2], r[5] * p[3],
    r[6] * p[1], r[7] * p[2], r[8] * p[3],
  ];
  const g = geometryFromColumns(file, flipRows(cols), flipPoint(h.qoffset), warnings, 'qform');
  return { ...g, method: 'qform' };
}

/** Axis-aligned direction (entries exactly 0 or +-1): kept exact, never taken from a quaternion. */
const isSignedPermutation = (d: Mat3) => d.every((x) => x === 0 || x === 1 || x === -1);

/** True when two geometries are the same up to float32 header rounding. */
function agree(a: NiftiGeometry, b: NiftiGeometry): boolean {
  return (
    a.direction.every((x, n) => Math.abs(x - b.direction[n]) <= 1e-5) &&
    a.spacing.every((x, n) => Math.abs(x - b.spacing[n]) <= 1e-5 * x) &&
    a.origin.every((x, n) => Math.abs(x - b.origin[n]) <= 1e-3)
  );
}

/** How far apart (mm) two geometries put the grid's first voxel and the ends of its axes (100 voxels out). */
function disagreement(a: NiftiGeometry, b: NiftiGeometry): number {
  let worst = Math.hypot(...a.origin.map((x, r) => x - b.origin[r]));
  for (let c = 0; c < 3; c++) {
    const end = (g: NiftiGeometry) => [0, 1, 2].map((r) => g.origin[r] + 100 * g.spacing[c] * g.direction[3 * r + c]);
    const ea = end(a);
    const eb = end(b);
    worst = Math.max(worst, Math.hypot(...ea.map((x, r) => x - eb[r])));
  }
  return worst;
}

/**
 * Volume geometry (LPS) of a header, following the precedence documented at the top. When the
 * sform is used, is not axis-aligned, and a valid qform describes the same grid up to float32
 * rounding (as every file writeNifti or ITK writes), the qform's numbers are returned: its rotation is exactly
 * orthonormal and its spacing is pixdim itself, which makes write -> read -> write reproduce the
 * header bit for bit even for oblique directions (differences are below 1e-5).
 */
export function niftiGeometry(file: string, h: NiftiHeader, warnings: string[]): NiftiGeometry {
  const pixdimOk = h.pixdim.slice(1, 4).every((x) => Number.isFinite(x) && x > 0);
  if (h.sformCode > 0) {
    const s = h.srow;
    const m: Mat3 = [s[0], s[1], s[2], s[4], s[5], s[6], s[8], s[9], s[10]];
    const shear = shearOf(m);
    if (s.every(Number.isFinite) && shear <= DIRECTION_REPAIR_TOLERANCE) {
      const g: NiftiGeometry = {
        ...geometryFromColumns(file, flipRows(m), flipPoint([s[3], s[7], s[11]]), warnings, 'sform'),
        method: 'sform',
      };
      if (h.qformCode > 0 && pixdimOk) {
        let q: NiftiGeometry | null;
        try {
          q = qformGeometry(file, h, []);
        } catch {
          q = null; // an invalid qform beside a valid sform is ignored
        }
        if (q && agree(g, q)) return isSignedPermutation(g.direction) ? g : { ...q, method: 'sform' };
        // two valid orientations that disagree: the standard's choice (the sform), said, since tools
        // that prefer the qform (some do) place this scan elsewhere
        const apart = q ? disagreement(g, q) : 0;
        if (apart > 0.5)
          warnings.push(
            `its sform and qform disagree (the grid's corners up to ${apart.toFixed(1)} mm apart): ` +
              'using the sform, as the NIfTI standard says; tools that read the qform place this scan elsewhere',
          );
      }
      return g;
    }
    const why = s.every(Number.isFinite)
      ? `has shear (axes not perpendicular, cosine ${shear.toFixed(4)})`
      : 'is not finite';
    if (h.qformCode <= 0) fail(file, `sform ${why} and there is no qform to fall back on`);
    warnings.push(`sform ${why}: using the qform instead`);
  }
  if (!pixdimOk)
    fail(file, `invalid pixdim ${h.pixdim.slice(1, 4).join(', ')} (voxel sizes must be positive and finite)`);
  if (h.qformCode > 0) return qformGeometry(file, h, warnings);
  warnings.push('no sform or qform (both codes 0): orientation from pixdim only (NIfTI method 1), origin 0');
  const p = h.pixdim;
  return { spacing: [p[1], p[2], p[3]], origin: [0, 0, 0], direction: [-1, 0, 0, 0, -1, 0, 0, 0, 1], method: 'pixdim' };
}

/**
 * Header orientation fields of a Volume geometry: qform and sform, both with code 1 (scanner),
 * for the LPS->RAS affine. Unless the direction is axis-aligned (then exact), the sform is built
 * from the float32 quaternion and float32 spacing, so the two agree exactly and a re-read
 * reproduces them.
 * Checks the direction is orthonormal (quaternions need it).
 */
export function niftiOrientationFields(g: { spacing: Vec3; origin: Vec3; direction: Mat3 }) {
  if (orthonormalityError(g.direction) > 1e-4) throw new Error('direction is not orthonormal');
  const o = flipPoint(g.origin);
  const q = matrixToQuaternion(flipRows(g.direction));
  const quatern = q.quatern.map(Math.fround) as Vec3;
  let r = quaternionToMatrix(...quatern);
  if (q.qfac < 0) [2, 5, 8].forEach((n) => (r[n] = -r[n]));
  if (isSignedPermutation(g.direction)) r = flipRows(g.direction); // exact, as read back
  const [sx, sy, sz] = g.spacing.map(Math.fround);
  // prettier-ignore
  const srow = [
    r[0] * sx, r[1] * sy, r[2] * sz, o[0],
    r[3] * sx, r[4] * sy, r[5] * sz, o[1],
    r[6] * sx, r[7] * sy, r[8] * sz, o[2],
  ].map((x) => x + 0);
  return { quatern, qfac: q.qfac, qoffset: o, srow };
}
