/**
 * Body mask of a CT: voxels above an HU threshold, opened in the slice plane to cut thin
 * attachments (the table, blankets), the largest 3D connected component, then filled slice by
 * slice. Slices are taken across the index axis closest to the patient's superior-inferior axis.
 *
 * Filling: 'hull' (default) fills each slice's convex hull of the body. Plain hole filling treats
 * any air that touches the edge of the field of view as outside, which leaves the lungs out of the
 * mask whenever the field of view cuts through the chest (as in the elastix lung test image) and
 * whenever the trachea leaves the volume; the hull keeps them in, at the price of including air in
 * concavities between separate body parts (arms, legs) in the same slice. 'holes' is the plain
 * hole filling.
 */
import { withData, type Volume } from './volume.ts';
import { column } from './geometry.ts';
import { boxFilterBits, packAbove, packMask, unpack } from './bit-mask.ts';

export interface BodyMaskOptions {
  /** HU threshold (default -500: soft tissue and bone in, air and lung-parenchyma edges out). */
  thresholdHu?: number;
  /** Radius in mm of the opening that detaches the table (default 3 mm; 0 disables it). */
  openingMm?: number;
  /** How each slice is filled: convex hull (default) or holes only. */
  fill?: 'hull' | 'holes';
}

export function bodyMask(volume: Volume, options: BodyMaskOptions = {}): Volume<Uint8Array> {
  const thr = options.thresholdHu ?? -500;
  const openMm = options.openingMm ?? 3;
  // thresholded and opened one bit per voxel (bit-mask.ts), then bytes for the rest
  const sup = superiorAxis(volume);
  const radii = volume.spacing.map((s, a) => (openMm > 0 && a !== sup ? Math.round(openMm / s) : 0));
  let bits = packAbove(volume.data, volume.size, thr, volume.components);
  // Opening in the slice plane only: the table is separated from the body in-plane.
  if (radii.some((r) => r > 0)) bits = boxFilterBits(boxFilterBits(bits, radii, 'min'), radii, 'max');
  const m = unpack(bits);
  keepLargestComponent(m, volume.size);
  if ((options.fill ?? 'hull') === 'hull') fillConvexHullPerSlice(m, volume.size, sup);
  else fillHolesPerSlice(m, volume.size, sup);
  return withData(volume, m, 1, { description: 'body mask' });
}

/** Index axis whose world direction is closest to S (z in LPS). */
export function superiorAxis(volume: Volume): number {
  let best = 0;
  for (let a = 1; a < 3; a++)
    if (Math.abs(column(volume.direction, a)[2]) > Math.abs(column(volume.direction, best)[2])) best = a;
  return best;
}

/**
 * Binary erosion ('min') or dilation ('max') of a 0/1 mask with a box of half-widths radii,
 * separably. Along an axis the window is clipped to the volume: erosion needs all ones in the clipped
 * window (a body cut by the field of view is not eroded at the cut), dilation any one. Computed on the
 * mask packed one bit per voxel (bit-mask.ts).
 */
export function boxFilter(mask: Uint8Array, size: number[], radii: number[], op: 'min' | 'max'): Uint8Array {
  return unpack(boxFilterBits(packMask(mask, size), radii, op));
}

/**
 * Keep only the largest 6-connected component of a binary mask (in place). Runs of ones along i are
 * the units: each run is joined (union-find) with the runs it overlaps in the row before (j - 1) and
 * the slice before (k - 1), which is 6-connectivity; the component with most voxels is kept (the first
 * in scan order on a tie).
 */
export function keepLargestComponent(mask: Uint8Array, size: number[]): void {
  const [ni, nj, nk] = size;
  const rows = nj * nk;
  // runs as [start, end) offsets along i, listed row by row; rowStart[row] = first run of the row
  let runStart = new Int32Array(1024);
  let runEnd = new Int32Array(1024);
  const rowStart = new Int32Array(rows + 1);
  let runs = 0;
  for (let row = 0, base = 0; row < rows; row++, base += ni) {
    rowStart[row] = runs;
    let i = 0;
    while (i < ni) {
      while (i < ni && !mask[base + i]) i++;
      if (i === ni) break;
      const s0 = i;
      while (i < ni && mask[base + i]) i++;
      if (runs === runStart.length) {
        const grow = (x: Int32Array) => {
          const y = new Int32Array(2 * x.length);
          y.set(x);
          return y;
        };
        runStart = grow(runStart);
        runEnd = grow(runEnd);
      }
      runStart[runs] = s0;
      runEnd[runs] = i;
      runs++;
    }
  }
  rowStart[rows] = runs;
  const parent = new Int32Array(runs);
  for (let n = 0; n < runs; n++) parent[n] = n;
  const find = (x: number): number => {
    while (parent[x] !== x) {
      parent[x] = parent[parent[x]];
      x = parent[x];
    }
    return x;
  };
  // join each run with the overlapping runs of an earlier row (both lists are sorted along i)
  const joinRows = (row: number, other: number) => {
    let q = rowStart[other];
    const qEnd = rowStart[other + 1];
    for (let p = rowStart[row]; p < rowStart[row + 1]; p++) {
      while (q < qEnd && runEnd[q] <= runStart[p]) q++;
      for (let q2 = q; q2 < qEnd && runStart[q2] < runEnd[p]; q2++) {
        const a = find(p);
        const b = find(q2);
        // the earlier run's root stays the root: components are named by their first run
        if (a !== b) parent[Math.max(a, b)] = Math.min(a, b);
      }
    }
  };
  for (let k = 0; k < nk; k++)
    for (let j = 0; j < nj; j++) {
      const row = j + nj * k;
      if (j > 0) joinRows(row, row - 1);
      if (k > 0) joinRows(row, row - nj);
    }
  const voxels = new Float64Array(runs);
  for (let n = 0; n < runs; n++) voxels[find(n)] += runEnd[n] - runStart[n];
  let best = -1;
  for (let n = 0; n < runs; n++) if (parent[n] === n && (best < 0 || voxels[n] > voxels[best])) best = n;
  for (let row = 0, base = 0; row < rows; row++, base += ni)
    for (let n = rowStart[row]; n < rowStart[row + 1]; n++)
      mask.fill(find(n) === best ? 1 : 0, base + runStart[n], base + runEnd[n]);
}

