/**
 * The SAM-deform network's layers in tfjs (VoxelMorph's layers.py, for this engine). All tensors are
 * NDHWC [batch, k, j, i, channels] on the deform grid G; displacements and velocities are in voxel
 * units of G with channels (di, dj, dk) along (i, j, k) (index order, not the tensor's axis order).
 * The spatial transformer and the integration work on batch 1 only (the engine registers one pair
 * at a time; training uses batch 1).
 */
import * as tf from '@tensorflow/tfjs-core';
import { conv3dTrainable } from '../../sam/network.ts';

/** 'same' conv (3x3x3 or 1x1x1 kernel) with bias (stride 1 or 2); the weight gradient as the SAM network computes it. */
export function conv3(x: tf.Tensor5D, w: tf.Tensor, b: tf.Tensor, stride: 1 | 2): tf.Tensor5D {
  const k = w as tf.Tensor5D;
  const s: [number, number, number] = [stride, stride, stride];
  const y = conv3dTrainable(x, k, s, 'same');
  return tf.add(y, b);
}

/** Nearest-neighbour upsampling by 2 along k, j and i. */
export function upsample2(x: tf.Tensor5D): tf.Tensor5D {
  const [n, d, h, w, c] = x.shape;
  let y: tf.Tensor = tf.reshape(tf.stack([x, x], 2), [n, 2 * d, h, w, c]);
  y = tf.reshape(tf.stack([y, y], 3), [n, 2 * d, 2 * h, w, c]);
  y = tf.reshape(tf.stack([y, y], 4), [n, 2 * d, 2 * h, 2 * w, c]);
  return y as tf.Tensor5D;
}

/**
 * The local-feature correlation (an input of the network, computed once per pair, not differentiated):
 * for each displacement d = (di, dj, dk) in [-r, r]^3 (dk slowest, di fastest), channel n at voxel x is
 * sum_c f(x)_c g(x + d)_c, zero where x + d leaves the grid. With unit-normalised features this is the
 * cosine similarity. f, g: flat NDHWC [K, J, I, C] (i fastest, channels interleaved); size [I, J, K];
 * returns [K, J, I, (2r+1)^3] likewise.
 */
export function correlationVolume(
  f: Float32Array,
  g: Float32Array,
  size: readonly number[],
  C: number,
  r: number,
): Float32Array {
  const [ni, nj, nk] = size;
  const D = (2 * r + 1) ** 3;
  const out = new Float32Array(ni * nj * nk * D);
  for (let k = 0, v = 0; k < nk; k++)
    for (let j = 0; j < nj; j++)
      for (let i = 0; i < ni; i++, v++) {
        let n = 0;
        for (let dk = -r; dk <= r; dk++)
          for (let dj = -r; dj <= r; dj++)
            for (let di = -r; di <= r; di++, n++) {
              const a = i + di;
              const b = j + dj;
              const c = k + dk;
              if (a < 0 || b < 0 || c < 0 || a >= ni || b >= nj || c >= nk) continue;
              const q = (a + ni * (b + nj * c)) * C;
              let sum = 0;
              for (let ch = 0; ch < C; ch++) sum += f[v * C + ch] * g[q + ch];
              out[v * D + n] = sum;
            }
      }
  return out;
}

/** Continuous indices (i, j, k) of every voxel: [1, K, J, I, 3]. */
export function identityGrid(shape: readonly number[]): tf.Tensor5D {
  const [d, h, w] = shape;
  const v = new Float32Array(d * h * w * 3);
  for (let k = 0, o = 0; k < d; k++)
    for (let j = 0; j < h; j++)
      for (let i = 0; i < w; i++, o += 3) {
        v[o] = i;
        v[o + 1] = j;
        v[o + 2] = k;
      }
  return tf.tensor5d(v, [1, d, h, w, 3]);
}

/**
 * rows[idx] of a [N, C] tensor, differentiable in the rows only (tfjs' own GatherV2 gradient also
 * returns an int32 gradient for the indices, which the tape refuses when the indices were computed
 * from differentiated tensors, as here from floor(x + u)).
 */
function gatherRows(rows: tf.Tensor2D, idx: tf.Tensor): tf.Tensor2D {
  const n = rows.shape[0];
  const f = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    (args[1] as tf.GradSaveFunc)([idx]); // kept for the backward pass
    return {
      value: tf.gather(args[0] as tf.Tensor, idx),
      // scatterND sums duplicate indices in linear time (tfjs-cpu's unsortedSegmentSum is O(n^2))
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
        tf.scatterND(tf.reshape(saved[0], [-1, 1]), dy, [n, rows.shape[1]]),
    };
  });
  return f(rows) as tf.Tensor2D;
}

/**
 * The spatial transformer: out(x) = src(x + u(x)), trilinear, with the sample point clamped to the
 * voxel-centre hull [0, n-1] per axis (border values outside; zero gradient along a clamped axis, as
 * deform-loss.ts). src [1, K, J, I, C], u [1, K, J, I, 3] (voxel units, channels di, dj, dk).
 * Differentiable in src and u.
 */
