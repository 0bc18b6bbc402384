// The protobuf writer and the ONNX message encoders against bytes computed by hand from the wire
// format and the field numbers of onnx/onnx.proto3.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  encodeAttribute,
  encodeModel,
  encodeNode,
  encodeOpsetId,
  encodeTensor,
  encodeValueInfo,
  PbWriter,
} from '../../main/engine/sam/onnx/protobuf.ts';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const bytesOf = (...parts: (number | string)[]) =>
  hex(Uint8Array.from(parts.flatMap((p) => (typeof p === 'string' ? [...Buffer.from(p, 'utf8')] : [p]))));
const ff9 = Array(9).fill(0xff);

test('varints: small, multi-byte, beyond 2^31, negative int64 as ten bytes', () => {
  const v = (n: number | bigint) => hex(new PbWriter().varint(n).finish());
  assert.equal(v(0), '00');
  assert.equal(v(1), '01');
  assert.equal(v(127), '7f');
  assert.equal(v(128), '8001');
  assert.equal(v(300), 'ac02');
  assert.equal(v(2 ** 31), '8080808008');
  assert.equal(v(2 ** 35 + 1), '8180808080' + '01');
  assert.equal(v(-1), bytesOf(...ff9, 0x01));
  assert.equal(v(-2), bytesOf(0xfe, ...Array(8).fill(0xff), 0x01));
  assert.equal(v(2n ** 63n - 1n), bytesOf(...Array(8).fill(0xff), 0x7f));
  assert.throws(() => new PbWriter().varint(2 ** 60), RangeError);
});

test('scalar fields: tag = field << 3 | wire type', () => {
  const w = new PbWriter().int(2, 17).float(2, 1).string(20, 'ab');
  // 0x10 0x11 | fixed32 1.0f = 00 00 80 3f | field 20, wire 2 -> 162 = a2 01
  assert.equal(hex(w.finish()), bytesOf(0x10, 0x11, 0x15, 0, 0, 0x80, 0x3f, 0xa2, 0x01, 0x02, 'ab'));
  assert.equal(w.length, 12);
});

test('OperatorSetIdProto: version 17 of the default domain', () => {
  assert.equal(hex(encodeOpsetId('', 17).finish()), '1011');
  assert.equal(hex(encodeOpsetId('ai.onnx.ml', 3).finish()), bytesOf(0x0a, 10, 'ai.onnx.ml', 0x10, 0x03));
});

test('AttributeProto: INTS packed, FLOAT fixed32, STRING bytes, type discriminator field 20', () => {
  assert.equal(
    hex(encodeAttribute('k', { type: 'ints', value: [3, 300] }).finish()),
    bytesOf(0x0a, 1, 'k', 0xa0, 0x01, 7, 0x42, 3, 0x03, 0xac, 0x02),
  );
  assert.equal(
    hex(encodeAttribute('alpha', { type: 'float', value: 1 }).finish()),
    bytesOf(0x0a, 5, 'alpha', 0xa0, 0x01, 1, 0x15, 0, 0, 0x80, 0x3f),
  );
  assert.equal(
    hex(encodeAttribute('mode', { type: 'string', value: 'nearest' }).finish()),
    bytesOf(0x0a, 4, 'mode', 0xa0, 0x01, 3, 0x22, 7, 'nearest'),
  );
  assert.equal(
    hex(encodeAttribute('axis', { type: 'int', value: -1 }).finish()),
    bytesOf(0x0a, 4, 'axis', 0xa0, 0x01, 2, 0x18, ...ff9, 0x01),
  );
});

