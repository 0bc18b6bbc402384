/**
 * Reader for vtk.js "HTTP data set" folders (what vtk.js examples ship as `*.vti/`): an
 * `index.json` describing a vtkImageData, and its point-data arrays as raw little-endian files
 * under `data/<id>` or gzip-compressed `data/<id>.gz`.
 *
 * Geometry: vtk.js stores `direction` as a 3x3 whose ROWS are the i, j, k axes in world
 * coordinates (vtkImageData.computeTransforms copies direction[0..2] into the first column of
 * indexToWorld), so our row-major matrix with axes as columns is its transpose. Like VTK files,
 * these carry no patient coordinate convention: the coordinates are taken as LPS, as vtk.js, ITK
 * and VolView do. Extents that do not start at 0 shift the origin along the axes.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { VolumeReadError, wrapReadErrors } from '../../errors.ts';
import { geometryProblem, indexToWorld, orthonormalize } from '../geometry.ts';
import { allocateVoxels, makeVolume, type Mat3, type Vec3, type Volume, type VoxelType } from '../volume.ts';

const TYPES: Record<string, VoxelType> = {
  Int8Array: 'int8',
  Uint8Array: 'uint8',
  Int16Array: 'int16',
  Uint16Array: 'uint16',
  Int32Array: 'int32',
  Uint32Array: 'uint32',
  Float32Array: 'float32',
  Float64Array: 'float64',
};

interface ArrayRef {
  data?: {
    dataType?: string;
    numberOfComponents?: number;
    size?: number;
    name?: string;
    ref?: { id?: string; basepath?: string; encode?: string; registration?: string };
  };
}

const isNumArray = (a: unknown, n: number): a is number[] =>
  Array.isArray(a) && a.length === n && a.every((x) => typeof x === 'number' && Number.isFinite(x));

export function isVtkJsDataSet(dir: string): boolean {
  return existsSync(join(dir, 'index.json'));
}

export function readVtkJsDataSet(dir: string): Volume {
  return wrapReadErrors(dir, () => {
    const fail = (problem: string): never => {
      throw new VolumeReadError(dir, problem);
    };
    let index: Record<string, unknown>;
    try {
      index = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8'));
    } catch (e) {
      return fail(`index.json is not valid JSON (${(e as Error).message})`);
    }
    if (index.vtkClass !== 'vtkImageData') fail(`holds a ${String(index.vtkClass)}, not a vtkImageData`);
    const extent = index.extent;
    if (!isNumArray(extent, 6) || !extent.every(Number.isInteger)) return fail('missing or invalid extent');
    const size = [extent[1] - extent[0] + 1, extent[3] - extent[2] + 1, extent[5] - extent[4] + 1] as Vec3;
    if (size.some((n) => n < 1)) fail(`empty extent ${extent.join(' ')}`);
    const spacing = (index.spacing ?? [1, 1, 1]) as Vec3;
    const origin0 = (index.origin ?? [0, 0, 0]) as Vec3;
    if (!isNumArray(spacing, 3)) fail('invalid spacing');
    if (!isNumArray(origin0, 3)) fail('invalid origin');
    const d = (index.direction ?? [1, 0, 0, 0, 1, 0, 0, 0, 1]) as number[];
    if (!isNumArray(d, 9)) fail('invalid direction');
    // vtk.js rows = axes -> our columns = axes (transpose)
    let direction: Mat3 = [d[0], d[3], d[6], d[1], d[4], d[7], d[2], d[5], d[8]];
    const geom = { size, spacing, origin: origin0, direction };
    const problem = geometryProblem(geom);
    if (problem) {
      // 0.866 / 0.5 style rounding in hand-written files: repair if only rounding is wrong
      const repaired = orthonormalize(direction);
      if (
        direction.some((x, n) => Math.abs(x - repaired[n]) > 1e-3) ||
        geometryProblem({ ...geom, direction: repaired })
      )
        fail(problem);
      direction = repaired;
    }
    const origin = indexToWorld({ ...geom, direction }, [extent[0], extent[2], extent[4]]);
    const arrays = ((index.pointData as { arrays?: ArrayRef[] } | undefined)?.arrays ?? []).filter((a) => a.data);
    const chosen = arrays.find((a) => a.data?.ref?.registration === 'setScalars') ?? arrays[0];
    if (!chosen?.data) return fail('no point-data array');
    const meta = chosen.data;
    const type = TYPES[meta.dataType ?? ''];
    if (!type) fail(`unsupported data type ${String(meta.dataType)}`);
    const nc = meta.numberOfComponents ?? 1;
    if (!Number.isInteger(nc) || nc < 1 || nc > 16) fail(`invalid numberOfComponents ${nc}`);
    if (meta.ref?.encode && meta.ref.encode !== 'LittleEndian') fail(`unsupported encoding ${meta.ref.encode}`);
    const id = meta.ref?.id;
    if (!id || /[\\/]|\.\./.test(id)) return fail('array reference without a valid id');
    const base = join(dir, meta.ref?.basepath ?? 'data');
    const raw = existsSync(join(base, id))
      ? readFileSync(join(base, id))
      : existsSync(join(base, `${id}.gz`))
        ? readFileSync(join(base, `${id}.gz`))
        : fail(`array file ${join(base, id)}(.gz) is missing`);
    const values = size[0] * size[1] * size[2] * nc;
    const out = allocateVoxels(type, values);
    const need = out.byteLength;
    let bytes: Buffer = raw;
    if (raw[0] === 0x1f && raw[1] === 0x8b) {
      try {
        bytes = gunzipSync(raw, { maxOutputLength: need + 1 });
      } catch (e) {
        fail(`array data is not valid gzip or larger than the extent needs (${(e as Error).message})`);
      }
    }
    if (bytes.byteLength !== need)
      fail(`array data has ${bytes.byteLength} bytes, extent ${size.join('x')} x ${nc} ${type} needs ${need}`);
    new Uint8Array(out.buffer).set(bytes);
    return makeVolume({
      size,
      spacing,
      origin,
      direction,
      components: nc,
      data: out,
      meta: { source: dir, description: meta.name, warnings: [] },
    });
  });
}
