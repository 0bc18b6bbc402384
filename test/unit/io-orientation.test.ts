/**
 * Orientation across formats with ASYMMETRIC data: one marker voxel near a corner of an oblique,
 * left-handed, anisotropic grid must land at the same world (LPS) position after a write and a
 * read in NIfTI, MetaImage, NRRD (built by hand, in RAS) and VTI. A deliberately wrong file
 * (LPS written as if it were RAS, or a flipped axis) must be caught by the same check.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../helpers.ts';
import { readNifti, writeNiftiSync } from '../../main/engine/volume/io/nifti.ts';
import { readMetaImage, writeMetaImage } from '../../main/engine/volume/io/metaimage.ts';
import { readNrrd } from '../../main/engine/volume/io/nrrd.ts';
import { readVti, writeVti } from '../../main/engine/volume/io/vti.ts';
import { indexToWorld, norm, sub } from '../../main/engine/volume/geometry.ts';
import { makeVolume, type Mat3, type Vec3, type Volume } from '../../main/engine/volume/volume.ts';

const SIZE: Vec3 = [9, 7, 5];
const MARKER: Vec3 = [1, 5, 3];

function markedVolume(): Volume<Int16Array> {
  const c = Math.cos(0.5),
    s = Math.sin(0.5);
  // rotation about z by 0.5 rad, k axis pointing inferior: oblique and left-handed
  const direction: Mat3 = [c, -s, 0, s, c, 0, 0, 0, -1];
  const data = new Int16Array(SIZE[0] * SIZE[1] * SIZE[2]);
  for (let n = 0; n < data.length; n++) data[n] = n % 17; // background below the marker
  data[MARKER[0] + SIZE[0] * (MARKER[1] + SIZE[1] * MARKER[2])] = 1000;
  return makeVolume({ size: SIZE, spacing: [0.7, 1.3, 2.9], origin: [-40.5, 12.25, 88], direction, data });
}

/** World position of the brightest voxel. */
function markerWorld(v: Volume): Vec3 {
  let best = 0;
  for (let n = 1; n < v.data.length; n++) if (v.data[n] > v.data[best]) best = n;
  const i = best % v.size[0],
    j = Math.floor(best / v.size[0]) % v.size[1],
    k = Math.floor(best / (v.size[0] * v.size[1]));
  return indexToWorld(v, [i, j, k]);
}

const TRUE_MARKER = markerWorld(markedVolume());
/** The check every format must pass: the marker is where it was, to 1e-3 mm. */
const markerKept = (v: Volume) => norm(sub(markerWorld(v), TRUE_MARKER)) < 1e-3;

/** Hand-made NRRD of the volume in RAS space: directions and origin with x, y negated. */
function nrrdRas(v: Volume): Uint8Array {
  const col = (c: number) => [
    -v.direction[c] * v.spacing[c],
    -v.direction[3 + c] * v.spacing[c],
    v.direction[6 + c] * v.spacing[c],
  ];
  const header = [
    'NRRD0005',
    'type: int16',
    'dimension: 3',
    `sizes: ${v.size.join(' ')}`,
    'space: right-anterior-superior',
    `space directions: ${[0, 1, 2].map((c) => `(${col(c).join(',')})`).join(' ')}`,
    `space origin: (${-v.origin[0]},${-v.origin[1]},${v.origin[2]})`,
    'kinds: domain domain domain',
    'endian: little',
    'encoding: raw',
    '',
    '',
  ].join('\n');
  return Buffer.concat([
    Buffer.from(header, 'latin1'),
    Buffer.from(v.data.buffer, v.data.byteOffset, v.data.byteLength),
  ]);
}

test('the marker keeps its world position through NIfTI, MetaImage, NRRD (RAS) and VTI', () => {
  const { dir, cleanup } = tempDir();
  try {
    const v = markedVolume();
    assert.ok(markerKept(v));
    writeNiftiSync(join(dir, 'm.nii.gz'), v);
    writeMetaImage(join(dir, 'm.mha'), v);
    writeFileSync(join(dir, 'm.nrrd'), nrrdRas(v));
    writeVti(join(dir, 'm.vti'), v, { extentStart: [3, -2, 1] });
    const read: [string, Volume][] = [
      ['nifti', readNifti(join(dir, 'm.nii.gz'))],
      ['metaimage', readMetaImage(join(dir, 'm.mha'))],
      ['nrrd', readNrrd(join(dir, 'm.nrrd'))],
      ['vti', readVti(join(dir, 'm.vti'))],
    ];
    for (const [name, r] of read) {
      assert.ok(markerKept(r), `${name}: marker at ${markerWorld(r)}, expected ${TRUE_MARKER}`);
      // and every corner of the grid, not only the marker
      for (const ijk of [
        [0, 0, 0],
        [8, 0, 0],
        [0, 6, 0],
        [0, 0, 4],
        [8, 6, 4],
      ] as Vec3[])
        assert.ok(norm(sub(indexToWorld(r, ijk), indexToWorld(v, ijk))) < 1e-3, `${name}: corner ${ijk}`);
    }
  } finally {
    cleanup();
  }
});

test('the check catches a wrongly written file: LPS stored as RAS, or a flipped axis', () => {
  const { dir, cleanup } = tempDir();
  try {
    const v = markedVolume();
    // a writer that forgot the LPS -> RAS conversion: same bytes as writing the x/y-mirrored geometry
    const d = v.direction;
    const mirrored = {
      ...v,
      direction: [-d[0], -d[1], -d[2], -d[3], -d[4], -d[5], d[6], d[7], d[8]] as Mat3,
      origin: [-v.origin[0], -v.origin[1], v.origin[2]] as Vec3,
    };
    writeNiftiSync(join(dir, 'wrong.nii'), mirrored);
    const wrong = readNifti(join(dir, 'wrong.nii'));
    assert.ok(!markerKept(wrong), 'LPS written as RAS must move the marker');
    assert.ok(norm(sub(markerWorld(wrong), TRUE_MARKER)) > 10);
    // voxels flipped along i without changing the geometry
    const flipped = new Int16Array(v.data.length);
    for (let n = 0; n < v.data.length; n++) {
      const i = n % SIZE[0];
      flipped[n - i + (SIZE[0] - 1 - i)] = v.data[n];
    }
    writeMetaImage(join(dir, 'flip.mha'), { ...v, data: flipped });
    assert.ok(!markerKept(readMetaImage(join(dir, 'flip.mha'))), 'a flipped axis must move the marker');
    // an NRRD declared LPS but holding RAS numbers
    writeFileSync(
      join(dir, 'lie.nrrd'),
      Buffer.from(
        Buffer.from(nrrdRas(v)).toString('latin1').replace('right-anterior-superior', 'left-posterior-superior'),
        'latin1',
      ),
    );
    assert.ok(!markerKept(readNrrd(join(dir, 'lie.nrrd'))), 'wrong NRRD space must move the marker');
  } finally {
    cleanup();
  }
});
