/**
 * Where a benchmark's host time goes on WebGPU, without a profiler: counts of the WebGPU calls (compute
 * dispatches, queue submits, buffer writes, bind groups, buffers and pipelines created, read-backs,
 * i.e. mapAsync: each one a flush and a wait for the GPU) and the main thread's split between work and
 * waiting (the event loop's utilisation: busy = JavaScript and the native calls it makes, idle =
 * waiting for the GPU or a timer), its garbage-collection pauses and the process's CPU time, between
 * `start` and `stop`. Counting wraps the prototypes of the WebGPU classes (globalThis.GPUQueue ...),
 * restored by `stop`; nothing when they do not exist (other backends).
 */
import { PerformanceObserver, performance } from 'node:perf_hooks';
import * as tf from '@tensorflow/tfjs-core';

const CALLS = [
  ['GPUComputePassEncoder', 'dispatchWorkgroups', 'dispatches'],
  ['GPUQueue', 'submit', 'submits'],
  ['GPUBuffer', 'mapAsync', 'read-backs'],
  ['GPUQueue', 'writeBuffer', 'buffer writes'],
  ['GPUDevice', 'createBindGroup', 'bind groups'],
  ['GPUDevice', 'createBuffer', 'buffers created'],
  ['GPUDevice', 'createComputePipeline', 'pipelines compiled'],
] as const;

export interface HostStats {
  /** Per-`per` averages of the counts and times since start (e.g. per iteration), one line each. */
  stop(per: number): string[];
}

export function startHostStats(): HostStats {
  const counts = new Map<string, number>();
  const restore: (() => void)[] = [];
  const g = globalThis as unknown as Record<string, { prototype: Record<string, unknown> } | undefined>;
  for (const [cls, method, label] of CALLS) {
    const proto = g[cls]?.prototype;
    const orig = proto?.[method];
    if (!proto || typeof orig !== 'function') continue;
    counts.set(label, 0);
    proto[method] = function (this: unknown, ...args: unknown[]) {
      counts.set(label, counts.get(label)! + 1);
      return orig.apply(this, args);
    };
    restore.push(() => (proto[method] = orig));
  }
  // tfjs kernels (every op the engine runs, gradients included; custom-gradient ops count once) and
  // programs dispatched on WebGPU, by name; SAM_HOST_STATS_DETAIL=1 lists the most frequent ones
  const kernels = new Map<string, number>();
  const programs = new Map<string, number>();
  const bump = (m: Map<string, number>, k: string) => m.set(k, (m.get(k) ?? 0) + 1);
  const engine = tf.engine() as unknown as Record<string, unknown>;
  const runKernelFunc = engine.runKernelFunc as (p: { kernelName?: string }) => unknown;
  engine.runKernelFunc = function (this: unknown, p: { kernelName?: string }) {
    bump(kernels, p.kernelName ?? 'custom');
    return runKernelFunc.call(this, p);
  };
  restore.push(() => delete engine.runKernelFunc);
  const backend = tf.getBackend() === 'webgpu' ? (tf.backend() as unknown as Record<string, unknown>) : undefined;
  if (backend) {
    const run = backend.runWebGPUProgram as (p: { constructor: { name: string } }, ...rest: unknown[]) => unknown;
    backend.runWebGPUProgram = function (this: unknown, p: { constructor: { name: string } }, ...rest: unknown[]) {
      bump(programs, p.constructor.name);
      return run.call(this, p, ...rest);
    };
    restore.push(() => delete backend.runWebGPUProgram);
  }
  let gcMs = 0;
  let gcs = 0;
  const gc = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      gcMs += e.duration;
      gcs++;
    }
  });
  gc.observe({ entryTypes: ['gc'] });
  const elu = performance.eventLoopUtilization();
  const cpu = process.cpuUsage();
  const t0 = performance.now();
  return {
    stop(per) {
      const wall = performance.now() - t0;
      const u = performance.eventLoopUtilization(elu);
      const c = process.cpuUsage(cpu);
      gc.disconnect();
      for (const r of restore) r();
      const f = (ms: number) => (ms / per).toFixed(1);
      const total = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);
      const top = (m: Map<string, number>) =>
        [...m]
          .sort((a, b) => b[1] - a[1])
          .slice(0, 30)
          .map(([k, n]) => `${k} ${(n / per).toFixed(1)}`)
          .join(', ');
      const detail = process.env.SAM_HOST_STATS_DETAIL === '1';
      return [
        `wall ${f(wall)} ms: main thread busy ${f(u.active)} ms, waiting ${f(u.idle)} ms; ` +
          `GC ${f(gcMs)} ms in ${(gcs / per).toFixed(1)} pauses; process CPU ${f(c.user / 1000)} ms user ` +
          `${f(c.system / 1000)} ms system (all threads)`,
        counts.size
          ? [...counts].map(([k, n]) => `${k} ${(n / per).toFixed(1)}`).join(', ')
          : 'no WebGPU calls counted (not on WebGPU)',
        `tfjs kernels ${(total(kernels) / per).toFixed(1)}` +
          (backend ? `, WebGPU programs run ${(total(programs) / per).toFixed(1)}` : ''),
        ...(detail ? [`kernels by name: ${top(kernels)}`, `programs by class: ${top(programs)}`] : []),
      ];
    },
  };
}
