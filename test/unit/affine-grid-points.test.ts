// Grid points of SAM-affine (register/grid-points.ts): on the world lattice, inside the mask (and
// every lattice point inside it found), the margin respected, the cap applied evenly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gridPointsInMask } from '../../main/engine/register/grid-points.ts';
import { indexToWorld, worldToIndex } from '../../main/engine/volume/geometry.ts';
import { makeVolume, type Vec3, type Volume } from '../../main/engine/volume/volume.ts';

/** An ellipsoid mask (semi-axes 60, 45, 80 mm about C) on a RAS-flipped, anisotropic grid. */
const C: Vec3 = [5, -12, 40];
const inEllipsoid = (p: Vec3, shrink = 0) =>
  ((p[0] - C[0]) / (60 - shrink)) ** 2 + ((p[1] - C[1]) / (45 - shrink)) ** 2 + ((p[2] - C[2]) / (80 - shrink)) ** 2 <=
  1;
function ellipsoidMask(): Volume<Uint8Array> {
  const size: Vec3 = [80, 70, 60];
  const g = { size, spacing: [2, 1.7, 3] as Vec3, origin: [85, 50, -60] as Vec3 };
  const v = makeVolume({ ...g, direction: [-1, 0, 0, 0, -1, 0, 0, 0, 1], data: new Uint8Array(80 * 70 * 60) });
  for (let k = 0, n = 0; k < size[2]; k++)
    for (let j = 0; j < size[1]; j++)
      for (let i = 0; i < size[0]; i++, n++) v.data[n] = inEllipsoid(indexToWorld(v, [i, j, k])) ? 1 : 0;
  return v;
}

const onLattice = (p: Vec3, step: number, anchor: Vec3 = [0, 0, 0]) =>
  p.every((x, a) => Math.abs((x - anchor[a]) / step - Math.round((x - anchor[a]) / step)) < 1e-9);
const maskAt = (m: Volume, p: Vec3) => {
  const i = worldToIndex(m, p).map(Math.round);
  return m.data[i[0] + m.size[0] * (i[1] + m.size[1] * i[2])];
};

test('grid points lie on the world lattice, inside the mask, and all such points are found', () => {
  const mask = ellipsoidMask();
  const pts = gridPointsInMask(mask, { spacingMm: 16 });
  assert.ok(pts.length > 50, `${pts.length}`);
  for (const p of pts) {
    assert.ok(onLattice(p, 16), `${p}`);
    assert.equal(maskAt(mask, p), 1, `${p}`);
  }
  // complete: exactly the lattice points whose nearest voxel is in the mask
  const expected: string[] = [];
  for (let z = -320; z <= 320; z += 16)
    for (let y = -320; y <= 320; y += 16)
      for (let x = -320; x <= 320; x += 16) {
        const i = worldToIndex(mask, [x, y, z]).map(Math.round);
        if (i.every((v, a) => v >= 0 && v < mask.size[a]) && maskAt(mask, [x, y, z])) expected.push([x, y, z].join());
      }
  assert.deepEqual(
    pts.map((p) => p.join()),
    expected,
  );
  // another anchor and spacing
  const anchor: Vec3 = [3, 1, -2];
  const other = gridPointsInMask(mask, { spacingMm: 10, anchor });
  assert.ok(other.every((p) => onLattice(p, 10, anchor) && maskAt(mask, p) === 1));
});

test('the margin keeps points away from the mask surface; the cap thins evenly', () => {
  const mask = ellipsoidMask();
  const all = gridPointsInMask(mask, { spacingMm: 8 });
  const inner = gridPointsInMask(mask, { spacingMm: 8, marginMm: 15 });
  assert.ok(inner.length > 20 && inner.length < all.length * 0.75, `${inner.length} of ${all.length}`);
  // box erosion by 15 mm (rounded to voxels) leaves only points well inside
  for (const p of inner) assert.ok(inEllipsoid(p, 12), `${p}`);
  const capped = gridPointsInMask(mask, { spacingMm: 8, maxPoints: 100 });
  assert.equal(capped.length, 100);
  const set = new Set(all.map((p) => p.join()));
  assert.ok(capped.every((p) => set.has(p.join())));
  assert.equal(new Set(capped.map((p) => p.join())).size, 100);
  // evenly along z: each third of the ellipsoid's height keeps a share close to its share of all points
  const third = (ps: Vec3[], t: number) =>
    ps.filter((p) => p[2] >= C[2] - 80 + (160 / 3) * t && p[2] < C[2] - 80 + (160 / 3) * (t + 1)).length;
  for (let t = 0; t < 3; t++)
    assert.ok(Math.abs(third(capped, t) / 100 - third(all, t) / all.length) < 0.03, `third ${t}`);
  assert.throws(() => gridPointsInMask(mask, { spacingMm: 0 }), /invalid spacing/);
});
