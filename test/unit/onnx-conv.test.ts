// A one-Conv ONNX model written by our protobuf encoder runs in ONNX Runtime and matches a float64
// hand computation: symbolic input dimensions, two input channels, an even kernel, a stride and
// asymmetric explicit pads (the attributes the SAM export relies on).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DataType, encodeModel } from '../../main/engine/sam/onnx/protobuf.ts';
import { loadOnnxRuntime } from '../../main/engine/compute/onnx-engine.ts';
import { rng } from '../helpers.ts';

test('one Conv (stride, even kernel, asymmetric pads, bias) in ONNX Runtime = float64 reference', async () => {
  const [cin, cout] = [2, 3];
  const k = [2, 3, 3];
  const stride = [1, 2, 2];
  const pads = [1, 1, 0, 0, 1, 2]; // z, y, x begins, then ends
  const size = [4, 7, 9];
  const r = rng(5);
  const w = new Float32Array(cout * cin * k[0] * k[1] * k[2]).map(() => r() * 2 - 1);
  const b = new Float32Array(cout).map(() => r() - 0.5);
  const x = new Float32Array(cin * size[0] * size[1] * size[2]).map(() => r() * 2 - 1);

  const model = encodeModel({
    irVersion: 8,
    opsetVersion: 17,
    producerName: 'test',
    graph: {
      name: 'conv',
      nodes: [
        {
          opType: 'Conv',
          inputs: ['x', 'w', 'b'],
          outputs: ['y'],
          name: 'c',
          attributes: {
            kernel_shape: { type: 'ints', value: k },
            strides: { type: 'ints', value: stride },
            pads: { type: 'ints', value: pads },
          },
        },
      ],
      initializers: [
        { name: 'w', dims: [cout, cin, ...k], data: w },
        { name: 'b', dims: [cout], data: b },
      ],
      inputs: [{ name: 'x', elemType: DataType.FLOAT, dims: [1, cin, 'D', 'H', 'W'] }],
      outputs: [{ name: 'y', elemType: DataType.FLOAT, dims: [1, cout, 'd', 'h', 'w'] }],
    },
  }).finish();

  const ort = await loadOnnxRuntime();
  const session = await ort.InferenceSession.create(model, { executionProviders: ['cpu'], intraOpNumThreads: 1 });
  assert.deepEqual(session.inputNames, ['x']);
  const out = (await session.run({ x: new ort.Tensor('float32', x, [1, cin, ...size]) })).y;
  await session.release();

  const osz = [0, 1, 2].map((a) => Math.floor((size[a] + pads[a] + pads[a + 3] - k[a]) / stride[a]) + 1);
  assert.deepEqual(out.dims, [1, cout, ...osz]);
  const y = out.data as Float32Array;
  let maxDiff = 0;
  for (let o = 0; o < cout; o++)
    for (let z = 0; z < osz[0]; z++)
      for (let yy = 0; yy < osz[1]; yy++)
        for (let xx = 0; xx < osz[2]; xx++) {
          let s = b[o];
          for (let i = 0; i < cin; i++)
            for (let a = 0; a < k[0]; a++)
              for (let c = 0; c < k[1]; c++)
                for (let e = 0; e < k[2]; e++) {
                  const iz = z * stride[0] + a - pads[0];
                  const iy = yy * stride[1] + c - pads[1];
                  const ix = xx * stride[2] + e - pads[2];
                  if (iz < 0 || iy < 0 || ix < 0 || iz >= size[0] || iy >= size[1] || ix >= size[2]) continue;
                  const wv = w[(((o * cin + i) * k[0] + a) * k[1] + c) * k[2] + e];
                  s += wv * x[((i * size[0] + iz) * size[1] + iy) * size[2] + ix];
                }
          const got = y[((o * osz[0] + z) * osz[1] + yy) * osz[2] + xx];
          maxDiff = Math.max(maxDiff, Math.abs(got - s));
        }
  assert.ok(maxDiff < 1e-5, `max |onnx - float64| = ${maxDiff}`);
});