/** Fill 2D holes (background not 4-connected to the slice border) in every slice across `axis`. */
export function fillHolesPerSlice(mask: Uint8Array, size: number[], axis: number): void {
  const strides = [1, size[0], size[0] * size[1]];
  const [a0, a1] = [0, 1, 2].filter((b) => b !== axis);
  const w = size[a0];
  const h = size[a1];
  const outside = new Uint8Array(w * h);
  const stack = new Int32Array(w * h);
  for (let s = 0; s < size[axis]; s++) {
    const base = s * strides[axis];
    const at = (x: number, y: number): number => base + x * strides[a0] + y * strides[a1];
    outside.fill(0);
    let top = 0;
    const seed = (x: number, y: number): void => {
      const q = x + y * w;
      if (!outside[q] && !mask[at(x, y)]) {
        outside[q] = 1;
        stack[top++] = q;
      }
    };
    for (let x = 0; x < w; x++) {
      seed(x, 0);
      seed(x, h - 1);
    }
    for (let y = 0; y < h; y++) {
      seed(0, y);
      seed(w - 1, y);
    }
    while (top > 0) {
      const q = stack[--top];
      const x = q % w;
      const y = (q - x) / w;
      if (x > 0) seed(x - 1, y);
      if (x < w - 1) seed(x + 1, y);
      if (y > 0) seed(x, y - 1);
      if (y < h - 1) seed(x, y + 1);
    }
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) if (!outside[x + y * w]) mask[at(x, y)] = 1;
  }
}

/** Fill the 2D convex hull of the mask in every slice across `axis` (in place). */
export function fillConvexHullPerSlice(mask: Uint8Array, size: number[], axis: number): void {
  const strides = [1, size[0], size[0] * size[1]];
  const [a0, a1] = [0, 1, 2].filter((b) => b !== axis);
  const w = size[a0];
  const h = size[a1];
  const xs: number[] = [];
  const ys: number[] = [];
  for (let s = 0; s < size[axis]; s++) {
    const base = s * strides[axis];
    const at = (x: number, y: number): number => base + x * strides[a0] + y * strides[a1];
    // extreme pixels of each row: the hull of these is the hull of the slice
    xs.length = 0;
    ys.length = 0;
    for (let y = 0; y < h; y++) {
      let lo = -1;
      let hi = -1;
      if (strides[a0] === 1) {
        // rows along the contiguous axis: native searches
        const line = mask.subarray(at(0, y), at(0, y) + w);
        lo = line.indexOf(1);
        hi = lo < 0 ? -1 : line.lastIndexOf(1);
      } else
        for (let x = 0; x < w; x++)
          if (mask[at(x, y)]) {
            if (lo < 0) lo = x;
            hi = x;
          }
      if (lo >= 0) {
        xs.push(lo, hi);
        ys.push(y, y);
      }
    }
    if (xs.length === 0) continue;
    const hull = convexHull(xs, ys);
    // scanline fill: for each row, the hull spans [min x, max x] of its edges' crossings
    const left = new Float64Array(h).fill(Infinity);
    const right = new Float64Array(h).fill(-Infinity);
    for (let e = 0; e < hull.length; e++) {
      const [x0, y0] = hull[e];
      const [x1, y1] = hull[(e + 1) % hull.length];
      const yLo = Math.ceil(Math.min(y0, y1));
      const yHi = Math.floor(Math.max(y0, y1));
      for (let y = yLo; y <= yHi; y++) {
        const x = y1 === y0 ? Math.min(x0, x1) : x0 + ((y - y0) * (x1 - x0)) / (y1 - y0);
        const x2 = y1 === y0 ? Math.max(x0, x1) : x;
        if (x < left[y]) left[y] = x;
        if (x2 > right[y]) right[y] = x2;
      }
    }
    for (let y = 0; y < h; y++) {
      if (left[y] > right[y]) continue;
      const x0 = Math.max(0, Math.ceil(left[y] - 1e-9));
      const x1 = Math.min(w - 1, Math.floor(right[y] + 1e-9));
      if (strides[a0] === 1) {
        if (x0 <= x1) mask.fill(1, at(x0, y), at(x1, y) + 1);
      } else for (let x = x0; x <= x1; x++) mask[at(x, y)] = 1;
    }
  }
}

/** Convex hull (Andrew's monotone chain) of points; returns the vertices in order. */
function convexHull(xs: number[], ys: number[]): [number, number][] {
  const pts = xs.map((x, n) => [x, ys[n]] as [number, number]).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  if (pts.length <= 2) return pts;
  const cross = (o: number[], a: number[], b: number[]): number =>
    (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]);
  const lower: [number, number][] = [];
  for (const p of pts) {
    while (lower.length >= 2 && cross(lower[lower.length - 2], lower[lower.length - 1], p) <= 0) lower.pop();
    lower.push(p);
  }
  const upper: [number, number][] = [];
  for (let n = pts.length - 1; n >= 0; n--) {
    const p = pts[n];
    while (upper.length >= 2 && cross(upper[upper.length - 2], upper[upper.length - 1], p) <= 0) upper.pop();
    upper.push(p);
  }
  lower.pop();
  upper.pop();
  return lower.concat(upper);
}
