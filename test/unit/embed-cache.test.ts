// Embedding cache: keys from content and model, round trip (float32 and float16), corrupt entries
// ignored and replaced, embedVolumeCached computes once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../helpers.ts';
import {
  cachePath,
  embedVolumeCached,
  embeddingKey,
  hashInputFiles,
  hashModel,
  hashVolume,
  readCachedEmbedding,
  writeCachedEmbedding,
} from '../../main/engine/sam/embedding-cache.ts';
import type { EmbeddingEngine } from '../../main/engine/compute/embedding-engine.ts';
import { getSamConfig, type Vec3 } from '../../main/engine/sam/config.ts';
import { makeVolume } from '../../main/engine/volume/volume.ts';
import { EXAMPLE_CT } from './embed-fixtures.ts';

const config = getSamConfig('tiny');

/** A fake engine: deterministic outputs of the right shapes, counting its runs. */
function fakeEngine(): EmbeddingEngine & { runs: number } {
  const e = {
    name: 'fake',
    config,
    runs: 0,
    async run(input: Float32Array, size: Vec3) {
      e.runs++;
      const shape = (s: number[]) => size.map((n, a) => Math.ceil(n / s[a])) as Vec3;
      const gs = shape([4, 16, 16]);
      const ls = shape([2, 2, 2]);
      const fill = (n: number) => Float32Array.from({ length: n * 8 }, (_, i) => Math.sin(i + input[0]));
      return { global: fill(gs[0] * gs[1] * gs[2]), globalSize: gs, local: fill(ls[0] * ls[1] * ls[2]), localSize: ls };
    },
    dispose() {},
  };
  return e;
}

function ctLike() {
  const size: Vec3 = [40, 36, 20];
  const data = new Int16Array(size[0] * size[1] * size[2]).map((_, i) => (i % 7 === 0 ? 40 : -1000));
  return makeVolume({ size, spacing: [2, 2, 2], origin: [-10, 5, 30], data, meta: { modality: 'CT' } });
}

test('keys follow content, model and options', () => {
  const { dir, cleanup } = tempDir();
  try {
    const v = ctLike();
    const h = hashVolume(v);
    assert.equal(h, hashVolume({ ...v, data: v.data.slice() }));
    assert.notEqual(h, hashVolume({ ...v, origin: [-10, 5, 31] }));
    const d2 = v.data.slice();
    d2[5] += 1;
    assert.notEqual(h, hashVolume({ ...v, data: d2 }));
    const m1 = hashModel({ config, seed: 1 });
    assert.notEqual(m1, hashModel({ config, seed: 2 }));
    assert.notEqual(embeddingKey(h, m1), embeddingKey(h, m1, { fp16: true }));
    assert.equal(embeddingKey(h, m1), embeddingKey(h, m1, { spacingMm: 2, tile: [8, 8, 8] }));
    // files: content, not name; folders: names and contents
    const a = join(dir, 'a.bin');
    writeFileSync(a, 'abc');
    const b = join(dir, 'sub', 'b.bin');
    mkdirSync(join(dir, 'sub'));
    writeFileSync(b, 'abc');
    assert.equal(hashInputFiles(a), hashInputFiles(b));
    const folder = hashInputFiles(join(dir, 'sub'));
    writeFileSync(join(dir, 'sub', 'c.bin'), '');
    assert.notEqual(folder, hashInputFiles(join(dir, 'sub')));
    assert.equal(hashInputFiles(EXAMPLE_CT).length, 64);
    writeFileSync(join(dir, 'w.samw'), 'weights');
    assert.notEqual(hashModel({ weightsFile: join(dir, 'w.samw') }), m1);
  } finally {
    cleanup();
  }
});

test('cached embedding: computed once, read back identical, corrupt entries replaced', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const v = ctLike();
    const engine = fakeEngine();
    const modelHash = hashModel({ config, seed: 1 });
    for (const fp16 of [false, true]) {
      const first = await embedVolumeCached(v, engine, { modelHash, cacheDir: dir, fp16 });
      assert.equal(first.cached, false);
      const runs = engine.runs;
      const again = await embedVolumeCached(v, engine, { modelHash, cacheDir: dir, fp16 });
      assert.equal(again.cached, true);
      assert.equal(engine.runs, runs);
      for (const k of ['global', 'local'] as const) {
        assert.deepEqual(again[k].data, first[k].data);
        assert.equal(again[k].storage, fp16 ? 'float16' : 'float32');
        assert.deepEqual(
          [again[k].size, again[k].spacing, again[k].origin, again[k].direction, again[k].stride],
          [first[k].size, first[k].spacing, first[k].origin, first[k].direction, first[k].stride],
        );
      }
      // corrupt: one flipped data byte, then a truncated file -> miss, file removed, recomputed
      const path = cachePath(first.key, dir);
      const bytes = readFileSync(path);
      bytes[bytes.length - 3] ^= 0xff;
      writeFileSync(path, bytes);
      assert.equal(readCachedEmbedding(first.key, dir), null);
      assert.ok(!readdirSync(dir).includes(`${first.key}.samemb`));
      writeCachedEmbedding(first.key, first, dir);
      writeFileSync(path, readFileSync(path).subarray(0, 100));
      const re = await embedVolumeCached(v, engine, { modelHash, cacheDir: dir, fp16 });
      assert.equal(re.cached, false);
      assert.equal(engine.runs, runs + 1);
      assert.ok(readCachedEmbedding(first.key, dir));
      // an entry stored under another key is not returned
      writeFileSync(cachePath('0'.repeat(64), dir), readFileSync(path));
      assert.equal(readCachedEmbedding('0'.repeat(64), dir), null);
    }
    assert.ok(readdirSync(dir).every((n) => !n.endsWith('.tmp')));
  } finally {
    cleanup();
  }
});
