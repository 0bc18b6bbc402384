/**
 * Which of several maps (fixed point x -> x + u(x), each an affine plus corrections: stage-field.ts)
 * makes the moving image agree best with the fixed one: the normalised cross-correlation of the two
 * images, both smoothed to about 4 mm and read on 4 mm grids (sam-deform.ts prepareImage: clipped to
 * +-1000 HU, as the deform stage reads them), over the fixed body, on the same points for every map
 * (those where every map lands inside the moving image), so the numbers compare. Smoothed, because
 * on raw noisy images the NCC prefers whatever map reads the moving image between its voxels (the
 * trilinear average there is less noisy), which is no better alignment.
 *
 * The cascade uses a later stage's correction only when it raises this above the earlier stages'
 * map (cascade.ts): on a scan registered to itself SAM-coarse's matches carry half a millimetre of
 * noise and the deform stage finds LNCC gains in low-contrast windows, which would otherwise become
 * a field with Jacobians of 0.7 to 1.3 where the truth is 1.
 */
import type { Affine3x4 } from './affine-fit.ts';
import type { Field } from './field/field.ts';
import { boxSum } from './deform/box-sum.ts';
import { defaultLnccEps } from './deform/local-ncc.ts';
import { prepareImage } from './deform/sam-deform.ts';
import { stageField } from './stage-field.ts';
import { applyAffine, indexToWorldMatrix, insideExtent, worldToIndexMatrix } from '../volume/geometry.ts';
import { trilinearAt } from '../volume/interpolate.ts';
import { gridWithSpacing, resample } from '../volume/resample.ts';
import type { Volume } from '../volume/volume.ts';

/** Both images smoothed on 4 mm grids (the deform stage's scale: on 2 mm grids the checks cost 9 s of a 2 mm chest pair, on 4 mm 2.4) and the fixed body on the fixed one: made once, compared through several maps. */
export interface SmoothedPair {
  fixed: Volume<Float32Array>;
  moving: Volume<Float32Array>;
  mask: Uint8Array;
}

export function smoothedPair(
  fixed: Volume,
  moving: Volume,
  fixedMask: Volume,
  spacingMm = 4,
  smoothMm = 4,
): SmoothedPair {
  const on = (v: Volume): Volume<Float32Array> => {
    const grid = gridWithSpacing(v, [spacingMm, spacingMm, spacingMm]);
    return { ...grid, components: 1, data: prepareImage(v, grid, smoothMm), meta: { warnings: [] } };
  };
  const f = on(fixed);
  const mask = resample(fixedMask, f, { interpolation: 'nearest', outputType: 'uint8' }).data as Uint8Array;
  return { fixed: f, moving: on(moving), mask };
}

/** The NCC through each map (a list of corrections after the affine), on the same points. */
export function nccThroughMaps(pair: SmoothedPair, affine: Affine3x4, maps: Field[][]): number[] {
  const { fixed, moving, mask } = pair;
  const fields = maps.map((corrections) => stageField(fixed, affine, corrections).data);
  const toWorld = indexToWorldMatrix(fixed);
  const toMoving = worldToIndexMatrix(moving);
  const [ni, nj, nk] = fixed.size;
  const n = maps.length;
  const sa = new Float64Array(n);
  const sb = new Float64Array(n);
  const saa = new Float64Array(n);
  const sbb = new Float64Array(n);
  const sab = new Float64Array(n);
  const m = new Float64Array(n);
  const out = [0];
  let count = 0;
  for (let k = 0, v = 0; k < nk; k++)
    for (let j = 0; j < nj; j++)
      for (let i = 0; i < ni; i++, v++) {
        if (!mask[v]) continue;
        const x = applyAffine(toWorld, [i, j, k]);
        let inside = true;
        for (let c = 0; c < n && inside; c++) {
          const u = fields[c];
          const y = applyAffine(toMoving, [x[0] + u[3 * v], x[1] + u[3 * v + 1], x[2] + u[3 * v + 2]]);
          inside = insideExtent(moving.size, y[0], y[1], y[2]);
          if (inside) {
            trilinearAt(moving.data, moving.size, 1, y[0], y[1], y[2], 'border', out);
            m[c] = out[0];
          }
        }
        if (!inside) continue;
        const f = fixed.data[v];
        count++;
        for (let c = 0; c < n; c++) {
          sa[c] += f;
          sb[c] += m[c];
          saa[c] += f * f;
          sbb[c] += m[c] * m[c];
          sab[c] += f * m[c];
        }
      }
  return maps.map((_, c) => {
    if (!count) return NaN;
    const ab = sab[c] - (sa[c] * sb[c]) / count;
    const aa = saa[c] - (sa[c] * sa[c]) / count;
    const bb = sbb[c] - (sb[c] * sb[c]) / count;
    return ab / Math.sqrt(aa * bb || 1);
  });
}

