/** Shared test helpers: where the real data lives, temp folders, small comparisons. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

/** The real CT data shipped beside the checkout (never committed): ../shared/data. */
export const DATA = resolve(process.env.SAM_DATA_DIR ?? '../shared/data');

export function dataPath(...parts: string[]): string {
  return join(DATA, ...parts);
}

/** A fresh temporary folder, removed by the returned cleanup function. */
export function tempDir(prefix = 'sam-test-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Small deterministic PRNG (mulberry32) for reproducible tests. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
