/** Parallel gzip (pigz-style): one standard gzip member that zlib, the gzip program and the NIfTI reader read. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { crc32, gunzipSync, inflateRawSync } from 'node:zlib';
import { tempDir } from '../helpers.ts';
import { gzipParallel } from '../../main/engine/util/gzip-parallel.ts';
import { readNifti, writeNifti } from '../../main/engine/volume/io/nifti.ts';
import { makeVolume } from '../../main/engine/volume/volume.ts';

/** Compressible and incompressible stretches, in chunks of odd sizes. */
function sample(bytes: number): Uint8Array[] {
  const data = new Uint8Array(bytes);
  let seed = 12345;
  for (let n = 0; n < bytes; n++) {
    seed = (seed * 1103515245 + 12345) >>> 0;
    data[n] = (n >> 14) % 3 === 0 ? seed >>> 24 : (n >> 6) & 0xff;
  }
  return [data.subarray(0, 352), data.subarray(352, 300_001), data.subarray(300_001)];
}

test('gzipParallel: many blocks make ONE gzip member (header, one deflate stream, CRC-32 and length of all)', async () => {
  const chunks = sample(1_234_567);
  const data = Buffer.concat(chunks);
  const out = Buffer.concat(await gzipParallel(chunks, { blockBytes: 1 << 16 }));
  assert.deepEqual([...out.subarray(0, 4)], [0x1f, 0x8b, 8, 0], 'gzip header, deflate, no flags');
  // the body alone inflates to all the data: a single deflate stream, not concatenated members
  assert.ok(inflateRawSync(out.subarray(10, out.length - 8)).equals(data));
  assert.equal(out.readUInt32LE(out.length - 8), crc32(data) >>> 0);
  assert.equal(out.readUInt32LE(out.length - 4), data.length);
  assert.ok(gunzipSync(out).equals(data));
  assert.ok(out.length < data.length * 0.8, `compressed ${out.length} of ${data.length}`);
});

test('gzipParallel: the gzip program reads it; a small input and an empty one are plain gzip', async (t) => {
  const dir = tempDir();
  t.after(dir.cleanup);
  const chunks = sample(700_000);
  const file = join(dir.dir, 'x.gz');
  writeFileSync(file, Buffer.concat(await gzipParallel(chunks, { blockBytes: 1 << 16, level: 1 })));
  if (existsSync('/bin/gzip')) {
    const r = spawnSync('/bin/gzip', ['-dc', file]);
    assert.equal(r.status, 0, String(r.stderr));
    assert.ok(r.stdout.equals(Buffer.concat(chunks)), 'gzip -dc gives the data back');
  } else t.diagnostic('no /bin/gzip: checked with zlib only');
  for (const input of [[new Uint8Array(1000).fill(7)], [new Uint8Array(0)], []]) {
    const out = Buffer.concat(await gzipParallel(input));
    assert.ok(gunzipSync(out).equals(Buffer.concat(input)));
  }
});

test('writeNifti: a .nii.gz of several blocks reads back voxel for voxel', async (t) => {
  const dir = tempDir();
  t.after(dir.cleanup);
  const size: [number, number, number] = [160, 150, 100];
  const data = new Float32Array(size[0] * size[1] * size[2]);
  for (let n = 0; n < data.length; n++) data[n] = Math.sin(n / 977) * 1000 + (n % 13);
  const v = makeVolume({
    size,
    spacing: [0.7, 0.8, 1.5],
    origin: [-50, 20, 300],
    direction: [1, 0, 0, 0, 1, 0, 0, 0, 1],
    data,
  });
  const file = join(dir.dir, 'big.nii.gz');
  await writeNifti(file, v);
  assert.ok(readFileSync(file).length > 0);
  const r = readNifti(file);
  assert.deepEqual(r.size, size);
  assert.deepEqual([...r.data], [...data]);
});
