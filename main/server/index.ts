/**
 * `npm run web`: the browser mode. Serves the built renderer (out/renderer, from `npm run build`) and
 * the workstation engine on 127.0.0.1 and prints the session URL (with its token).
 * Options: --data DIR (repeatable; folders the page may read; default $SAM_DATA_DIR or ../shared/data,
 * cli/shared-data.ts, if present, else the current folder), --work DIR (exports and sessions; default
 * ./sam-work), --port N (default random).
 */
import { existsSync, mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { findSharedData } from '../cli/shared-data.ts';
import { rootedPolicy } from '../engine/workstation/path-policy.ts';
import { startWorkerThread } from '../engine/workstation/worker-runner.ts';
import { defaultModelPath, Workstation } from '../engine/workstation/workstation.ts';
import { startWebServer } from './server.ts';

const { values } = parseArgs({
  options: {
    data: { type: 'string', multiple: true },
    work: { type: 'string', default: 'sam-work' },
    port: { type: 'string', default: '0' },
  },
});
const rendererDir = fileURLToPath(new URL('../../out/renderer', import.meta.url));
if (!existsSync(resolve(rendererDir, 'index.html'))) {
  console.error(`no built renderer in ${rendererDir}: run npm run build first`);
  process.exit(1);
}
const sharedData = findSharedData();
const dataRoots = (values.data ?? [sharedData ?? '.']).map((d) => resolve(d));
const workRoot = resolve(values.work);
mkdirSync(workRoot, { recursive: true });
const workstation = new Workstation({
  mode: 'browser',
  policy: rootedPolicy(dataRoots, workRoot),
  startWorker: startWorkerThread,
  modelPath: defaultModelPath(),
  dataRoots,
  workRoot,
});
const s = await startWebServer({ workstation, rendererDir, port: Number(values.port) });
console.log(`SAM workstation (browser mode): ${s.url}`);
console.log(`reads: ${dataRoots.join(', ')}; writes: ${workRoot}`);

// Started by a test harness: end with it (a killed harness must not leave a server behind).
if (process.env.SAM_EXIT_WITH_PARENT) {
  const parent = process.ppid;
  setInterval(() => process.ppid !== parent && process.exit(0), 1000).unref();
}
