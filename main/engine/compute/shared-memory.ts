/** Typed arrays on SharedArrayBuffers: what worker threads read and write without a copy per thread. */

type Typed = Int8Array | Uint8Array | Int16Array | Uint16Array | Int32Array | Uint32Array | Float32Array | Float64Array;

/** A copy of the array on a SharedArrayBuffer, of the same type. */
export function sharedCopy<T extends Typed>(a: T): T {
  const out = new (a.constructor as new (b: SharedArrayBuffer) => T)(new SharedArrayBuffer(a.byteLength));
  out.set(a as never);
  return out;
}
