/**
 * Starts the browser mode exactly as `npm run web` does (node --import tsx main/server/index.ts) with
 * a temporary work folder, and returns its session URL.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const DATA = resolve(process.env.SAM_DATA_DIR ?? '../shared/data');

export interface RunningServer {
  url: string;
  work: string;
  stop(): Promise<void>;
}

export async function startServer(): Promise<RunningServer> {
  const work = mkdtempSync(join(tmpdir(), 'sam-e2e-'));
  const child: ChildProcess = spawn(
    process.execPath,
    ['--import', 'tsx', 'main/server/index.ts', '--data', DATA, '--work', work],
    { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, SAM_EXIT_WITH_PARENT: '1' } },
  );
  const url = await new Promise<string>((res, rej) => {
    let out = '';
    const t = setTimeout(() => rej(new Error(`server did not start: ${out}`)), 30_000);
    child.stdout!.on('data', (b: Buffer) => {
      out += String(b);
      const m = /(http:\/\/127\.0\.0\.1:\d+\/\?token=\S+)/.exec(out);
      if (m) {
        clearTimeout(t);
        res(m[1]);
      }
    });
    child.on('exit', (code) => rej(new Error(`server exited (${code}): ${out}`)));
  });
  return {
    url,
    work,
    stop: async () => {
      child.kill();
      await new Promise((r) => child.once('exit', r));
      rmSync(work, { recursive: true, force: true });
    },
  };
}
