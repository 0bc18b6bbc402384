/**
 * Shared by the `sam register` CLI tests: write a synthetic pair, run the command on it, score an
 * affine against the pair's known truth over the fixed body, and run `sam transform-points`.
 */
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SyntheticPair } from '../main/engine/bench/synthetic-pair.ts';
import { affineApply, type Affine3x4 } from '../main/engine/register/affine-fit.ts';
import { indexToWorld } from '../main/engine/volume/geometry.ts';
import { writeVolumeSync } from '../main/engine/volume/io/index.ts';
import { bodyMask } from '../main/engine/volume/mask.ts';
import type { Vec3, Volume } from '../main/engine/volume/volume.ts';

export interface RegisterRun {
  fixedPath: string;
  movingPath: string;
  out: string;
  r: SpawnSyncReturns<string>;
}

/** Writes the pair into dir (fixed.nii.gz, moving.nii.gz) and runs `sam register ... --out dir/result args`. */
export function registerPairCli(
  dir: string,
  pair: SyntheticPair,
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
): RegisterRun {
  const fixedPath = join(dir, 'fixed.nii.gz');
  const movingPath = join(dir, 'moving.nii.gz');
  writeVolumeSync(fixedPath, pair.fixed);
  writeVolumeSync(movingPath, pair.moving);
  const out = join(dir, 'result');
  const r = spawnSync(process.execPath, ['bin/sam.mjs', 'register', fixedPath, movingPath, '--out', out, ...args], {
    encoding: 'utf8',
    env,
  });
  return { fixedPath, movingPath, out, r };
}

/** RMS distance (mm) between the affine's and the truth's image of every 97th fixed body voxel. */
export function affineErrorRms(pair: SyntheticPair, a: Affine3x4): number {
  const mask = bodyMask(pair.fixed);
  const [ni, nj] = pair.fixed.size;
  let sum = 0;
  let n = 0;
  for (let v = 0; v < mask.data.length; v += 97)
    if (mask.data[v]) {
      const x = indexToWorld(pair.fixed, [v % ni, Math.floor(v / ni) % nj, Math.floor(v / (ni * nj))]);
      const d = affineApply(a, x).map((c, k) => c - pair.truth(x)[k]) as Vec3;
      sum += d[0] ** 2 + d[1] ** 2 + d[2] ** 2;
      n++;
    }
  return Math.sqrt(sum / n);
}

/** Runs `sam transform-points <resultDir> points.csv` on these fixed points; the moving points it prints. */
export function transformPointsCli(dir: string, resultDir: string, points: Vec3[]): number[][] {
  const ptsFile = join(dir, 'points.csv');
  writeFileSync(ptsFile, points.map((q) => q.join(',')).join('\n'));
  const tp = spawnSync(process.execPath, ['bin/sam.mjs', 'transform-points', resultDir, ptsFile], {
    encoding: 'utf8',
  });
  assert.equal(tp.status, 0, tp.stderr);
  return tp.stdout
    .trim()
    .split('\n')
    .slice(1)
    .map((l) => l.split(',').map(Number));
}

/**
 * Points through a displacement field file by transformix -def (elastix's DeformationFieldTransform,
 * linear interpolation): an independent reader of the exported field. `field` gives its geometry.
 */
export function transformixThroughField(dir: string, fieldFile: string, field: Volume, points: Vec3[]): number[][] {
  const f = (v: readonly number[]) => v.map((x) => x.toPrecision(10)).join(' ');
  // elastix lists the direction matrix column by column
  const direction = [0, 1, 2].flatMap((c) => [0, 1, 2].map((r) => field.direction[3 * r + c]));
  const tp = join(dir, 'tp-field.txt');
  writeFileSync(
    tp,
    [
      '(Transform "DeformationFieldTransform")',
      `(DeformationFieldFileName "${fieldFile}")`,
      '(DeformationFieldInterpolationOrder 1)',
      '(NumberOfParameters 0)',
      '(FixedImageDimension 3)',
      '(MovingImageDimension 3)',
      '(FixedInternalImagePixelType "float")',
      '(MovingInternalImagePixelType "float")',
      `(Size ${field.size.join(' ')})`,
      '(Index 0 0 0)',
      `(Spacing ${f(field.spacing)})`,
      `(Origin ${f(field.origin)})`,
      `(Direction ${f(direction)})`,
      '(UseDirectionCosines "true")',
      '(InitialTransformParametersFileName "NoInitialTransform")',
      '(HowToCombineTransforms "Compose")',
      '(ResultImagePixelType "float")',
      '',
    ].join('\n'),
  );
  const pts = join(dir, 'points-elastix.txt');
  writeFileSync(pts, `point\n${points.length}\n${points.map((p) => f(p)).join('\n')}\n`);
  const out = join(dir, 'transformix-out');
  mkdirSync(out, { recursive: true });
  const t = spawnSync('transformix', ['-def', pts, '-tp', tp, '-out', out], { encoding: 'utf8' });
  assert.equal(t.status, 0, `${t.stdout}\n${t.stderr}`);
  return readFileSync(join(out, 'outputpoints.txt'), 'utf8')
    .split('\n')
    .filter((l) => l.includes('OutputPoint'))
    .map((l) => /OutputPoint = \[ ([^\]]+) \]/.exec(l)![1].trim().split(/\s+/).map(Number));
}
