/**
 * The workstation end to end in Chromium (browser mode, the same renderer and engine as the desktop
 * app), on real CT from ../shared/data: open the 512x512x141 chest DICOM series and measure slice
 * scrolling; open an MHA pair, cancel one registration, run another while measuring the page's frame
 * gaps; review the warped overlay; export; save the session, reload, reopen it and compare the exported
 * volume's geometry with the fixed one; the review tools on the registered pair (comparison modes,
 * the engine's readout and field QA checked against the engine run here on the exported files,
 * the Jacobian overlay, the sign-off in the session and in the exported report.json; the affine pairs'
 * residual table, cursor jump and refit checked against the engine's refitAffine here); the review
 * overlays (flicker, spyglass, the |u| map, arrow glyphs, deformed grid lines and the affine pairs'
 * markers, their counts and colours checked against the engine and the colour maps here, a marker click
 * moving the cursor, scrolling with the overlays on). Screenshots and figures go to test-results/e2e/.
 */
import { expect, test, type Page } from '@playwright/test';
import { cpSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  arrowGlyphs,
  deformedGridLines,
  fieldStatistics,
  readVolume,
  refitAffine,
  voxelReadout,
} from '../../main/engine/api.ts';
import type { AffinePair, AffineRefit, VolumeDescriptor } from '../../main/engine/workstation/types.ts';
import { colorAt, cssColor, magnitudeScaleMm, residualStops } from '../../renderer/views/color-maps.ts';
import { pairResidualScaleMm, pairsInSlab } from '../../renderer/views/overlay-geometry.ts';
import { CAMERA, centreOf, indexToWorld, sliceFor, type ViewName } from '../../renderer/views/view-geometry.ts';
import { hasChromium } from './chromium.ts';
import {
  expectScrolling,
  measureScroll as measureScrollIn,
  openVolume,
  viewStats,
  type Scroll,
  type Stats,
  openWorkstation,
} from './page-tools.ts';
import { DATA, startServer, type RunningServer } from './web-server.ts';

const ART = 'test-results/e2e';
const CHEST = join(DATA, 'ITKElastix/examples/data/00');
const PAIR_FIXED = join(DATA, 'elastix/Testing/Data/3DCT_lung_baseline_small.mha');
const PAIR_MOVING = join(DATA, 'elastix/Testing/Baselines/3DCT_lung.mha');
const VIEWS = ['axial', 'coronal', 'sagittal'] as const;
const metrics: Record<string, unknown> = {};

test.describe.configure({ mode: 'serial' });
test.skip(!hasChromium, 'Chromium is not installed (scripts/setup-test-deps.sh installs it)');

let server: RunningServer;
let page: Page;

async function stats(view: string): Promise<Stats> {
  return viewStats(page, view);
}

async function allStats(): Promise<Record<string, Stats>> {
  const out: Record<string, Stats> = {};
  for (const v of VIEWS) out[v] = await stats(v);
  return out;
}

/** Checksums of the three views equal those of an earlier picture. */
async function expectSamePictures(label: string, before: Record<string, Stats>): Promise<void> {
  const now = await allStats();
  for (const v of VIEWS) expect(now[v].checksum, `${label}: ${v} view differs`).toBe(before[v].checksum);
}

async function expectContent(label: string): Promise<Record<string, Stats>> {
  const all: Record<string, Stats> = {};
  for (const v of VIEWS) {
    const s = await stats(v);
    expect(s.std, `${label}: ${v} view is blank`).toBeGreaterThan(5);
    expect(s.nonBlack, `${label}: ${v} view is mostly black`).toBeGreaterThan(0.2);
    all[v] = s;
  }
  await page.screenshot({ path: `${ART}/${label}.png` });
  return all;
}

async function open(role: 'fixed' | 'moving', path: string): Promise<Record<string, unknown>> {
  return openVolume(page, role, path);
}

/** Starts a requestAnimationFrame loop in the page that records every frame's end time and gap. */
async function startFrameMonitor(): Promise<void> {
  await page.evaluate(() => {
    performance.clearMarks('sam:registered');
    const w = window as unknown as { __gaps: { run: boolean; last: number; frames: number[][] } };
    w.__gaps = { run: true, last: 0, frames: [] };
    const tick = (t: number) => {
      const g = w.__gaps;
      if (!g.run) return;
      g.frames.push([t, t - g.last]);
      g.last = t;
      requestAnimationFrame(tick);
    };
    requestAnimationFrame((t) => {
      w.__gaps.last = t;
      requestAnimationFrame(tick);
    });
  });
}

interface Gaps {
  frames: number;
  maxMs: number;
  over100: number;
  over50: number;
  seconds: number;
  slow: number[][];
}

/**
 * Stops the monitor; splits the frames at the app's 'sam:registered' mark: while the engine
 * registers, and while the page fetches and displays the result.
 */
async function stopFrameMonitor(): Promise<{ registering: Gaps; showingResult: Gaps }> {
  return page.evaluate(() => {
    const w = window as unknown as { __gaps: { run: boolean; frames: number[][] } };
    w.__gaps.run = false;
    const mark = performance.getEntriesByName('sam:registered').pop()?.startTime ?? Infinity;
    const all = w.__gaps.frames;
    const summary = (f: number[][]) => ({
      frames: f.length,
      maxMs: Math.max(0, ...f.map((x) => x[1])),
      over100: f.filter((x) => x[1] > 100).length,
      over50: f.filter((x) => x[1] > 50).length,
      /** [ms after the monitor started, gap ms] of each gap over 50 ms */
      slow: f.filter((x) => x[1] > 50).map((x) => [Math.round(x[0] - all[0][0]), Math.round(x[1])]),
      seconds: f.length ? (f[f.length - 1][0] - f[0][0] + f[0][1]) / 1000 : 0,
    });
    return {
      registering: summary(all.filter((x) => x[0] <= mark)),
      showingResult: summary(all.filter((x) => x[0] > mark)),
    };
  });
}

function measureScroll(): Promise<Scroll> {
  return measureScrollIn(page);
}

/**
 * The UI's readout and QA numbers against the engine called here, in the test process, on the input
 * files and the exported displacement field and warped image.
 */
