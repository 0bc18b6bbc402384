// Shared by the ONNX parity tests: per-voxel agreement of two channel-last embeddings.
import assert from 'node:assert/strict';

/** Minimum per-voxel cosine and maximum absolute difference between two [.., C] embeddings. */
export function compareEmbeddings(a: Float32Array, b: Float32Array, C: number): { minCos: number; maxAbs: number } {
  assert.equal(a.length, b.length);
  let minCos = Infinity;
  let maxAbs = 0;
  for (let v = 0; v < a.length; v += C) {
    let [ab, aa, bb] = [0, 0, 0];
    for (let c = v; c < v + C; c++) {
      ab += a[c] * b[c];
      aa += a[c] * a[c];
      bb += b[c] * b[c];
      maxAbs = Math.max(maxAbs, Math.abs(a[c] - b[c]));
    }
    minCos = Math.min(minCos, ab / Math.sqrt(aa * bb));
  }
  return { minCos, maxAbs };
}
