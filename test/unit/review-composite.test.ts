/** The renderer's fixed/warped comparison composites (checkerboard, difference) and their cost at chest size. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkerboardVoxels, compositeVoxels, differenceVoxels } from '../../renderer/views/composite.ts';

test('checkerboard: tiles alternate along each index axis; difference: |fixed - warped|, clamped', () => {
  const size = [4, 4, 2] as const;
  const n = 32;
  const fixed = new Int16Array(n).fill(10);
  const warped = new Int16Array(n).fill(-20);
  const c = checkerboardVoxels(fixed, warped, size, 2);
  const at = (i: number, j: number, k: number) => c[i + 4 * (j + 4 * k)];
  assert.equal(at(0, 0, 0), 10);
  assert.equal(at(1, 1, 1), 10);
  assert.equal(at(2, 0, 0), -20);
  assert.equal(at(0, 2, 0), -20);
  assert.equal(at(2, 2, 0), 10);
  assert.equal(checkerboardVoxels(fixed, warped, size, 1)[1], -20);
  const d = differenceVoxels(Int16Array.of(-32768, 5, 100), Int16Array.of(32767, 9, 40));
  assert.deepEqual([...d], [32767, 4, 60]);
  assert.equal(compositeVoxels('blend', fixed, warped, size, 2), null);
  assert.equal(compositeVoxels('checker', fixed, new Int16Array(3), size, 2), null);
});

test('composites of a 512x512x141 volume take one typed-array pass', () => {
  const size = [512, 512, 141] as const;
  const n = size[0] * size[1] * size[2];
  const a = new Int16Array(n).map((_, i) => (i * 7) % 2000);
  const b = new Int16Array(n).map((_, i) => (i * 3) % 2000);
  for (const mode of ['checker', 'difference'] as const) {
    const t0 = performance.now();
    const out = compositeVoxels(mode, a, b, size, 16)!;
    const ms = performance.now() - t0;
    console.log(`${mode} composite 512x512x141: ${ms.toFixed(0)} ms`);
    assert.equal(out.length, n);
    // a guard against a pathological slowdown only (speed is the benchmarks' job; tests share the CPU)
    assert.ok(ms < 30000, `${mode} took ${ms} ms`);
  }
});
