/**
 * Worker-thread entry of ncc-threads.ts: holds the volumes (their voxels and search levels on shared
 * memory, not copied) and answers nccMatch calls on them, one at a time.
 */
import { parentPort } from 'node:worker_threads';
import { adoptNccLevels, nccLevelsMade, nccMatch } from './ncc-match.ts';
import type { NccToThread, NccReply } from './ncc-threads.ts';
import type { Volume } from '../volume/volume.ts';

const volumes = new Map<number, Volume>();
const port = parentPort!;
port.on('message', (m: NccToThread) => {
  if (m.kind === 'volume') volumes.set(m.id, m.volume);
  if (m.kind === 'volume' || m.kind === 'levels') {
    const v = volumes.get(m.id);
    if (v && m.levels.length) adoptNccLevels(v, m.levels);
    return;
  }
  let reply: NccReply;
  try {
    const fixed = volumes.get(m.fixed);
    const moving = volumes.get(m.moving);
    if (!fixed || !moving) throw new Error(`ncc thread: volume ${fixed ? m.moving : m.fixed} was not sent`);
    const before = nccLevelsMade();
    const matches = nccMatch(fixed, moving, m.points, m.options);
    reply = { job: m.job, matches, levelsMade: nccLevelsMade() - before };
  } catch (e) {
    reply = { job: m.job, error: e instanceof Error ? e.message : String(e) };
  }
  port.postMessage(reply);
});
