/**
 * A rough translation between two CTs for the NCC matcher's start, before SAM-affine: seven points of
 * the fixed body (its centroid and +-offsetMm along each axis, where inside the body) matched into the
 * moving image by NCC with large templates over a wide search (coarse 8 mm, fine 4 mm), and the
 * median displacement per axis. Robust to a few points that the moving field of view does not show.
 */
import { nccMatch } from '../bench/ncc-match.ts';
import { applyAffine, indexToWorld, worldToIndexMatrix } from '../volume/geometry.ts';
import type { Vec3, Volume } from '../volume/volume.ts';

function centroid(mask: Volume): Vec3 {
  const [ni, nj, nk] = mask.size;
  const c = [0, 0, 0];
  let n = 0;
  for (let k = 0, v = 0; k < nk; k++)
    for (let j = 0; j < nj; j++)
      for (let i = 0; i < ni; i++, v++)
        if (mask.data[v]) {
          c[0] += i;
          c[1] += j;
          c[2] += k;
          n++;
        }
  return indexToWorld(mask, (n ? c.map((x) => x / n) : mask.size.map((x) => (x - 1) / 2)) as Vec3);
}

export function initialShift(
  fixed: Volume,
  moving: Volume,
  fixedMask: Volume,
  options: { offsetMm?: number; searchRadiusMm?: number } = {},
): Vec3 {
  const c = centroid(fixedMask);
  const off = options.offsetMm ?? 40;
  const toIndex = worldToIndexMatrix(fixedMask);
  const candidates: Vec3[] = [c];
  for (let a = 0; a < 3; a++)
    for (const s of [-1, 1]) {
      const p = [...c] as Vec3;
      p[a] += s * off;
      candidates.push(p);
    }
  const points = candidates.filter((p) => {
    const idx = applyAffine(toIndex, p).map(Math.round);
    if (idx.some((v, a) => v < 0 || v >= fixedMask.size[a])) return false;
    return fixedMask.data[idx[0] + fixedMask.size[0] * (idx[1] + fixedMask.size[1] * idx[2])] !== 0;
  });
  const found = nccMatch(fixed, moving, points, {
    templateRadiusMm: 40,
    searchRadiusMm: options.searchRadiusMm ?? 80,
    coarseSpacingMm: 8,
    fineSpacingMm: 4,
  });
  const med = (v: number[]) => {
    const s = v.filter(Number.isFinite).sort((x, y) => x - y);
    return s.length ? s[Math.floor(s.length / 2)] : 0;
  };
  return [0, 1, 2].map((a) => med(found.map((f, n) => f.location[a] - points[n][a]))) as Vec3;
}
