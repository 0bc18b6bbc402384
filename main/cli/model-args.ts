/**
 * The SAM model a command is pointed at, from its --weights / --random-init / --config / --device
 * options: the one place that checks them and opens the model (sam match, register, review).
 */
import { existsSync } from 'node:fs';
import type { Device } from '../engine/compute/choose-engine.ts';
import { InputError } from '../engine/errors.ts';
import { defaultModelPath, openModel, type OpenedModel } from './commands/match.ts';

/** parseArgs options, spread into a command's own. */
export const MODEL_OPTIONS = {
  weights: { type: 'string' },
  'random-init': { type: 'string' },
  config: { type: 'string', default: 'small' },
  device: { type: 'string', default: 'auto' },
} as const;

export interface ModelArgs {
  weights?: string;
  'random-init'?: string;
  config: string;
  device: string;
}

/**
 * The trained model of --weights (default resources/sam-small.samw or $SAM_MODEL), or with
 * --random-init SEED the --config network at random initialisation. `otherwise` names the option that
 * does without a model, for the message when there is none.
 */
export async function openModelFromArgs(
  values: ModelArgs,
  otherwise: string,
): Promise<OpenedModel & { weightsFile?: string }> {
  const device = values.device as Device;
  const seedText = values['random-init'];
  if (seedText !== undefined) {
    const seed = Number(seedText);
    if (seedText.trim() === '' || !Number.isFinite(seed))
      throw new InputError('--random-init', `expected a number, got '${seedText}'`);
    return openModel({ config: values.config, seed }, device);
  }
  const weightsFile = values.weights ?? defaultModelPath();
  if (!existsSync(weightsFile))
    throw new InputError(
      weightsFile,
      values.weights ? 'no such weights file' : `no trained model here yet; pass --weights FILE (or ${otherwise})`,
    );
  return { ...(await openModel({ weightsFile }, device)), weightsFile };
}
