/**
 * A minimal protobuf writer and the ONNX messages the SAM exporter needs, so that an .onnx file is
 * written without any protobuf dependency.
 *
 * Wire format: tag = (field << 3) | wire type; varints little-endian base 128 (negative int64 as
 * ten bytes, two's complement); length-delimited fields (strings, bytes, sub-messages, packed
 * repeated scalars) are a varint length then the bytes; floats are fixed32 little-endian.
 * Field numbers follow onnx/onnx.proto3 (checked against the onnx repository): ModelProto,
 * GraphProto, NodeProto, AttributeProto, TensorProto (float32 in raw_data, little-endian; int64 in
 * packed int64_data), ValueInfoProto / TypeProto / TensorShapeProto (symbolic dims by dim_param),
 * OperatorSetIdProto, StringStringEntryProto. Repeated numeric fields are written packed (proto3's
 * default; proto2 parsers accept both). Large byte fields are kept as separate chunks (no copies).
 */

const LE = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** Appends protobuf fields; sub-messages are other writers, embedded by reference. */
export class PbWriter {
  private readonly chunks: Uint8Array[] = [];
  private cur: number[] = [];
  private done = 0;

  /** Bytes written so far. */
  get length(): number {
    return this.done + this.cur.length;
  }

  varint(n: number | bigint): this {
    if (typeof n === 'number' && Number.isInteger(n) && n >= 0 && n <= 0x7fffffff) {
      while (n > 0x7f) {
        this.cur.push((n & 0x7f) | 0x80);
        n >>>= 7;
      }
      this.cur.push(n);
      return this;
    }
    if (typeof n === 'number' && !Number.isSafeInteger(n)) throw new RangeError(`varint: ${n} is not a safe integer`);
    let v = BigInt.asUintN(64, BigInt(n));
    while (v > 0x7fn) {
      this.cur.push(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    this.cur.push(Number(v));
    return this;
  }

  tag(field: number, wireType: 0 | 1 | 2 | 5): this {
    return this.varint(field * 8 + wireType);
  }

  /** A varint field (int32, int64, uint64, enum, bool). */
  int(field: number, n: number | bigint): this {
    return this.tag(field, 0).varint(n);
  }

  /** A float (fixed32) field. */
  float(field: number, x: number): this {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, x, true);
    this.tag(field, 5);
    for (const v of b) this.cur.push(v);
    return this;
  }

  string(field: number, s: string): this {
    return this.bytes(field, new TextEncoder().encode(s));
  }

  /** A length-delimited field holding `b` (kept by reference when large). */
  bytes(field: number, b: Uint8Array): this {
    this.tag(field, 2).varint(b.byteLength);
    if (b.byteLength < 256) for (const v of b) this.cur.push(v);
    else this.push(b);
    return this;
  }

  /** An embedded message. */
  message(field: number, m: PbWriter): this {
    this.tag(field, 2).varint(m.length);
    this.flush();
    for (const p of m.parts()) this.chunks.push(p);
    this.done += m.length;
    return this;
  }

  /** A packed repeated varint field (skipped when empty, as protobuf does). */
  packedInts(field: number, values: readonly (number | bigint)[]): this {
    if (values.length === 0) return this;
    const inner = new PbWriter();
    for (const v of values) inner.varint(v);
    return this.message(field, inner);
  }

  /** A packed repeated float field. */
  packedFloats(field: number, values: readonly number[]): this {
    if (values.length === 0) return this;
    const b = new Uint8Array(values.length * 4);
    const dv = new DataView(b.buffer);
    values.forEach((v, i) => dv.setFloat32(i * 4, v, true));
    return this.bytes(field, b);
  }

  /** The encoded bytes as chunks (no concatenation). */
  parts(): Uint8Array[] {
    this.flush();
    return this.chunks.slice();
  }

  /** The encoded bytes in one array. */
  finish(): Uint8Array {
    const parts = this.parts();
    if (parts.length === 1) return parts[0];
    const out = new Uint8Array(this.length);
    let off = 0;
    for (const p of parts) {
      out.set(p, off);
      off += p.byteLength;
    }
    return out;
  }

  private push(b: Uint8Array): void {
    this.flush();
    this.chunks.push(b);
    this.done += b.byteLength;
  }

  private flush(): void {
    if (this.cur.length === 0) return;
    this.chunks.push(Uint8Array.from(this.cur));
    this.done += this.cur.length;
    this.cur = [];
  }
}

// ---- ONNX messages ----

/** TensorProto.DataType values used here. */
export const DataType = { FLOAT: 1, INT64: 7 } as const;

/** AttributeProto.AttributeType values. */
export const AttrType = { FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, FLOATS: 6, INTS: 7 } as const;

export type AttrValue =
  | { type: 'float'; value: number }
  | { type: 'int'; value: number }
  | { type: 'string'; value: string }
  | { type: 'floats'; value: number[] }
  | { type: 'ints'; value: number[] }
  | { type: 'tensor'; value: TensorProto };

export interface TensorProto {
  name: string;
  dims: number[];
  /** float32 values go to raw_data (little-endian); int64 values to int64_data. */
  data: Float32Array | { int64: number[] };
}

export interface NodeProto {
  opType: string;
  inputs: string[];
  outputs: string[];
  name?: string;
  attributes?: Record<string, AttrValue>;
}

export interface ValueInfoProto {
  name: string;
  elemType: number;
  /** Fixed sizes or symbolic names. */
  dims: (number | string)[];
  docString?: string;
}

export interface GraphProto {
  name: string;
  nodes: NodeProto[];
  initializers: TensorProto[];
  inputs: ValueInfoProto[];
  outputs: ValueInfoProto[];
  docString?: string;
}

export interface ModelProto {
  irVersion: number;
  opsetVersion: number;
  producerName: string;
  producerVersion?: string;
  docString?: string;
  graph: GraphProto;
  metadata?: Record<string, string>;
}

export function encodeTensor(t: TensorProto): PbWriter {
  const w = new PbWriter().packedInts(1, t.dims);
  if (t.data instanceof Float32Array) {
    w.int(2, DataType.FLOAT).string(8, t.name);
    w.bytes(9, float32LE(t.data));
  } else {
    w.int(2, DataType.INT64).packedInts(7, t.data.int64).string(8, t.name);
  }
  return w;
}

export function encodeAttribute(name: string, a: AttrValue): PbWriter {
  const w = new PbWriter().string(1, name);
  switch (a.type) {
    case 'float':
      return w.int(20, AttrType.FLOAT).float(2, a.value);
    case 'int':
      return w.int(20, AttrType.INT).int(3, a.value);
    case 'string':
      return w.int(20, AttrType.STRING).string(4, a.value);
    case 'tensor':
      return w.int(20, AttrType.TENSOR).message(5, encodeTensor(a.value));
    case 'floats':
      return w.int(20, AttrType.FLOATS).packedFloats(7, a.value);
    case 'ints':
      return w.int(20, AttrType.INTS).packedInts(8, a.value);
  }
}

export function encodeNode(n: NodeProto): PbWriter {
  const w = new PbWriter();
  for (const i of n.inputs) w.string(1, i);
  for (const o of n.outputs) w.string(2, o);
  if (n.name) w.string(3, n.name);
  w.string(4, n.opType);
  for (const [k, v] of Object.entries(n.attributes ?? {})) w.message(5, encodeAttribute(k, v));
  return w;
}

export function encodeValueInfo(v: ValueInfoProto): PbWriter {
  const shape = new PbWriter();
  for (const d of v.dims)
    shape.message(1, typeof d === 'number' ? new PbWriter().int(1, d) : new PbWriter().string(2, d));
  const tensorType = new PbWriter().int(1, v.elemType).message(2, shape);
  const w = new PbWriter().string(1, v.name).message(2, new PbWriter().message(1, tensorType));
  if (v.docString) w.string(3, v.docString);
  return w;
}

export function encodeGraph(g: GraphProto): PbWriter {
  const w = new PbWriter();
  for (const n of g.nodes) w.message(1, encodeNode(n));
  w.string(2, g.name);
  for (const t of g.initializers) w.message(5, encodeTensor(t));
  if (g.docString) w.string(10, g.docString);
  for (const i of g.inputs) w.message(11, encodeValueInfo(i));
  for (const o of g.outputs) w.message(12, encodeValueInfo(o));
  return w;
}

export function encodeOpsetId(domain: string, version: number): PbWriter {
  const w = new PbWriter();
  if (domain) w.string(1, domain);
  return w.int(2, version);
}

export function encodeModel(m: ModelProto): PbWriter {
  const w = new PbWriter().int(1, m.irVersion).string(2, m.producerName);
  if (m.producerVersion) w.string(3, m.producerVersion);
  if (m.docString) w.string(6, m.docString);
  w.message(7, encodeGraph(m.graph));
  w.message(8, encodeOpsetId('', m.opsetVersion));
  for (const [k, v] of Object.entries(m.metadata ?? {})) w.message(14, new PbWriter().string(1, k).string(2, v));
  return w;
}

function float32LE(v: Float32Array): Uint8Array {
  if (LE) return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  const out = new Uint8Array(v.length * 4);
  const dv = new DataView(out.buffer);
  v.forEach((x, i) => dv.setFloat32(i * 4, x, true));
  return out;
}
