/**
 * Typed errors of the engine. Every error that reaches a user names the file
 * (or input) and the problem, in that order: "<file>: <problem>".
 */

/** A volume (or part of one) could not be read: the message names the file and why. */
export class VolumeReadError extends Error {
  override readonly name = 'VolumeReadError';
  constructor(
    readonly file: string,
    readonly problem: string,
    options?: { cause?: unknown },
  ) {
    super(`${file}: ${problem}`, options);
  }
}

/** A volume could not be written: the message names the destination and why. */
export class VolumeWriteError extends Error {
  override readonly name = 'VolumeWriteError';
  constructor(
    readonly file: string,
    readonly problem: string,
    options?: { cause?: unknown },
  ) {
    super(`${file}: ${problem}`, options);
  }
}

/** Bad arguments or an input that is valid but unsuitable (e.g. not CT, wrong geometry). */
export class InputError extends Error {
  override readonly name: string = 'InputError';
  constructor(
    readonly input: string,
    readonly problem: string,
  ) {
    super(`${input}: ${problem}`);
  }
}

/** The user cancelled a long operation through its AbortSignal. */
export class CancelledError extends Error {
  override readonly name = 'CancelledError';
  constructor(what = 'operation') {
    super(`${what} cancelled`);
  }
}

/**
 * Run a reader and turn any unexpected exception (a RangeError from a DataView on a
 * truncated file, a zlib error...) into a VolumeReadError naming the file, so that
 * callers only ever see typed errors. Known problems should be detected and reported
 * explicitly by the reader; this is the safety net.
 */
export function wrapReadErrors<T>(file: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw asReadError(file, e);
  }
}

export async function wrapReadErrorsAsync<T>(file: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw asReadError(file, e);
  }
}

function asReadError(file: string, e: unknown): Error {
  if (e instanceof VolumeReadError || e instanceof CancelledError || e instanceof InputError) return e;
  const msg = e instanceof Error ? e.message : String(e);
  return new VolumeReadError(file, `unreadable or corrupt file (${msg})`, { cause: e });
}

/**
 * An input too large for one buffer of the compute device (WebGPU's maxStorageBufferBindingSize):
 * callers with a host path (the cascade) fall back to it; others report it.
 */
export class DeviceLimitError extends InputError {
  override readonly name = 'DeviceLimitError';
}
