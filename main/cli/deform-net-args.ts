/**
 * The SAM-deform network a command uses: --deform-net FILE, or the shipped one
 * (resources/sam-deform-net.samw, or $SAM_DEFORM_NET) when it exists; --no-deform-net: none
 * (instance optimisation alone). Loading it sets up the tfjs backend it runs on.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { initTfBackend } from '../engine/compute/tf-backend.ts';
import { InputError } from '../engine/errors.ts';
import type { DeformNet } from '../engine/register/deform-net/apply.ts';
import { loadDeformNet } from '../engine/register/deform-net/weights-file.ts';

export const DEFORM_NET_OPTIONS = {
  'deform-net': { type: 'string' },
  'no-deform-net': { type: 'boolean', default: false },
} as const;

export function defaultDeformNetPath(): string {
  return process.env.SAM_DEFORM_NET || fileURLToPath(new URL('../../resources/sam-deform-net.samw', import.meta.url));
}

export async function openDeformNet(values: {
  'deform-net'?: string;
  'no-deform-net'?: boolean;
}): Promise<DeformNet | undefined> {
  if (values['no-deform-net']) return undefined;
  const file = values['deform-net'] ?? defaultDeformNetPath();
  if (!existsSync(file)) {
    if (values['deform-net']) throw new InputError(file, 'no such deform network file');
    return undefined;
  }
  // the network is small: tfjs' CPU backend runs it in about a second (no gradients needed)
  await initTfBackend({ backend: 'cpu', gradients: false });
  const n = loadDeformNet(file);
  return { config: n.config, weights: n.weights, file };
}
