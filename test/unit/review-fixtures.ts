/** Shared fixtures of the review tests: a deformed synthetic pair from real CT, its true field, embeddings. */
import { makeSyntheticPair, type SyntheticPair } from '../../main/engine/bench/synthetic-pair.ts';
import { openModel } from '../../main/cli/commands/match.ts';
import { fitAffineLeastSquares } from '../../main/engine/register/affine-fit.ts';
import { fieldFromAffine, zeroField, type Affine, type Field } from '../../main/engine/register/field/field.ts';
import { embedVolume, type EmbeddedVolume } from '../../main/engine/sam/embed-volume.ts';
import { indexToWorldMatrix } from '../../main/engine/volume/geometry.ts';
import { readVolume } from '../../main/engine/volume/io/index.ts';
import { bodyMask } from '../../main/engine/volume/mask.ts';
import type { Vec3, Volume } from '../../main/engine/volume/volume.ts';
import { EXAMPLE_CT } from './embed-fixtures.ts';

/** The shipped trained model (committed on main; copied into resources/). */
export const SHIPPED_MODEL = 'resources/sam-small.samw';

/** The displacement field truth(x) - x on the fixed grid. */
export function trueField(pair: SyntheticPair): Field {
  const f = zeroField(pair.fixed, 'true displacement');
  const m = indexToWorldMatrix(pair.fixed);
  const [ni, nj, nk] = pair.fixed.size;
  for (let k = 0, o = 0; k < nk; k++)
    for (let j = 0; j < nj; j++)
      for (let i = 0; i < ni; i++, o += 3) {
        const x: Vec3 = [
          m[0] * i + m[1] * j + m[2] * k + m[3],
          m[4] * i + m[5] * j + m[6] * k + m[7],
          m[8] * i + m[9] * j + m[10] * k + m[11],
        ];
        const y = pair.truth(x);
        f.data[o] = y[0] - x[0];
        f.data[o + 1] = y[1] - x[1];
        f.data[o + 2] = y[2] - x[2];
      }
  return f;
}

/** The best affine-only registration: least squares of (x, truth(x)) over the fixed body (every 3rd voxel). */
export function bestAffine(pair: SyntheticPair, mask: Volume): Affine {
  const m = indexToWorldMatrix(pair.fixed);
  const [ni, nj, nk] = pair.fixed.size;
  const f: Vec3[] = [];
  const mv: Vec3[] = [];
  for (let k = 0; k < nk; k += 3)
    for (let j = 0; j < nj; j += 3)
      for (let i = 0; i < ni; i += 3) {
        if (!mask.data[i + ni * (j + nj * k)]) continue;
        const x: Vec3 = [
          m[0] * i + m[1] * j + m[2] * k + m[3],
          m[4] * i + m[5] * j + m[6] * k + m[7],
          m[8] * i + m[9] * j + m[10] * k + m[11],
        ];
        f.push(x);
        mv.push(pair.truth(x));
      }
  return fitAffineLeastSquares(f, mv);
}

export interface DeformedSetup {
  pair: SyntheticPair;
  mask: Volume<Uint8Array>;
  truthField: Field;
  affineField: Field;
  embeddings: { fixed: EmbeddedVolume; moving: EmbeddedVolume };
}

let deformed: Promise<DeformedSetup> | undefined;

/**
 * A synthetic pair from the real example CT (3 mm) with strong smooth deformations (3 bumps up to
 * 20 mm), the true field, the best affine's field, and the shipped model's embeddings (ONNX, CPU).
 */
export function deformedSetup(): Promise<DeformedSetup> {
  deformed ??= (async () => {
    const ct = await readVolume(EXAMPLE_CT);
    const pair = makeSyntheticPair(ct, {
      seed: 21,
      maxDeformationMm: 40,
      bumps: 2,
      bumpSigmaMm: [45, 55],
      noiseHu: 10,
    });
    const mask = bodyMask(pair.fixed);
    const truthField = trueField(pair);
    const affineField = fieldFromAffine(pair.fixed, bestAffine(pair, mask));
    const model = await openModel({ weightsFile: SHIPPED_MODEL }, 'onnx');
    try {
      const embeddings = {
        fixed: await embedVolume(pair.fixed, model.engine),
        moving: await embedVolume(pair.moving, model.engine),
      };
      return { pair, mask, truthField, affineField, embeddings };
    } finally {
      await model.engine.dispose();
    }
  })();
  return deformed;
}
