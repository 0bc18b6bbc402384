/**
 * tf.profile's kernels summarised for benchmarks: kernel time by kernel name and the slowest single
 * kernels with their shapes. Kernel times come from the backend's timer (WebGPU: timestamp queries,
 * which Dawn offers with SAM_DAWN_FLAGS=enable-dawn-features=allow_unsafe_apis); without one they are 0.
 */
import * as tf from '@tensorflow/tfjs-core';

type ProfileInfo = Awaited<ReturnType<typeof tf.profile>>;

export function printKernelProfile(info: ProfileInfo, wallSeconds: number, top = 12): void {
  const ms = (k: ProfileInfo['kernels'][number]) => (typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0);
  const total = info.kernels.reduce((a, k) => a + ms(k), 0);
  console.log(
    `profile: ${info.kernels.length} kernels, ${total.toFixed(1)} ms of kernel time in ${(wallSeconds * 1000).toFixed(0)} ms ` +
      `wall, peak ${(info.peakBytes / 2 ** 20).toFixed(0)} MB` +
      (total === 0 ? ' (no kernel times: the backend has no timer; see SAM_DAWN_FLAGS)' : ''),
  );
  const byName = new Map<string, { ms: number; n: number }>();
  for (const k of info.kernels) {
    const e = byName.get(k.name) ?? { ms: 0, n: 0 };
    e.ms += ms(k);
    e.n++;
    byName.set(k.name, e);
  }
  for (const [name, e] of [...byName].sort((a, b) => b[1].ms - a[1].ms).slice(0, top))
    console.log(`  ${name.padEnd(28)} ${e.n.toString().padStart(5)} x  ${e.ms.toFixed(2).padStart(9)} ms`);
  console.log('  slowest kernels:');
  for (const k of [...info.kernels].sort((a, b) => ms(b) - ms(a)).slice(0, top))
    console.log(
      `  ${k.name.padEnd(28)} ${ms(k).toFixed(2).padStart(9)} ms  in ${k.inputShapes.map((s) => `[${s}]`).join(' ')} -> ` +
        k.outputShapes.map((s) => `[${s}]`).join(' '),
    );
}
