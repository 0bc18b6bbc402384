/**
 * The seeded random number generator used throughout training (patch sampling, positive and
 * negative selection). xoshiro128** seeded through splitmix32: fast, 128-bit state, and fully
 * deterministic for a given seed on every platform (only 32-bit integer arithmetic).
 */

export interface Rng {
  /** Uniform float in [0, 1). */
  next(): number;
  /** Uniform unsigned 32-bit integer. */
  uint32(): number;
  /** Uniform integer in [lo, hi) (hi exclusive, like numpy's randint); throws when hi <= lo. */
  int(lo: number, hi: number): number;
  /** Uniform float in [lo, hi). */
  uniform(lo: number, hi: number): number;
  /**
   * k distinct integers drawn from [0, n) in random order (all n, shuffled, when k >= n).
   */
  sample(n: number, k: number): Int32Array;
  /** Fisher-Yates shuffle in place. */
  shuffle<T extends { length: number; [i: number]: unknown }>(a: T): T;
  /** An independent generator seeded from this one (advances this one by one draw). */
  fork(): Rng;
}

function splitmix32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  };
}

/** A deterministic generator for the given seed (any number; its low 32 bits are used). */
export function createRng(seed: number): Rng {
  const sm = splitmix32(seed);
  let a = sm();
  let b = sm();
  let c = sm();
  let d = sm();
  if ((a | b | c | d) === 0) a = 1;
  const rotl = (x: number, k: number): number => (x << k) | (x >>> (32 - k));
  const uint32 = (): number => {
    const r = Math.imul(rotl(Math.imul(b, 5), 7), 9) >>> 0;
    const t = b << 9;
    c ^= a;
    d ^= b;
    b ^= c;
    a ^= d;
    c ^= t;
    d = rotl(d, 11);
    return r;
  };
  const next = (): number => uint32() / 4294967296;
  const int = (lo: number, hi: number): number => {
    if (!(hi > lo)) throw new RangeError(`rng.int: empty range [${lo}, ${hi})`);
    return lo + Math.floor(next() * (hi - lo));
  };
  const rng: Rng = {
    next,
    uint32,
    int,
    uniform: (lo, hi) => lo + next() * (hi - lo),
    sample(n, k) {
      n = Math.max(0, Math.floor(n));
      k = Math.max(0, Math.min(n, Math.floor(k)));
      if (n <= 1 << 22 || k * 4 > n) {
        // partial Fisher-Yates over [0, n)
        const p = new Int32Array(n);
        for (let i = 0; i < n; i++) p[i] = i;
        for (let i = 0; i < k; i++) {
          const j = i + Math.floor(next() * (n - i));
          const t = p[i];
          p[i] = p[j];
          p[j] = t;
        }
        return p.slice(0, k);
      }
      // few out of very many: rejection with a set
      const seen = new Set<number>();
      const out = new Int32Array(k);
      for (let i = 0; i < k;) {
        const v = Math.floor(next() * n);
        if (!seen.has(v)) {
          seen.add(v);
          out[i++] = v;
        }
      }
      return out;
    },
    shuffle(arr) {
      for (let i = arr.length - 1; i > 0; i--) {
        const j = Math.floor(next() * (i + 1));
        const t = arr[i];
        arr[i] = arr[j];
        arr[j] = t;
      }
      return arr;
    },
    fork: () => createRng(uint32()),
  };
  return rng;
}
