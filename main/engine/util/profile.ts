/**
 * Time splits for finding where a slow run goes, printed to stderr when SAM_PROFILE is set (the GPU
 * kit's checks set it): `const p = profiler('warp')`, `p.mark('read-back')` after each step, `p.done()`
 * prints `profile warp: 812 ms: dispatch 3, read-back 640, ...`. A no-op otherwise.
 */
export interface Profiler {
  mark(step: string): void;
  done(note?: string): void;
}

const NOOP: Profiler = { mark: () => {}, done: () => {} };

export function profiler(what: string): Profiler {
  if (!process.env.SAM_PROFILE) return NOOP;
  const t0 = performance.now();
  let last = t0;
  const steps = new Map<string, number>();
  return {
    mark(step) {
      const now = performance.now();
      steps.set(step, (steps.get(step) ?? 0) + now - last);
      last = now;
    },
    done(note) {
      const parts = [...steps].map(([s, ms]) => `${s} ${ms.toFixed(0)}`);
      process.stderr.write(
        `profile ${what}: ${(performance.now() - t0).toFixed(0)} ms${note ? ` (${note})` : ''}: ${parts.join(', ')}\n`,
      );
    },
  };
}