async function agreesWithEngine(dir: string): Promise<void> {
  const [fixed, moving, field, warped] = await Promise.all([
    readVolume(PAIR_FIXED),
    readVolume(PAIR_MOVING),
    readVolume(join(dir, 'displacement.nii.gz')),
    readVolume(join(dir, 'warped.nii.gz')),
  ]);
  const ui = review.readout as { point: [number, number, number] } & Record<string, number & number[]>;
  const e = voxelReadout({ fixed, moving, field, warped }, ui.point);
  expect(e.index).toEqual(ui.index);
  expect(ui.fixedHu).toBe(e.fixedHu);
  expect(Math.abs(ui.warpedHu - e.warpedHu!)).toBeLessThanOrEqual(0.5);
  expect(Math.abs(ui.movingHu - e.movingHu)).toBeLessThan(1e-3);
  for (let c = 0; c < 3; c++) expect(Math.abs(ui.displacement[c] - e.displacement[c])).toBeLessThan(1e-4);
  expect(Math.abs(ui.jacobian - e.jacobian)).toBeLessThan(1e-5);
  const st = fieldStatistics(field).jacobian;
  const qa = review.qa!;
  expect(Math.abs(qa.min - st.min)).toBeLessThan(1e-5);
  expect(Math.abs(qa.max - st.max)).toBeLessThan(1e-5);
  expect(qa.foldedPercent).toBe(st.foldedPercent);
  metrics.readoutAgreement = {
    point: ui.point,
    ui: { fixedHu: ui.fixedHu, warpedHu: ui.warpedHu, displacement: ui.displacement, jacobian: ui.jacobian },
    engine: { fixedHu: e.fixedHu, warpedHu: e.warpedHu, displacement: e.displacement, jacobian: e.jacobian },
    qa: { ui: qa, engine: { min: st.min, max: st.max, foldedPercent: st.foldedPercent } },
  };
}

test.beforeAll(async ({ browser }) => {
  mkdirSync(ART, { recursive: true });
  server = await startServer();
  page = await openWorkstation(browser, server.url, true);
});

test.afterAll(async () => {
  await page?.close();
  await server?.stop();
  console.log('e2e figures:', JSON.stringify(metrics, null, 2));
  writeFileSync(`${ART}/metrics.json`, JSON.stringify(metrics, null, 2));
});

test('the API refuses calls without the session token', async () => {
  const origin = new URL(server.url).origin;
  const r = await page.request.get(`${origin}/api/volumes/v1/voxels`);
  expect(r.status()).toBe(401);
  expect(r.headers()['access-control-allow-origin']).toBeUndefined();
});

test('chest DICOM: three oriented views, window/level, zoom, pan, scrolling at >= 30 frames/s', async () => {
  const t0 = Date.now();
  const desc = await open('fixed', CHEST);
  metrics.chestOpenSeconds = (Date.now() - t0) / 1000;
  expect(desc.size).toEqual([512, 512, 141]);
  const info = await page.getByTestId('info-fixed').textContent();
  const m = /([\d.]+) MB in (\d+) ms/.exec(info!)!;
  metrics.chestTransfer = { megabytes: Number(m[1]), ms: Number(m[2]), views: 3, transfers: 1 };
  // the slice label carries the slice's world position (LPS mm); the edges name the patient directions
  await expect(page.getByTestId('slice-axial')).toHaveText(/^71\/141 · z -?\d+\.\d mm$/);
  await expect(page.getByTestId('orient-axial-left')).toHaveText('R');
  await expect(page.getByTestId('orient-coronal-left')).toHaveText('R');
  await expect(page.getByTestId('orient-sagittal-left')).toHaveText('A');
  const zOf = (label: string | null) => Number(/ z (-?[\d.]+) mm$/.exec(label ?? '')![1]);
  const z71 = zOf(await page.getByTestId('slice-axial').textContent());
  const before = await expectContent('01-chest-lung-window');

  // presets change the picture
  await page.getByTestId('preset-soft-tissue').click();
  await expect(page.getByTestId('wl')).toHaveText('W 400 L 40 HU');
  const soft = await stats('axial');
  expect(soft.checksum).not.toBe(before.axial.checksum);
  await page.getByTestId('preset-bone').click();
  await expect(page.getByTestId('wl')).toHaveText('W 1800 L 400 HU');
  await page.screenshot({ path: `${ART}/02-chest-bone-window.png` });
  await page.getByTestId('preset-lung').click();

  // mouse window/level (left drag), zoom (Ctrl+wheel), pan (Shift+drag)
  const box = (await page.getByTestId('view-coronal').boundingBox())!;
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width / 2 + 50, box.y + box.height / 2 + 25, { steps: 5 });
  await page.mouse.up();
  await expect(page.getByTestId('wl')).toHaveText('W 1700 L -550 HU');
  const coronalBefore = await stats('coronal');
  await page.keyboard.down('Control');
  await page.mouse.wheel(0, -100);
  await page.keyboard.up('Control');
  await page.waitForTimeout(400);
  const zoomed = await stats('coronal');
  expect(zoomed.checksum).not.toBe(coronalBefore.checksum);
  expect(await page.evaluate(() => window.__sam!.views.get('coronal')!.state().zoom)).toBeGreaterThan(1);
  await page.keyboard.down('Shift');
  await page.mouse.down();
  await page.mouse.move(box.x + box.width / 2 + 60, box.y + box.height / 2, { steps: 3 });
  await page.mouse.up();
  await page.keyboard.up('Shift');
  await page.waitForTimeout(400);
  expect((await stats('coronal')).checksum).not.toBe(zoomed.checksum);
  await page.screenshot({ path: `${ART}/03-chest-zoom-pan-wl.png` });
  await page.getByTestId('preset-lung').click();

  // linked views: a double-click in the axial view moves the coronal and sagittal slices there
  const ax = (await page.getByTestId('view-axial').boundingBox())!;
  await page.mouse.dblclick(ax.x + ax.width * 0.3, ax.y + ax.height * 0.6);
  await expect(page.getByTestId('slice-sagittal')).not.toHaveText('257/512');
  await expect(page.getByTestId('slice-coronal')).not.toHaveText('257/512');
  await expect(page.getByTestId('slice-axial')).toHaveText(/^71\/141 /);
  await page.screenshot({ path: `${ART}/03b-chest-linked-cursor.png` });

  // one wheel step = one slice, and the picture changes with the slice
  await page.getByTestId('view-axial').hover();
  await page.mouse.wheel(0, 100);
  await expect(page.getByTestId('slice-axial')).toHaveText(/^72\/141 /);
  // one slice of the chest series is 2 mm
  expect(Math.abs(zOf(await page.getByTestId('slice-axial').textContent()) - z71)).toBeCloseTo(2, 5);
  // keys over the view: arrow up one slice back, Page Down ten on, Page Up ten back
  await page.keyboard.press('ArrowUp');
  await expect(page.getByTestId('slice-axial')).toHaveText(/^71\/141 /);
  await page.keyboard.press('PageDown');
  await expect(page.getByTestId('slice-axial')).toHaveText(/^81\/141 /);
  await page.keyboard.press('PageUp');
  await page.keyboard.press('ArrowDown');
  await expect(page.getByTestId('slice-axial')).toHaveText(/^72\/141 /);
  await page.waitForTimeout(400);
  const next = await stats('axial');
  expect(next.checksum).not.toBe(before.axial.checksum);
  expect(next.std).toBeGreaterThan(5);

  // scrolling speed: one wheel event per animation frame, through the real handler, over 200 frames
  const fps = await measureScroll();
  metrics.chestScroll = fps;
  await page.waitForTimeout(400); // back to full resolution
  console.log(
    `chest scrolling: ${fps.fps.toFixed(1)} frames/s over ${fps.frames} frames (${fps.distinctSlices} slices), max gap ${fps.maxGapMs.toFixed(0)} ms`,
  );
  expect(fps.distinctSlices).toBeGreaterThan(100);
  expectScrolling(fps, 'chest scrolling');

  // the same with a checkerboard composite at chest size: the chest has no registration, so a copy of
  // it shifted by 8 rows stands in for the warped volume (the real composite path and rendering)
  await page.evaluate(() => {
    const s = window.__sam!.store.getState();
    const f = s.fixed!;
    const v = new Int16Array(f.voxels.length);
    v.set(f.voxels.subarray(f.desc.size[0] * 8));
    s.setVolume('warped', { desc: { ...f.desc, id: 'e2e-shifted' }, voxels: v, transfer: { bytes: 0, ms: 0 } });
    s.setCompare('checker');
  });
  await expect(page.getByTestId('compare-mode')).toHaveValue('checker');
  await page.waitForTimeout(300);
  await expectContent('04b-chest-checkerboard');
  const fpsChecker = await measureScroll();
  metrics.chestScrollCheckerboard = fpsChecker;
  console.log(
    `chest scrolling, checkerboard on: ${fpsChecker.fps.toFixed(1)} frames/s over ${fpsChecker.frames} frames (${fpsChecker.distinctSlices} slices), max gap ${fpsChecker.maxGapMs.toFixed(0)} ms`,
  );
  expectScrolling(fpsChecker, 'chest scrolling, checkerboard on');

  // the spyglass (the lens draws the shown slice of the warped volume each frame) and the flicker at 4 Hz
  await page.evaluate(() => window.__sam!.store.getState().setCompare('spyglass'));
  const axBox = (await page.getByTestId('view-axial').boundingBox())!;
  await page.mouse.move(axBox.x + axBox.width / 2, axBox.y + axBox.height / 2);
  await page.waitForTimeout(100);
  const fpsLens = await measureScroll();
  metrics.chestScrollSpyglass = fpsLens;
  await page.screenshot({ path: `${ART}/04c-chest-spyglass.png` });
  await page.evaluate(() => {
    const s = window.__sam!.store.getState();
    s.setFlickerHz(4);
    s.setCompare('flicker');
  });
  const fpsFlicker = await measureScroll();
  metrics.chestScrollFlicker4Hz = fpsFlicker;
  for (const [what, f] of [
    ['spyglass', fpsLens],
    ['flicker at 4 Hz', fpsFlicker],
  ] as const)
    console.log(
      `chest scrolling, ${what}: ${f.fps.toFixed(1)} frames/s over ${f.frames} frames (${f.distinctSlices} slices), overlay draw ${f.overlayMs.toFixed(2)} ms a frame, max gap ${f.maxGapMs.toFixed(0)} ms`,
    );
  expectScrolling(fpsLens, 'chest scrolling, lens');
  expectScrolling(fpsFlicker, 'chest scrolling, flicker');
  await page.mouse.move(5, 5);
  await page.evaluate(() => {
    const s = window.__sam!.store.getState();
    s.setFlickerHz(1);
    s.setCompare('blend');
    s.setVolume('warped', null);
  });
  await expectContent('04-chest-after-scroll');
});

