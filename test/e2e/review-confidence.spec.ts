/**
 * The review's SAM tools end to end in Chromium (browser mode) on a deformed pair made here from the
 * real TotalSegmentator example CT by a known transform (bench/synthetic-pair.ts, as the unit tests'
 * review-fixtures.ts): a deliberately poor registration (affine only) is flagged by the confidence
 * rules, the full cascade is not (and folds nothing); the confidence overlay changes the picture and
 * toggling it off restores it; the readout's SAM similarity is the map's value at that voxel; a
 * tracked point lands near its true correspondence and "show on moving" moves the cursor to it.
 */
import { expect, test, type Page } from '@playwright/test';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeSyntheticPair, type SyntheticPair } from '../../main/engine/bench/synthetic-pair.ts';
import { readVolume, writeVolume } from '../../main/engine/volume/io/index.ts';
import type { QaFlag } from '../../main/engine/review/qa-flags.ts';
import type { TrackedPointInfo } from '../../main/engine/workstation/types.ts';
import { hasChromium } from './chromium.ts';
import { openVolume, viewStats, openWorkstation } from './page-tools.ts';
import { DATA, startServer, type RunningServer } from './web-server.ts';

const ART = 'test-results/e2e';
const EXAMPLE_CT = join(DATA, 'TotalSegmentator/tests/reference_files/example_ct.nii.gz');
const metrics: Record<string, unknown> = {};

test.describe.configure({ mode: 'serial' });
test.skip(!hasChromium, 'Chromium is not installed (scripts/setup-test-deps.sh installs it)');

let server: RunningServer;
let page: Page;
let pair: SyntheticPair;

async function checksum(view = 'axial'): Promise<number> {
  return (await viewStats(page, view)).checksum;
}

async function register(stages: string): Promise<number> {
  await page.getByTestId('stages').selectOption(stages);
  const t0 = Date.now();
  await page.getByTestId('register').click();
  await expect(page.getByTestId('reg-status')).toHaveText('done', { timeout: 300_000 });
  return (Date.now() - t0) / 1000;
}

/** Computes the confidence map in the UI; returns its flags, summary figures and seconds. */
async function confidence(
  label: string,
): Promise<{ flags: QaFlag[]; seconds: number; body: number; thirds: number[] }> {
  const t0 = Date.now();
  await page.getByTestId('confidence-compute').click();
  await expect(page.getByTestId('confidence-status')).toHaveAttribute('data-status', 'done', { timeout: 180_000 });
  const seconds = (Date.now() - t0) / 1000;
  const flags = JSON.parse((await page.getByTestId('qa-flags').getAttribute('data-flags'))!) as QaFlag[];
  const c = await page.evaluate(() => window.__sam!.store.getState().confidence!.summary);
  await page.waitForTimeout(200);
  await page.screenshot({ path: `${ART}/${label}.png` });
  return { flags, seconds, body: c.body.percentBelow, thirds: c.thirds.map((r) => r.percentBelow) };
}

/** Double-clicks the axial view: the readout's SAM similarity is the shown map's value at that voxel. */
async function readoutIsMapValue() {
  const ax = (await page.getByTestId('view-axial').boundingBox())!;
  await page.mouse.dblclick(ax.x + ax.width * 0.45, ax.y + ax.height * 0.45);
  const readout = page.getByTestId('readout');
  await expect(readout).toHaveAttribute('data-readout', /"samSimilarity":-?\d/, { timeout: 10_000 });
  const ro = JSON.parse((await readout.getAttribute('data-readout'))!) as { index: number[]; samSimilarity: number };
  const mapValue = await page.evaluate((ijk) => {
    const m = window.__sam!.store.getState().confidenceMap!;
    const [ni, nj] = m.desc.size;
    return m.voxels[ijk[0] + ni * (ijk[1] + nj * ijk[2])] / 1000;
  }, ro.index);
  expect(ro.samSimilarity).toBeCloseTo(mapValue, 6);
  return ax;
}

test.beforeAll(async ({ browser }) => {
  mkdirSync(ART, { recursive: true });
  server = await startServer();
  // the deformed pair (3 mm, two smooth bumps up to 40 mm, noise): written into the server's work folder
  pair = makeSyntheticPair(await readVolume(EXAMPLE_CT), {
    seed: 21,
    maxDeformationMm: 40,
    bumps: 2,
    bumpSigmaMm: [45, 55],
    noiseHu: 10,
  });
  await writeVolume(join(server.work, 'deformed-fixed.nii.gz'), pair.fixed);
  await writeVolume(join(server.work, 'deformed-moving.nii.gz'), pair.moving);
  page = await openWorkstation(browser, server.url);
});

test.afterAll(async () => {
  await page?.close();
  await server?.stop();
  console.log('confidence e2e figures:', JSON.stringify(metrics, null, 2));
  writeFileSync(`${ART}/metrics-confidence.json`, JSON.stringify(metrics, null, 2));
});

