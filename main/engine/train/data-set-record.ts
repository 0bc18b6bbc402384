/**
 * What a training run was trained on, kept in its checkpoints: the volumes in order, each with its
 * source and grid size. A resume must read the same volumes in the same order (the iteration's
 * random draws pick cases by index, so another set is another run); the same volumes found under
 * other paths (a moved or renamed data folder) are the same set.
 */
import { basename } from 'node:path';

export interface DataSetRecord {
  count: number;
  /** In training order: the input's source (as listed) and the grid size (i, j, k) it was read to. */
  volumes: { source: string; size: number[] }[];
}

export function dataSetRecord(cases: { source: string; size: readonly number[] }[]): DataSetRecord {
  return { count: cases.length, volumes: cases.map((c) => ({ source: c.source, size: [...c.size] })) };
}

const shape = (s: number[]): string => s.join('x');

/** Names at most three sources, then how many more. */
function some(list: string[]): string {
  return list.length <= 3 ? list.join(', ') : `${list.slice(0, 3).join(', ')} and ${list.length - 3} more`;
}

/**
 * How the data now differs from the run's (empty when it is the same set; a checkpoint without a
 * record, from before records were kept, is not compared). Volumes are the same when their grid
 * sizes are; their sources name them in the message.
 */
export function changedDataSet(saved: DataSetRecord | undefined, now: DataSetRecord): string[] {
  if (!saved || !Array.isArray(saved.volumes)) return [];
  const key = (v: { source: string; size: number[] }): string => `${basename(v.source)}|${shape(v.size)}`;
  if (saved.count !== now.count) {
    const before = new Set(saved.volumes.map(key));
    const after = new Set(now.volumes.map(key));
    const added = now.volumes.filter((v) => !before.has(key(v))).map((v) => v.source);
    const gone = saved.volumes.filter((v) => !after.has(key(v))).map((v) => v.source);
    return [
      `data: ${saved.count} volumes then, ${now.count} now` +
        (gone.length ? `; not found now: ${some(gone)}` : '') +
        (added.length ? `; new: ${some(added)}` : ''),
    ];
  }
  const differing = now.volumes
    .map((v, n) => ({ n, a: saved.volumes[n], b: v }))
    .filter(({ a, b }) => shape(a.size) !== shape(b.size));
  if (!differing.length) return [];
  const { n, a, b } = differing[0];
  return [
    `data: volume ${n + 1} of ${now.count} is ${a.source} (${shape(a.size)} voxels) then, ${b.source} (${shape(b.size)}) now` +
      (differing.length > 1 ? `, and ${differing.length - 1} more volumes differ` : ''),
  ];
}