test('MHA pair: cancel a registration, run one with progress while the page stays responsive', async () => {
  await open('fixed', PAIR_FIXED);
  await open('moving', PAIR_MOVING);
  await expectContent('05-pair-unregistered-overlay');
  // the default where the model is installed: SAM, each match refined by NCC
  await expect(page.getByTestId('matcher')).toHaveValue('sam');
  await expect(page.getByTestId('refine')).toBeChecked();

  // cancel: a fine grid keeps the worker busy long enough
  await page.getByTestId('grid').fill('8');
  await page.getByTestId('register').click();
  await expect(page.getByTestId('reg-status')).toHaveText('running');
  await expect(page.getByTestId('progress').locator('li').first()).toBeVisible({ timeout: 60_000 });
  await page.screenshot({ path: `${ART}/06-registration-progress.png` });
  const tc = Date.now();
  await page.getByTestId('cancel').click();
  await expect(page.getByTestId('reg-status')).toHaveText('cancelled', { timeout: 15_000 });
  metrics.cancelSeconds = (Date.now() - tc) / 1000;

  // the real run, with the frame monitor on
  await page.getByTestId('grid').fill('24');
  await startFrameMonitor();
  const t0 = Date.now();
  await page.getByTestId('register').click();
  // no screenshots while measuring: capturing the page itself stalls its frames
  await expect(page.getByTestId('reg-status')).toHaveText('done', { timeout: 240_000 });
  const gaps = await stopFrameMonitor();
  metrics.registration = {
    seconds: (Date.now() - t0) / 1000,
    ...gaps,
    result: await page.getByTestId('reg-result').textContent(),
  };
  console.log(
    `registration: ${(Date.now() - t0) / 1000} s; while registering ${gaps.registering.frames} frames, largest gap ` +
      `${gaps.registering.maxMs.toFixed(0)} ms; showing the result: largest gap ${gaps.showingResult.maxMs.toFixed(0)} ms`,
  );
  expect(gaps.registering.frames).toBeGreaterThan(100);
  // the engine works in its own process: the page never waits for it. On this shared 2-core machine
  // the OS may still deliver one frame late under load (116 ms seen with other tests running beside):
  // one gap over 100 ms is allowed, none over 250 ms (a page blocked by the engine's work shows
  // gaps of seconds, or many)
  expect(gaps.registering.over100).toBeLessThanOrEqual(1);
  expect(gaps.registering.maxMs).toBeLessThan(250);
  await expect(page.getByTestId('overlay')).toHaveValue('warped');
  const warpedView = await expectContent('07-registered-warped-overlay');
  // the overlay changes the picture, and the opacity slider changes it again
  await page.getByTestId('overlay').selectOption('none');
  expect((await stats('axial')).checksum).not.toBe(warpedView.axial.checksum);
  await page.getByTestId('overlay').selectOption('warped');
  await page.getByTestId('opacity').fill('1');
  expect((await stats('axial')).checksum).not.toBe(warpedView.axial.checksum);
  await page.screenshot({ path: `${ART}/08-warped-opacity-1.png` });
  await page.getByTestId('opacity').fill('0.5');
});

