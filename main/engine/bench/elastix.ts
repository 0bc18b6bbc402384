/**
 * elastix as a baseline: runs the `elastix` and `transformix` executables (Debian package `elastix`)
 * through child_process on MetaImage copies of the two images in a temporary folder, with the parameter
 * files kept in resources/elastix/ (affine.txt then bspline.txt), and reads back the result as a
 * displacement field on the fixed grid (transformix -def all: fixed point x -> moving point x + u(x),
 * LPS mm, the product's convention). MetaImage keeps ITK's LPS vectors as they are.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CancelledError, InputError } from '../errors.ts';
import { readVolume, writeVolumeSync } from '../volume/io/index.ts';
import type { Volume } from '../volume/volume.ts';
import type { Field } from '../register/field/field.ts';

/** resources/elastix/ of the checkout. */
export const ELASTIX_PARAMETERS = resolve(dirname(fileURLToPath(import.meta.url)), '../../../resources/elastix');

/** elastix's version line, or null when elastix or transformix is not installed. */
export function elastixVersion(): string | null {
  const e = spawnSync('elastix', ['--version'], { encoding: 'utf8' });
  const t = spawnSync('transformix', ['--version'], { encoding: 'utf8' });
  if (e.error || t.error || e.status !== 0) return null;
  return e.stdout.trim();
}

function run(cmd: string, args: string[], signal?: AbortSignal): Promise<void> {
  return new Promise((ok, fail) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], signal });
    let err = '';
    p.stderr.on('data', (d) => (err = (err + String(d)).slice(-4000)));
    p.on('error', (e) => fail(signal?.aborted ? new CancelledError(cmd) : e));
    p.on('close', (code) => (code === 0 ? ok() : fail(new InputError(cmd, `exited with ${code}: ${err.trim()}`))));
  });
}

export interface ElastixResult {
  field: Field;
  seconds: { elastix: number; transformix: number };
}

/** Register `moving` onto `fixed` with elastix (affine, then B-spline) and return its displacement field. */
export async function runElastix(
  fixed: Volume,
  moving: Volume,
  options: {
    parameters?: string[];
    /** Override MaximumNumberOfIterations in every parameter file (quick runs, tests). */
    iterations?: number;
    threads?: number;
    signal?: AbortSignal;
  } = {},
): Promise<ElastixResult> {
  let params = options.parameters ?? ['affine.txt', 'bspline.txt'].map((f) => join(ELASTIX_PARAMETERS, f));
  for (const p of params) if (!existsSync(p)) throw new InputError(p, 'elastix parameter file not found');
  const dir = mkdtempSync(join(tmpdir(), 'sam-elastix-'));
  try {
    if (options.iterations !== undefined) {
      const n = Math.max(1, Math.round(options.iterations));
      params = params.map((p, k) => {
        const copy = join(dir, `parameters.${k}.txt`);
        const text = readFileSync(p, 'utf8').replace(
          /\(MaximumNumberOfIterations [^)]*\)/g,
          `(MaximumNumberOfIterations ${n})`,
        );
        writeFileSync(copy, text);
        return copy;
      });
    }
    const f = join(dir, 'fixed.mha');
    const m = join(dir, 'moving.mha');
    writeVolumeSync(f, fixed);
    writeVolumeSync(m, moving);
    const out = join(dir, 'out');
    const def = join(dir, 'def');
    mkdirSync(out);
    mkdirSync(def);
    const threads = String(options.threads ?? 2);
    let t0 = performance.now();
    await run(
      'elastix',
      ['-f', f, '-m', m, '-out', out, '-threads', threads, ...params.flatMap((p) => ['-p', p])],
      options.signal,
    );
    const elastix = (performance.now() - t0) / 1000;
    const last = join(out, `TransformParameters.${params.length - 1}.txt`);
    t0 = performance.now();
    await run('transformix', ['-def', 'all', '-tp', last, '-out', def, '-threads', threads], options.signal);
    const transformix = (performance.now() - t0) / 1000;
    const file = readdirSync(def).find((n) => /^deformationField\.(mhd|mha|nii)/.test(n));
    if (!file) throw new InputError('transformix', 'no deformationField written');
    const field = (await readVolume(join(def, file))) as Volume;
    if (field.components !== 3)
      throw new InputError('transformix', `deformation field has ${field.components} components`);
    const data = Float32Array.from(field.data);
    return { field: { ...field, data } as Field, seconds: { elastix, transformix } };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
