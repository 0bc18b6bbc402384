/**
 * Messages holding large typed arrays, across a channel that cannot carry them whole. Electron's
 * utilityProcess serialises a message into one buffer, and a message past about 512 MB crashes it
 * (electron/electron#53961); a registration's result on a 512x512x300 fixed grid holds a 0.9 GB
 * displacement field, and its request two input volumes. `sendInParts` posts every typed array
 * larger than `limit` bytes as parts of at most `limit` bytes (each its own small message), then the
 * message with placeholders; a `PartJoiner` on the other side collects the parts and puts the arrays
 * back when the message arrives. Messages without large arrays pass unchanged.
 *
 * Only plain objects and arrays are walked (the protocol's messages: volumes, results, summaries).
 * A part is a copy (`slice`): structured clone of a view would copy its whole underlying buffer.
 */

/** Parts of 64 MiB: far below the limit, few enough messages (15 for a 0.9 GB field). */
export const PART_BYTES = 64 * 2 ** 20;

export interface MessagePart {
  type: 'message-part';
  id: number;
  /** Byte length of the whole array. */
  total: number;
  offset: number;
  bytes: Uint8Array;
}

interface Placeholder {
  messagePart: number;
  kind: string;
  length: number;
}

const ARRAY_KINDS: Record<string, new (b: ArrayBuffer, offset: number, length: number) => ArrayBufferView> = {
  Int8Array,
  Uint8Array,
  Uint8ClampedArray,
  Int16Array,
  Uint16Array,
  Int32Array,
  Uint32Array,
  Float32Array,
  Float64Array,
  BigInt64Array: BigInt64Array as never,
  BigUint64Array: BigUint64Array as never,
};

let nextId = 1;

function isPlain(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== 'object') return false;
  const p = Object.getPrototypeOf(v);
  return p === Object.prototype || p === null;
}

/** Posts `message` through `post`, its typed arrays over `limit` bytes first, in parts. */
export function sendInParts(message: unknown, post: (m: unknown) => void, limit = PART_BYTES): void {
  const walk = (v: unknown): unknown => {
    if (ArrayBuffer.isView(v) && !(v instanceof DataView) && v.byteLength > limit) {
      const kind = v.constructor.name;
      if (!(kind in ARRAY_KINDS)) return v;
      const id = nextId++;
      const bytes = new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
      for (let offset = 0; offset < bytes.byteLength; offset += limit)
        post({
          type: 'message-part',
          id,
          total: bytes.byteLength,
          offset,
          bytes: bytes.slice(offset, Math.min(offset + limit, bytes.byteLength)),
        } satisfies MessagePart);
      return { messagePart: id, kind, length: (v as unknown as { length: number }).length } satisfies Placeholder;
    }
    if (Array.isArray(v)) {
      let copy: unknown[] | null = null;
      v.forEach((x, n) => {
        const y = walk(x);
        if (y !== x) (copy ??= [...v])[n] = y;
      });
      return copy ?? v;
    }
    if (isPlain(v)) {
      let copy: Record<string, unknown> | null = null;
      for (const k of Object.keys(v)) {
        const y = walk(v[k]);
        if (y !== v[k]) (copy ??= { ...v })[k] = y;
      }
      return copy ?? v;
    }
    return v;
  };
  post(walk(message));
}

/** The receiving side: feed it every message; it returns the message once whole, null for a part. */
export class PartJoiner {
  private readonly arrays = new Map<number, Uint8Array>();

  accept<T>(m: unknown): T | null {
    if (isPlain(m) && m.type === 'message-part') {
      const p = m as unknown as MessagePart;
      let whole = this.arrays.get(p.id);
      if (!whole) this.arrays.set(p.id, (whole = new Uint8Array(p.total)));
      whole.set(p.bytes, p.offset);
      return null;
    }
    return this.restore(m) as T;
  }

  private restore(v: unknown): unknown {
    if (Array.isArray(v)) return v.map((x) => this.restore(x));
    if (!isPlain(v)) return v;
    if (typeof v.messagePart === 'number' && typeof v.kind === 'string' && typeof v.length === 'number') {
      const bytes = this.arrays.get(v.messagePart);
      const make = ARRAY_KINDS[v.kind];
      if (!bytes || !make) throw new Error(`message part ${v.messagePart} (${v.kind}) never arrived`);
      this.arrays.delete(v.messagePart);
      return new make(bytes.buffer as ArrayBuffer, 0, v.length);
    }
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v)) out[k] = this.restore(v[k]);
    return out;
  }
}
