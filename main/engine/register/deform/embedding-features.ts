/**
 * SAM local embeddings as feature channels for SAM-deform's feature term: both images' local
 * embeddings projected on the first k principal components of the fixed image's embeddings (so that
 * sampling them every iteration stays cheap: k = 8 instead of 128 channels), then unit-normalised per
 * voxel, so <f, g> is the cosine similarity in the reduced space. Principal components by power
 * iteration with deflation on the C x C covariance of (at most 20000) sampled fixed voxels.
 */
import type { EmbeddedVolume } from '../../sam/embed-volume.ts';
import { halfTable, readEmbedding } from '../../sam/embed-volume.ts';
import { makeVolume, type Vec3, type Volume } from '../../volume/volume.ts';
import type { Geometry } from '../../volume/geometry.ts';

/** The voxels the principal components are estimated from: every `pcaStep(n)`-th of n (at most about 20000). */
export function pcaStep(n: number): number {
  return Math.max(1, Math.floor(n / 20000));
}

export interface PrincipalComponents {
  mean: Float64Array;
  axes: Float64Array[];
}

/** The first k principal components of the rows (C channels each) every pcaStep-th of `data`. */
export function principalComponents(data: Float32Array, C: number, k: number): PrincipalComponents {
  const n = data.length / C;
  const step = pcaStep(n);
  const mean = new Float64Array(C);
  let m = 0;
  for (let v = 0; v < n; v += step, m++) for (let c = 0; c < C; c++) mean[c] += data[v * C + c];
  for (let c = 0; c < C; c++) mean[c] /= Math.max(m, 1);
  const cov = new Float64Array(C * C);
  const x = new Float64Array(C);
  for (let v = 0; v < n; v += step) {
    for (let c = 0; c < C; c++) x[c] = data[v * C + c] - mean[c];
    // the upper triangle (the lower is its mirror: the same products)
    for (let a = 0; a < C; a++) {
      const xa = x[a];
      for (let b = a; b < C; b++) cov[a * C + b] += xa * x[b];
    }
  }
  for (let a = 0; a < C; a++) for (let b = 0; b < a; b++) cov[a * C + b] = cov[b * C + a];
  return { mean, axes: principalAxes(cov, C, k) };
}

/**
 * The first k eigenvectors of a C x C covariance (row-major; any positive scale), by power iteration
 * with deflation.
 */
export function principalAxes(cov: ArrayLike<number>, C: number, k: number): Float64Array[] {
  const axes: Float64Array[] = [];
  for (let q = 0; q < Math.min(k, C); q++) {
    let e = new Float64Array(C).map((_, c) => Math.sin(1 + c * (q + 1)));
    for (let it = 0; it < 100; it++) {
      const y = new Float64Array(C);
      for (let a = 0; a < C; a++) for (let b = 0; b < C; b++) y[a] += cov[a * C + b] * e[b];
      for (const p of axes) {
        let d = 0;
        for (let c = 0; c < C; c++) d += y[c] * p[c];
        for (let c = 0; c < C; c++) y[c] -= d * p[c];
      }
      const norm = Math.hypot(...y) || 1;
      e = y.map((v) => v / norm);
    }
    axes.push(e);
  }
  return axes;
}

/**
 * project's loop for k = 8 (the deform stage's default), its sums in eight locals instead of an array
 * (the same operations in the same order: identical results, about 3x faster).
 */