test('a 1024x768 window: the display bar takes two rows and every control stays in it, in each compare mode', async () => {
  const size = page.viewportSize()!;
  await page.setViewportSize({ width: 1024, height: 768 });
  try {
    const bar = page.getByTestId('display-bar');
    const views = async () => (await page.getByTestId('view-axial').boundingBox())!;
    let first: { width: number; height: number } | undefined;
    for (const mode of ['blend', 'checker', 'difference', 'flicker', 'spyglass']) {
      await page.getByTestId('compare-mode').selectOption(mode);
      await page.waitForTimeout(100);
      const b = (await bar.boundingBox())!;
      expect(b.x + b.width).toBeLessThanOrEqual(1024);
      // every control (and the difference legend) lies inside the bar, none cut off at its edge
      const boxes = await bar.evaluate((el) =>
        [...el.querySelectorAll('button, select, input, [data-testid^="legend"]')].map((c) => {
          const r = c.getBoundingClientRect();
          return {
            id: c.getAttribute('data-testid') ?? c.textContent,
            left: r.left,
            right: r.right,
            top: r.top,
            bottom: r.bottom,
          };
        }),
      );
      for (const c of boxes) {
        expect(c.right, `${mode}: ${c.id}`).toBeLessThanOrEqual(b.x + b.width + 0.5);
        expect(c.bottom, `${mode}: ${c.id}`).toBeLessThanOrEqual(b.y + b.height + 0.5);
        expect(c.top, `${mode}: ${c.id}`).toBeGreaterThanOrEqual(b.y - 0.5);
      }
      // the views keep their size whatever the mode adds to the bar
      const v = await views();
      first ??= v;
      expect(v.width).toBeCloseTo(first.width, 0);
      expect(v.height).toBeCloseTo(first.height, 0);
    }
    // the open rows stay one line each: the descriptions are cut at their end, not wrapped
    for (const role of ['fixed', 'moving']) {
      const info = (await page.getByTestId(`info-${role}`).boundingBox())!;
      const button = (await page.getByTestId(`open-${role}`).boundingBox())!;
      expect(info.height, role).toBeLessThan(24);
      expect(button.height, role).toBeLessThan(24);
      expect(info.x + info.width, role).toBeLessThanOrEqual(1024);
      // (the label with its path field on the same line as the button)
      const label = (await page.getByTestId(`path-${role}`).locator('xpath=..').boundingBox())!;
      expect(label.height, role).toBeLessThan(24);
      expect(Math.abs(label.y + label.height / 2 - (button.y + button.height / 2)), role).toBeLessThan(4);
    }
    await page.screenshot({ path: `${ART}/08b-window-1024x768.png` });
  } finally {
    await page.getByTestId('compare-mode').selectOption('blend');
    await page.setViewportSize(size);
  }
});

const review: { readout?: Record<string, unknown>; qa?: Record<string, number> } = {};

test('review: compare modes, checkerboard tiles, engine readout, Jacobian overlay and QA, sign-off', async () => {
  await expect(page.getByTestId('compare-mode')).toHaveValue('blend');
  const blend = await stats('axial');
  await page.getByTestId('compare-mode').selectOption('checker');
  await expect(page.getByTestId('checker-size')).toHaveValue('16');
  const checker = await expectContent('11-compare-checkerboard');
  expect(checker.axial.checksum).not.toBe(blend.checksum);
  await page.getByTestId('checker-size').fill('4');
  await page.waitForTimeout(100);
  const checker4 = await stats('axial');
  expect(checker4.checksum).not.toBe(checker.axial.checksum);
  expect(checker4.std).toBeGreaterThan(5);
  await page.screenshot({ path: `${ART}/12-compare-checkerboard-4.png` });

  // scrolling with the checkerboard on (the pair's 64 axial slices)
  const scroll = await measureScroll();
  metrics.pairScrollCheckerboard = scroll;
  await page.waitForTimeout(400);
  console.log(
    `pair scrolling, checkerboard on: ${scroll.fps.toFixed(1)} frames/s over ${scroll.frames} frames (${scroll.distinctSlices} slices), max gap ${scroll.maxGapMs.toFixed(0)} ms`,
  );
  expectScrolling(scroll, 'pair scrolling, checkerboard on');

  await page.getByTestId('compare-mode').selectOption('difference');
  await page.waitForTimeout(100);
  const diff = await stats('axial');
  console.log(
    `difference view: mean ${diff.mean.toFixed(1)} std ${diff.std.toFixed(1)} nonBlack ${diff.nonBlack.toFixed(3)}`,
  );
  expect(diff.checksum).not.toBe(checker4.checksum);
  expect(diff.checksum).not.toBe(blend.checksum);
  expect(diff.std).toBeGreaterThan(1);
  await page.screenshot({ path: `${ART}/13-compare-difference.png` });
  await page.getByTestId('compare-mode').selectOption('blend');
  await page.waitForTimeout(100);
  // (the scrolling moved the slice: compare with the difference view of the same slice)
  const back = await stats('axial');
  expect(back.checksum).not.toBe(diff.checksum);
  expect(back.std).toBeGreaterThan(5);

  // readout: a double-click in the axial view asks the engine
  const ax = (await page.getByTestId('view-axial').boundingBox())!;
  await page.mouse.dblclick(ax.x + ax.width * 0.4, ax.y + ax.height * 0.5);
  const readout = page.getByTestId('readout');
  await expect(readout).toHaveAttribute('data-readout', /fixedHu/, { timeout: 10_000 });
  review.readout = JSON.parse((await readout.getAttribute('data-readout'))!);
  await expect(readout).toContainText(' HU, warped ');

  // field QA and the Jacobian overlay
  const qa = page.getByTestId('qa-panel');
  await expect(qa).toHaveAttribute('data-qa', /foldedPercent/, { timeout: 30_000 });
  review.qa = JSON.parse((await qa.getAttribute('data-qa'))!);
  await expect(qa).toContainText('folded');
  const before = await stats('axial');
  await page.getByTestId('overlay-jacobian').check();
  await page.waitForTimeout(100);
  const jac = await stats('axial');
  expect(jac.checksum).not.toBe(before.checksum);
  await page.screenshot({ path: `${ART}/14-jacobian-overlay.png` });
  await page.getByTestId('overlay-jacobian').uncheck();
  await page.waitForTimeout(100);
  expect((await stats('axial')).checksum).toBe(before.checksum);

  // sign-off: a rejection needs a comment
  await page.getByTestId('signoff-reviewer').fill('e2e reviewer');
  await page.getByTestId('signoff-reject').click();
  await expect(page.getByTestId('error')).toContainText('needs a comment');
  await page.getByTestId('signoff-comment').fill('residual shift at the diaphragm');
  await page.getByTestId('signoff-reject').click();
  await expect(page.getByTestId('signoff-status')).toContainText('rejected by e2e reviewer');
  metrics.review = review;
});

