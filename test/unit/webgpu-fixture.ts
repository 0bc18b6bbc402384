/** WebGPU in the tests: Dawn on lavapipe here (`npm run setup:test` installs it), a real GPU elsewhere. */
import assert from 'node:assert/strict';
import { initTfBackend } from '../../main/engine/compute/tf-backend.ts';

/**
 * Make webgpu the active tfjs backend, or skip the test (`t.skip`) when there is no adapter; in CI
 * (or with SAM_DEBUG) a missing adapter fails instead, since the set-up installs one.
 */
export async function useWebgpu(t: { skip: (m: string) => void }, gradients = true): Promise<boolean> {
  const r = await initTfBackend({ backend: 'webgpu', gradients }).catch((e: Error) => e);
  if (r instanceof Error || r.backend !== 'webgpu') {
    const why = r instanceof Error ? r.message : r.backend;
    if (process.env.CI || process.env.SAM_DEBUG) assert.fail(`no WebGPU adapter: ${why}`);
    t.skip(`no WebGPU adapter here (${why}); run 'npm run setup:test' to install lavapipe`);
    return false;
  }
  return true;
}
