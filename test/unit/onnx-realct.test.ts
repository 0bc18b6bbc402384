// ONNX Runtime against tfjs on real CT with the 'small' configuration (random weights, fixed seed):
// the TotalSegmentator example CT resampled to 2 mm and normalised as for the network; a 32x64x64
// (z, y, x) block from its centre keeps the tfjs side quick. Every voxel of both outputs must agree
// (cosine >= 0.9999).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initTfBackend } from '../../main/engine/compute/tf-backend.ts';
import { getSamConfig, type Vec3 } from '../../main/engine/sam/config.ts';
import { createWeights, disposeWeights } from '../../main/engine/sam/network.ts';
import { exportSamOnnxBytes } from '../../main/engine/sam/onnx/export.ts';
import { createOnnxEngine } from '../../main/engine/compute/onnx-engine.ts';
import { createTfjsEngine } from '../../main/engine/compute/tfjs-engine.ts';
import { readVolume } from '../../main/engine/volume/io/index.ts';
import { resampleToSpacing } from '../../main/engine/volume/resample.ts';
import { normalizeForNetwork } from '../../main/engine/volume/intensity.ts';
import { dataPath } from '../helpers.ts';
import { compareEmbeddings } from './onnx-compare.ts';

test("real CT, 'small': ONNX Runtime and tfjs embeddings agree per voxel", async (t) => {
  await initTfBackend({ backend: 'cpu', gradients: false });
  const ct = await readVolume(dataPath('TotalSegmentator/tests/reference_files/example_ct.nii.gz'));
  const net = normalizeForNetwork(resampleToSpacing(ct, [2, 2, 2], { fill: -1024 }));
  const [ni, nj, nk] = net.size;
  const size: Vec3 = [32, 64, 64]; // z, y, x
  assert.ok(nk >= size[0] && nj >= size[1] && ni >= size[2], `2 mm volume ${net.size} smaller than the block`);
  const [z0, y0, x0] = [(nk - size[0]) >> 1, (nj - size[1]) >> 1, (ni - size[2]) >> 1];
  const x = new Float32Array(size[0] * size[1] * size[2]);
  for (let z = 0; z < size[0]; z++)
    for (let y = 0; y < size[1]; y++) {
      const src = ((z0 + z) * nj + y0 + y) * ni + x0;
      x.set(net.data.subarray(src, src + size[2]), (z * size[1] + y) * size[2]);
    }
  const body = x.filter((v) => v > -20).length / x.length;
  assert.ok(body > 0.3, `block mostly air (${body})`);

  const config = getSamConfig('small');
  const weights = createWeights(config, 2024);
  try {
    const onnx = await createOnnxEngine({ modelBytes: exportSamOnnxBytes(config, weights), config });
    const tfjs = await createTfjsEngine({ config, weights });
    const o = await onnx.run(x, size);
    const r = await tfjs.run(x, size);
    await onnx.dispose();
    for (const k of ['global', 'local'] as const) {
      assert.deepEqual(o[`${k}Size`], r[`${k}Size`]);
      const { minCos, maxAbs } = compareEmbeddings(o[k], r[k], config.embedDim);
      t.diagnostic(
        `${k} [${o[`${k}Size`]}]: 1 - min cosine ${(1 - minCos).toExponential(2)}, max |diff| ${maxAbs.toExponential(2)}`,
      );
      assert.ok(minCos >= 0.9999, `${k}: min per-voxel cosine ${minCos}`);
    }
  } finally {
    disposeWeights(weights);
  }
});
