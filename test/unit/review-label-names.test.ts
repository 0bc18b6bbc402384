// Label names from a TotalSegmentator statistics.json (keys in class order): on the real example, the
// n-th key's recorded volume (mm3) is the voxel count of label n in example_seg_fast.nii.gz times the
// voxel volume, for every label present (so the order really is the class order).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parseLabelNames } from '../../main/engine/review/label-names.ts';
import { readVolume } from '../../main/engine/volume/io/index.ts';
import { dataPath } from '../helpers.ts';

const REF = 'TotalSegmentator/tests/reference_files';

test('label names: a TotalSegmentator statistics.json names label n by its n-th key, checked against the label map', async () => {
  const file = dataPath(REF, 'example_seg_fast', 'statistics.json');
  const text = readFileSync(file, 'utf8');
  const names = parseLabelNames(text, file);
  assert.equal(names[1], 'spleen');
  assert.equal(names[5], 'liver');
  assert.equal(Object.keys(names).length, 117);
  const stats = JSON.parse(text) as Record<string, { volume: number }>;
  const seg = await readVolume(dataPath(REF, 'example_seg_fast.nii.gz'));
  const counts = new Map<number, number>();
  for (const l of seg.data) if (l) counts.set(l, (counts.get(l) ?? 0) + 1);
  const voxelMm3 = seg.spacing[0] * seg.spacing[1] * seg.spacing[2];
  assert.ok(counts.size > 10, `${counts.size} labels present`);
  for (const [label, n] of counts)
    assert.equal(stats[names[label]].volume, n * voxelMm3, `label ${label} ${names[label]}`);
  // a label with no voxels has volume 0 in the statistics
  const absent = Object.keys(names)
    .map(Number)
    .find((l) => !counts.has(l))!;
  assert.equal(stats[names[absent]].volume, 0);
  // integers as keys stay the {"1": "spleen"} form; a mixed object is refused
  assert.throws(() => parseLabelNames('{"1": "spleen", "liver": {"volume": 1}}'), /not label -> name/);
});