test('affine only on a deformed pair: flagged by the confidence map; overlay, readout and tracking agree with the engine', async () => {
  await openVolume(page, 'fixed', join(server.work, 'deformed-fixed.nii.gz'));
  await openVolume(page, 'moving', join(server.work, 'deformed-moving.nii.gz'));
  // SAM alone for this one: the box reaches the engine (its QA says which refinement ran)
  await expect(page.getByTestId('refine')).toBeChecked();
  await page.getByTestId('refine').uncheck();
  const affineSeconds = await register('affine');
  expect(await page.evaluate(() => window.__sam!.store.getState().summary!.qa.refine)).toBe('none');
  await expect(page.getByTestId('qa-panel')).toHaveAttribute('data-qa', /foldedPercent/, { timeout: 60_000 });
  const before = await checksum();
  const r = await confidence('40-confidence-affine-only');
  console.log(
    `affine only: registered in ${affineSeconds.toFixed(1)} s, confidence in ${r.seconds.toFixed(1)} s; ${r.body.toFixed(2)} % of the body below the threshold; flags: ${r.flags.map((f) => f.message).join('; ')}`,
  );
  metrics.affineOnly = { registerSeconds: affineSeconds, ...r };
  expect(r.flags.some((f) => f.code === 'low-confidence')).toBe(true);
  await expect(page.getByTestId('qa-flags')).toContainText('flag');

  // the overlay came on with the map and changed the picture; off restores it, on changes it again
  await expect(page.getByTestId('overlay-confidence')).toBeChecked();
  const on = await checksum();
  expect(on).not.toBe(before);
  await page.getByTestId('overlay-confidence').uncheck();
  await page.waitForTimeout(100);
  expect(await checksum()).toBe(before);
  await page.getByTestId('overlay-confidence').check();
  await page.waitForTimeout(100);
  expect(await checksum()).toBe(on);

  // the readout's SAM similarity is the map's value at that voxel
  const ax = await readoutIsMapValue();
  const readout = page.getByTestId('readout');
  await expect(readout).toContainText('SAM ');

  // tracking: double-click a point in tracking mode; the match lies near the true correspondence
  await page.getByTestId('track-mode').check();
  await page.mouse.dblclick(ax.x + ax.width * 0.5, ax.y + ax.height * 0.5);
  const tracked = page.getByTestId('tracked');
  await expect(tracked).toBeVisible({ timeout: 30_000 });
  const t = JSON.parse((await tracked.getAttribute('data-tracked'))!) as TrackedPointInfo;
  const truth = pair.truth(t.point);
  const err = Math.hypot(...t.matched.map((x, a) => x - truth[a]));
  console.log(
    `tracked (${t.point.map((x) => x.toFixed(1))}) -> (${t.matched.map((x) => x.toFixed(1))}), score ${t.score.toFixed(3)}, ${err.toFixed(2)} mm from the truth, ${t.distanceMm?.toFixed(2)} mm from the affine's mapping`,
  );
  metrics.tracked = { ...t, errorMm: err };
  expect(err).toBeLessThan(8);
  // the clicked point is marked on its slice; after 'show on moving' the match is marked on its own
  await expect(page.getByTestId('overlay-axial')).toHaveAttribute('data-track', /fixed/);
  await page.getByTestId('track-show-moving').click();
  await expect(page.getByTestId('overlay')).toHaveValue('moving');
  await expect(page.getByTestId('overlay-confidence')).not.toBeChecked();
  const cursor = await page.evaluate(() => window.__sam!.store.getState().cursor);
  for (let a = 0; a < 3; a++) expect(cursor[a]).toBeCloseTo(t.matched[a], 6);
  for (const v of ['axial', 'coronal', 'sagittal'])
    await expect(page.getByTestId(`overlay-${v}`)).toHaveAttribute('data-track', /matched/);
  await page.screenshot({ path: `${ART}/41-tracked-on-moving.png` });
  await page.getByTestId('track-show-fixed').click();
  await page.getByTestId('track-mode').uncheck();
  await page.getByTestId('overlay-confidence').check();
});

