/**
 * Body mask of a CT: voxels above an HU threshold, opened to cut thin attachments (the table,
 * blankets) in the slice plane, the largest 3D connected component, then holes filled slice by slice (so the lungs
 * and airways, which reach the edge of the field of view through the trachea, are inside).
 * Slices are taken across the index axis closest to the patient's superior-inferior axis.
 */
import { withData, type Volume } from './volume.ts';
import { column } from './geometry.ts';

export interface BodyMaskOptions {
  /** HU threshold (default -500: soft tissue and bone in, air and lung-parenchyma edges out). */
  thresholdHu?: number;
  /** Radius in mm of the opening that detaches the table (default 3 mm; 0 disables it). */
  openingMm?: number;
}

export function bodyMask(volume: Volume, options: BodyMaskOptions = {}): Volume<Uint8Array> {
  const thr = options.thresholdHu ?? -500;
  const openMm = options.openingMm ?? 3;
  const [ni, nj, nk] = volume.size;
  const n = ni * nj * nk;
  const nc = volume.components;
  let m: Uint8Array = new Uint8Array(n);
  for (let p = 0; p < n; p++) m[p] = volume.data[p * nc] > thr ? 1 : 0;
  // Opening in the slice plane only: the table is separated from the body in-plane.
  const sup = superiorAxis(volume);
  const radii = volume.spacing.map((s, a) => (openMm > 0 && a !== sup ? Math.round(openMm / s) : 0));
  if (radii.some((r) => r > 0)) {
    m = boxFilter(m, volume.size, radii, 'min');
    m = boxFilter(m, volume.size, radii, 'max');
  }
  keepLargestComponent(m, volume.size);
  fillHolesPerSlice(m, volume.size, sup);
  return withData(volume, m, 1, { description: 'body mask' });
}

/** Index axis whose world direction is closest to S (z in LPS). */
export function superiorAxis(volume: Volume): number {
  let best = 0;
  for (let a = 1; a < 3; a++) if (Math.abs(column(volume.direction, a)[2]) > Math.abs(column(volume.direction, best)[2])) best = a;
  return best;
}

/** Binary erosion ('min') or dilation ('max') with a box of half-widths radii, separably. */
export function boxFilter(mask: Uint8Array, size: number[], radii: number[], op: 'min' | 'max'): Uint8Array {
  let cur: Uint8Array = mask;
  const strides = [1, size[0], size[0] * size[1]];
  for (let a = 0; a < 3; a++) {
    const r = radii[a];
    if (r <= 0 || size[a] === 1) continue;
    const next = new Uint8Array(cur.length);
    const len = size[a];
    const st = strides[a];
    // iterate over all lines along axis a
    const others = [0, 1, 2].filter((b) => b !== a);
    const [b0, b1] = others;
    const line = new Int32Array(len + 1);
    for (let u = 0; u < size[b1]; u++)
      for (let v = 0; v < size[b0]; v++) {
        const base = u * strides[b1] + v * strides[b0];
        // prefix sums of ones along the line
        line[0] = 0;
        for (let t = 0; t < len; t++) line[t + 1] = line[t] + cur[base + t * st];
        for (let t = 0; t < len; t++) {
          const lo = Math.max(0, t - r);
          const hi = Math.min(len - 1, t + r);
          const ones = line[hi + 1] - line[lo];
          // erosion: all ones in the window clipped to the volume (a body cut by the field of view
          // is not eroded at the cut);
          // dilation: any one in the window
          next[base + t * st] = op === 'min' ? (ones === hi - lo + 1 ? 1 : 0) : ones > 0 ? 1 : 0;
        }
      }
    cur = next;
  }
  return cur;
}

/** Keep only the largest 6-connected component of a binary mask (in place). */
export function keepLargestComponent(mask: Uint8Array, size: number[]): void {
  const [ni, nj, nk] = size;
  const label = new Int32Array(mask.length);
  const stack = new Int32Array(mask.length);
  let best = 0;
  let bestSize = 0;
  let next = 0;
  let top = 0;
  const visit = (q: number): void => {
    if (mask[q] && !label[q]) {
      label[q] = next;
      stack[top++] = q;
    }
  };
  const sj = ni;
  const sk = ni * nj;
  for (let p0 = 0; p0 < mask.length; p0++) {
    if (!mask[p0] || label[p0]) continue;
    next++;
    top = 0;
    stack[top++] = p0;
    label[p0] = next;
    let count = 0;
    while (top > 0) {
      const p = stack[--top];
      count++;
      const i = p % ni;
      const j = ((p - i) / ni) % nj;
      const k = (p - i - j * ni) / sk;
      if (i > 0) visit(p - 1);
      if (i < ni - 1) visit(p + 1);
      if (j > 0) visit(p - sj);
      if (j < nj - 1) visit(p + sj);
      if (k > 0) visit(p - sk);
      if (k < nk - 1) visit(p + sk);
    }
    if (count > bestSize) {
      bestSize = count;
      best = next;
    }
  }
  for (let p = 0; p < mask.length; p++) mask[p] = label[p] === best && best > 0 ? 1 : 0;
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
