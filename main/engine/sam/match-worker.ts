/**
 * Worker-thread entry of match-threads.ts: holds the queries sent to it (embeddings on shared memory,
 * not copied; their norms adopted so they are not recomputed) and searches blocks of points in them
 * with match-search.ts, one at a time.
 */
import { parentPort } from 'node:worker_threads';
import { QuerySearch } from './match-search.ts';
import { adoptGlobalNorms } from './similarity-grid.ts';
import type { MatchReply, MatchToThread } from './match-threads.ts';

const searches = new Map<number, QuerySearch>();
const port = parentPort!;
port.on('message', (m: MatchToThread) => {
  if (m.kind === 'query') {
    adoptGlobalNorms(m.query, m.norms);
    searches.set(m.id, new QuerySearch(m.query));
    return;
  }
  if (m.kind === 'drop') {
    searches.delete(m.id);
    return;
  }
  let reply: MatchReply;
  const transfer: ArrayBuffer[] = [];
  try {
    const s = searches.get(m.id);
    if (!s) throw new Error(`match thread: query ${m.id} was not sent`);
    const found = s.searchAll(m.block);
    reply = { job: m.job, found };
    for (const a of Object.values(found)) transfer.push((a as Float64Array).buffer as ArrayBuffer);
  } catch (e) {
    reply = { job: m.job, error: e instanceof Error ? e.message : String(e) };
  }
  port.postMessage(reply, transfer);
});
