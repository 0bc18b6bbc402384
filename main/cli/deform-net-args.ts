/**
 * The SAM-deform network a command uses: --deform-net FILE, or the shipped one
 * (resources/sam-deform-net.samw, or $SAM_DEFORM_NET) when it exists; --no-deform-net: none
 * (instance optimisation alone). Its convolutions run on ONNX Runtime when it loads (else tfjs), the
 * integration on tfjs' CPU backend, which loading it selects.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { initTfBackend } from '../engine/compute/tf-backend.ts';
import { chooseDeformDevice } from '../engine/compute/choose-engine.ts';
import { InputError } from '../engine/errors.ts';
import type { DeformNet } from '../engine/register/deform-net/apply.ts';
import { loadDeformNet } from '../engine/register/deform-net/weights-file.ts';
import { createDeformOnnxRunner } from '../engine/register/deform-net/onnx.ts';

export const DEFORM_NET_OPTIONS = {
  'deform-net': { type: 'string' },
  'no-deform-net': { type: 'boolean', default: false },
  'deform-on': { type: 'string', default: 'auto' },
} as const;

export const DEFORM_ON_USAGE = `  --deform-on auto|gpu|cpu  where the deform stage's instance optimisation runs: gpu = tfjs on WebGPU,
                      cpu = JavaScript on the host; auto (default) takes a hardware GPU when there is one`;

/** The deform stage's `onDevice` from --deform-on (after the SAM engine is open: it may have chosen WebGPU). */
export async function deformOnDevice(values: { 'deform-on'?: string }, log: (line: string) => void): Promise<boolean> {
  const c = await chooseDeformDevice(values['deform-on'] ?? 'auto');
  log(`deform stage: instance optimisation on ${c.onDevice ? 'the GPU (tfjs WebGPU)' : 'the CPU'} (${c.reason})`);
  return c.onDevice;
}

export function defaultDeformNetPath(): string {
  return process.env.SAM_DEFORM_NET || fileURLToPath(new URL('../../resources/sam-deform-net.samw', import.meta.url));
}

/** --deform-net FILE and --no-deform-net together: refused (before the inputs are read). */
export function checkDeformNetArgs(values: { 'deform-net'?: string; 'no-deform-net'?: boolean }): void {
  if (values['no-deform-net'] && values['deform-net'] !== undefined)
    throw new InputError('--deform-net/--no-deform-net', 'give one: a network file, or none');
}

export async function openDeformNet(values: {
  'deform-net'?: string;
  'no-deform-net'?: boolean;
}): Promise<DeformNet | undefined> {
  checkDeformNetArgs(values);
  if (values['no-deform-net']) return undefined;
  const file = values['deform-net'] ?? defaultDeformNetPath();
  if (!existsSync(file)) {
    if (values['deform-net']) throw new InputError(file, 'no such deform network file');
    return undefined;
  }
  // the convolutions on ONNX Runtime (onnx.ts), the integration on tfjs' CPU backend
  await initTfBackend({ backend: 'cpu', gradients: false });
  const n = loadDeformNet(file);
  const tensors: Record<string, Float32Array> = {};
  for (const [k, t] of Object.entries(n.weights)) tensors[k] = t.dataSync() as Float32Array;
  let velocity;
  try {
    velocity = await createDeformOnnxRunner(n.config, tensors);
  } catch (e) {
    console.error(`deform network: ONNX Runtime unavailable (${(e as Error).message.split('\n')[0]}); tfjs runs it`);
  }
  return { config: n.config, weights: n.weights, file, velocity };
}
