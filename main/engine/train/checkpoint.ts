/**
 * Checkpoints of a training run, in <run>/checkpoints/iter-NNNNNNN/: weights.samw, the optimiser
 * state as opt-m.samw (and opt-v.samw for Adam; same format, same tensor names as the weights) and
 * state.json (iteration, options, elapsed time). <run>/checkpoints/latest.json names the newest
 * complete one; it is written last and atomically, so an interrupted save never becomes "latest".
 * The newest weights are also copied to <run>/model.samw, the file the rest of the product loads.
 * The weights file format is the SAM network's (sam/weights-file.ts) unless a WeightsIo is given (the
 * SAM-deform network's, register/deform-net/weights-file.ts).
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, copyFileSync, renameSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { InputError } from '../errors.ts';
import { writeFileAtomic } from '../util/atomic-write.ts';
import type { SamConfig } from '../sam/config.ts';
import type { SamWeights } from '../sam/network.ts';
import { loadWeights, saveWeights } from '../sam/weights-file.ts';
import type { OptimizerOptions, OptimizerState } from './optimizer.ts';
import type { AugmentOptions } from './augment.ts';

/** How a network's weights (with its configuration) are written and read. */
export interface WeightsIo<C> {
  save(path: string, config: C, weights: SamWeights, meta: Record<string, unknown>): Promise<void>;
  load(path: string): { config: C; weights: SamWeights };
}

const SAM_IO: WeightsIo<SamConfig> = { save: saveWeights, load: loadWeights };

export interface CheckpointState {
  iteration: number;
  elapsedSeconds: number;
  /** The options the run was started with (for resume and for the record). */
  options: Record<string, unknown>;
}

const KEEP = 2;

export async function saveCheckpoint<C = SamConfig>(
  runDir: string,
  config: C,
  weights: SamWeights,
  opt: OptimizerState,
  state: CheckpointState,
  io: WeightsIo<C> = SAM_IO as unknown as WeightsIo<C>,
): Promise<string> {
  const root = join(runDir, 'checkpoints');
  const name = `iter-${String(state.iteration).padStart(7, '0')}`;
  const dir = join(root, name);
  // The same iteration saved again (Ctrl-C right after a periodic save, or a resume with nothing left
  // to do) is the same state: keep the complete folder latest.json names rather than rewrite it.
  if (latestName(root) === name && existsSync(join(dir, 'state.json'))) return dir;
  rmSync(dir, { recursive: true, force: true }); // a partial folder from an interrupted save
  const meta = { iteration: state.iteration };
  await io.save(join(dir, 'weights.samw'), config, weights, { ...meta, kind: 'weights' });
  await io.save(join(dir, 'opt-m.samw'), config, opt.m, { ...meta, kind: 'optimizer-m' });
  if (opt.v) await io.save(join(dir, 'opt-v.samw'), config, opt.v, { ...meta, kind: 'optimizer-v' });
  writeFileAtomic(join(dir, 'state.json'), Buffer.from(JSON.stringify(state, null, 2)));
  writeFileAtomic(join(root, 'latest.json'), Buffer.from(JSON.stringify({ checkpoint: name }, null, 2)));
  const tmp = join(runDir, `.model.samw.${process.pid}.tmp`);
  copyFileSync(join(dir, 'weights.samw'), tmp);
  renameSync(tmp, join(runDir, 'model.samw'));
  for (const old of readdirSync(root)
    .filter((d) => d.startsWith('iter-'))
    .sort()
    .slice(0, -KEEP))
    rmSync(join(root, old), { recursive: true, force: true });
  return dir;
}

function latestName(root: string): string | undefined {
  try {
    return JSON.parse(readFileSync(join(root, 'latest.json'), 'utf8')).checkpoint;
  } catch {
    return undefined;
  }
}

export function hasCheckpoint(runDir: string): boolean {
  return existsSync(join(runDir, 'checkpoints', 'latest.json'));
}