/**
 * The local NCC (windows of (2r+1)^3 points of the 4 mm grid, the deform stage's) through each map, with no reward for
 * contrast: cc = cross^2 / ((varI + eps) varJ), so that by Cauchy-Schwarz a moving image that equals
 * the fixed one is at its maximum (the deform stage's objective damps varJ too, and gains a little by
 * raising J's contrast in low-contrast windows: on a scan registered to itself that became a field).
 * Averaged over the windows centred in the fixed body where every map lands inside the moving image.
 */
export function lnccThroughMaps(pair: SmoothedPair, affine: Affine3x4, maps: Field[][], r = 2): number[] {
  const { fixed, moving, mask } = pair;
  const size = fixed.size;
  const N = fixed.data.length;
  const toWorld = indexToWorldMatrix(fixed);
  const toMoving = worldToIndexMatrix(moving);
  const out = [0];
  const valid = new Uint8Array(N).fill(1);
  const Js = maps.map((corrections) => {
    const u = stageField(fixed, affine, corrections).data;
    const J = new Float32Array(N);
    for (let k = 0, v = 0; k < size[2]; k++)
      for (let j = 0; j < size[1]; j++)
        for (let i = 0; i < size[0]; i++, v++) {
          const x = applyAffine(toWorld, [i, j, k]);
          const y = applyAffine(toMoving, [x[0] + u[3 * v], x[1] + u[3 * v + 1], x[2] + u[3 * v + 2]]);
          if (!insideExtent(moving.size, y[0], y[1], y[2])) valid[v] = 0;
          trilinearAt(moving.data, moving.size, 1, y[0], y[1], y[2], 'border', out);
          J[v] = out[0];
        }
    return J;
  });
  const I = fixed.data;
  const sq = (a: Float32Array) => a.map((x) => x * x);
  const n = boxSum(new Float32Array(N).fill(1), size, r);
  const sI = boxSum(I, size, r);
  const sII = boxSum(sq(I), size, r);
  const eps = defaultLnccEps(r);
  // windows whose every point has data through every map
  const full = boxSum(valid, size, r);
  return Js.map((J) => {
    const sJ = boxSum(J, size, r);
    const sJJ = boxSum(sq(J), size, r);
    const sIJ = boxSum(
      J.map((x, v) => x * I[v]),
      size,
      r,
    );
    let total = 0;
    let count = 0;
    for (let v = 0; v < N; v++) {
      if (!mask[v] || full[v] < n[v] - 0.5) continue;
      const cross = sIJ[v] - (sI[v] * sJ[v]) / n[v];
      const varI = sII[v] - (sI[v] * sI[v]) / n[v];
      const varJ = sJJ[v] - (sJ[v] * sJ[v]) / n[v];
      total += varJ > 1e-12 ? (cross * cross) / ((varI + eps) * varJ) : 0;
      count++;
    }
    return count ? total / count : NaN;
  });
}
