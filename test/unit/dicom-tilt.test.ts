/**
 * The GE head CT of dcm_qa_ct (README: gantry tilt 18.5 degrees, slice distances 1.08..6.99 mm,
 * 512x512, 0.488 mm pixels): read onto a regular grid with warnings, and each output voxel
 * holds what the input slices hold at that voxel's world position (computed here from each
 * file's own ImagePositionPatient / ImageOrientationPatient, independently of the reader).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cross, dot, geometryProblem, indexToWorld, sub } from '../../main/engine/volume/geometry.ts';
import { readDicomSeries } from '../../main/engine/volume/io/dicom/read-series.ts';
import type { Vec3 } from '../../main/engine/volume/volume.ts';
import { GE, filesOf, loadDicom, pixelsOf } from './dicom-fixtures.ts';

interface InputSlice {
  ipp: Vec3;
  row: Vec3;
  col: Vec3;
  ps: number[];
  px: Int16Array | Uint16Array;
  z: number;
}

/** Bilinear value of an input slice at the in-plane projection of world point p (null outside). */
function sampleAt(s: InputSlice, p: Vec3): number | null {
  const d = sub(p, s.ipp);
  const u = dot(d, s.row) / s.ps[1];
  const v = dot(d, s.col) / s.ps[0];
  const u0 = Math.floor(u);
  const v0 = Math.floor(v);
  if (u0 < 0 || v0 < 0 || u0 + 1 > 511 || v0 + 1 > 511) return null;
  const fu = u - u0;
  const fv = v - v0;
  const at = (i: number, j: number) => s.px[j * 512 + i];
  const a = at(u0, v0) + fu * (at(u0 + 1, v0) - at(u0, v0));
  const b = at(u0, v0 + 1) + fu * (at(u0 + 1, v0 + 1) - at(u0, v0 + 1));
  return a + fv * (b - a);
}

test('GE tilted, unevenly spaced head CT: regular grid, warnings, voxels at the right world positions', async () => {
  const slices: InputSlice[] = filesOf(GE).map((f) => {
    const d = loadDicom(f).ds;
    const iop = d.ImageOrientationPatient as number[];
    const row: Vec3 = [iop[0], iop[1], iop[2]];
    const col: Vec3 = [iop[3], iop[4], iop[5]];
    return {
      ipp: d.ImagePositionPatient as Vec3,
      row,
      col,
      ps: d.PixelSpacing as number[],
      px: pixelsOf(loadDicom(f)),
      z: 0,
    };
  });
  const normal = cross(slices[0].row, slices[0].col);
  for (const s of slices) s.z = dot(s.ipp, normal);
  slices.sort((a, b) => a.z - b.z);

  const v = await readDicomSeries(GE);
  assert.equal(geometryProblem(v), null);
  assert.equal(v.size[0], 512);
  assert.equal(v.size[1], 512);
  assert.ok(Math.abs(v.spacing[0] - 0.4882812) < 1e-7 && Math.abs(v.spacing[1] - 0.4882812) < 1e-7);
  assert.ok(v.data instanceof Int16Array);
  assert.ok(
    v.meta.warnings.some((w) => w.includes('gantry tilt 18.5 degrees')),
    v.meta.warnings.join('; '),
  );
  assert.ok(
    v.meta.warnings.some((w) => /uneven slice spacing \(1\.08\d* to 6\.99\d* mm/.test(w)),
    v.meta.warnings.join('; '),
  );
  // direction: row, column, normal of the files; origin: the first slice's position
  const col = (c: number): Vec3 => [v.direction[c], v.direction[3 + c], v.direction[6 + c]];
  for (const [c, want] of [slices[0].row, slices[0].col, normal].entries())
    for (let a = 0; a < 3; a++) assert.ok(Math.abs(col(c)[a] - want[a]) < 1e-5);
  assert.deepEqual(v.origin, slices[0].ipp);
  // the grid spans the slices: last output plane = last input plane
  const nk = v.size[2];
  const zLast = slices[slices.length - 1].z - slices[0].z;
  assert.ok(Math.abs((nk - 1) * v.spacing[2] - zLast) < 1e-3, `${nk} x ${v.spacing[2]} vs ${zLast}`);
  assert.ok(v.spacing[2] >= 1.08 && v.spacing[2] <= 4, `slice spacing ${v.spacing[2]}`);

  // Voxel values: sampled in the two input slices bracketing the voxel along the normal,
  // at the voxel's own world position, interpolated linearly along the normal.
  const plane = 512 * 512;
  let checked = 0;
  for (const k of [0, 1, Math.floor(nk / 2), nk - 2, nk - 1]) {
    for (let j = 40; j < 512; j += 57)
      for (let i = 30; i < 512; i += 61) {
        const p = indexToWorld(v, [i, j, k]);
        const z = dot(p, normal);
        let s = 0;
        while (s < slices.length - 2 && slices[s + 1].z < z - 1e-6) s++;
        const t = Math.min(1, Math.max(0, (z - slices[s].z) / (slices[s + 1].z - slices[s].z)));
        const a = sampleAt(slices[s], p);
        const b = sampleAt(slices[s + 1], p);
        if (a === null || b === null) continue;
        const want = a + t * (b - a);
        const got = v.data[i + 512 * j + plane * k];
        assert.ok(Math.abs(got - want) <= 1, `voxel ${i},${j},${k}: ${got} vs ${want}`);
        checked++;
      }
  }
  assert.ok(checked > 150, `checked ${checked} voxels`);
});
