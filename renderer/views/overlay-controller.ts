/**
 * Keeps one view's 2-D overlay (view-overlay.ts) in step with the store: builds its scene (the
 * spyglass lens under the mouse, the field overlay of the shown slice, the affine and coarse pairs of
 * the shown slab, the tracked point), asks the engine for the slice's glyphs and grid lines when they are on (slice-overlay-cache.ts),
 * redraws after each render of the view and, once per animation frame at most, when only the overlays
 * changed; a left click on a pair marker moves the linked cursor to the pair's fixed point and selects
 * the pair (its row in the pairs table).
 */
import { reviewable } from '../review-actions.ts';
import { useApp, type AppState } from '../store/index.ts';
import { magnitudeScaleMm, residualScaleMm } from './color-maps.ts';
import { glyphEvery, pairResidualScaleMm } from './overlay-geometry.ts';
import { cachedSliceOverlay, requestSliceOverlay } from './slice-overlay-cache.ts';
import { sliceGreyPixels, type SlicePixels } from './slice-pixels.ts';
import type { SliceView } from './slice-view.ts';
import { CAMERA, indexAxisAlong, indexToWorld, sliceFor, type ViewName } from './view-geometry.ts';
import { ViewOverlay, type LensScene, type OverlayScene, type PairsScene } from './view-overlay.ts';

/** Store fields whose change redraws the overlay (the view's own renders redraw it too). */
const WATCHED: (keyof AppState)[] = [
  'compare',
  'spyglassPx',
  'showPairs',
  'showCoarsePairs',
  'tracked',
  'showGlyphs',
  'showGrid',
  'glyphSpacingPx',
  'refit',
  'selectedPair',
  'summary',
  'warped',
  'fieldQa',
  'window',
  'level',
];

export class OverlayController {
  readonly overlay: ViewOverlay;
  private mouse: [number, number] | null = null;
  private frame = 0;
  private lensKey = '';
  private lensImage: { canvas: HTMLCanvasElement; pixels: SlicePixels } | null = null;
  private scaleFor: { pairs: unknown; mm: number } = { pairs: null, mm: 1 };
  private coarseScaleFor: { pairs: unknown; mm: number } = { pairs: null, mm: 1 };
  private readonly unsub: () => void;

  constructor(
    private readonly host: HTMLElement,
    private readonly view: SliceView,
    private readonly name: ViewName,
  ) {
    this.overlay = new ViewOverlay(view, name);
    host.after(this.overlay.canvas);
    this.unsub = useApp.subscribe((s, p) => {
      if (WATCHED.some((k) => s[k] !== p[k])) this.schedule();
    });
    host.addEventListener('pointermove', this.onMove);
    host.addEventListener('pointerleave', this.onLeave);
  }

  private readonly onMove = (e: PointerEvent) => {
    const r = this.host.getBoundingClientRect();
    this.mouse = [e.clientX - r.left, e.clientY - r.top];
    if (useApp.getState().compare === 'spyglass') this.schedule();
  };

  private readonly onLeave = () => {
    this.mouse = null;
    if (useApp.getState().compare === 'spyglass') this.schedule();
  };

