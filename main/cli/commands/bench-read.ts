/**
 * `sam bench-read <input>`: wall time and peak memory of reading a volume (issue target for the
 * 141-slice chest series: < 3 s and peak memory < 3x the voxel bytes on the 2-core machine).
 * Runs the read in a fresh child process per repetition so that peak RSS is the read's own.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { Command } from '../index.ts';
import { intOption } from '../option-values.ts';

const WORKER = fileURLToPath(new URL('../bench/read-once.ts', import.meta.url));

export const benchReadCommand: Command = {
  name: 'bench-read',
  summary: 'benchmark reading a volume: wall time and peak memory',
  usage: 'usage: sam bench-read <file|folder> [--repeat N] [--json]',
  async run(args) {
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: { repeat: { type: 'string', default: '3' }, json: { type: 'boolean' } },
    });
    if (positionals.length !== 1) {
      console.error(this.usage);
      return 2;
    }
    const runs: Record<string, number>[] = [];
    for (let r = 0, n = intOption('repeat', values.repeat!); r < n; r++) {
      const p = spawnSync(process.execPath, ['--import', 'tsx', WORKER, positionals[0]], { encoding: 'utf8' });
      if (p.status !== 0) {
        console.error(p.stderr || p.stdout);
        return 1;
      }
      runs.push(JSON.parse(p.stdout.trim().split('\n').pop()!));
    }
    const best = runs.reduce((a, b) => (b.seconds < a.seconds ? b : a));
    const worstPeak = Math.max(...runs.map((r) => r.peakRssDeltaMB));
    const result = {
      input: positionals[0],
      size: best.size,
      voxelMB: best.voxelMB,
      seconds: runs.map((r) => r.seconds),
      bestSeconds: best.seconds,
      baselineRssMB: best.baselineRssMB,
      peakRssMB: Math.max(...runs.map((r) => r.peakRssMB)),
      peakRssDeltaMB: worstPeak,
      peakOverVoxelBytes: worstPeak / best.voxelMB,
    };
    if (values.json) console.log(JSON.stringify(result, null, 2));
    else {
      console.log(`read ${result.input}`);
      console.log(`  size ${result.size}, voxels ${result.voxelMB.toFixed(1)} MB`);
      console.log(
        `  wall time: ${result.seconds.map((s) => s.toFixed(3)).join(', ')} s (best ${result.bestSeconds.toFixed(3)} s; target < 3 s)`,
      );
      console.log(
        `  peak RSS ${result.peakRssMB.toFixed(1)} MB = process baseline ${result.baselineRssMB.toFixed(1)} MB + ${result.peakRssDeltaMB.toFixed(1)} MB for the read` +
          ` = ${result.peakOverVoxelBytes.toFixed(2)}x the voxel bytes (target < 3x)`,
      );
    }
    return 0;
  },
};
