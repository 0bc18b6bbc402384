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
import { pairResolution, type PairResolution } from './deform/pair-resolution.ts';
import { stageField } from './stage-field.ts';
import {
  applyAffine,
  indexToWorldMatrix,
  insideExtent,
  worldToIndexMatrix,
  type Geometry,
} from '../volume/geometry.ts';
import { trilinearAt } from '../volume/interpolate.ts';
import { Moments } from './overlap-ncc.ts';
import { gridWithSpacing, resample } from '../volume/resample.ts';
import type { Vec3, Volume } from '../volume/volume.ts';

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
  const { fixedGrid, movingGrid, pair } = smoothedPairGrids(fixed, moving, spacingMm);
  const on = (v: Volume, grid: Geometry) => prepareImage(v, grid, smoothMm, pair);
  return smoothedPairOf(fixedGrid, on(fixed, fixedGrid), movingGrid, on(moving, movingGrid), fixedMask);
}

/** The grids of smoothedPair and the per-axis resolution both images are smoothed to (deform/pair-resolution.ts, as the deform stage). */
export function smoothedPairGrids(
  fixed: Volume,
  moving: Volume,
  spacingMm = 4,
): { fixedGrid: Geometry; movingGrid: Geometry; pair: PairResolution } {
  const s: Vec3 = [spacingMm, spacingMm, spacingMm];
  return {
    fixedGrid: gridWithSpacing(fixed, s),
    movingGrid: gridWithSpacing(moving, s),
    pair: pairResolution(fixed, moving),
  };
}

/** A SmoothedPair from both prepared images (sam-deform.ts prepareImage on their grids; the host's or the GPU's) and the fixed body mask. */
export function smoothedPairOf(
  fixedGrid: Geometry,
  fixedData: Float32Array,
  movingGrid: Geometry,
  movingData: Float32Array,
  fixedMask: Volume,
): SmoothedPair {
  const as = (grid: Geometry, data: Float32Array): Volume<Float32Array> => ({
    ...grid,
    components: 1,
    data,
    meta: { warnings: [] },
  });
  const f = as(fixedGrid, fixedData);
  const mask = resample(fixedMask, f, { interpolation: 'nearest', outputType: 'uint8' }).data as Uint8Array;
  return { fixed: f, moving: as(movingGrid, movingData), mask };
}

/**
 * The moving image sampled through each map on the fixed grid (J, one array per map) and where every
 * map lands inside the moving image (inside): movingThroughMaps's result, from the host or the GPU
 * (device/map-ncc-on-device.ts).
 */
export interface MapSamples {
  J: Float32Array[];
  inside: Uint8Array;
}

/**
 * The moving image read through each map (trilinear, its border beyond the edge) at every point of
 * the fixed grid, or only where `only` is set, and where every map lands inside the moving image.
 */
export function movingThroughMaps(
  pair: SmoothedPair,
  affine: Affine3x4,
  maps: Field[][],
  only?: Uint8Array,
): MapSamples {
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
  return nccOfSamples(pair, movingThroughMaps(pair, affine, maps, pair.mask));
}

/** nccThroughMaps from the samples: over the fixed body where every map lands inside the moving image. */
export function nccOfSamples(pair: SmoothedPair, { J, inside }: MapSamples): number[] {
  const I = pair.fixed.data;
  const mask = pair.mask;
  return J.map((Jm) => {
    const m = new Moments();
    for (let v = 0; v < I.length; v++) if (inside[v] && mask[v]) m.add(I[v], Jm[v]);
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
  return lnccOfSamples(pair, movingThroughMaps(pair, affine, maps), r);
}

/** lnccThroughMaps from the samples (taken at every point of the fixed grid). */
export function lnccOfSamples(pair: SmoothedPair, { J: Js, inside: valid }: MapSamples, r = 2): number[] {
  const { fixed, mask } = pair;
  const size = fixed.size;
  const N = fixed.data.length;
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
