/**
 * onnxruntime-node, imported on first use (a native addon: a command that does not need it never
 * loads it). Its Linux and macOS builds (1.30) carry Microsoft's 1DS telemetry, which records
 * sessions and models and uploads them, and leaves a /tmp/mat-debug-<pid>.log behind every process:
 * a workstation that handles patients' scans sends nothing anywhere, so it is switched off
 * (ORT_DISABLE_TELEMETRY=1, read once when the library starts; a value already set is kept).
 */
let module: Promise<unknown> | undefined;

/**
 * The switch itself. Set on a process's main thread, which changes the process's environment: a worker
 * thread's process.env is its own copy, which native code there never sees, so start-thread.ts sets it
 * before it starts a thread (the registration worker of `npm run web` loads ONNX Runtime in one).
 */
export function disableOnnxTelemetry(): void {
  process.env.ORT_DISABLE_TELEMETRY ??= '1';
}

export function importOnnxRuntime<T>(): Promise<T> {
  module ??= (() => {
    disableOnnxTelemetry();
    // (a name in a variable: bundlers leave the native addon to the runtime)
    const name = 'onnxruntime-node';
    return import(/* @vite-ignore */ name).then((m: { default?: unknown }) => m.default ?? m);
  })();
  return module as Promise<T>;
}
