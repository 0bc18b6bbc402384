import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRng } from '../../main/engine/train/rng.ts';

test('rng: same seed, same stream; other seed, other stream', () => {
  const a = createRng(42);
  const b = createRng(42);
  const c = createRng(43);
  const xa = Array.from({ length: 100 }, () => a.next());
  const xb = Array.from({ length: 100 }, () => b.next());
  const xc = Array.from({ length: 100 }, () => c.next());
  assert.deepEqual(xa, xb);
  assert.notDeepEqual(xa, xc);
  assert.ok(xa.every((x) => x >= 0 && x < 1));
});

test('rng: int and uniform stay in range and cover it', () => {
  const r = createRng(1);
  const seen = new Set<number>();
  for (let i = 0; i < 2000; i++) {
    const v = r.int(3, 9);
    assert.ok(Number.isInteger(v) && v >= 3 && v < 9);
    seen.add(v);
    const u = r.uniform(0.8, 1.2);
    assert.ok(u >= 0.8 && u < 1.2);
  }
  assert.equal(seen.size, 6);
  assert.throws(() => r.int(5, 5), RangeError);
  // roughly uniform
  let mean = 0;
  for (let i = 0; i < 20000; i++) mean += r.next() / 20000;
  assert.ok(Math.abs(mean - 0.5) < 0.01, `mean ${mean}`);
});

test('rng: sample gives distinct values, all of them when k >= n', () => {
  const r = createRng(7);
  const s = r.sample(1000, 100);
  assert.equal(s.length, 100);
  assert.equal(new Set(s).size, 100);
  assert.ok(s.every((v) => v >= 0 && v < 1000));
  const all = r.sample(10, 50);
  assert.deepEqual(
    [...all].sort((x, y) => x - y),
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
  );
  assert.equal(r.sample(0, 5).length, 0);
  const big = r.sample(1e8, 20); // rejection path
  assert.equal(new Set(big).size, 20);
  // forks are deterministic and independent of the parent's later draws
  const f1 = createRng(9).fork();
  const f2 = createRng(9).fork();
  assert.equal(f1.uint32(), f2.uint32());
});
