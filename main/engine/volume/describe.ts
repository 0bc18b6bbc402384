/** A plain summary of a volume for `sam info`, the UI and reports. */
import { orientationCode } from './geometry.ts';
import { checkCt, countNonFinite } from './intensity.ts';
import { valueRange, voxelTypeOf, type Volume } from './volume.ts';

export interface VolumeSummary {
  source?: string;
  size: number[];
  spacing: number[];
  origin: number[];
  /** Row-major; column c = world (LPS) direction of index axis c. */
  direction: number[];
  orientation: string;
  components: number;
  voxelType: string;
  valueRange: [number, number];
  /** NaN or infinite voxels (not in valueRange). */
  nonFinite: number;
  modality: string;
  ct: { ok: boolean; reason: string };
  seriesInstanceUid?: string;
  description?: string;
  warnings: string[];
  megabytes: number;
}

export function summarizeVolume(v: Volume): VolumeSummary {
  return {
    source: v.meta.source,
    size: [...v.size],
    spacing: [...v.spacing],
    origin: [...v.origin],
    direction: [...v.direction],
    orientation: orientationCode(v.direction),
    components: v.components,
    voxelType: voxelTypeOf(v.data),
    valueRange: valueRange(v.data),
    nonFinite: countNonFinite(v),
    modality: v.meta.modality ?? 'unknown (not recorded in this format)',
    ct: checkCt(v),
    seriesInstanceUid: v.meta.seriesInstanceUid,
    description: v.meta.description,
    warnings: [...v.meta.warnings],
    megabytes: v.data.byteLength / 2 ** 20,
  };
}

const f = (x: number, d = 3): string => String(Number(x.toFixed(d)));

export function formatSummary(s: VolumeSummary): string {
  const d = s.direction;
  const lines = [
    s.source ? `file:        ${s.source}` : '',
    `size:        ${s.size.join(' x ')} voxels${s.components > 1 ? ` x ${s.components} components` : ''} (${s.voxelType}, ${s.megabytes.toFixed(1)} MB)`,
    `spacing:     ${s.spacing.map((x) => f(x, 4)).join(' x ')} mm`,
    `origin:      ${s.origin.map((x) => f(x)).join(', ')} mm (LPS)`,
    `direction:   [${f(d[0], 4)} ${f(d[1], 4)} ${f(d[2], 4)}; ${f(d[3], 4)} ${f(d[4], 4)} ${f(d[5], 4)}; ${f(d[6], 4)} ${f(d[7], 4)} ${f(d[8], 4)}] (columns = i, j, k axes)`,
    `orientation: ${s.orientation} (direction of increasing i, j, k)`,
    `values:      ${f(s.valueRange[0])} .. ${f(s.valueRange[1])}` +
      (s.nonFinite ? `; ${s.nonFinite} voxels NaN or infinite (registration reads them as air, -1024 HU)` : ''),
    `modality:    ${s.modality}; CT in HU: ${s.ct.ok ? 'yes' : 'no'} (${s.ct.reason})`,
    s.seriesInstanceUid ? `series:      ${s.seriesInstanceUid}${s.description ? ` "${s.description}"` : ''}` : '',
    ...s.warnings.map((w) => `warning:     ${w}`),
  ];
  return lines.filter(Boolean).join('\n');
}
