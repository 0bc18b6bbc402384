/**
 * Fixed/warped comparison images computed on the renderer side from the two int16 display copies
 * (the warped volume lies on the fixed grid): a 3-D checkerboard (tiles of `tile` voxels along each
 * index axis, fixed in the even tiles, warped in the odd ones) and the absolute difference |fixed -
 * warped| in HU (DIFFERENCE_NO_DATA where the warp had no moving data). One typed-array pass over the volume when the mode or the tile size changes; the
 * views then scroll through it like any volume. Pure functions (no DOM, no vtk.js).
 */

import { DISPLAY_NO_DATA } from '../../main/engine/workstation/display-voxels.ts';
import { DIFFERENCE_NO_DATA } from './color-maps.ts';

/** blend, flicker and spyglass show the two volumes themselves; checker and difference a composite. */
export type CompareMode = 'blend' | 'checker' | 'difference' | 'flicker' | 'spyglass';

export function isComposite(mode: CompareMode): mode is 'checker' | 'difference' {
  return mode === 'checker' || mode === 'difference';
}

export function checkerboardVoxels(
  fixed: Int16Array,
  warped: Int16Array,
  size: readonly [number, number, number],
  tile: number,
): Int16Array {
  const t = Math.max(1, Math.round(tile));
  const [ni, nj, nk] = size;
  const out = new Int16Array(fixed.length);
  // tile parity along i, precomputed once per row
  const pi = new Uint8Array(ni);
  for (let i = 0; i < ni; i++) pi[i] = Math.floor(i / t) & 1;
  let n = 0;
  for (let k = 0; k < nk; k++) {
    const pk = Math.floor(k / t) & 1;
    for (let j = 0; j < nj; j++) {
      const pjk = pk ^ (Math.floor(j / t) & 1);
      for (let i = 0; i < ni; i++, n++) out[n] = pi[i] ^ pjk ? warped[n] : fixed[n];
    }
  }
  return out;
}

/** |fixed - warped| in HU; DIFFERENCE_NO_DATA where the warped image has no moving data. */
export function differenceVoxels(fixed: Int16Array, warped: Int16Array): Int16Array {
  const out = new Int16Array(fixed.length);
  for (let n = 0; n < fixed.length; n++) {
    if (warped[n] === DISPLAY_NO_DATA) {
      out[n] = DIFFERENCE_NO_DATA;
      continue;
    }
    const d = fixed[n] - warped[n];
    const a = d < 0 ? -d : d;
    out[n] = a > 32767 ? 32767 : a;
  }
  return out;
}

/** The composite for a mode, or null for the others (the views show the two layers themselves). */
export function compositeVoxels(
  mode: CompareMode,
  fixed: Int16Array,
  warped: Int16Array,
  size: readonly [number, number, number],
  tile: number,
): Int16Array | null {
  if (!isComposite(mode) || fixed.length !== warped.length) return null;
  return mode === 'checker' ? checkerboardVoxels(fixed, warped, size, tile) : differenceVoxels(fixed, warped);
}
