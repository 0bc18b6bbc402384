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
import { pairResolution } from './deform/pair-resolution.ts';
import { stageField } from './stage-field.ts';
import { applyAffine, indexToWorldMatrix, insideExtent, worldToIndexMatrix } from '../volume/geometry.ts';
import { trilinearAt } from '../volume/interpolate.ts';
import { Moments } from './overlap-ncc.ts';
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
  // both to the same resolution along each world axis (deform/pair-resolution.ts), as the deform stage
  const pair = pairResolution(fixed, moving);
  const on = (v: Volume): Volume<Float32Array> => {
    const grid = gridWithSpacing(v, [spacingMm, spacingMm, spacingMm]);
    return { ...grid, components: 1, data: prepareImage(v, grid, smoothMm, pair), meta: { warnings: [] } };
  };
  const f = on(fixed);
  const mask = resample(fixedMask, f, { interpolation: 'nearest', outputType: 'uint8' }).data as Uint8Array;
  return { fixed: f, moving: on(moving), mask };
}

/**
 * The moving image read through each map (trilinear, its border beyond the edge) at every point of
 * the fixed grid, or only where `only` is set, and where every map lands inside the moving image.
 */
function movingThroughMaps(
  pair: SmoothedPair,
  affine: Affine3x4,
  maps: Field[][],
  only?: Uint8Array,
): { J: Float32Array[]; inside: Uint8Array } {
  const { fixed, moving } = pair;
  const size = fixed.size;
  const N = fixed.data.length;
  const toWorld = indexToWorldMatrix(fixed);
  const toMoving = worldToIndexMatrix(moving);
  const out = [0];
  const inside = new Uint8Array(N);
  if (only) inside.set(only);
  else inside.fill(1);
  const J = maps.map((corrections) => {
    const u = stageField(fixed, affine, corrections).data;
    const Jm = new Float32Array(N);
    for (let k = 0, v = 0; k < size[2]; k++)
      for (let j = 0; j < size[1]; j++)
        for (let i = 0; i < size[0]; i++, v++) {
          if (only && !only[v]) continue;
          const x = applyAffine(toWorld, [i, j, k]);
          const y = applyAffine(toMoving, [x[0] + u[3 * v], x[1] + u[3 * v + 1], x[2] + u[3 * v + 2]]);
          if (!insideExtent(moving.size, y[0], y[1], y[2])) inside[v] = 0;
          trilinearAt(moving.data, moving.size, 1, y[0], y[1], y[2], 'border', out);
          Jm[v] = out[0];
        }
    return Jm;
  });
  return { J, inside };
}

/** The NCC through each map (a list of corrections after the affine), on the same points. */
export function nccThroughMaps(pair: SmoothedPair, affine: Affine3x4, maps: Field[][]): number[] {
  const { J, inside } = movingThroughMaps(pair, affine, maps, pair.mask);
  const I = pair.fixed.data;
  return J.map((Jm) => {
    const m = new Moments();
    for (let v = 0; v < I.length; v++) if (inside[v]) m.add(I[v], Jm[v]);
    return m.ncc();
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
  const { fixed, mask } = pair;
  const size = fixed.size;
  const N = fixed.data.length;
  const { J: Js, inside: valid } = movingThroughMaps(pair, affine, maps);
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