test('affine pairs: residual table sorted, row click moves the cursor, exclude and refit', async () => {
  const rows = page.getByTestId('pair-row');
  await expect(rows.first()).toBeVisible({ timeout: 10_000 });
  const residuals = (await rows.evaluateAll((r) => r.map((e) => Number(e.getAttribute('data-residual'))))) as number[];
  expect(residuals.length).toBeGreaterThan(10);
  const pairs = await page.evaluate(() => window.__sam!.store.getState().summary!.pairs!);
  expect(pairs.length).toBe(residuals.length);
  // worst first among the pairs the fit used, then the pairs not kept (worst first too)
  const shown = (await rows.evaluateAll((r) => r.map((e) => Number(e.getAttribute('data-index'))))) as number[];
  const kept = shown.map((i) => pairs.find((p: AffinePair) => p.index === i)!.kept);
  const firstNotKept = kept.indexOf(false);
  if (firstNotKept >= 0) expect(kept.slice(firstNotKept).every((k) => !k)).toBe(true);
  for (let i = 1; i < residuals.length; i++)
    if (kept[i] === kept[i - 1]) expect(residuals[i]).toBeLessThanOrEqual(residuals[i - 1]);

  // a click on a row whose fixed point lies on another axial slice moves the linked cursor there
  const cursor = await page.evaluate(() => window.__sam!.store.getState().cursor);
  const label = await page.getByTestId('slice-axial').textContent();
  const order = (await rows.evaluateAll((r) => r.map((e) => Number(e.getAttribute('data-index'))))) as number[];
  const k = order.findIndex((i) => Math.abs(pairs[i].fixed[2] - cursor[2]) > 10);
  expect(k).toBeGreaterThanOrEqual(0);
  await rows.nth(k).locator('td').nth(1).click({ timeout: 10_000 });
  await expect(page.getByTestId('slice-axial')).not.toHaveText(label!);
  expect(await page.evaluate(() => window.__sam!.store.getState().cursor)).toEqual(pairs[order[k]].fixed);

  // exclude the 3 largest residuals: each exclusion refits at once (the rows keep their order); the
  // engine's refitAffine here on the same pairs agrees with the last one
  const before = Number(await page.getByTestId('pairs-rms').getAttribute('data-rms'));
  for (let i = 0; i < 3; i++) await rows.nth(i).getByTestId('exclude').check({ timeout: 10_000 });
  await expect(page.getByTestId('excluded-count')).toHaveText('3 excluded');
  const excluded = order.slice(0, 3);
  expect((await rows.evaluateAll((r) => r.map((el) => Number(el.getAttribute('data-index'))))).slice(0, 3)).toEqual(
    excluded,
  );
  const e = refitAffine(
    pairs.map((p: AffinePair) => ({ ...p, accepted: true })),
    { exclude: excluded },
  );
  const result = page.getByTestId('refit-result');
  await expect(result).toContainText('(not applied)', { timeout: 10_000 });
  await expect.poll(async () => Number(await result.getAttribute('data-rms'))).toBeCloseTo(e.stats.rmsMm, 6);
  await expect(page.getByTestId('residual-histogram')).toBeVisible();
  const after = Number(await result.getAttribute('data-rms'));
  metrics.affineRefit = { before, after, engine: e.stats.rmsMm, excluded, pairs: pairs.length, ms: e.ms };
  console.log(
    `affine refit without pairs ${excluded.join(',')}: RMS ${before} -> ${after} mm (engine ${e.stats.rmsMm})`,
  );
  expect(Math.abs(after - e.stats.rmsMm)).toBeLessThan(1e-6);
  expect(after).toBeLessThanOrEqual(before + 1e-9);
  await page.screenshot({ path: `${ART}/15-affine-pairs-refit.png` });
});

/** Stats of a view (optionally a region) taken when the flicker shows the fixed (false) or warped (true) image. */
async function flickerStats(warped: boolean, view: string, region?: Region): Promise<Stats & { grey?: number[] }> {
  return page.evaluate(
    ({ warped, view, region }) =>
      new Promise<Stats & { grey?: number[] }>((resolve) => {
        const s = window.__sam!;
        const check = () =>
          s.store.getState().flickerWarped === warped
            ? resolve(s.stats(s.views.get(view as 'axial')!, region)!)
            : setTimeout(check, 10);
        check();
      }),
    { warped, view, region },
  );
}

interface Region {
  x: number;
  y: number;
  w: number;
  h: number;
}

const meanAbsDiff = (a: number[], b: number[]) => a.reduce((t, x, i) => t + Math.abs(x - b[i]), 0) / a.length;

