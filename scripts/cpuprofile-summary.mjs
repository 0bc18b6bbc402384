#!/usr/bin/env node
// Summarises a V8 CPU profile (node --cpu-prof --cpu-prof-dir DIR ...): the main thread's time by
// category (idle = waiting, GC, tfjs-core, tfjs-webgpu, our engine's folders, native calls, Node's
// internals), the functions with the most self time, and the inclusive time of functions whose name
// contains one of the given words; with --last S, only the profile's last S seconds (a benchmark's
// last, warm run). Usage:
//   node scripts/cpuprofile-summary.mjs FILE.cpuprofile [--top N] [--last S] [word ...]
// e.g. on a lent GPU, training: /tmp/node --cpu-prof --cpu-prof-dir $OUT .device/sam.mjs bench-train ...
// then: node scripts/cpuprofile-summary.mjs $OUT/CPU*.cpuprofile samplePatchPair mineSamBatch Engine.gradients
import { readFileSync } from 'node:fs';

const args = process.argv.slice(2);
const file = args.shift();
if (!file) {
  console.error('usage: node scripts/cpuprofile-summary.mjs FILE.cpuprofile [--top N] [word ...]');
  process.exit(1);
}
let top = 25;
let lastSeconds = Infinity;
const words = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--top') top = Number(args[++i]);
  else if (args[i] === '--last') lastSeconds = Number(args[++i]);
  else words.push(args[i]);
}
const p = JSON.parse(readFileSync(file, 'utf8'));
const byId = new Map(p.nodes.map((n) => [n.id, n]));
const parent = new Map();
for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const name = (n) => `${n.callFrame.functionName || '(anonymous)'} ${n.callFrame.url.split('/').slice(-1)[0]}`.trimEnd();

function category(n) {
  const { url, functionName: f } = n.callFrame;
  if (f === '(idle)') return 'idle (waiting)';
  if (f === '(garbage collector)') return 'GC';
  if (f === '(program)') return 'V8 / native, unattributed';
  if (url.includes('tfjs-backend-webgpu')) return 'tfjs-webgpu';
  if (url.includes('tfjs-core')) return 'tfjs-core';
  if (url.includes('/main/engine/')) return `engine/${url.split('/main/engine/')[1].split('/')[0]}`;
  if (url.includes('/main/')) return 'main (other)';
  if (url.includes('node_modules/webgpu')) return 'webgpu package (Dawn wrapper)';
  if (url === '') return 'native calls (Dawn, V8 builtins)';
  if (url.startsWith('node:')) return 'Node internals (timers, promises ...)';
  return 'other JS';
}

const cats = new Map();
const self = new Map();
const incl = new Map();
let total = 0;
// each sample's time (µs from the start), for --last
const at = [];
for (let i = 0, t = 0; i < p.samples.length; i++) at.push((t += p.timeDeltas[i] ?? 0));
const from = at.length ? at[at.length - 1] - lastSeconds * 1e6 : 0;
for (let i = 0; i < p.samples.length; i++) {
  if (at[i] < from) continue;
  const dt = p.timeDeltas[i + 1] ?? 0;
  total += dt;
  const leaf = byId.get(p.samples[i]);
  const c = category(leaf);
  cats.set(c, (cats.get(c) ?? 0) + dt);
  const s = name(leaf);
  self.set(s, (self.get(s) ?? 0) + dt);
  if (!words.length) continue;
  const seen = new Set();
  for (let id = p.samples[i]; id != null; id = parent.get(id)) {
    const k = name(byId.get(id));
    if (seen.has(k) || !words.some((w) => k.includes(w))) continue;
    seen.add(k);
    incl.set(k, (incl.get(k) ?? 0) + dt);
  }
}
const ms = (us) => (us / 1000).toFixed(1).padStart(10);
console.log(`${ms(total)} ms profiled`);
console.log('by category (self time):');
for (const [k, v] of [...cats].sort((a, b) => b[1] - a[1])) console.log(`${ms(v)}  ${k}`);
console.log(`top ${top} functions by self time:`);
for (const [k, v] of [...self].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${ms(v)}  ${k}`);
if (words.length) {
  console.log('inclusive time:');
  for (const [k, v] of [...incl].sort((a, b) => b[1] - a[1])) console.log(`${ms(v)}  ${k}`);
}
