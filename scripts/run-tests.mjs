#!/usr/bin/env node
// Runs the unit tests under test/unit with Node's test runner (TypeScript through tsx), then the UI
// tests under test/e2e with Playwright in Debian's Chromium (the browser mode, on real data).
// Usage: node scripts/run-tests.mjs [filter-substring ...]   unit tests whose path matches (no e2e)
//        node scripts/run-tests.mjs --e2e                     only the UI tests
// The UI tests are skipped, with a message, when /usr/bin/chromium (or $SAM_CHROMIUM) is missing or
// SAM_SKIP_E2E=1; they need the built renderer (npm run build), built here when absent.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

function find(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...find(p));
    else if (name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

function runE2e() {
  const chromium = process.env.SAM_CHROMIUM ?? '/usr/bin/chromium';
  if (process.env.SAM_SKIP_E2E === '1') return (console.log('e2e: skipped (SAM_SKIP_E2E=1)'), 0);
  if (!existsSync(chromium))
    return (console.log(`e2e: skipped, no Chromium at ${chromium} (scripts/setup-test-deps.sh)`), 0);
  if (!existsSync('out/renderer/index.html')) {
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
const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=spec', ...files], {
  stdio: 'inherit',
});
const unit = r.status ?? 1;
const e2e = filters.length === 0 ? runE2e() : 0;
process.exit(unit || e2e);
