/**
 * Child process of `sam bench-read`: loads the readers, records the baseline RSS, reads the input
 * once and prints one JSON line with the wall time and peak RSS (getrusage maxrss).
 */
import { readVolume } from '../../engine/volume/io/index.ts';

// Import-time work (codecs, dcmjs) belongs to the baseline, not to the read.
const baseline = process.memoryUsage().rss;
const baselineMax = process.resourceUsage().maxRSS * 1024;
const t0 = performance.now();
const v = await readVolume(process.argv[2]);
const seconds = (performance.now() - t0) / 1000;
const peak = process.resourceUsage().maxRSS * 1024;
const MB = 2 ** 20;
console.log(
  JSON.stringify({
    size: v.size.join('x'),
    voxelMB: v.data.byteLength / MB,
    seconds,
    baselineRssMB: Math.max(baseline, baselineMax) / MB,
    peakRssMB: peak / MB,
    peakRssDeltaMB: (peak - Math.max(baseline, baselineMax)) / MB,
  }),
);
