// ONNX Runtime is loaded with its telemetry off (compute/onnx-runtime.ts): its 1DS uploader would
// record sessions and models and leaves /tmp/mat-debug-<pid>.log behind each process that loads it;
// with ORT_DISABLE_TELEMETRY=1 set before it starts, a process that runs a session leaves no such file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

test('a process that loads ONNX Runtime and runs a session has its telemetry off and leaves no debug log', () => {
  const src = `
    const { dotBackendStatus } = await import(${JSON.stringify(new URL('../../main/engine/sam/dot-products.ts', import.meta.url).href)});
    console.log(JSON.stringify({ pid: process.pid, status: await dotBackendStatus(), env: process.env.ORT_DISABLE_TELEMETRY }));
  `;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', src], {
    encoding: 'utf8',
    env: { ...process.env, ORT_DISABLE_TELEMETRY: undefined },
  });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout.trim().split('\n').pop()!);
  assert.equal(out.status.backend, 'onnxruntime', `ONNX Runtime loaded and ran: ${JSON.stringify(out.status)}`);
  assert.equal(out.env, '1');
  assert.ok(!existsSync(join(tmpdir(), `mat-debug-${out.pid}.log`)), 'no telemetry debug log');
});
