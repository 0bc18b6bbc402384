/**
 * The point-matcher options shared by `sam register`, `sam bench-reg` and `sam demo`: --matcher
 * sam|ncc (default sam where a SAM model is at hand, else ncc) and, for the SAM matcher, --refine
 * ncc|none (register/ncc-refine.ts), checked with the option's name.
 */
import { existsSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import { initTfBackend } from '../engine/compute/tf-backend.ts';
import { InputError } from '../engine/errors.ts';
import { DEFAULT_REFINE, type RefineMode } from '../engine/register/cascade.ts';
import { defaultModelPath } from './commands/match.ts';

export const MATCHER_OPTIONS = {
  matcher: { type: 'string' },
  refine: { type: 'string' },
  'ncc-on': { type: 'string', default: 'auto' },
} as const;

export const MATCHER_USAGE = `  --matcher sam|ncc   point matcher of the affine and coarse stages: sam = SAM embeddings, refined by
                      NCC (--refine: in the coarse stage NCC around the affine's prediction); ncc = NCC
                      template matching alone, from a rough translation, no model needed (default
                      sam when a SAM model is at hand: --weights, --random-init, $SAM_MODEL or
                      resources/sam-small.samw; else ncc)
  --refine ncc|none   SAM matcher: refine each affine match by NCC template matching within 8 mm of it,
                      with its own cycle check, and find the coarse stage's points by NCC around the
                      affine's prediction (default ${DEFAULT_REFINE}); none: SAM's locations in both
                      stages (the moving image embedded again after the affine)
  --ncc-on auto|gpu|cpu  where the SAM matches' NCC refinement and the coarse stage's NCC run: gpu =
                      WGSL on WebGPU, cpu = worker threads; auto (default): the GPU when the SAM
                      embeddings are there`;

export interface MatcherChoice {
  matcher: 'sam' | 'ncc';
  refine: RefineMode;
  /** --ncc-on: true gpu, false cpu, undefined auto (RegisterOptions.nccOnDevice). */
  nccOnDevice?: boolean;
  /** Why the matcher is what it is, when it was not asked for (a line for the log), else undefined. */
  note?: string;
}

/** --refine's value, checked. */
export function refineOption(refine: string): RefineMode {
  if (refine !== 'ncc' && refine !== 'none') throw new InputError('--refine', `use ncc or none, got '${refine}'`);
  return refine;
}

/**
 * The matcher and refinement of a command's values: SAM by default when a model is named (--weights,
 * --random-init) or installed, else NCC with a note saying why.
 */
export function matcherOptions(values: {
  matcher?: string;
  refine?: string;
  weights?: string;
  'random-init'?: string;
  'ncc-on'?: string;
}): MatcherChoice {
  const { matcher } = values;
  const refine = refineOption(values.refine ?? DEFAULT_REFINE);
  // options that contradict each other: refused, not one of them silently dropped
  if (values.weights !== undefined && values['random-init'] !== undefined)
    throw new InputError('--weights/--random-init', 'give one: a trained model or a randomly initialised network');
  if (matcher === 'ncc' && values.refine !== undefined)
    throw new InputError(
      '--refine',
      "refines the SAM matcher's matches: with --matcher ncc there is nothing to refine",
    );
  const nccOn = values['ncc-on'] ?? 'auto';
  if (nccOn !== 'auto' && nccOn !== 'gpu' && nccOn !== 'cpu')
    throw new InputError('--ncc-on', `use auto, gpu or cpu, got '${nccOn}'`);
  const nccOnDevice = nccOn === 'auto' ? undefined : nccOn === 'gpu';
  if (matcher === 'sam' || matcher === 'ncc') return { matcher, refine, nccOnDevice };
  if (matcher !== undefined) throw new InputError('--matcher', `use sam or ncc, got '${matcher}'`);
  if (values.weights !== undefined || values['random-init'] !== undefined || existsSync(defaultModelPath()))
    return { matcher: 'sam', refine, nccOnDevice };
  return { matcher: 'ncc', refine, nccOnDevice, note: `no SAM model at ${defaultModelPath()}: matcher NCC` };
}

/** --ncc-on gpu: tfjs' webgpu backend made active (after the SAM engine and the deform stage chose theirs). */
export async function useNccDevice(choice: MatcherChoice): Promise<void> {
  if (!choice.nccOnDevice || tf.getBackend() === 'webgpu') return;
  try {
    await initTfBackend({ backend: 'webgpu' });
  } catch (e) {
    throw new InputError('--ncc-on gpu', `no WebGPU device: ${(e as Error).message}`);
  }
}
