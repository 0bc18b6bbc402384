/**
 * Smoke check of a packaged app folder (electron-builder's unpacked output, e.g.
 * release/linux-unpacked): its built registration worker (out/main/register-worker.js) runs a real
 * registration, SAM matcher through ONNX Runtime and the full cascade, with only the node_modules the
 * package ships and the model it ships in extraResources. Run by plain Node as a worker thread (the
 * Electron binary is not needed: the same entry serves the utilityProcess and worker threads), so it
 * shows that the files patterns of electron-builder.yml left nothing out that the engine loads.
 *
 *   node --import tsx scripts/check-package.ts [release/linux-unpacked]
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { Worker } from 'node:worker_threads';
import { findSharedData } from '../main/cli/shared-data.ts';
import { rootedPolicy } from '../main/engine/workstation/path-policy.ts';
import type { FromWorker } from '../main/engine/workstation/register-protocol.ts';
import { Workstation } from '../main/engine/workstation/workstation.ts';

const unpacked = resolve(process.argv[2] ?? 'release/linux-unpacked');
const app = join(unpacked, 'resources', 'app');
const entry = join(app, 'out', 'main', 'register-worker.js');
const model = join(unpacked, 'resources', 'resources', 'sam-small.samw');
for (const [what, p] of [
  ['the packaged registration worker', entry],
  ['the packaged model', model],
] as const)
  if (!existsSync(p)) throw new Error(`${what} is not in ${unpacked} (${p}): build it with electron-builder --dir`);
const found = findSharedData();
const data = found && resolve(found);
if (!data) throw new Error('no data folder: set SAM_DATA_DIR or place shared/data beside the checkout');
const fixed = join(data, 'elastix/Testing/Data/3DCT_lung_baseline_small.mha');

const work = mkdtempSync(join(tmpdir(), 'sam-package-'));
const ws = new Workstation({
  mode: 'browser',
  policy: rootedPolicy([data], work),
  modelPath: model,
  startWorker: () => {
    const w = new Worker(entry);
    w.unref();
    return {
      post: (m) => w.postMessage(m),
      onMessage: (f) => w.on('message', (m: FromWorker) => f(m)),
      onExit: (f) => {
        w.on('error', (e) => {
          console.error(`packaged worker failed: ${e.message}`);
          f(1);
        });
        w.on('exit', (code) => f(code));
      },
      terminate: () => void w.terminate(),
    };
  },
});
try {
  const f = await ws.openVolume(fixed);
  const m = await ws.openVolume(fixed);
  const t0 = performance.now();
  let last = '';
  const r = await ws.register(
    { fixedId: f.id, movingId: m.id, matcher: 'sam', stages: ['affine', 'coarse', 'deform'], gridMm: 16 },
    (p) => {
      if (p.stage !== last) console.log(`  ${p.stage}`);
      last = p.stage;
    },
  );
  const qa = r.qa as {
    engine?: string;
    pairs?: { inliers?: number; rmsMm?: number };
    jacobian?: { foldedPercent?: number };
  };
  console.log(
    `packaged worker registered the ${f.size.join('x')} lung CT onto itself in ` +
      `${((performance.now() - t0) / 1000).toFixed(1)} s (engine ${qa.engine}): ${qa.pairs?.inliers} inlier ` +
      `pairs, RMS residual ${qa.pairs?.rmsMm?.toFixed(2)} mm, folded ${qa.jacobian?.foldedPercent} %`,
  );
  const out = join(work, 'result');
  const e = await ws.exportResult(out);
  console.log(`exported ${e.files.length} files: ${e.files.map((p) => basename(p)).join(', ')}`);
} finally {
  ws.dispose();
  rmSync(work, { recursive: true, force: true });
}
