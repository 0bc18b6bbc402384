// QA flag rules (review/qa-flags.ts) on hand-made summaries: each limit raises its flag just above it
// and not at it; small regions are not judged; folding and extreme Jacobians are flagged.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { qaFlags, QA_LIMITS } from '../../main/engine/review/qa-flags.ts';
import type { ConfidenceSummary, RegionSummary } from '../../main/engine/review/confidence.ts';
import type { JacobianSummary } from '../../main/engine/review/field-stats.ts';

const region = (name: string, percentBelow: number, voxels = 10_000): RegionSummary => ({
  name,
  voxels,
  meanSimilarity: 0.9,
  percentBelow,
});

function summary(body: number, thirds: number[], octants: number[], octantVoxels = 10_000): ConfidenceSummary {
  return {
    threshold: 0.6,
    body: region('body', body),
    thirds: thirds.map((p, i) => region(`third ${i}`, p)),
    octants: octants.map((p, i) => region(`octant ${i}`, p, octantVoxels)),
    labels: [],
  };
}

const jac = (j: Partial<JacobianSummary> = {}): JacobianSummary => ({
  min: 0.8,
  max: 1.2,
  mean: 1,
  std: 0.05,
  folded: 0,
  foldedPercent: 0,
  voxels: 1000,
  ...j,
});

test('qa flags: confidence limits per region, at the limit not flagged, above it flagged', () => {
  const L = QA_LIMITS;
  assert.deepEqual(
    qaFlags(summary(L.bodyPercentBelow, [L.thirdPercentBelow, 0, 0], Array(8).fill(L.octantPercentBelow)), jac()),
    [],
  );
  const f = qaFlags(
    summary(
      L.bodyPercentBelow + 0.1,
      [0, L.thirdPercentBelow + 0.1, 0],
      [0, 0, L.octantPercentBelow + 1, 0, 0, 0, 0, 0],
    ),
    jac(),
  );
  assert.deepEqual(
    f.map((x) => [x.code, x.region]),
    [
      ['low-confidence', 'body'],
      ['low-confidence', 'third 1'],
      ['low-confidence', 'octant 2'],
    ],
  );
  assert.equal(f[0].limit, L.bodyPercentBelow);
  assert.match(f[1].message, /third 1: 6\.1 % of voxels below SAM similarity 0\.6/);
  // a small octant is not judged; NaN (no voxels) is not a flag
  assert.deepEqual(qaFlags(summary(0, [0, 0, 0], Array(8).fill(50), L.minRegionVoxels - 1), null), []);
  assert.deepEqual(qaFlags(summary(NaN, [NaN, NaN, NaN], Array(8).fill(NaN)), null), []);
});

test('qa flags: folding and extreme Jacobian values; nothing without numbers', () => {
  assert.deepEqual(qaFlags(null, null), []);
  assert.deepEqual(qaFlags(null, jac()), []);
  const f = qaFlags(null, jac({ folded: 3, foldedPercent: 0.3, min: -0.2, max: 6 }));
  assert.deepEqual(
    f.map((x) => x.code),
    ['folding', 'extreme-jacobian', 'extreme-jacobian'],
  );
  assert.match(f[0].message, /3 folded voxels/);
  assert.deepEqual(qaFlags(null, jac({ min: QA_LIMITS.jacobianMin, max: QA_LIMITS.jacobianMax })), []);
});
