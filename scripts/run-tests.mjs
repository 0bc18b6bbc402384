#!/usr/bin/env node
// Runs the unit tests under test/unit with Node's test runner (TypeScript through tsx), then the UI
// tests under test/e2e with Playwright in Debian's Chromium (the browser mode, on real data).
// Usage: node scripts/run-tests.mjs [filter-substring ...]   unit tests whose path matches (no e2e)
//        node scripts/run-tests.mjs --e2e                     only the UI tests
// The UI tests are skipped, with a message, when /usr/bin/chromium (or $SAM_CHROMIUM) is missing or
// SAM_SKIP_E2E=1; they need the built renderer (npm run build), built here when absent or older than
// its sources (a stale build would test yesterday's UI).
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';

function find(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...find(p));
    else if (name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

/** Newest modification time (ms) of these files and of the files under these folders. */
function newest(paths) {
  let t = 0;
  const walk = (p) => {
    const st = statSync(p);
    if (st.isDirectory()) for (const name of readdirSync(p)) walk(join(p, name));
    else t = Math.max(t, st.mtimeMs);
  };
  for (const p of paths) if (existsSync(p)) walk(p);
  return t;
}

function runE2e() {
  const chromium = process.env.SAM_CHROMIUM ?? '/usr/bin/chromium';
  if (process.env.SAM_SKIP_E2E === '1') return (console.log('e2e: skipped (SAM_SKIP_E2E=1)'), 0);
  if (!existsSync(chromium))
    return (console.log(`e2e: skipped, no Chromium at ${chromium} (scripts/setup-test-deps.sh)`), 0);
  const built = 'out/renderer/index.html';
  const sources = ['renderer', 'preload', 'main', 'electron.vite.config.ts', 'package.json'];
  if (!existsSync(built) || statSync(built).mtimeMs < newest(sources)) {
    const b = spawnSync('npm', ['run', 'build'], { stdio: 'inherit' });
    if (b.status !== 0) return b.status ?? 1;
  }
  const r = spawnSync(process.execPath, ['node_modules/@playwright/test/cli.js', 'test'], { stdio: 'inherit' });
  return r.status ?? 1;
}

const args = process.argv.slice(2);
if (args.includes('--e2e')) process.exit(runE2e());
const filters = args;
const files = find('test/unit').filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)));
if (files.length === 0) {
  console.error('no test files matched');
  process.exit(1);
}
// Two test files at a time even on two cores (Node's default there is one): most files wait on
// worker threads or the GPU driver part of the time; 6.5 -> 4.4 min for the unit tests on 2 cores.
const concurrency = Math.max(2, availableParallelism() - 1);
const r = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', `--test-concurrency=${concurrency}`, '--test-reporter=spec', ...files],
  { stdio: 'inherit' },
);
const unit = r.status ?? 1;
const e2e = filters.length === 0 ? runE2e() : 0;
process.exit(unit || e2e);
