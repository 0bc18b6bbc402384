/**
 * Cost model of the SAM network: floating-point operations of one forward pass, counted as
 * 2 x multiply-adds of every convolution (kz*ky*kx*cin*cout per output voxel) on the grid the
 * network actually runs on (the input padded to a multiple of the total stride). Pooling,
 * activations, additions, weight standardisation and normalisation are not counted (each is a few
 * operations per voxel-channel, well under 1% of the total for the named configurations).
 */
import { convLayers, type SamConfig, type Vec3 } from './config.ts';
import { outputGeometry } from './network.ts';

export interface LayerCost {
  name: string;
  kernel: Vec3;
  cin: number;
  cout: number;
  /** Output grid (z, y, x) of the conv for one batch item. */
  outShape: Vec3;
  flops: number;
}

export interface NetworkCost {
  /** Input size (z, y, x) and the padded size the network runs on. */
  size: Vec3;
  padded: Vec3;
  batch: number;
  flops: number;
  /** Trainable parameters. */
  params: number;
  layers: LayerCost[];
}

/** FLOPs of one forward pass for an input of `size` (z, y, x) voxels. */
export function forwardCost(config: SamConfig, size: Vec3, batch = 1): NetworkCost {
  const { padded } = outputGeometry(config, size);
  const layers: LayerCost[] = [];
  let params = 0;
  for (const l of convLayers(config)) {
    const outShape = [0, 1, 2].map((a) => padded[a] / l.outStride[a]) as Vec3;
    const taps = l.kernel[0] * l.kernel[1] * l.kernel[2];
    const flops = 2 * taps * l.cin * l.cout * outShape[0] * outShape[1] * outShape[2] * batch;
    params += taps * l.cin * l.cout + l.cout * (l.ws ? 2 : 1);
    layers.push({ name: l.name, kernel: l.kernel, cin: l.cin, cout: l.cout, outShape, flops });
  }
  return { size, padded, batch, flops: layers.reduce((a, l) => a + l.flops, 0), params, layers };
}

/** A readable table of the cost (one line per conv, then the total). */
export function formatCost(c: NetworkCost): string {
  const g = (f: number) => (f / 1e9).toFixed(2).padStart(9);
  const lines = c.layers.map(
    (l) =>
      `${l.name.padEnd(16)} ${l.kernel.join('x').padEnd(6)} ${String(l.cin).padStart(4)}->${String(l.cout).padEnd(4)} ` +
      `@ ${l.outShape.join('x').padEnd(12)} ${g(l.flops)} GFLOP`,
  );
  lines.push(
    `total ${(c.flops / 1e12).toFixed(3)} TFLOP for ${c.size.join('x')} (run as ${c.padded.join('x')}), ${c.params} params`,
  );
  return lines.join('\n');
}
