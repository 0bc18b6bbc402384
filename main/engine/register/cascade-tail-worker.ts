/**
 * Worker-thread entry of cascade-tail-threads.ts: one slab of the cascade's dense tail per message,
 * written straight into the shared outputs. 'field' jobs make the field's slices; 'warp' jobs (once
 * every slab's field is there) the warped and unwarped images and the Jacobian, whose counts come back.
 */
import { parentPort } from 'node:worker_threads';
import { stageFieldSlices } from './stage-field.ts';
import { warpSlices, warpWithAffineSlices } from './field/warp.ts';
import { jacobianSlices } from './field/jacobian.ts';
import { AFFINE_IDENTITY } from './affine3x4.ts';
import type { TailSlabJob, TailSlabReply } from './cascade-tail-threads.ts';

const port = parentPort!;
port.on('message', (m: TailSlabJob & { job: number }) => {
  try {
    port.postMessage(tailSlab(m));
  } catch (e) {
    port.postMessage({ job: m.job, error: e instanceof Error ? e.message : String(e) });
  }
});

function tailSlab(m: TailSlabJob & { job: number }): TailSlabReply {
  const { grid, out, k0, k1 } = m;
  const plane = grid.size[0] * grid.size[1];
  const slices = <T extends { subarray(a: number, b: number): T }>(a: T, nc = 1) =>
    a.subarray(nc * plane * k0, nc * plane * k1);
  if (m.kind === 'field') {
    stageFieldSlices(grid, m.affine, m.corrections, k0, k1, slices(out.field, 3));
    return { job: m.job };
  }
  const u = slices(out.field, 3);
  warpSlices(m.moving, grid, u, k0, k1, { fill: m.fill, into: slices(out.warped) });
  if (out.unwarped)
    warpWithAffineSlices(m.moving, grid, AFFINE_IDENTITY, k0, k1, { fill: m.fill, into: slices(out.unwarped) });
  if (!out.det || !out.foldedData) return { job: m.job };
  // the Jacobian reads the field from the slice before k0 (the whole field is made by now)
  const kBase = Math.max(0, k0 - 1);
  const j = jacobianSlices(grid, out.field.subarray(3 * plane * kBase), kBase, k0, k1, m.mask, {
    det: slices(out.det),
    foldedData: slices(out.foldedData),
  });
  return { job: m.job, counts: { voxels: j.voxels, folded: j.folded, nonPositive: j.nonPositive } };
}