export function warp(src: tf.Tensor5D, u: tf.Tensor5D): tf.Tensor5D {
  return tf.tidy(() => {
    const [nb, d, h, w, c] = src.shape;
    if (nb !== 1) throw new Error(`warp: batch 1 only, got ${nb}`);
    const [, ud, uh, uw] = u.shape;
    const n = ud * uh * uw;
    const p = tf.add(identityGrid([ud, uh, uw]), u);
    const p2 = tf.reshape(p, [n, 3]);
    // components by matrix products: tfjs-cpu's strided split / slice are slow
    const [px, py, pz] = [0, 1, 2].map((a) =>
      tf.matMul(p2, tf.tensor2d([a === 0 ? 1 : 0, a === 1 ? 1 : 0, a === 2 ? 1 : 0], [3, 1])),
    );
    const axis = (q: tf.Tensor, size: number) => {
      const x = tf.clipByValue(q, 0, size - 1);
      const lo = size > 1 ? tf.clipByValue(tf.floor(x), 0, size - 2) : tf.zerosLike(x);
      const f = size > 1 ? tf.sub(x, lo) : tf.zerosLike(x);
      return { i0: tf.cast(lo, 'int32'), f, step: size > 1 ? 1 : 0 };
    };
    const ax = axis(px, w);
    const ay = axis(py, h);
    const az = axis(pz, d);
    const flat = tf.reshape(src, [d * h * w, c]) as tf.Tensor2D;
    const int = (v: number) => tf.scalar(v, 'int32');
    const base = tf.add(tf.add(ax.i0, tf.mul(ay.i0, int(w))), tf.mul(az.i0, int(w * h)));
    const gx = [tf.sub(1, ax.f), ax.f];
    const gy = [tf.sub(1, ay.f), ay.f];
    const gz = [tf.sub(1, az.f), az.f];
    let acc: tf.Tensor | null = null;
    for (let cz = 0; cz < 2; cz++)
      for (let cy = 0; cy < 2; cy++)
        for (let cx = 0; cx < 2; cx++) {
          const off = cx * ax.step + cy * ay.step * w + cz * az.step * w * h;
          const idx = tf.reshape(off ? tf.add(base, int(off)) : base, [n]);
          const wgt = tf.mul(tf.mul(gx[cx], gy[cy]), gz[cz]);
          const term = tf.mul(gatherRows(flat, idx), wgt);
          acc = acc ? tf.add(acc, term) : term;
        }
    return tf.reshape(acc!, [1, ud, uh, uw, c]) as tf.Tensor5D;
  });
}

/**
 * Scaling and squaring: the displacement of the flow of the stationary velocity v at time 1,
 * u = v / 2^T, then T times u <- u + u o (id + u). v, u: [1, K, J, I, 3] (voxel units).
 */
export function integrateVelocity(v: tf.Tensor5D, steps: number): tf.Tensor5D {
  return tf.tidy(() => {
    let u = tf.mul(v, 1 / 2 ** steps) as tf.Tensor5D;
    for (let s = 0; s < steps; s++) u = tf.add(u, warp(u, u)) as tf.Tensor5D;
    return u;
  });
}

/** Average pooling by 2 along k, j, i (VoxelMorph integrates the velocity at half resolution). */
export function downsample2(x: tf.Tensor5D): tf.Tensor5D {
  return tf.avgPool3d(x, 2, 2, 'valid');
}

/**
 * Trilinear upsampling by 2 (voxel centres: fine voxel m sits at coarse coordinate (m - 0.5) / 2), as a
 * transposed convolution with the separable kernel [1/4, 3/4, 3/4, 1/4] per channel, normalised at the
 * faces (border values). x [1, K, J, I, C] -> [1, 2K, 2J, 2I, C].
 */
export function upsampleLinear2(x: tf.Tensor5D): tf.Tensor5D {
  return tf.tidy(() => {
    const [n, d, h, w, c] = x.shape;
    const taps = [0.25, 0.75, 0.75, 0.25];
    const k = new Float32Array(64 * c * c);
    for (let a = 0; a < 4; a++)
      for (let b = 0; b < 4; b++)
        for (let e = 0; e < 4; e++)
          for (let ch = 0; ch < c; ch++) k[(((a * 4 + b) * 4 + e) * c + ch) * c + ch] = taps[a] * taps[b] * taps[e];
    const kernel = tf.tensor5d(k, [4, 4, 4, c, c]);
    const shape: [number, number, number, number, number] = [n, 2 * d, 2 * h, 2 * w, c];
    // tfjs has no gradient for Conv3DBackpropInputV2: its adjoint is the strided conv with the same kernel
    const transposed = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
      (args[1] as tf.GradSaveFunc)([kernel]); // kept for the backward pass
      return {
        value: tf.conv3dTranspose(args[0] as tf.Tensor5D, kernel, shape, 2, 'same'),
        gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
          tf.conv3d(dy as tf.Tensor5D, saved[0] as tf.Tensor5D, 2, 'same'),
      };
    });
    const up = transposed(x) as tf.Tensor5D;
    const k1 = tf.tensor5d(
      Float32Array.from({ length: 64 }, (_, q) => taps[q >> 4] * taps[(q >> 2) & 3] * taps[q & 3]),
      [4, 4, 4, 1, 1],
    );
    const norm = tf.conv3dTranspose(
      tf.ones([1, d, h, w, 1]) as tf.Tensor5D,
      k1,
      [1, 2 * d, 2 * h, 2 * w, 1],
      2,
      'same',
    );
    return tf.div(up, norm) as tf.Tensor5D;
  });
}
