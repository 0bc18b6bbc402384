/**
 * Large typed arrays in parts (workstation/message-parts.ts), for Electron's utilityProcess channel:
 * every message that crosses stays under the limit, and the other side gets the same message back.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PartJoiner, sendInParts } from '../../main/engine/workstation/message-parts.ts';

/** Bytes a message would put through the channel: every typed array's whole buffer (structured clone). */
function bytesOf(v: unknown): number {
  if (ArrayBuffer.isView(v)) return v.buffer.byteLength;
  if (Array.isArray(v)) return v.reduce((a: number, x) => a + bytesOf(x), 0);
  if (v && typeof v === 'object') return Object.values(v).reduce((a: number, x) => a + bytesOf(x), 0);
  return 0;
}

test('a result with arrays over the limit crosses in parts under the limit and comes back equal', () => {
  const field = new Float32Array(1000).map((_, n) => n * 0.25 - 3);
  const warped = new Int16Array(700).map((_, n) => n - 350);
  const small = new Float64Array([1, 2, 3]);
  const message = {
    type: 'done',
    result: {
      field: { size: [10, 10, 10], components: 3, data: field, meta: { warnings: ['w'] } },
      warped: { size: [7, 10, 10], data: warped.subarray(100, 600) },
      affine: { affine: small, pairs: [{ fixed: [1, 2, 3], score: 0.9 }] },
      stages: ['affine', 'deform'],
    },
  };
  const limit = 256;
  const crossed: unknown[] = [];
  sendInParts(message, (m) => crossed.push(structuredClone(m)), limit);
  assert.ok(crossed.length > 3, `${crossed.length} messages`);
  for (const m of crossed) assert.ok(bytesOf(m) <= limit, `a message of ${bytesOf(m)} bytes`);
  const joiner = new PartJoiner();
  const out = crossed.map((m) => joiner.accept<typeof message>(m));
  assert.ok(
    out.slice(0, -1).every((m) => m === null),
    'parts give nothing',
  );
  const back = out.at(-1)!;
  assert.deepEqual(back, {
    ...message,
    result: { ...message.result, warped: { ...message.result.warped, data: warped.slice(100, 600) } },
  });
  assert.ok(back.result.field.data instanceof Float32Array);
  // the original message is not changed
  assert.equal(message.result.field.data, field);
});

test('a message without large arrays passes as it is, in one message', () => {
  const m = { type: 'progress', stage: 'affine', done: 1, total: 3, data: new Uint8Array(10) };
  const crossed: unknown[] = [];
  sendInParts(m, (x) => crossed.push(x), 256);
  assert.equal(crossed.length, 1);
  assert.equal(crossed[0], m);
  assert.deepEqual(new PartJoiner().accept(structuredClone(crossed[0])), m);
});

test('a placeholder whose parts never came is an error, not a silent hole', () => {
  assert.throws(
    () => new PartJoiner().accept({ type: 'done', data: { messagePart: 99, kind: 'Float32Array', length: 4 } }),
    /message part 99 \(Float32Array\) never arrived/,
  );
});