test('TensorProto: float32 raw_data little-endian, int64 packed int64_data', () => {
  const f = encodeTensor({ name: 'w', dims: [2], data: new Float32Array([1, -2]) });
  assert.equal(hex(f.finish()), bytesOf(0x0a, 1, 2, 0x10, 1, 0x42, 1, 'w', 0x4a, 8, 0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0));
  const i = encodeTensor({ name: 'p', dims: [2], data: { int64: [-1, 5] } });
  assert.equal(hex(i.finish()), bytesOf(0x0a, 1, 2, 0x10, 7, 0x3a, 11, ...ff9, 0x01, 0x05, 0x42, 1, 'p'));
  // a scalar has no dims field at all
  assert.equal(
    hex(encodeTensor({ name: 'e', dims: [], data: new Float32Array([0]) }).finish()),
    bytesOf(0x10, 1, 0x42, 1, 'e', 0x4a, 4, 0, 0, 0, 0),
  );
});

test('ValueInfoProto: tensor type with a fixed and a symbolic dimension', () => {
  const v = encodeValueInfo({ name: 'x', elemType: 1, dims: [1, 'D'] });
  const shape = [0x0a, 2, 0x08, 1, 0x0a, 3, 0x12, 1, 'D']; // dim { dim_value: 1 } dim { dim_param: "D" }
  const tensor = [0x08, 1, 0x12, 9, ...shape]; // elem_type FLOAT, shape
  const type = [0x0a, 13, ...tensor]; // TypeProto.tensor_type (tensor: 2 + 2 + 9 bytes)
  assert.equal(hex(v.finish()), bytesOf(0x0a, 1, 'x', 0x12, 15, ...type));
});

test('NodeProto: inputs, outputs, op_type, attributes', () => {
  assert.equal(
    hex(encodeNode({ opType: 'Relu', inputs: ['x'], outputs: ['y'] }).finish()),
    bytesOf(0x0a, 1, 'x', 0x12, 1, 'y', 0x22, 4, 'Relu'),
  );
  const n = encodeNode({
    opType: 'Max',
    inputs: ['a', ''],
    outputs: ['b'],
    name: 'm',
    attributes: { k: { type: 'int', value: 2 } },
  });
  assert.equal(
    hex(n.finish()),
    bytesOf(
      0x0a,
      1,
      'a',
      0x0a,
      0,
      0x12,
      1,
      'b',
      0x1a,
      1,
      'm',
      0x22,
      3,
      'Max',
      0x2a,
      8,
      0x0a,
      1,
      'k',
      0xa0,
      0x01,
      2,
      0x18,
      2,
    ),
  );
});

test('ModelProto: ir_version, producer, graph, opset_import, metadata; large payloads stay in chunks', () => {
  const big = new Float32Array(100).map((_, i) => i);
  const m = encodeModel({
    irVersion: 8,
    opsetVersion: 17,
    producerName: 'p',
    graph: {
      name: 'g',
      nodes: [{ opType: 'Relu', inputs: ['x'], outputs: ['y'] }],
      initializers: [{ name: 'w', dims: [100], data: big }],
      inputs: [],
      outputs: [],
    },
    metadata: { k: 'v' },
  });
  const node = [0x0a, 1, 'x', 0x12, 1, 'y', 0x22, 4, 'Relu'];
  const tensorHead = [0x0a, 1, 100, 0x10, 1, 0x42, 1, 'w', 0x4a, 0x90, 0x03]; // raw_data of 400 bytes
  // tensor: 11 + 400 = 411 bytes (9b 03); graph: node 2 + 12, name 3, initializer 3 + 411 = 431 bytes (af 03)
  const expected =
    bytesOf(0x08, 8, 0x12, 1, 'p', 0x3a, 0xaf, 0x03, 0x0a, 12, ...node, 0x12, 1, 'g', 0x2a, 0x9b, 0x03, ...tensorHead) +
    hex(new Uint8Array(big.buffer)) +
    bytesOf(0x42, 2, 0x10, 17, 0x72, 6, 0x0a, 1, 'k', 0x12, 1, 'v');
  assert.equal(hex(m.finish()), expected);
  assert.ok(
    m.parts().some((p) => p.buffer === big.buffer),
    'the tensor data is not copied',
  );
});