test('review overlays: flicker, spyglass, |u| map, glyphs, deformed grid, pair markers, scrolling with them', async () => {
  // the field the overlays show: exported here and read by the engine in this process
  await page.getByTestId('export-dir').fill('overlay-field');
  await page.getByTestId('export').click();
  await expect(page.getByTestId('export-result')).toHaveAttribute('title', /overlay-field/, { timeout: 60_000 });
  const field = await readVolume(join(server.work, 'overlay-field/displacement.nii.gz'));
  const fixedDesc: VolumeDescriptor = JSON.parse((await page.getByTestId('info-fixed').getAttribute('data-desc'))!);
  // the cursor at the volume's centre: lung in all three views
  await page.evaluate((c) => window.__sam!.store.getState().setCursor(c), centreOf(fixedDesc));

  await page.getByTestId('compare-mode').selectOption('blend');
  await page.getByTestId('overlay').selectOption('none');
  const fixedOnly = await allStats();
  await page.getByTestId('overlay').selectOption('warped');
  await page.waitForTimeout(100);
  const base = await allStats();

  // flicker: every view alternates between the fixed picture and the warped one, at the rate chosen
  await page.getByTestId('compare-mode').selectOption('flicker');
  await page.getByTestId('flicker-hz').fill('2');
  await expect(page.getByTestId('flicker-hz')).toHaveValue('2');
  const switches = await page.evaluate(
    () =>
      new Promise<number>((resolve) => {
        let n = 0;
        const unsub = window.__sam!.store.subscribe((s, p) => void (s.flickerWarped !== p.flickerWarped && n++));
        setTimeout(() => (unsub(), resolve(n)), 2000);
      }),
  );
  // 2 Hz = 4 switches a second (each picture 250 ms)
  expect(switches).toBeGreaterThanOrEqual(6);
  expect(switches).toBeLessThanOrEqual(10);
  const flickerWarped: Record<string, Stats> = {};
  for (const v of VIEWS) {
    const f = await flickerStats(false, v);
    expect(f.checksum, `${v}: the fixed phase shows the fixed image alone`).toBe(fixedOnly[v].checksum);
    flickerWarped[v] = await flickerStats(true, v);
    expect(flickerWarped[v].checksum, `${v}: the warped phase differs`).not.toBe(fixedOnly[v].checksum);
    expect(flickerWarped[v].std).toBeGreaterThan(5);
  }
  await page.screenshot({ path: `${ART}/16-compare-flicker.png` });
  metrics.flicker = { hz: 2, switchesIn2s: switches };

  // the spyglass: the warped slice in a lens around the mouse; the rest is the fixed image
  const centre: Region = { x: 0.45, y: 0.45, w: 0.1, h: 0.1 };
  const warpedCentre = await flickerStats(true, 'axial', centre);
  const fixedCentre = await flickerStats(false, 'axial', centre);
  await page.getByTestId('compare-mode').selectOption('spyglass');
  await page.mouse.move(5, 5); // outside the views: no lens
  await page.waitForTimeout(100);
  expect((await stats('axial')).checksum).toBe(fixedOnly.axial.checksum);
  const ax = (await page.getByTestId('view-axial').boundingBox())!;
  await page.mouse.move(ax.x + ax.width / 2, ax.y + ax.height / 2);
  await page.waitForTimeout(100);
  const lens = await page.evaluate((r) => window.__sam!.stats(window.__sam!.views.get('axial')!, r)!, centre);
  const lensVsWarped = meanAbsDiff(lens.grey!, warpedCentre.grey!);
  const fixedVsWarped = meanAbsDiff(fixedCentre.grey!, warpedCentre.grey!);
  console.log(
    `spyglass: lens vs warped ${lensVsWarped.toFixed(2)}, fixed vs warped ${fixedVsWarped.toFixed(2)} grey levels`,
  );
  expect(lensVsWarped).toBeLessThan(4);
  expect(lensVsWarped).toBeLessThan(Math.max(1, fixedVsWarped / 2));
  const withLens = await stats('axial');
  expect(withLens.checksum).not.toBe(fixedOnly.axial.checksum);
  await page.screenshot({ path: `${ART}/17-compare-spyglass.png` });
  await page.getByTestId('spyglass-radius').fill('120');
  await page.waitForTimeout(100);
  expect((await stats('axial')).checksum).not.toBe(withLens.checksum);
  metrics.spyglass = { lensVsWarped, fixedVsWarped };
  await page.getByTestId('compare-mode').selectOption('blend');
  await page.mouse.move(5, 5);
  await page.waitForTimeout(100);
  await expectSamePictures('flicker and spyglass off', base);

  // the displacement magnitude map: |u| x 10 of the exported field, its own colours and legend
  await page.getByTestId('overlay-magnitude').check();
  await page.waitForTimeout(100);
  const mag = await allStats();
  for (const v of VIEWS) expect(mag[v].checksum).not.toBe(base[v].checksum);
  const legend = page.getByTestId('legend-magnitude');
  await expect(legend).toBeVisible();
  const n = field.data.length / 3;
  const sample = Array.from({ length: 50 }, (_, i) => Math.floor((i * n) / 50));
  const ui = await page.evaluate((idx) => idx.map((i) => window.__sam!.store.getState().magnitude!.voxels[i]), sample);
  sample.forEach((v, i) => {
    const u = Math.hypot(field.data[3 * v], field.data[3 * v + 1], field.data[3 * v + 2]);
    expect(Math.abs(ui[i] - u * 10)).toBeLessThanOrEqual(0.5 + 1e-3);
  });
  const maxMm = await page.evaluate(() => window.__sam!.store.getState().fieldQa!.displacementMm.max);
  await expect(legend).toHaveAttribute('data-range', `0 ${magnitudeScaleMm(maxMm)}`);
  await page.screenshot({ path: `${ART}/18-magnitude-map.png` });
  // one map at a time: the Jacobian map replaces it
  await page.getByTestId('overlay-jacobian').check();
  await expect(page.getByTestId('overlay-magnitude')).not.toBeChecked();
  await page.getByTestId('overlay-jacobian').uncheck();
  await page.waitForTimeout(100);
  await expectSamePictures('|u| map off', base);

  // arrow glyphs and deformed grid lines: as many as the engine makes for the view's slice and spacing
  await page.getByTestId('overlay-glyphs').check();
  await page.getByTestId('overlay-grid').check();
  for (const v of VIEWS) await expect(page.getByTestId(`overlay-${v}`)).toHaveAttribute('data-glyphs', /^[1-9]/);
  const fieldCounts: Record<string, unknown> = {};
  for (const v of VIEWS) {
    const d = await page.evaluate((name) => window.__sam!.overlays.get(name as 'axial')!.drawn, v);
    const label = (await page.getByTestId(`slice-${v}`).textContent())!;
    expect(d.slice).toBe(Number(label.split('/')[0]) - 1);
    const glyphs = arrowGlyphs(field, { orientation: v, slice: d.slice!, every: d.every! }).glyphs.length;
    const lines = deformedGridLines(field, { orientation: v, slice: d.slice!, every: d.every! }).lines.length;
    expect(d.glyphs).toBe(glyphs);
    expect(d.lines).toBe(lines);
    await expect(page.getByTestId(`overlay-${v}`)).toHaveAttribute('data-glyphs', String(glyphs));
    fieldCounts[v] = { slice: d.slice, every: d.every, glyphs, lines };
  }
  metrics.fieldOverlays = fieldCounts;
  const withField = await allStats();
  for (const v of VIEWS) expect(withField[v].checksum).not.toBe(base[v].checksum);
  await page.screenshot({ path: `${ART}/19-glyphs-and-grid.png` });
  // a wider spacing on screen: fewer glyphs
  const before = Number(await page.getByTestId('overlay-axial').getAttribute('data-glyphs'));
  await page.getByTestId('overlay-spacing').fill('60');
  await expect
    .poll(async () => Number(await page.getByTestId('overlay-axial').getAttribute('data-glyphs')))
    .toBeLessThan(before);
  await page.getByTestId('overlay-spacing').fill('28');
  await page.getByTestId('overlay-glyphs').uncheck();
  await page.getByTestId('overlay-grid').uncheck();
  await page.waitForTimeout(100);
  await expectSamePictures('glyphs and grid off', base);

  // the affine pairs of the shown slab, coloured by the (refit) residual
  const pairs: AffinePair[] = await page.evaluate(() => window.__sam!.store.getState().summary!.pairs!);
  const gridMm: number = await page.evaluate(() => window.__sam!.store.getState().summary!.gridMm!);
  const expectedPairs = async () => {
    const cursor = await page.evaluate(() => window.__sam!.store.getState().cursor);
    const refit: AffineRefit | null = await page.evaluate(() => window.__sam!.store.getState().refit);
    const scale = pairResidualScaleMm(pairs);
    const out: Record<string, { index: number; fixedIn: boolean; color: string }[]> = {};
    for (const v of VIEWS) {
      const { axis, slice } = sliceFor(fixedDesc, v as ViewName, cursor);
      const ijk: [number, number, number] = [0, 0, 0];
      ijk[axis] = slice;
      const normal = CAMERA[v as ViewName].normalAxis;
      out[v] = pairsInSlab(pairs, normal, indexToWorld(fixedDesc, ijk)[normal], gridMm / 2).map((p) => ({
        index: p.pair.index,
        fixedIn: p.fixedIn,
        color: cssColor(colorAt(residualStops(scale), refit?.residuals[p.pair.index].residualMm ?? p.pair.residualMm)),
      }));
    }
    return out;
  };
  const checkPairs = async () => {
    const want = await expectedPairs();
    for (const v of VIEWS) {
      const d = await page.evaluate((name) => window.__sam!.overlays.get(name as 'axial')!.drawn, v);
      expect(d.pairs, `${v}: pairs drawn`).toBe(want[v].length);
      for (const p of want[v]) expect(d.colors[p.index], `${v}: colour of pair ${p.index}`).toBe(p.color);
    }
    return want;
  };
  await page.getByTestId('overlay-pairs').check();
  await expect(page.getByTestId('legend-residual')).toBeVisible();
  await page.waitForTimeout(100);
  const want = await checkPairs();
  expect(want.axial.length).toBeGreaterThan(0);
  const withPairs = await allStats();
  expect(withPairs.axial.checksum).not.toBe(base.axial.checksum);
  await page.screenshot({ path: `${ART}/20-pair-markers.png` });
  await page.getByTestId('overlay-pairs').uncheck();
  await page.waitForTimeout(100);
  await expectSamePictures('pairs off', base);
  await page.getByTestId('overlay-pairs').check();

  // a click on a fixed marker in the axial view moves the linked cursor to the pair's fixed point
  // (one whose fixed marker has no other pair's marker within 8 px)
  const markers = await page.evaluate(() => window.__sam!.overlays.get('axial')!.markers);
  let pair: AffinePair | undefined;
  let at: [number, number] = [0, 0];
  for (const p of want.axial.filter((q) => q.fixedIn)) {
    const cand = pairs.find((q) => q.index === p.index)!;
    const [fx, fy] = await page.evaluate((x) => window.__sam!.views.get('axial')!.project(x), cand.fixed);
    const xy: [number, number] = [fx * ax.width, fy * ax.height];
    const alone = markers.every((m) => m.index === p.index || Math.hypot(m.at[0] - xy[0], m.at[1] - xy[1]) >= 8);
    if (alone && fx > 0.02 && fx < 0.98 && fy > 0.02 && fy < 0.98) {
      pair = cand;
      at = xy;
      break;
    }
  }
  expect(pair, 'a pair marker to click').toBeDefined();
  // (through the view's locator: Playwright waits for it to be stable and clicks relative to where it is
  // then; a click at page coordinates measured earlier missed the marker now and then)
  await page.getByTestId('view-axial').click({ position: { x: at[0], y: at[1] } });
  await expect.poll(() => page.evaluate(() => window.__sam!.store.getState().cursor)).toEqual(pair!.fixed);
  expect(await page.evaluate(() => window.__sam!.store.getState().selectedPair)).toBe(pair!.index);
  await expect(page.locator(`[data-testid=pair-row][data-index="${pair!.index}"]`)).toHaveClass(/selected/);
  await page.waitForTimeout(300);
  await checkPairs(); // the slab around the pair now

  // refit without three more pairs: the markers take the new residuals' colours
  const rows = page.getByTestId('pair-row');
  const oldRms = await page.getByTestId('refit-result').getAttribute('data-rms');
  // three inlier pairs (excluding outliers would leave the fit as it was), chosen before any refit
  const inliers = rows.filter({ has: page.locator('td', { hasText: /^yes$/ }) });
  const chosen: string[] = [];
  for (let i = 0; i < 3; i++) chosen.push((await inliers.nth(i).getAttribute('data-index'))!);
  for (const index of chosen)
    await page
      .locator(`[data-testid=pair-row][data-index="${index}"]`)
      .getByTestId('exclude')
      .check({ timeout: 10_000 });
  await expect(page.getByTestId('refit-result')).not.toHaveAttribute('data-rms', oldRms!, { timeout: 10_000 });
  await page.waitForTimeout(100);
  await checkPairs();
  await page.screenshot({ path: `${ART}/21-pair-markers-after-refit.png` });

  // scrolling the pair's axial slices with glyphs, grid and pairs on
  await page.getByTestId('overlay-glyphs').check();
  await page.getByTestId('overlay-grid').check();
  await page.waitForTimeout(300);
  const scroll = await measureScroll();
  metrics.pairScrollOverlays = scroll;
  await page.waitForTimeout(400);
  console.log(
    `pair scrolling, glyphs + grid + pairs on: ${scroll.fps.toFixed(1)} frames/s over ${scroll.frames} frames (${scroll.distinctSlices} slices, ` +
      `glyphs drawn after ${scroll.glyphFrames} frames, overlay draw ${scroll.overlayMs.toFixed(2)} ms a frame), max gap ${scroll.maxGapMs.toFixed(0)} ms`,
  );
  expectScrolling(scroll, 'pair scrolling, overlays on');
  await page.screenshot({ path: `${ART}/22-overlays-after-scroll.png` });
  await page.getByTestId('overlay-glyphs').uncheck();
  await page.getByTestId('overlay-grid').uncheck();
  await page.getByTestId('overlay-pairs').uncheck();
});