export function loadCheckpoint<C = SamConfig>(
  runDir: string,
  io: WeightsIo<C> = SAM_IO as unknown as WeightsIo<C>,
): {
  config: C;
  weights: SamWeights;
  opt: OptimizerState;
  state: CheckpointState;
  /** Said when the newest checkpoint could not be read and an older kept one was used. */
  note?: string;
} {
  const root = join(runDir, 'checkpoints');
  const latest = join(root, 'latest.json');
  if (!existsSync(latest))
    throw new InputError(runDir, 'no checkpoint to resume from (checkpoints/latest.json missing)');
  let name: string;
  try {
    name = JSON.parse(readFileSync(latest, 'utf8')).checkpoint;
  } catch (e) {
    throw new InputError(latest, `corrupt checkpoint pointer (${(e as Error).message})`);
  }
  try {
    return readCheckpoint(join(root, String(name)), io);
  } catch (damaged) {
    // a damaged newest checkpoint (a disk full or a copy cut short): the older one kept beside it, if
    // it reads, with the damaged folder moved aside (never deleted) and the pointer moved back
    const older = readdirSync(root)
      .filter((d) => /^iter-\d+$/.test(d) && d < String(name))
      .sort()
      .reverse();
    for (const d of older) {
      let ck;
      try {
        ck = readCheckpoint(join(root, d), io);
      } catch {
        continue;
      }
      const aside = `damaged-${name}`;
      renameSync(join(root, String(name)), join(root, aside));
      writeFileAtomic(latest, Buffer.from(JSON.stringify({ checkpoint: d }, null, 2)));
      const why = damaged instanceof Error ? damaged.message : String(damaged);
      return {
        ...ck,
        note: `the newest checkpoint ${name} cannot be read (${why}): resuming from ${d}, iteration ${ck.state.iteration}; the damaged one is kept as checkpoints/${aside}`,
      };
    }
    throw damaged;
  }
}

function readCheckpoint<C>(
  dir: string,
  io: WeightsIo<C>,
): { config: C; weights: SamWeights; opt: OptimizerState; state: CheckpointState } {
  let state: CheckpointState;
  try {
    state = JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8'));
  } catch (e) {
    throw new InputError(join(dir, 'state.json'), `corrupt checkpoint state (${(e as Error).message})`);
  }
  const loaded: SamWeights[] = [];
  const load = (file: string) => {
    const r = io.load(join(dir, file));
    loaded.push(r.weights);
    return r;
  };
  try {
    const w = load('weights.samw');
    const m = load('opt-m.samw');
    const v = existsSync(join(dir, 'opt-v.samw')) ? load('opt-v.samw') : undefined;
    return { config: w.config, weights: w.weights, opt: v ? { m: m.weights, v: v.weights } : { m: m.weights }, state };
  } catch (e) {
    // (what was read before the damaged file is not kept on the device)
    for (const ws of loaded) for (const t of Object.values(ws)) t.dispose();
    throw e;
  }
}

/** The options a run was started with (its latest checkpoint's state.json), for resuming with them. */
export interface SavedRunOptions {
  config?: string;
  iterations?: number;
  batchPairs?: number;
  seed?: number;
  checkpointEvery?: number;
  tau?: number;
  patch?: { patchSize?: [number, number, number] };
  optimizer?: OptimizerOptions;
  augment?: AugmentOptions;
  /** The tfjs backend it last trained on (for the record: a resume may use another). */
  backend?: string;
  /** The --data inputs as absolute paths (for --resume without --data; not part of the run's identity). */
  dataInputs?: string[];
}

export function savedRunOptions(runDir: string): SavedRunOptions & { iterationDone: number } {
  const name = latestName(join(runDir, 'checkpoints'));
  const file = join(runDir, 'checkpoints', String(name), 'state.json');
  try {
    const state = JSON.parse(readFileSync(file, 'utf8')) as CheckpointState;
    return { ...(state.options as SavedRunOptions), iterationDone: state.iteration };
  } catch (e) {
    throw new InputError(file, `corrupt checkpoint state (${(e as Error).message})`);
  }
}

/** Where a training run starts: its weights, optimiser state, first iteration and time already spent. */
export interface RunStart {
  weights: SamWeights;
  opt: OptimizerState;
  start: number;
  elapsedBefore: number;
  /** What the user should hear of the resume (an older checkpoint used: loadCheckpoint). */
  note?: string;
}

/** What a run writes into its folder (checkpoints/, the model, the loss log and its plots). */
export const RUN_OUTPUTS = ['checkpoints', 'model.samw', 'loss.csv', 'loss.png', 'loss.svg'] as const;
/** Written first by every run: the folder's files are a run's, even before its first checkpoint. */
export const RUN_MARKER = 'sam-run.json';
const MARKER_FORMAT = 'sam-training-run';

/** Which training made a run folder: `sam train` (the SAM network) or `sam train-reg` (SAM-deform). */
export type RunKind = 'sam' | 'deform-net';
const COMMAND: Record<RunKind, string> = { sam: 'sam train', 'deform-net': 'sam train-reg' };

