// The cascade's dense tail (field, warp, the QA's unwarped image, Jacobian) on worker threads
// (register/cascade-tail-threads.ts) equals the single-threaded functions voxel for voxel and count
// for count, on a real CT with an oblique affine and two corrections (one rough enough to fold), for a
// moving image of two voxel types. Threads that cannot load leave the work here; disposed threads stop.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CascadeTailThreads, cascadeTail, type CascadeTail } from '../../main/engine/register/cascade-tail-threads.ts';
import type { Affine3x4 } from '../../main/engine/register/affine-fit.ts';
import type { Field } from '../../main/engine/register/field/field.ts';
import { gridWithSpacing } from '../../main/engine/volume/resample.ts';
import { readVolume } from '../../main/engine/volume/io/index.ts';
import { bodyMask } from '../../main/engine/volume/mask.ts';
import { makeVolume, type Volume } from '../../main/engine/volume/volume.ts';
import { rng, tempDir } from '../helpers.ts';
import { affineOf, rotation } from './field-fixtures.ts';
import { EXAMPLE_CT } from './embed-fixtures.ts';

/** A correction field on a grid of `spacing` over the image: smooth bumps, or rough noise of `rough` mm. */
function correction(like: Volume, spacing: number, amplitude: number, seed: number): Field {
  const g = gridWithSpacing(like, [spacing, spacing, spacing]);
  const r = rng(seed);
  const data = new Float32Array(3 * g.size[0] * g.size[1] * g.size[2]);
  for (let v = 0; v < data.length; v++) data[v] = (r() * 2 - 1) * amplitude;
  return makeVolume({ ...g, components: 3, data, meta: { description: 'correction' } }) as Field;
}

async function problem() {
  const ct = await readVolume(EXAMPLE_CT);
  const affine = affineOf(rotation([1, -2, 3], 0.08), [4, -6, 3]) as Affine3x4;
  for (let e = 0; e < 3; e++) affine[4 * e + e] *= 1.03;
  // a coarse smooth correction and a fine one that folds in places (3 mm noise on a 4 mm grid)
  const corrections = [correction(ct, 24, 4, 1), correction(ct, 4, 3, 2)];
  return { ct, affine, corrections, mask: bodyMask(ct) };
}

function assertSame(a: CascadeTail, b: CascadeTail, what: string) {
  const bytes = (v: Volume) => Buffer.from(v.data.buffer, v.data.byteOffset, v.data.byteLength);
  assert.ok(bytes(a.field).equals(bytes(b.field)), `${what}: field`);
  assert.ok(bytes(a.warped).equals(bytes(b.warped)), `${what}: warped`);
  assert.equal(a.warped.data.constructor, b.warped.data.constructor, `${what}: warped voxel type`);
  assert.ok(bytes(a.unwarped!).equals(bytes(b.unwarped!)), `${what}: unwarped`);
  assert.ok(bytes(a.jacobian!.det).equals(bytes(b.jacobian!.det)), `${what}: determinants`);
  assert.ok(bytes(a.jacobian!.foldedMask).equals(bytes(b.jacobian!.foldedMask)), `${what}: fold flags`);
  const { det: _a, foldedMask: _b, ...numbers } = a.jacobian!;
  const { det: _c, foldedMask: _d, ...expected } = b.jacobian!;
  assert.deepEqual(numbers, expected, `${what}: Jacobian numbers`);
}

test('the cascade tail on threads equals one thread (field, warp, unwarped, Jacobian; two voxel types)', async (t) => {
  const { ct, affine, corrections, mask } = await problem();
  const threads = CascadeTailThreads.start(3);
  assert.ok(threads, 'threads started');
  try {
    const o = { fill: -1024, unwarped: true, jacobian: { mask } };
    for (const moving of [ct, { ...ct, data: Int16Array.from(ct.data, (x) => Math.round(x)) }]) {
      const t0 = performance.now();
      const one = cascadeTail(ct, moving, affine, corrections, o);
      const t1 = performance.now();
      const many = await threads.tail(ct, moving, affine, corrections, o);
      const t2 = performance.now();
      const type = moving.data.constructor.name;
      t.diagnostic(
        `${type}: one thread ${(t1 - t0).toFixed(0)} ms, ${threads.size} threads ${(t2 - t1).toFixed(0)} ms`,
      );
      assertSame(many, one, type);
      assert.ok(one.jacobian!.folded > 0, 'the rough correction folds somewhere');
      assert.ok(one.jacobian!.folded < one.jacobian!.voxels / 2);
      // the outputs travel to other processes: the threads' shared memory is copied out there
      assert.ok(many.field.data.buffer instanceof SharedArrayBuffer);
    }
    // a 3-component moving image (not a CT: the threads' outputs hold one component) takes one thread
    const vectors = correction(ct, 6, 2, 9);
    const v3 = { ...vectors, data: vectors.data } as Volume;
    const three = await threads.tail(ct, v3, affine, corrections, o);
    assert.deepEqual(three.warped.data, cascadeTail(ct, v3, affine, corrections, o).warped.data);
  } finally {
    threads.dispose();
  }
});

test('cascade-tail threads that cannot load leave the work here; disposed threads refuse and stop', async () => {
  const { ct, affine, corrections, mask } = await problem();
  const tmp = tempDir('tail-thread-');
  after(tmp.cleanup);
  const entry = join(tmp.dir, 'broken.mjs');
  writeFileSync(entry, "throw new Error('this thread cannot load');\n");
  const broken = CascadeTailThreads.start(2, entry)!;
  const o = { fill: -1024, unwarped: true, jacobian: { mask } };
  assertSame(await broken.tail(ct, ct, affine, corrections, o), cascadeTail(ct, ct, affine, corrections, o), 'broken');
  broken.dispose();
  const threads = CascadeTailThreads.start(2)!;
  threads.dispose();
  await assert.rejects(threads.tail(ct, ct, affine, corrections, o), /stopped/);
  for (let t = 0; t < 100 && threads.running > 0; t++) await new Promise((r) => setTimeout(r, 50));
  assert.equal(threads.running, 0);
});