test('export (never outside the work folder), session saved, reloaded, reopened, geometry compared', async () => {
  await page.getByTestId('export-dir').fill(join(DATA, 'elastix'));
  await page.getByTestId('export').click();
  await expect(page.getByTestId('error')).toContainText('outside the work folder');
  await page.getByTestId('export-dir').fill('export1');
  await page.getByTestId('export').click();
  // the cascade's 7 files, and the review report with the sign-off
  await expect(page.getByTestId('export-result')).toHaveAttribute('title', /export1/, { timeout: 60_000 });
  await expect(page.getByTestId('export-result')).toContainText('9 files in');
  const files = (await page.getByTestId('export-result').getAttribute('title'))!.split('\n');
  for (const f of [
    'warped.nii.gz',
    'displacement.nii.gz',
    'affine.txt',
    'affine.tfm',
    'pairs.csv',
    'coarse-pairs.csv',
    'qa.json',
  ])
    expect(files.some((p) => p.endsWith(`/${f}`))).toBe(true);
  for (const f of ['report.json', 'report.html']) expect(files.some((p) => p.endsWith(`/${f}`))).toBe(true);
  const report = JSON.parse(readFileSync(join(server.work, 'export1/report.json'), 'utf8'));
  expect(report.signOff).toMatchObject({
    decision: 'rejected',
    comment: 'residual shift at the diaphragm',
    reviewer: 'e2e reviewer',
  });
  await agreesWithEngine(join(server.work, 'export1'));
  // exporting again into the same folder: the earlier result moves aside whole, nothing is mixed or lost
  await page.getByTestId('export').click();
  await expect(page.getByTestId('export-previous')).toContainText('previous-', { timeout: 60_000 });
  const previous = readdirSync(join(server.work, 'export1')).filter((n) => n.startsWith('previous-'));
  expect(previous).toHaveLength(1);
  expect(readdirSync(join(server.work, 'export1', previous[0])).sort()).toEqual(
    files.map((p) => p.split('/').pop()).sort(),
  );
  const fixed = JSON.parse((await page.getByTestId('info-fixed').getAttribute('data-desc'))!);

  await page.getByTestId('session-path').fill('session.json');
  await page.getByTestId('session-save').click();
  await expect(page.getByTestId('busy')).toHaveCount(0);
  await expect(page.getByTestId('error')).toHaveCount(0);
  await expect(page.getByTestId('session-saved')).toContainText('session saved to');
  await expect(page.getByTestId('session-saved')).not.toContainText('replacing');
  const saved = JSON.parse(readFileSync(join(server.work, 'session.json'), 'utf8'));
  expect(saved.signOff).toMatchObject({ decision: 'rejected', reviewer: 'e2e reviewer' });

  await page.reload();
  await expect(page.getByTestId('mode')).toHaveText('browser');
  await expect(page.getByTestId('info-fixed')).toHaveCount(0);
  await page.getByTestId('session-path').fill('session.json');
  await page.getByTestId('session-open').click();
  await expect(page.getByTestId('info-warped')).toBeVisible({ timeout: 120_000 });
  await expect(page.getByTestId('wl')).toHaveText('W 1500 L -600 HU');
  await expect(page.getByTestId('signoff-status')).toContainText('rejected by e2e reviewer');
  const reFixed = JSON.parse((await page.getByTestId('info-fixed').getAttribute('data-desc'))!);
  const warped = JSON.parse((await page.getByTestId('info-warped').getAttribute('data-desc'))!);
  expect(reFixed.path).toBe(fixed.path);
  await expect(page.getByTestId('path-fixed')).toHaveValue(fixed.path);
  expect(warped.path.endsWith('export1/warped.nii.gz')).toBe(true);
  // the exported warped volume lies on the fixed grid
  expect(warped.size).toEqual(fixed.size);
  for (let c = 0; c < 3; c++) {
    expect(Math.abs(warped.spacing[c] - fixed.spacing[c])).toBeLessThan(1e-3);
    expect(Math.abs(warped.origin[c] - fixed.origin[c])).toBeLessThan(1e-2);
  }
  for (let n = 0; n < 9; n++) expect(Math.abs(warped.direction[n] - fixed.direction[n])).toBeLessThan(1e-4);
  // the review is back, not only the picture: field QA, pairs, export
  await expect(page.getByTestId('qa-panel')).toContainText('Jacobian min', { timeout: 60_000 });
  await expect(page.getByTestId('export-result')).toContainText('result reopened from');
  await page.getByTestId('export-dir').fill('export2');
  await expect(page.getByTestId('export')).toBeEnabled();
  metrics.exportGeometry = {
    fixed: { size: fixed.size, spacing: fixed.spacing, origin: fixed.origin },
    warped: { size: warped.size, spacing: warped.spacing, origin: warped.origin },
  };
  await expectContent('09-session-reopened');
});