function projectEight(
  src: Float32Array | Uint16Array,
  half: Float32Array | null,
  C: number,
  A: Float64Array,
  offset: Float64Array,
  out: Float32Array,
): void {
  const n = src.length / C;
  for (let v = 0; v < n; v++) {
    let d0 = -offset[0];
    let d1 = -offset[1];
    let d2 = -offset[2];
    let d3 = -offset[3];
    let d4 = -offset[4];
    let d5 = -offset[5];
    let d6 = -offset[6];
    let d7 = -offset[7];
    for (let c = 0, base = v * C, a = 0; c < C; c++, a += 8) {
      const x = half ? half[src[base + c]] : src[base + c];
      d0 += x * A[a];
      d1 += x * A[a + 1];
      d2 += x * A[a + 2];
      d3 += x * A[a + 3];
      d4 += x * A[a + 4];
      d5 += x * A[a + 5];
      d6 += x * A[a + 6];
      d7 += x * A[a + 7];
    }
    const s = d0 * d0 + d1 * d1 + d2 * d2 + d3 * d3 + d4 * d4 + d5 * d5 + d6 * d6 + d7 * d7;
    const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
    const o = v * 8;
    out[o] = d0 * inv;
    out[o + 1] = d1 * inv;
    out[o + 2] = d2 * inv;
    out[o + 3] = d3 * inv;
    out[o + 4] = d4 * inv;
    out[o + 5] = d5 * inv;
    out[o + 6] = d6 * inv;
    out[o + 7] = d7 * inv;
  }
}

function project(ev: EmbeddedVolume['local'], pc: PrincipalComponents): Volume<Float32Array> {
  const C = ev.components;
  const k = pc.axes.length;
  // float16 storage read through the half table as it goes (no float32 copy of the whole level)
  const src = ev.data;
  const half = ev.storage === 'float32' ? null : halfTable();
  const n = src.length / C;
  const out = new Float32Array(n * k);
  // <x - mean, a> = <x, a> - <mean, a>: the axes interleaved (A[c k + q]) so that one pass over a
  // voxel's channels feeds all k sums
  const A = new Float64Array(C * k);
  const offset = new Float64Array(k);
  for (let q = 0; q < k; q++)
    for (let c = 0; c < C; c++) {
      A[c * k + q] = pc.axes[q][c];
      offset[q] += pc.mean[c] * pc.axes[q][c];
    }
  if (k === 8) projectEight(src, half, C, A, offset, out);
  else {
    const d = new Float64Array(k);
    for (let v = 0; v < n; v++) {
      for (let q = 0; q < k; q++) d[q] = -offset[q];
      for (let c = 0, base = v * C; c < C; c++) {
        const x = half ? half[src[base + c]] : src[base + c];
        for (let q = 0, a = c * k; q < k; q++) d[q] += x * A[a + q];
      }
      let s = 0;
      for (let q = 0; q < k; q++) s += d[q] * d[q];
      const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
      for (let q = 0; q < k; q++) out[v * k + q] = d[q] * inv;
    }
  }
  return reducedVolume(ev, out, k);
}

/** The reduced channels as a Volume on the local embedding's grid. */
export function reducedVolume(grid: Geometry, data: Float32Array, k: number): Volume<Float32Array> {
  return makeVolume({
    size: [...grid.size] as Vec3,
    spacing: [...grid.spacing] as Vec3,
    origin: [...grid.origin] as Vec3,
    direction: [...grid.direction] as Geometry['direction'],
    components: k,
    data,
    meta: { description: `SAM local embedding, ${k} principal components` },
  });
}

/** Reduced, unit-normalised local-embedding channels of both images. */
export function embeddingFeatures(
  embeddings: { fixed: EmbeddedVolume; moving: EmbeddedVolume },
  k = 8,
): { fixed: Volume<Float32Array>; moving: Volume<Float32Array> } {
  // the sampled rows only (principalComponents then takes all of them: step 1), as the device path does
  const f = embeddings.fixed.local;
  const C = f.components;
  const n = f.data.length / C;
  const step = pcaStep(n);
  const sample = new Float32Array(Math.ceil(n / step) * C);
  const row = new Float32Array(C);
  for (let v = 0, r = 0; v < n; v += step, r++) sample.set(readEmbedding(f, v, row), r * C);
  const pc = principalComponents(sample, C, k);
  return { fixed: project(embeddings.fixed.local, pc), moving: project(embeddings.moving.local, pc) };
}
