/**
 * Which engine runs SAM inference: `--device auto` takes WebGPU when a hardware GPU adapter exists
 * (Dawn in Node, navigator.gpu in a browser), otherwise ONNX Runtime on the CPU (about 50x faster
 * than tfjs's CPU backend here). Explicit devices: 'webgpu', 'onnx' (CPU), 'onnx-cuda', 'onnx-dml',
 * 'onnx-coreml' (falling back to the CPU with the reason recorded), 'tfjs-cpu', 'tfjs-node'.
 * A software adapter (Mesa's lavapipe, SwiftShader) does not count as a GPU for 'auto'.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { SamConfig } from '../sam/config.ts';
import type { SamWeights } from '../sam/network.ts';
import { exportSamOnnxBytes } from '../sam/onnx/export.ts';
import { InputError } from '../errors.ts';
import type { EmbeddingEngine } from './embedding-engine.ts';
import { createOnnxEngine, type OnnxExecutionProvider } from './onnx-engine.ts';
import { createTfjsEngine } from './tfjs-engine.ts';
import { initTfBackend, isSoftwareAdapter, onHardwareGpu } from './tf-backend.ts';

export const DEVICES = [
  'auto',
  'webgpu',
  'onnx',
  'onnx-cuda',
  'onnx-dml',
  'onnx-coreml',
  'tfjs-cpu',
  'tfjs-node',
] as const;
export type Device = (typeof DEVICES)[number];

export interface ChosenEngine {
  engine: EmbeddingEngine;
  /** Why this engine (for logs and reports). */
  reason: string;
}

interface AdapterInfo {
  description?: string;
  vendor?: string;
  architecture?: string;
}

/** Describe the WebGPU adapter, or null when there is none; software adapters are flagged. */
export async function webgpuAdapter(): Promise<{ software: boolean; description: string } | null> {
  const previous = tf.getBackend();
  const choice = await initTfBackend({ backend: 'webgpu', gradients: false }).catch(() => null);
  // Probing must not switch the tfjs backend for the caller's other work.
  if (previous && previous !== 'webgpu') await tf.setBackend(previous);
  if (!choice) return null;
  const gpu = (globalThis as { navigator?: { gpu?: { requestAdapter(): Promise<{ info?: AdapterInfo } | null> } } })
    .navigator?.gpu;
  const adapter = await gpu?.requestAdapter();
  if (!adapter) return null;
  const i = adapter.info ?? {};
  const description = [i.vendor, i.architecture, i.description].filter(Boolean).join(' ') || 'unknown adapter';
  return { software: isSoftwareAdapter(i), description };
}

export async function chooseEngine(
  config: SamConfig,
  weights: SamWeights,
  device: Device = 'auto',
): Promise<ChosenEngine> {
  if (!DEVICES.includes(device))
    throw new InputError('--device', `unknown device '${device}'; choose one of ${DEVICES.join(', ')}`);
  const onnx = async (providers: OnnxExecutionProvider[], why: string): Promise<ChosenEngine> => {
    const engine = await createOnnxEngine({
      modelBytes: exportSamOnnxBytes(config, weights),
      config,
      executionProviders: providers,
    });
    const skipped = engine.attempts.filter((a) => !a.ok).map((a) => `${a.provider}: ${a.reason}`);
    return {
      engine,
      reason: `${why}; ONNX Runtime on ${engine.provider}${skipped.length ? ` (skipped ${skipped.join('; ')})` : ''}`,
    };
  };
  switch (device) {
    case 'auto': {
      const a = await webgpuAdapter();
      if (a && !a.software)
        return {
          engine: await createTfjsEngine({ config, weights, backend: 'webgpu' }),
          reason: `GPU adapter ${a.description}`,
        };
      return onnx(['cpu'], a ? `only a software WebGPU adapter (${a.description})` : 'no WebGPU adapter');
    }
    case 'webgpu':
      return { engine: await createTfjsEngine({ config, weights, backend: 'webgpu' }), reason: 'requested' };
    case 'tfjs-cpu':
      return { engine: await createTfjsEngine({ config, weights, backend: 'cpu' }), reason: 'requested' };
    case 'tfjs-node':
      return { engine: await createTfjsEngine({ config, weights, backend: 'tensorflow' }), reason: 'requested' };
    case 'onnx':
      return onnx(['cpu'], 'requested');
    default:
      return onnx([device.slice(5) as OnnxExecutionProvider, 'cpu'], 'requested');
  }
}

export const DEFORM_DEVICES = ['auto', 'gpu', 'cpu'] as const;
export type DeformDevice = (typeof DEFORM_DEVICES)[number];

/**
 * Where SAM-deform's instance optimisation runs: 'gpu' on the tfjs WebGPU backend (activated here when
 * it is not already; fails with the reason when there is no adapter), 'cpu' in the host's JavaScript
 * (deform-optimiser.ts), 'auto' the GPU when a hardware adapter exists. On a software adapter
 * (lavapipe) the host code is faster, so 'auto' keeps it. Returns the cascade's `deform.onDevice`.
 */
export async function chooseDeformDevice(device: string = 'auto'): Promise<{ onDevice: boolean; reason: string }> {
  if (!DEFORM_DEVICES.includes(device as DeformDevice))
    throw new InputError('--deform-on', `unknown device '${device}'; choose one of ${DEFORM_DEVICES.join(', ')}`);
  if (device === 'cpu') return { onDevice: false, reason: 'requested' };
  if (device === 'gpu') {
    await initTfBackend({ backend: 'webgpu' });
    return { onDevice: true, reason: 'requested' };
  }
  if (onHardwareGpu()) return { onDevice: true, reason: 'the tfjs backend is a GPU' };
  const a = await webgpuAdapter();
  if (!a || a.software)
    return { onDevice: false, reason: a ? `only a software adapter (${a.description})` : 'no WebGPU adapter' };
  await initTfBackend({ backend: 'webgpu' });
  return { onDevice: true, reason: `GPU adapter ${a.description}` };
}
