/**
 * A resumed run's data set against the run's record: the same volumes (even under moved paths) pass;
 * added, missing or different volumes are named.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { changedDataSet, dataSetRecord } from '../../main/engine/train/data-set-record.ts';

const run = dataSetRecord([
  { source: '/data/a.nii.gz', size: [10, 20, 30] },
  { source: '/data/b.nii.gz', size: [11, 21, 31] },
  { source: '/data/c.mha', size: [12, 22, 32] },
]);

test('the same volumes pass, under other paths too; a record-less checkpoint is not compared', () => {
  assert.deepEqual(changedDataSet(run, run), []);
  const moved = dataSetRecord(run.volumes.map((v) => ({ source: v.source.replace('/data', '/mnt/ct'), size: v.size })));
  assert.deepEqual(changedDataSet(run, moved), []);
  assert.deepEqual(changedDataSet(undefined, moved), []);
});

test('a missing, an added and a different volume are named', () => {
  const fewer = dataSetRecord(run.volumes.slice(0, 2));
  assert.deepEqual(changedDataSet(run, fewer), ['data: 3 volumes then, 2 now; not found now: /data/c.mha']);
  const more = dataSetRecord([...run.volumes, { source: '/data/d.nrrd', size: [1, 2, 3] }]);
  assert.deepEqual(changedDataSet(run, more), ['data: 3 volumes then, 4 now; new: /data/d.nrrd']);
  const other = dataSetRecord([run.volumes[0], { source: '/data/b.nii.gz', size: [11, 21, 40] }, run.volumes[2]]);
  assert.deepEqual(changedDataSet(run, other), [
    'data: volume 2 of 3 is /data/b.nii.gz (11x21x31 voxels) then, /data/b.nii.gz (11x21x40) now',
  ]);
  const reordered = dataSetRecord([run.volumes[1], run.volumes[0], run.volumes[2]]);
  assert.match(changedDataSet(run, reordered)[0], /volume 1 of 3 .*, and 1 more volumes differ/);
});
