/** Browser-mode server security: token on every API call, own Host and Origin only, no CORS, only the operations table. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { Workstation } from '../../main/engine/workstation/workstation.ts';
import { rootedPolicy } from '../../main/engine/workstation/path-policy.ts';
import { startWorkerThread } from '../../main/engine/workstation/worker-runner.ts';
import { startWebServer } from '../../main/server/server.ts';
import { DATA, dataPath, tempDir } from '../helpers.ts';

function get(port: number, path: string, headers: Record<string, string> = {}) {
  return new Promise<{ status: number; headers: Record<string, unknown>; body: Buffer }>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end();
  });
}

function socket(url: string, origin: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { origin });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

function call(
  ws: WebSocket,
  op: string,
  ...args: unknown[]
): Promise<{ result?: unknown; error?: { message: string } }> {
  return new Promise((resolve) => {
    ws.once('message', (m) => resolve(JSON.parse(String(m))));
    ws.send(JSON.stringify({ id: 1, op, args }));
  });
}

test('web server: token, host, origin, operations, binary voxels', async () => {
  const t = tempDir();
  const renderer = join(t.dir, 'renderer');
  mkdirSync(renderer);
  writeFileSync(join(renderer, 'index.html'), '<!doctype html><title>x</title>');
  const ws = new Workstation({
    mode: 'browser',
    policy: rootedPolicy([DATA], join(t.dir, 'work')),
    startWorker: startWorkerThread,
  });
  const s = await startWebServer({ workstation: ws, rendererDir: renderer });
  try {
    const host = `127.0.0.1:${s.port}`;
    const page = await get(s.port, '/', { host });
    assert.equal(page.status, 200);
    assert.match(String(page.headers['content-security-policy']), /default-src 'self'/);
    assert.equal((await get(s.port, '/', { host: `evil.example:${s.port}` })).status, 421);
    assert.equal((await get(s.port, '/../package.json', { host })).status, 404);
    assert.equal((await get(s.port, '/api/volumes/v1/voxels', { host })).status, 401);
    await assert.rejects(socket(`ws://${host}/api/socket?token=${s.token}`, 'http://evil.example'));
    await assert.rejects(socket(`ws://${host}/api/socket?token=wrong`, `http://${host}`));
    const c = await socket(`ws://${host}/api/socket?token=${s.token}`, `http://${host}`);
    assert.match(String((await call(c, 'constructor')).error?.message), /unknown operation/);
    assert.match(String((await call(c, 'openVolume', '/etc/passwd')).error?.message), /outside the folders/);
    const opened = (await call(c, 'openVolume', dataPath('elastix/Testing/Data/3DCT_lung_baseline_small.mha')))
      .result as { id: string; displayBytes: number };
    const vox = await get(s.port, `/api/volumes/${opened.id}/voxels`, { host, 'x-sam-token': s.token });
    assert.equal(vox.status, 200);
    assert.equal(vox.body.length, opened.displayBytes);
    assert.equal(vox.headers['access-control-allow-origin'], undefined);
    const series = (await call(c, 'listSeries', dataPath('ITKElastix/examples/data/00'))).result as {
      slices: number;
    }[];
    assert.equal(series.length, 1);
    assert.equal(series[0].slices, 141);
    // the slice overlay's arguments are checked before the workstation sees them
    const overlay = (req: unknown) => call(c, 'sliceOverlay', req).then((r) => String(r.error?.message));
    assert.match(await overlay({ orientation: 'oblique', point: [0, 0, 0], every: 4 }), /orientation/);
    assert.match(await overlay({ orientation: 'axial', point: [0, 0], every: 4 }), /point/);
    assert.match(await overlay({ orientation: 'axial', point: [0, 0, 0], every: 0.5 }), /every/);
    assert.match(await overlay({ orientation: 'axial', point: [0, 0, 0], every: 4 }), /run a registration first/);
    c.close();
  } finally {
    await s.close();
    ws.dispose();
    t.cleanup();
  }
});
