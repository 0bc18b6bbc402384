/**
 * `sam export-onnx`: write the SAM embedding network as an ONNX model (sam/onnx/export.ts) from a
 * weights file, or, with --config (and --seed), from a freshly initialised untrained network, which
 * is labelled as such on the terminal and inside the model. The write is atomic and never replaces
 * the weights file it reads, nor an existing file without --force.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { Command } from '../index.ts';
import { VolumeReadError } from '../../engine/errors.ts';
import { writeFileAtomic } from '../../engine/util/atomic-write.ts';
import { getSamConfig, outputStrides, SAM_CONFIG_NAMES, type SamConfig } from '../../engine/sam/config.ts';
import { initValues, weightSpecs } from '../../engine/sam/network.ts';
import { checkIsModel, decodeWeights } from '../../engine/sam/weights-file.ts';
import { exportSamOnnx, SAM_ONNX_OPSET } from '../../engine/sam/onnx/export.ts';
import { intOption } from '../option-values.ts';
import { checkOutputFile } from '../output-file.ts';

export const exportOnnxCommand: Command = {
  name: 'export-onnx',
  summary: 'write the SAM embedding network as an ONNX model',
  usage: [
    'usage: sam export-onnx --weights <file.samw> --out <model.onnx>',
    '       sam export-onnx --config <name> [--seed N] --out <model.onnx>',
    '',
    '  --weights   SAM weights file (its configuration is used)',
    `  --config    export a freshly initialised, UNTRAINED network of this configuration (${SAM_CONFIG_NAMES.join(', ')});`,
    '              only for tests and benchmarks',
    '  --seed      initialisation seed with --config (default 0)',
    '  --out       the .onnx file to write (atomically; never over the weights file, nor over an',
    '              existing file without --force)',
    '  --force     replace an existing .onnx file',
    '',
    `The model (opset ${SAM_ONNX_OPSET}) takes "ct" [1, 1, D, H, W] (normalised 2 mm CT, any size) and gives`,
    '"global" and "local" [1, d, h, w, C], channel-last, unit norm; padding and cropping are inside.',
    'Input normalisation (as the official SAM): the CT resampled to 2 mm isotropic, HU clipped to',
    '[-1024, 3071], mapped linearly to [0, 255], minus 50: ct = (clip(HU) + 1024) * 255 / 4095 - 50.',
    'Outputs: global every (4, 16, 16) and local every (2, 2, 2) input voxels (z, y, x) for small/paper.',
  ].join('\n'),
  async run(args) {
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: {
        weights: { type: 'string' },
        config: { type: 'string' },
        seed: { type: 'string' },
        out: { type: 'string' },
        force: { type: 'boolean' },
      },
    });
    const usage = (problem: string) => {
      console.error(`sam export-onnx: ${problem}\n\n${this.usage}`);
      return 2;
    };
    if (positionals.length) return usage(`unexpected argument '${positionals[0]}'`);
    if (!values.out) return usage('--out is required');
    if (!values.weights === !values.config) return usage('give either --weights or --config');
    if (values.weights && values.seed !== undefined) return usage('--seed goes with --config, not --weights');
    checkOutputFile(values.out, {
      inputs: [values.weights],
      force: values.force,
      suffix: { pattern: /\.onnx$/i, label: '.onnx' },
    });

    let config: SamConfig;
    let weights: Map<string, Float32Array>;
    let description: string;
    if (values.weights) {
      let bytes: Uint8Array;
      try {
        bytes = readFileSync(values.weights);
      } catch (e) {
        throw new VolumeReadError(values.weights, `cannot read SAM weights file (${(e as Error).message})`);
      }
      const d = decodeWeights(bytes, values.weights);
      checkIsModel(d.meta, values.weights);
      config = d.config;
      weights = new Map([...d.tensors].map(([k, t]) => [k, t.data]));
      description = `weights from ${values.weights}`;
    } else {
      const seed = intOption('seed', values.seed ?? '0', 0);
      config = getSamConfig(values.config!);
      weights = new Map(weightSpecs(config).map((s) => [s.name, initValues(s, seed)]));
      description = `random initialisation (seed ${seed}), UNTRAINED`;
      console.error(`sam export-onnx: exporting an UNTRAINED network (configuration '${config.name}', seed ${seed})`);
    }
    const chunks = exportSamOnnx(config, weights, { weightsDescription: description });
    writeFileAtomic(values.out, chunks, { protect: values.weights ? [values.weights] : [] });
    const bytes = chunks.reduce((a, c) => a + c.byteLength, 0);
    const s = outputStrides(config);
    console.log(
      `wrote ${values.out} (${(bytes / 2 ** 20).toFixed(1)} MiB, configuration '${config.name}', ${description}; ` +
        `opset ${SAM_ONNX_OPSET}; strides global ${s.global.join('x')}, local ${s.local.join('x')})`,
    );
    return 0;
  },
};