/** The marker of a run of ours, or undefined (none, or a file of the user's by that name). */
function readMarker(runDir: string): { kind?: RunKind } | undefined {
  try {
    const m = JSON.parse(readFileSync(join(runDir, RUN_MARKER), 'utf8'));
    return m && m.format === MARKER_FORMAT ? m : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Refuses a run folder that cannot take the run, before any work: a file where the folder should be;
 * a run of the other training; with `resume`, a folder without a checkpoint (a mistyped --out would
 * otherwise start over); without it, a folder holding a checkpointed run, or files a run writes that
 * no run of ours made (the user's own model.samw or loss.csv would be overwritten). A run that
 * stopped before its first checkpoint (its marker, no checkpoint) is started again.
 */
export function checkRunFolder(runDir: string, resume: boolean, kind: RunKind): void {
  if (existsSync(runDir) && !statSync(runDir).isDirectory())
    throw new InputError(runDir, 'is a file, not a folder: --out names the run folder');
  const marker = readMarker(runDir);
  if (marker?.kind && marker.kind !== kind)
    throw new InputError(
      runDir,
      `holds a ${COMMAND[marker.kind]} run, not a ${COMMAND[kind]} one: choose another --out`,
    );
  if (resume) {
    if (!hasCheckpoint(runDir))
      throw new InputError(
        runDir,
        marker
          ? 'the run there stopped before its first checkpoint: nothing to resume; run again without --resume to start it over'
          : 'no checkpoint to resume from (checkpoints/latest.json missing): drop --resume to start a new run here, or name the run folder',
      );
    return;
  }
  if (hasCheckpoint(runDir))
    throw new InputError(runDir, 'already holds a training run: pass --resume to continue it, or choose another --out');
  const present = [...RUN_OUTPUTS, RUN_MARKER].filter((f) => existsSync(join(runDir, f)));
  if (present.length && !marker)
    throw new InputError(
      runDir,
      `holds ${present.join(', ')} but no training run: a new run would overwrite ${present.length > 1 ? 'them' : 'it'}; choose another --out or move ${present.length > 1 ? 'them' : 'it'}`,
    );
}

/**
 * Starts a run in `runDir`: from its latest checkpoint with `resume` (the configuration must be the
 * same and `changedOptions` must name no option that defines the run), else fresh (`fresh()`).
 * checkRunFolder's refusals first, so that nothing trained or made by the user is overwritten.
 */
export function startRun<C extends { name: string }>(o: {
  runDir: string;
  resume?: boolean;
  kind: RunKind;
  config: C;
  io?: WeightsIo<C>;
  /** Options of the checkpointed run that differ from this one's (described for the message). */
  changedOptions: (saved: Record<string, unknown>, opt: OptimizerState) => string[];
  fresh: () => { weights: SamWeights; opt: OptimizerState };
}): RunStart {
  checkRunFolder(o.runDir, !!o.resume, o.kind);
  if (o.resume) {
    const ck = loadCheckpoint(o.runDir, o.io);
    if (JSON.stringify(ck.config) !== JSON.stringify(o.config))
      throw new InputError(
        o.runDir,
        `checkpoint was trained with configuration '${ck.config.name}', not '${o.config.name}'`,
      );
    const changed = o.changedOptions(ck.state.options, ck.opt);
    if (changed.length)
      throw new InputError(
        o.runDir,
        `--resume with other options than the run was started with (${changed.join('; ')}): a resumed run must continue the same run`,
      );
    return {
      weights: ck.weights,
      opt: ck.opt,
      start: ck.state.iteration,
      elapsedBefore: ck.state.elapsedSeconds,
      note: ck.note,
    };
  }
  // a fresh run: its marker first, then the files it makes are known to be its own
  mkdirSync(o.runDir, { recursive: true });
  writeFileAtomic(
    join(o.runDir, RUN_MARKER),
    Buffer.from(
      JSON.stringify(
        { format: MARKER_FORMAT, kind: o.kind, started: new Date().toISOString(), config: o.config.name },
        null,
        2,
      ) + '\n',
    ),
  );
  // a run that stopped before its first checkpoint left a partial checkpoints/ and a log: start over
  rmSync(join(o.runDir, 'checkpoints'), { recursive: true, force: true });
  return { ...o.fresh(), start: 0, elapsedBefore: 0 };
}

/** The options among `keys` whose saved value differs from the current one, described for a message. */
export function changedRunOptions(
  keys: readonly string[],
  saved: Record<string, unknown>,
  now: Record<string, unknown>,
): string[] {
  const norm = (v: unknown) => JSON.stringify(v ?? null);
  const plain = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object' && !Array.isArray(v);
  return keys
    .filter((k) => norm(saved[k]) !== norm(now[k]))
    .flatMap((k) => {
      const [a, b] = [saved[k], now[k]];
      // an options object (the optimiser's, the augmentation's): the fields that differ, by name
      if (plain(a) && plain(b))
        return [...new Set([...Object.keys(a), ...Object.keys(b)])]
          .filter((f) => norm(a[f]) !== norm(b[f]))
          .map((f) => `${k}.${f}: ${norm(a[f])} then, ${norm(b[f])} now`);
      if (a === undefined || b === undefined)
        return [
          `${k}: ${a === undefined ? 'the default' : norm(a)} then, ${b === undefined ? 'the default' : norm(b)} now`,
        ];
      return [`${k}: ${norm(a)} then, ${norm(b)} now`];
    });
}
