/**
 * Float64 references for the InfoNCE tests (train-infonce.test.ts, train-infonce-wgsl.test.ts): the
 * loss computed by hand, a small hand-made batch of selections (missing and repeated negatives,
 * shared negatives, a pair without positives) and unit-length random embeddings.
 */
import assert from 'node:assert/strict';
import type { DirectionSelection, PairSelection } from '../main/engine/train/infonce.ts';
import { createRng } from '../main/engine/train/rng.ts';

/** Float64 InfoNCE summed over the queries of a selection; emb is rows x c, flat. */
export function handSum(emb: Float64Array, c: number, sel: DirectionSelection, tau: number): number {
  const dotRows = (i: number, j: number) => {
    let s = 0;
    for (let k = 0; k < c; k++) s += emb[i * c + k] * emb[j * c + k];
    return s;
  };
  let total = 0;
  for (let n = 0; n < sel.query.length; n++) {
    const q = sel.query[n];
    const pos = dotRows(q, sel.key[n]) / tau;
    let denom = Math.exp(pos);
    for (let m = 0; m < sel.perQuery; m++) {
      const r = sel.negatives[n * sel.perQuery + m];
      if (r >= 0) denom += Math.exp(dotRows(q, r) / tau);
    }
    for (const r of sel.shared) denom += Math.exp(dotRows(q, r) / tau);
    total += -Math.log(Math.exp(pos) / denom);
  }
  return total;
}

export function handSam(
  local: Float64Array,
  global: Float64Array,
  c: number,
  sels: PairSelection[],
  tau: number,
): number {
  let total = 0;
  const terms: [Float64Array, (s: PairSelection) => DirectionSelection][] = [
    [local, (s) => s.local.ab],
    [local, (s) => s.local.ba],
    [global, (s) => s.global.ab],
    [global, (s) => s.global.ba],
  ];
  for (const [emb, pick] of terms) {
    let sum = 0;
    let n = 0;
    for (const s of sels) {
      sum += handSum(emb, c, pick(s), tau);
      n += pick(s).query.length;
    }
    if (n > 0) total += sum / n;
  }
  return total;
}

export const I = (...v: number[]) => Int32Array.from(v);
const empty = (): DirectionSelection => ({ query: I(), key: I(), negatives: I(), perQuery: 0, shared: I() });

/** Two pairs of 6-voxel local (rows 0..23) and 2-voxel global (rows 0..7) embeddings; pair 1 has no positives. */
export function handCase(): { sels: PairSelection[]; localShape: number[]; globalShape: number[]; c: number } {
  const sels: PairSelection[] = [
    {
      local: {
        // negatives with a missing one (-1), a repeated row and the key's row of the other query
        ab: { query: I(0, 2), key: I(6, 9), negatives: I(7, 8, -1, 11, 11, 6), perQuery: 3, shared: I() },
        ba: { query: I(6, 9), key: I(0, 2), negatives: I(1, 3, 4, 5, 10, -1), perQuery: 3, shared: I() },
      },
      global: {
        ab: { query: I(0), key: I(2), negatives: I(1, 3), perQuery: 2, shared: I(4, 5, 7) },
        ba: { query: I(2), key: I(0), negatives: I(3, -1), perQuery: 2, shared: I(6, 4) },
      },
    },
    { local: { ab: empty(), ba: empty() }, global: { ab: empty(), ba: empty() } },
  ];
  return { sels, localShape: [4, 1, 2, 3, 3], globalShape: [4, 1, 1, 2, 3], c: 3 };
}

export function randomUnit(shape: number[], seed: number): Float64Array {
  const r = createRng(seed);
  const c = shape[shape.length - 1];
  const n = shape.reduce((a, b) => a * b);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i += c) {
    let s = 0;
    for (let k = 0; k < c; k++) s += (out[i + k] = r.next() - 0.5) ** 2;
    for (let k = 0; k < c; k++) out[i + k] = Math.fround(out[i + k] / Math.sqrt(s)); // exact in float32 too
  }
  return out;
}

/**
 * The gradients of the SAM loss w.r.t. the local and global embeddings (gl, gg) against central
 * finite differences of handSam (tau 0.5), element by element; some must be non-zero.
 */
export function checkAgainstFiniteDifferences(
  local: Float64Array,
  global: Float64Array,
  c: number,
  sels: PairSelection[],
  gl: ArrayLike<number>,
  gg: ArrayLike<number>,
): void {
  const h = 1e-6;
  for (const [x, g, name] of [
    [local, gl, 'local'],
    [global, gg, 'global'],
  ] as const) {
    let nonzero = 0;
    for (let i = 0; i < x.length; i++) {
      const keep = x[i];
      x[i] = keep + h;
      const up = handSam(local, global, c, sels, 0.5);
      x[i] = keep - h;
      const down = handSam(local, global, c, sels, 0.5);
      x[i] = keep;
      const fd = (up - down) / (2 * h);
      if (Math.abs(fd) > 1e-6) nonzero++;
      assert.ok(
        Math.abs(fd - g[i]) < 2e-5 + 1e-4 * Math.abs(fd),
        `${name}[${i}]: grad ${g[i]} vs finite difference ${fd}`,
      );
    }
    assert.ok(nonzero > 5);
  }
}
