// The body masks on worker threads (volume/mask-threads.ts) are bodyMask's own: a real CT and an
// asymmetric synthetic volume give the same bytes and geometry on the threads as on this thread; the
// process's shared threads do not hold a process open once idle; threads that cannot load leave the
// masks to the caller's thread; disposed threads refuse.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MaskThreads } from '../../main/engine/volume/mask-threads.ts';
import { bodyMask } from '../../main/engine/volume/mask.ts';
import { readVolume } from '../../main/engine/volume/io/index.ts';
import { makeVolume, type Volume } from '../../main/engine/volume/volume.ts';
import { tempDir } from '../helpers.ts';
import { EXAMPLE_CT } from './embed-fixtures.ts';

/** A body that is not symmetric along any axis (a wedge with a table below it), on an oblique grid. */
function wedge(): Volume {
  const size: [number, number, number] = [41, 33, 27];
  const data = new Float32Array(size[0] * size[1] * size[2]).fill(-1000);
  for (let k = 0; k < size[2]; k++)
    for (let j = 0; j < size[1]; j++)
      for (let i = 0; i < size[0]; i++) {
        const v = i + size[0] * (j + size[1] * k);
        if (i > 4 && i < 10 + k && j > 6 && j < 26) data[v] = 40;
        if (j === 29 && i > 2) data[v] = 200; // the table, apart from the body
      }
  const c = Math.cos(0.3);
  const s = Math.sin(0.3);
  return makeVolume({
    size,
    spacing: [1.2, 0.9, 2.5],
    origin: [-20, 13, 7],
    direction: [c, -s, 0, s, c, 0, 0, 0, 1],
    data,
    meta: { source: 'wedge' },
  });
}

function assertSameMask(a: Volume, b: Volume, what: string): void {
  assert.deepEqual(a.size, b.size, what);
  assert.deepEqual(a.spacing, b.spacing, what);
  assert.deepEqual(a.origin, b.origin, what);
  assert.deepEqual(a.direction, b.direction, what);
  assert.equal(a.meta.description, b.meta.description, what);
  assert.ok(a.data instanceof Uint8Array && b.data instanceof Uint8Array, what);
  assert.ok(Buffer.from(a.data).equals(Buffer.from(b.data)), `${what}: the same voxels`);
}

test('body masks on the threads are bodyMask on this thread (a real CT, an asymmetric oblique volume)', async () => {
  const threads = MaskThreads.shared();
  assert.ok(threads, 'threads started');
  const ct = await readVolume(EXAMPLE_CT);
  const vols = [ct, wedge()];
  const made = await Promise.all(vols.map((v) => threads.bodyMask(v)));
  vols.forEach((v, n) => {
    const here = bodyMask(v);
    assertSameMask(made[n].mask, here, `volume ${n}`);
    assert.ok(made[n].seconds >= 0);
  });
  // the wedge's mask is the body alone (the table cut off), not its mirror image
  const w = made[1].mask.data;
  assert.ok(w.reduce((a, b) => a + b, 0) > 0);
  assert.equal(w[6 + 41 * (29 + 33 * 3)], 0, 'no table');
  // the shared set is the same object, and dispose() leaves it running
  assert.equal(MaskThreads.shared(), threads);
  threads.dispose();
  assertSameMask((await threads.bodyMask(ct)).mask, made[0].mask, 'after dispose() of the shared set');
});

test('the shared mask threads do not hold a process open once idle', () => {
  const src = `
    const { MaskThreads } = await import(${JSON.stringify(new URL('../../main/engine/volume/mask-threads.ts', import.meta.url).href)});
    const { makeVolume } = await import(${JSON.stringify(new URL('../../main/engine/volume/volume.ts', import.meta.url).href)});
    const data = new Float32Array(20 * 20 * 20).fill(-1000);
    for (let v = 0; v < data.length; v++) if (v % 20 > 5 && v % 20 < 15) data[v] = 50;
    const vol = makeVolume({ size: [20, 20, 20], spacing: [1, 1, 1], origin: [0, 0, 0], direction: [1,0,0,0,1,0,0,0,1], data });
    const m = await MaskThreads.shared().bodyMask(vol);
    console.log('voxels', m.mask.data.reduce((a, b) => a + b, 0));
  `;
  const t0 = performance.now();
  const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', src], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  assert.match(out, /^voxels \d+/m);
  assert.ok(performance.now() - t0 < 60_000, 'the process ended by itself');
});

test('mask threads that cannot load leave the masks here; disposed threads refuse', async () => {
  const tmp = tempDir('mask-thread-');
  after(tmp.cleanup);
  const entry = join(tmp.dir, 'broken.mjs');
  writeFileSync(entry, "throw new Error('this thread cannot load');\n");
  const broken = MaskThreads.start(entry)!;
  const v = wedge();
  assertSameMask((await broken.bodyMask(v)).mask, bodyMask(v), 'broken threads');
  broken.dispose();
  const ok = MaskThreads.start()!;
  ok.dispose();
  await assert.rejects(ok.bodyMask(v), /stopped/);
});