  /** Redraw at the next animation frame (once, however many changes come before it). */
  schedule(): void {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.draw();
    });
  }

  draw(): void {
    const t0 = performance.now();
    this.overlay.draw(this.scene(useApp.getState()));
    this.overlay.drawn.ms = performance.now() - t0; // the scene too (the lens's slice pixels)
  }

  private scene(s: AppState): OverlayScene {
    const live = reviewable(s);
    const wantField = live && (s.showGlyphs || s.showGrid) && !!s.fixed;
    return {
      lens: this.lens(s),
      field: wantField ? this.field(s) : null,
      glyphs: s.showGlyphs,
      grid: s.showGrid,
      glyphMaxMm: magnitudeScaleMm(s.fieldQa?.displacementMm.max),
      pairs: s.showPairs ? this.pairs(s) : null,
      coarse: s.showCoarsePairs ? this.coarse(s) : null,
      tracked: s.tracked && s.fixed ? { tracked: s.tracked, ...this.slab(s, this.halfVoxelMm(s)) } : null,
    };
  }

  /** World coordinate of the shown slice along the view's normal, with a half width (mm). */
  private slab(s: AppState, halfSlabMm: number): { slabCentreMm: number; halfSlabMm: number } {
    const desc = s.fixed!.desc;
    const { axis, slice } = sliceFor(desc, this.name, s.cursor);
    const ijk: [number, number, number] = [0, 0, 0];
    ijk[axis] = slice;
    return { slabCentreMm: indexToWorld(desc, ijk)[CAMERA[this.name].normalAxis], halfSlabMm };
  }

  /** Half a fixed voxel along the view's normal, at least 1.5 mm (a tracked point shows on its own slice). */
  private halfVoxelMm(s: AppState): number {
    const desc = s.fixed!.desc;
    return Math.max(1.5, desc.spacing[indexAxisAlong(desc, CAMERA[this.name].normalAxis)] / 2);
  }

  private coarse(s: AppState): OverlayScene['coarse'] {
    const pairs = s.summary?.coarsePairs;
    if (!pairs?.length || !s.fixed) return null;
    if (this.coarseScaleFor.pairs !== pairs)
      this.coarseScaleFor = { pairs, mm: residualScaleMm(pairs.map((p) => p.residualMm)) };
    return { pairs, scaleMm: this.coarseScaleFor.mm, ...this.slab(s, (s.summary?.gridMm ?? 24) / 4) };
  }

  /** The field overlay of the shown slice: from the cache, else asked for (drawn when it arrives). */
  private field(s: AppState): OverlayScene['field'] {
    const desc = s.fixed!.desc;
    const normal = CAMERA[this.name].normalAxis;
    const inPlane = [0, 1, 2].filter((a) => a !== normal).map((a) => desc.spacing[indexAxisAlong(desc, a)]);
    const o = this.view.pick(0.5, 0.5);
    const q = this.view.pick(0.6, 0.5);
    const pxPerMm = (0.1 * this.host.clientWidth) / Math.max(1e-9, Math.hypot(q[0] - o[0], q[1] - o[1], q[2] - o[2]));
    const every = glyphEvery(pxPerMm * Math.min(...inPlane), s.glyphSpacingPx);
    const result = s.summary!.warped.id;
    const slice = this.view.slice;
    const hit = cachedSliceOverlay(result, this.name, slice, every);
    if (!hit)
      requestSliceOverlay({ result, view: this.name, point: s.cursor, slice, every, onReady: () => this.schedule() });
    return hit ?? null;
  }

  private pairs(s: AppState): PairsScene | null {
    const pairs = s.summary?.pairs;
    if (!pairs?.length || !s.fixed) return null;
    if (this.scaleFor.pairs !== pairs) this.scaleFor = { pairs, mm: pairResidualScaleMm(pairs) };
    const refit = s.refit;
    return {
      pairs,
      residualOf: (p) => refit?.residuals[p.index]?.residualMm ?? p.residualMm,
      scaleMm: this.scaleFor.mm,
      ...this.slab(s, (s.summary?.gridMm ?? 24) / 2),
      selected: s.selectedPair,
    };
  }

  /** The spyglass: the warped slice around the mouse (grey, the views' window/level). */
  private lens(s: AppState): LensScene | null {
    if (s.compare !== 'spyglass' || !this.mouse || !s.warped || !s.fixed) return null;
    const w = s.warped;
    const { axis, slice } = sliceFor(w.desc, this.name, s.cursor);
    const key = `${w.desc.id}|${axis}|${slice}|${s.window}|${s.level}`;
    if (key !== this.lensKey || !this.lensImage) {
      const pixels = sliceGreyPixels(w.voxels, w.desc.size, axis, slice, s.window, s.level);
      const canvas = this.lensImage?.canvas ?? document.createElement('canvas');
      canvas.width = pixels.width;
      canvas.height = pixels.height;
      canvas.getContext('2d')!.putImageData(new ImageData(pixels.rgba, pixels.width, pixels.height), 0, 0);
      this.lensImage = { canvas, pixels };
      this.lensKey = key;
    }
    const [x, y] = this.mouse;
    return {
      x,
      y,
      radius: s.spyglassPx,
      image: this.lensImage.canvas,
      pixels: this.lensImage.pixels,
      desc: w.desc,
      slice,
    };
  }

  /** A left click on a pair marker: cursor to the pair's fixed point, the pair selected. */
  pickPair(e: MouseEvent): boolean {
    const s = useApp.getState();
    if (!s.showPairs || !s.summary?.pairs) return false;
    const r = this.host.getBoundingClientRect();
    const index = this.overlay.pairAt(e.clientX - r.left, e.clientY - r.top);
    if (index === null) return false;
    const pair = s.summary.pairs.find((p) => p.index === index);
    if (!pair) return false;
    s.setSelectedPair(index);
    s.setCursor([...pair.fixed]);
    return true;
  }

  dispose(): void {
    cancelAnimationFrame(this.frame);
    this.unsub();
    this.host.removeEventListener('pointermove', this.onMove);
    this.host.removeEventListener('pointerleave', this.onLeave);
    this.overlay.canvas.remove();
  }
}