test('a DICOM folder holding two series asks which one to open', async () => {
  const folder = join(server.work, 'two-series');
  cpSync(join(DATA, 'Slicer/Testing/Data/Input/CTHeadAxialDicom'), join(folder, 'head'), { recursive: true });
  cpSync(join(DATA, 'TotalSegmentator/tests/reference_files/example_ct_dicom'), join(folder, 'thorax'), {
    recursive: true,
  });
  await page.getByTestId('path-moving').fill(folder);
  await page.getByTestId('open-moving').click();
  await expect(page.getByTestId('error')).toContainText('holds 2 series');
  const select = page.getByTestId('series-moving');
  const labels = await select.locator('option').allTextContents();
  const head = labels.findIndex((l) => l.includes('64x64x93'));
  expect(head).toBeGreaterThan(0);
  await select.selectOption({ index: head });
  await page.getByTestId('open-moving').click();
  await expect(page.getByTestId('info-moving')).toContainText('64×64×93', { timeout: 60_000 });
  // stored values, not HU: said when opened, not only when Register is clicked
  await expect(page.getByTestId('not-ct-moving')).toContainText('not a CT in Hounsfield units');
  // ... and Register is not offered for it; the file is named in the info line
  await expect(page.getByTestId('register')).toBeDisabled();
  await expect(page.getByTestId('name-moving')).toContainText('two-series');
  await page.screenshot({ path: `${ART}/10-series-choice.png` });
});

test('a series the reader resampled says so when opened (gantry tilt, uneven spacing)', async () => {
  await page.getByTestId('path-moving').fill(join(DATA, 'dcm_qa_ct/In/GE'));
  await page.getByTestId('open-moving').click();
  const warnings = page.getByTestId('warnings-moving');
  await expect(warnings).toContainText('2 notes: gantry tilt 18.5 degrees corrected by resampling', {
    timeout: 60_000,
  });
  await expect(warnings).toContainText('uneven slice spacing');
  await page.screenshot({ path: `${ART}/10b-resampled-warning.png` });
});
