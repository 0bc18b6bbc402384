// The host matcher's search shared with worker threads (sam/match-threads.ts) against matchPoints in
// this thread alone, on a real CT and a shifted crop of it embedded by the tiny network: the same
// answers exactly (top k with the cycle check, whose backward matching is threaded too; the exhaustive
// search; a similarity map; blocks smaller than the threads take; several blocks), embeddings on
// ordinary memory searched here (same answers), a cancelled call rejected and the threads stopped,
// threads that fail to load leaving the search to the caller (same answers).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tempDir } from '../helpers.ts';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { exampleCt2mm, tinyEngine } from './embed-fixtures.ts';
import { embedVolume, type EmbeddedVolume } from '../../main/engine/sam/embed-volume.ts';
import { matchPoints } from '../../main/engine/sam/match.ts';
import { MatchThreads } from '../../main/engine/sam/match-threads.ts';
import { CancelledError } from '../../main/engine/errors.ts';
import { cropIndex } from '../../main/engine/volume/crop.ts';
import { indexToWorld, worldToIndex } from '../../main/engine/volume/geometry.ts';
import type { Vec3 } from '../../main/engine/volume/volume.ts';
import { createRng } from '../../main/engine/train/rng.ts';

let fixture: Promise<{ a: EmbeddedVolume; b: EmbeddedVolume; points: Vec3[] }> | undefined;
function getFixture() {
  fixture ??= (async () => {
    const ct = await exampleCt2mm();
    const a = cropIndex(ct, [24, 0, 0], [152, 112, 112]);
    const b0 = cropIndex(ct, [24, 0, 48], [152, 112, 112]);
    const b = { ...b0, origin: b0.origin.map((v, i) => v + [3.1, -2.2, 1.7][i]) as Vec3 };
    const engine = await tinyEngine(3);
    const ea = await embedVolume(a, engine);
    const eb = await embedVolume(b, engine);
    const rng = createRng(4);
    const points: Vec3[] = [];
    while (points.length < 300) {
      const w = indexToWorld(ea.local, [rng.int(2, 62), rng.int(2, 54), rng.int(30, 55)]);
      const i = worldToIndex(a, w).map(Math.round);
      if (a.data[i[0] + a.size[0] * (i[1] + a.size[1] * i[2])] > -300)
        points.push(w.map((x) => x + 1.3 * (rng.next() - 0.5)) as Vec3);
    }
    return { a: ea, b: eb, points };
  })();
  return fixture;
}

/** The embeddings copied onto ordinary (not shared) memory. */
const unshared = (e: EmbeddedVolume): EmbeddedVolume => ({
  global: { ...e.global, data: e.global.data.slice() },
  local: { ...e.local, data: e.local.data.slice() },
});

test('matching with the search shared among threads gives the single thread answers exactly', async (t) => {
  const { a, b, points } = await getFixture();
  assert.ok(a.local.data.buffer instanceof SharedArrayBuffer, 'embedVolume puts embeddings on shared memory');
  const threads = MatchThreads.start(2);
  if (!threads) return t.skip('a single core: no match threads');
  try {
    const cases = [
      { cycleCheck: true, cycleThresholdMm: 6, returnMap: 7 },
      { topK: 5, blockSize: 100 },
      { topK: Infinity, refine: false },
      // blocks too small to share: searched here
      { blockSize: 40 },
    ];
    for (const options of cases) {
      const here = await matchPoints(a, b, points, options);
      const before = threads.pointsInThreads;
      const shared = await matchPoints(a, b, points, { ...options, threads });
      assert.deepEqual(shared, here, JSON.stringify(options));
      const there: number = threads.pointsInThreads - before;
      t.diagnostic(`${JSON.stringify(options)}: ${points.length} points identical, ${there} searched by the threads`);
      // (with the cycle check the backward matching's points too)
      if (options.blockSize === 40) assert.equal(there, 0, 'blocks of 40 stay here');
      else assert.ok(there >= points.length / 3, `only ${there} points searched by the threads`);
    }
    // not vacuous: the cycle check accepts most and the matches differ from the points' own places
    const m = await matchPoints(a, b, points, { cycleCheck: true, cycleThresholdMm: 6, threads });
    assert.ok(m.filter((x) => x.accepted).length > 100, 'accepted');
    // embeddings on ordinary memory: searched in this thread, the same answers
    const plain = await matchPoints(unshared(a), unshared(b), points, { threads });
    assert.deepEqual(plain, await matchPoints(a, b, points));
  } finally {
    threads.dispose();
  }
});

test('match threads: a cancelled call is rejected and the threads stop; threads that fail to load leave the search here', async (t) => {
  const { a, b, points } = await getFixture();
  const threads = MatchThreads.start(2);
  if (!threads) return t.skip('a single core: no match threads');
  const controller = new AbortController();
  const pending = matchPoints(a, b, points, { threads, signal: controller.signal, blockSize: 150 });
  controller.abort();
  await assert.rejects(pending, CancelledError);
  for (let n = 0; n < 100 && threads.running > 0; n++) await new Promise((r) => setTimeout(r, 50));
  assert.equal(threads.running, 0, 'threads still running');
  // a thread that cannot load: the search stays here, same answers
  const tmp = tempDir('match-thread-');
  const entry = join(tmp.dir, 'broken.mjs');
  writeFileSync(entry, "throw new Error('this thread cannot load');\n");
  const broken = MatchThreads.start(1, entry)!;
  try {
    assert.deepEqual(await matchPoints(a, b, points, { threads: broken }), await matchPoints(a, b, points));
  } finally {
    broken.dispose();
    tmp.cleanup();
  }
});