test('the full cascade on the same pair: not flagged, no folding', async () => {
  await page.getByTestId('refine').check();
  const seconds = await register('affine,coarse,deform');
  expect(await page.evaluate(() => window.__sam!.store.getState().summary!.qa.refine)).toBe('ncc');
  // refined by NCC, the coarse stage's points are NCC's around the affine's prediction
  expect(await page.evaluate(() => window.__sam!.store.getState().summary!.qa.coarseMatcher)).toBe('ncc');
  await expect(page.getByTestId('qa-panel')).toHaveAttribute('data-qa', /foldedPercent/, { timeout: 60_000 });
  // the previous result's map is gone with it
  await expect(page.getByTestId('confidence-status')).toHaveAttribute('data-status', 'idle');
  // per-organ summaries: TotalSegmentator's labels of the source CT's first 30 slices, named by its statistics.json
  await page
    .getByTestId('confidence-labels')
    .fill(join(DATA, 'TotalSegmentator/tests/reference_files/example_seg_fast.nii.gz'));
  await page
    .getByTestId('confidence-label-names')
    .fill(join(DATA, 'TotalSegmentator/tests/reference_files/example_seg_fast/statistics.json'));
  const r = await confidence('42-confidence-cascade');
  const organs = JSON.parse((await page.getByTestId('confidence-organs').getAttribute('data-organs'))!) as {
    name: string;
    label: number;
    voxels: number;
  }[];
  expect(organs.length).toBeGreaterThan(5);
  const liver = organs.find((o) => o.name === 'liver');
  expect(liver?.label).toBe(5);
  expect(liver!.voxels).toBeGreaterThan(1000);
  const qa = JSON.parse((await page.getByTestId('qa-panel').getAttribute('data-qa'))!) as { folded: number };
  console.log(
    `cascade: registered in ${seconds.toFixed(1)} s, confidence in ${r.seconds.toFixed(1)} s; ${r.body.toFixed(2)} % of the body below the threshold; ${qa.folded} folded; flags: ${r.flags.length}`,
  );
  // the coarse stage's kept pairs come with the result, residuals after its fit
  const coarse = await page.evaluate(() => window.__sam!.store.getState().summary!.coarsePairs ?? []);
  expect(coarse.length).toBeGreaterThan(20);
  expect(coarse.every((p) => Number.isFinite(p.residualMm) && p.residualMm >= 0)).toBe(true);
  metrics.cascade = {
    registerSeconds: seconds,
    ...r,
    folded: qa.folded,
    coarsePairs: coarse.length,
    organs: organs.slice(0, 5),
  };
  // drawn on the views when toggled: squares in the slab of each view's slice
  await page.getByTestId('overlay-confidence').uncheck();
  const plain = await checksum();
  await page.getByTestId('overlay-coarse-pairs').check();
  await expect(page.getByTestId('overlay-axial')).not.toHaveAttribute('data-coarse-pairs', '0');
  const drawn = Number(await page.getByTestId('overlay-axial').getAttribute('data-coarse-pairs'));
  const slab = await page.evaluate(() => {
    const s = window.__sam!.store.getState();
    return { z: s.cursor[2], half: (s.summary!.gridMm ?? 24) / 4 };
  });
  const expected = coarse.filter(
    (p) => Math.abs(p.fixed[2] - slab.z) <= slab.half || Math.abs(p.moving[2] - slab.z) <= slab.half,
  ).length;
  expect(Math.abs(drawn - expected)).toBeLessThanOrEqual(Math.max(2, expected * 0.05));
  expect(await checksum()).not.toBe(plain);
  await page.screenshot({ path: `${ART}/43-coarse-pairs.png` });
  await page.getByTestId('overlay-coarse-pairs').uncheck();
  await page.waitForTimeout(100);
  expect(await checksum()).toBe(plain);
  expect(r.flags).toEqual([]);
  expect(qa.folded).toBe(0);
  await expect(page.getByTestId('qa-flags')).toHaveText('QA: nothing flagged');
});

test('the confidence map is exported with the result and comes back when the session is reopened', async () => {
  const before = await page.evaluate(() => window.__sam!.store.getState().confidence!);
  await page.getByTestId('export-dir').fill('confidence-export');
  await page.getByTestId('export').click();
  await expect(page.getByTestId('export-result')).toHaveAttribute('title', /confidence\.nii\.gz/, { timeout: 60_000 });
  await page.getByTestId('session-path').fill('confidence-session.json');
  await page.getByTestId('session-save').click();
  await expect(page.getByTestId('busy')).toHaveCount(0);
  await expect(page.getByTestId('error')).toHaveCount(0);

  await page.reload();
  await expect(page.getByTestId('info-fixed')).toHaveCount(0);
  const t0 = Date.now();
  await page.getByTestId('session-path').fill('confidence-session.json');
  await page.getByTestId('session-open').click();
  await expect(page.getByTestId('info-warped')).toBeVisible({ timeout: 120_000 });
  // back without embedding anything again: the summary, organs and flags the reviewer saw
  await expect(page.getByTestId('confidence-status')).toHaveAttribute('data-status', 'done', { timeout: 30_000 });
  const seconds = (Date.now() - t0) / 1000;
  const after = await page.evaluate(() => window.__sam!.store.getState().confidence!);
  expect(after.summary).toEqual(before.summary);
  expect(after.flags).toEqual(before.flags);
  await expect(page.getByTestId('confidence-organs')).toContainText('organs, most below');
  await expect(page.getByTestId('qa-flags')).toHaveText('QA: nothing flagged');
  await expect(page.getByTestId('error')).toHaveCount(0);
  // the map itself: shown on demand, the readout's SAM similarity is its value at that voxel
  const plain = await checksum();
  await page.getByTestId('overlay-confidence').check();
  await page.waitForTimeout(100);
  expect(await checksum()).not.toBe(plain);
  await readoutIsMapValue();
  await page.screenshot({ path: `${ART}/44-confidence-reopened.png` });
  metrics.reopened = { seconds, bodyPercentBelow: after.summary.body.percentBelow };
});
