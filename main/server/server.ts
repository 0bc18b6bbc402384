/**
 * Browser mode: the same renderer and the same workstation engine as the desktop app, served on
 * 127.0.0.1 (random port). Every API call needs the per-session token (printed in the URL); the
 * Host and Origin headers must be this server's own (no DNS rebinding, no cross-site sockets); no
 * CORS headers are ever sent. Calls and progress travel over one WebSocket (JSON); each volume's
 * int16 voxels are one binary HTTP response (GET /api/volumes/<id>/voxels).
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Workstation } from '../engine/workstation/workstation.ts';
import { operations } from './rpc.ts';
import { serveStatic } from './static.ts';

export interface WebServer {
  url: string;
  port: number;
  token: string;
  server: Server;
  close(): Promise<void>;
}

function sameToken(a: string | null | undefined, token: string): boolean {
  if (!a || a.length !== token.length) return false;
  return timingSafeEqual(Buffer.from(a), Buffer.from(token));
}

export async function startWebServer(o: {
  workstation: Workstation;
  rendererDir: string;
  port?: number;
}): Promise<WebServer> {
  const token = randomBytes(24).toString('base64url');
  let port = 0;
  const hostOk = (req: IncomingMessage) =>
    req.headers.host === `127.0.0.1:${port}` || req.headers.host === `localhost:${port}`;
  const originOk = (origin: string | undefined) =>
    origin === `http://127.0.0.1:${port}` || origin === `http://localhost:${port}`;

  const server = createServer((req, res) => {
    if (!hostOk(req)) return void res.writeHead(421).end('wrong host');
    const url = new URL(req.url ?? '/', `http://127.0.0.1:${port}`);
    if (url.pathname.startsWith('/api/')) {
      if (!sameToken(req.headers['x-sam-token'] as string | undefined, token))
        return void res.writeHead(401).end('missing or wrong session token');
      const m = /^\/api\/volumes\/([A-Za-z0-9]+)\/voxels$/.exec(url.pathname);
      if (req.method !== 'GET' || !m) return void res.writeHead(404).end('no such API');
      try {
        const v = o.workstation.voxels(m[1]);
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': v.byteLength });
        // int16 little-endian (every platform Node and Chromium run on here)
        res.end(Buffer.from(v.buffer, v.byteOffset, v.byteLength));
      } catch (e) {
        res.writeHead(404).end((e as Error).message);
      }
      return;
    }
    if (req.method !== 'GET') return void res.writeHead(405).end();
    serveStatic(o.rendererDir, url.pathname, res, port);
  });

  const wss = new WebSocketServer({ noServer: true, maxPayload: 16 << 20 });
  server.on('upgrade', (req, socket, head) => {
    const url = new URL(req.url ?? '/', `http://127.0.0.1:${port}`);
    if (
      !hostOk(req) ||
      !originOk(req.headers.origin) ||
      url.pathname !== '/api/socket' ||
      !sameToken(url.searchParams.get('token'), token)
    ) {
      socket.write('HTTP/1.1 401 Unauthorized\r\n\r\n');
      socket.destroy();
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => connect(ws));
  });

  function connect(ws: WebSocket): void {
    const send = (m: unknown) => ws.readyState === ws.OPEN && ws.send(JSON.stringify(m));
    const ops = operations(o.workstation, (event, data) => send({ event, data }));
    ws.on('message', async (raw) => {
      let msg: { id?: number; op?: string; args?: unknown[] };
      try {
        msg = JSON.parse(String(raw));
      } catch {
        return;
      }
      const { id, op, args } = msg;
      const f = typeof op === 'string' && Object.hasOwn(ops, op) ? ops[op] : undefined;
      if (!f) return send({ id, error: { name: 'InputError', message: `unknown operation ${String(op)}` } });
      try {
        send({ id, result: (await f(...(Array.isArray(args) ? args : []))) ?? null });
      } catch (e) {
        const err = e as Error;
        send({ id, error: { name: err.name, message: err.message } });
      }
    });
  }

  await new Promise<void>((resolve) => server.listen(o.port ?? 0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/?token=${token}`,
    port,
    token,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of wss.clients) c.terminate();
        wss.close();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
