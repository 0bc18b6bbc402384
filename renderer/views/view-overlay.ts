/**
 * The 2-D overlay of one view: a <canvas> over the vtk.js canvas, drawn with the view's own
 * world -> screen projection (SliceView.project) after each render and when the overlays change. It
 * draws, bottom to top: the spyglass lens (the warped slice inside a circle around the mouse), the
 * deformed grid lines, the arrow glyphs (true to scale in mm, coloured by |u|, with a scale bar) and
 * the affine pairs of the shown slab (fixed point a filled disc, moving point a ring, joined by a
 * line, coloured by residual; the selected pair ringed in white), the SAM-coarse pairs (squares), and a
 * tracked point (fixed +, SAM match ring, registration's mapping x). It remembers what it drew (counts,
 * pair markers and colours) for clicks and the UI tests.
 */
import type {
  AffinePair,
  CoarsePairInfo,
  SliceOverlay,
  TrackedPointInfo,
  VolumeDescriptor,
} from '../../main/engine/workstation/types.ts';
import { colorAt, cssColor, magnitudeStops, residualStops } from './color-maps.ts';
import { hitMarker, pairsInSlab, plus, scaleBar, type Marker } from './overlay-geometry.ts';
import type { SliceView } from './slice-view.ts';
import type { SlicePixels } from './slice-pixels.ts';
import { CAMERA, indexToWorld, type ViewName } from './view-geometry.ts';

type Vec3 = [number, number, number];
type Pt = [number, number];

export interface PairsScene {
  pairs: readonly AffinePair[];
  /** Residual per pair index (the refit's when there is one). */
  residualOf: (p: AffinePair) => number;
  scaleMm: number;
  /** World coordinate of the shown slice along the view's normal, and the slab's half width (mm). */
  slabCentreMm: number;
  halfSlabMm: number;
  selected: number | null;
}

/** The SAM-coarse stage's kept pairs (not clickable: they are not refitted). */
export interface CoarsePairsScene {
  pairs: readonly CoarsePairInfo[];
  scaleMm: number;
  slabCentreMm: number;
  halfSlabMm: number;
}

/** A tracked point: the clicked fixed point, its SAM match, and where the registration maps it. */
export interface TrackedScene {
  tracked: TrackedPointInfo;
  slabCentreMm: number;
  halfSlabMm: number;
}

export interface LensScene {
  /** Centre (CSS px in the view) and radius. */
  x: number;
  y: number;
  radius: number;
  /** The warped slice's pixels in a canvas, its grid and slice index. */
  image: HTMLCanvasElement;
  pixels: SlicePixels;
  desc: VolumeDescriptor;
  slice: number;
}

export interface OverlayScene {
  lens: LensScene | null;
  field: SliceOverlay | null;
  glyphs: boolean;
  grid: boolean;
  /** |u| colour scale end for the glyphs, mm. */
  glyphMaxMm: number;
  pairs: PairsScene | null;
  coarse: CoarsePairsScene | null;
  tracked: TrackedScene | null;
}

export interface Drawn {
  /** Slice and spacing (voxels) of the field overlay drawn, null when none. */
  slice: number | null;
  every: number | null;
  glyphs: number;
  lines: number;
  pairs: number;
  fixedMarkers: number;
  movingMarkers: number;
  /** SAM-coarse pairs in the slab. */
  coarsePairs: number;
  /** Tracking markers drawn (fixed point, SAM match, registration's mapping: those in the slab). */
  trackMarkers: string[];
  /** Pair index -> CSS colour of its markers. */
  colors: Record<number, string>;
  /** Time the draw took, ms (set by its caller, scene building included). */
  ms: number;
}

/** The record of an overlay with nothing drawn yet (of the field overlay's slice, when there is one). */
function nothingDrawn(field: SliceOverlay | null): Drawn {
  return {
    slice: field?.slice ?? null,
    every: field?.every ?? null,
    glyphs: 0,
    lines: 0,
    pairs: 0,
    fixedMarkers: 0,
    movingMarkers: 0,
    coarsePairs: 0,
    trackMarkers: [],
    colors: {},
    ms: 0,
  };
}

const COLOR_BINS = 8;

export class ViewOverlay {
  readonly canvas = document.createElement('canvas');
  private readonly ctx: CanvasRenderingContext2D;
  /** The pair markers drawn last (CSS px in the view), for clicks. */
  markers: Marker[] = [];
  private attrs = '';
  drawn: Drawn = nothingDrawn(null);

  constructor(
    private readonly view: SliceView,
    private readonly name: ViewName,
  ) {
    this.canvas.className = 'view-overlay';
    this.canvas.dataset.testid = `overlay-${name}`;
    this.ctx = this.canvas.getContext('2d')!;
  }

  /** Screen position (CSS px) of a world point. */
  private at(x: readonly number[], w: number, h: number): Pt {
    const [fx, fy] = this.view.project(x as Vec3);
    return [fx * w, fy * h];
  }

  draw(scene: OverlayScene): void {
    const c = this.canvas;
    const w = c.clientWidth;
    const h = c.clientHeight;
    const dpr = window.devicePixelRatio || 1;
    const bw = Math.max(1, Math.round(w * dpr));
    const bh = Math.max(1, Math.round(h * dpr));
    if (c.width !== bw || c.height !== bh) {
      c.width = bw;
      c.height = bh;
    }
    const g = this.ctx;
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, h);
    const drawn = nothingDrawn(scene.field);
    this.markers = [];
    if (scene.lens) this.drawLens(scene.lens, w, h, dpr);
    if (scene.field && scene.grid) drawn.lines = this.drawGrid(scene.field, w, h);
    if (scene.field && scene.glyphs) drawn.glyphs = this.drawGlyphs(scene.field, scene.glyphMaxMm, w, h);
    if (scene.coarse) drawn.coarsePairs = this.drawCoarsePairs(scene.coarse, w, h);
    if (scene.pairs) this.drawPairs(scene.pairs, w, h, drawn);
    if (scene.tracked) drawn.trackMarkers = this.drawTracked(scene.tracked, w, h);
    this.drawn = drawn;
    // an empty overlay is hidden, not only cleared: headless Chromium on a software GL was seen
    // compositing a stale frame of this canvas (a grid switched off, drawn for another slice)
    const empty =
      !scene.lens &&
      drawn.lines === 0 &&
      drawn.glyphs === 0 &&
      drawn.coarsePairs === 0 &&
      drawn.pairs === 0 &&
      drawn.fixedMarkers === 0 &&
      drawn.movingMarkers === 0 &&
      drawn.trackMarkers.length === 0;
    c.style.visibility = empty ? 'hidden' : 'visible';
    const attrs = `${drawn.pairs} ${drawn.glyphs} ${drawn.lines} ${drawn.slice} ${drawn.coarsePairs} ${drawn.trackMarkers.join(',')}`;
    if (attrs !== this.attrs) {
      this.attrs = attrs;
      c.dataset.pairs = String(drawn.pairs);
      c.dataset.glyphs = String(drawn.glyphs);
      c.dataset.lines = String(drawn.lines);
      c.dataset.slice = String(drawn.slice ?? '');
      c.dataset.coarsePairs = String(drawn.coarsePairs);
      c.dataset.track = drawn.trackMarkers.join(',');
    }
  }

  private drawLens(l: LensScene, w: number, h: number, dpr: number): void {
    const g = this.ctx;
    const ijk: Vec3 = [0, 0, 0];
    ijk[this.sliceAxis(l)] = l.slice;
    const p0 = this.at(indexToWorld(l.desc, ijk), w, h);
    const step = (axis: number): Pt => {
      const q: Vec3 = [...ijk];
      q[axis] += 1;
      const p = this.at(indexToWorld(l.desc, q), w, h);
      return [p[0] - p0[0], p[1] - p0[1]];
    };
    const a = step(l.pixels.colAxis);
    const b = step(l.pixels.rowAxis);
    g.save();
    g.beginPath();
    g.arc(l.x, l.y, l.radius, 0, 2 * Math.PI);
    g.clip();
    // image pixel (u, v) covers [u, u+1) x [v, v+1): voxel centres at u + 1/2; like vtk, the picture
    // spans the voxel centres only; nearest voxel, as the vtk views draw (smoothing blurred the edges
    // the lens is there to judge)
    g.setTransform(
      dpr * a[0],
      dpr * a[1],
      dpr * b[0],
      dpr * b[1],
      dpr * (p0[0] - 0.5 * (a[0] + b[0])),
      dpr * (p0[1] - 0.5 * (a[1] + b[1])),
    );
    g.imageSmoothingEnabled = false;
    const { width: iw, height: ih } = l.pixels;
    if (iw > 1 && ih > 1) g.drawImage(l.image, 0.5, 0.5, iw - 1, ih - 1, 0.5, 0.5, iw - 1, ih - 1);
    g.restore();
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.beginPath();
    g.arc(l.x, l.y, l.radius, 0, 2 * Math.PI);
    g.strokeStyle = 'rgba(255,255,0,0.8)';
    g.lineWidth = 1.5;
    g.stroke();
  }

  /** The index axis the lens's slice is taken along (the one that is neither column nor row). */
  private sliceAxis(l: LensScene): number {
    return 3 - l.pixels.colAxis - l.pixels.rowAxis;
  }

  private drawGrid(f: SliceOverlay, w: number, h: number): number {
    const g = this.ctx;
    g.beginPath();
    for (const line of f.lines) {
      for (let p = 0; p < line.length; p += 3) {
        const [x, y] = this.at([line[p], line[p + 1], line[p + 2]], w, h);
        if (p === 0) g.moveTo(x, y);
        else g.lineTo(x, y);
      }
    }
    g.strokeStyle = 'rgba(80,255,200,0.75)';
    g.lineWidth = 1;
    g.stroke();
    return f.lines.length;
  }

  private drawGlyphs(f: SliceOverlay, maxMm: number, w: number, h: number): number {
    const g = this.ctx;
    const stops = magnitudeStops(maxMm);
    const bins: Path2D[] = Array.from({ length: COLOR_BINS }, () => new Path2D());
    for (const gl of f.glyphs) {
      const a = this.at(gl.position, w, h);
      const b = this.at(plus(gl.position, gl.inPlane), w, h);
      const bin = Math.min(COLOR_BINS - 1, Math.floor((gl.magnitudeMm / Math.max(1e-9, maxMm)) * COLOR_BINS));
      const p = bins[bin];
      const dx = b[0] - a[0];
      const dy = b[1] - a[1];
      const len = Math.hypot(dx, dy);
      if (len < 1.5) {
        p.rect(a[0] - 1, a[1] - 1, 2, 2); // shorter than 1.5 px: a dot
        continue;
      }
      p.moveTo(a[0], a[1]);
      p.lineTo(b[0], b[1]);
      const head = Math.min(6, 0.4 * len);
      const ux = dx / len;
      const uy = dy / len;
      const c = Math.cos(0.45);
      const s = Math.sin(0.45);
      p.moveTo(b[0] - head * (ux * c - uy * s), b[1] - head * (uy * c + ux * s));
      p.lineTo(b[0], b[1]);
      p.lineTo(b[0] - head * (ux * c + uy * s), b[1] - head * (uy * c - ux * s));
    }
    // a dark halo under every arrow, then the arrows in their colours
    g.lineWidth = 3.5;
    g.strokeStyle = 'rgba(0,0,0,0.55)';
    for (const p of bins) g.stroke(p);
    g.lineWidth = 1.5;
    bins.forEach((p, bin) => {
      g.strokeStyle = cssColor(colorAt(stops, ((bin + 0.5) / COLOR_BINS) * maxMm * 10));
      g.stroke(p);
    });
    // the scale bar: arrows are drawn true to scale
    const o = this.view.pick(0.5, 0.5);
    const right = this.view.pick(0.6, 0.5);
    const pxPerMm = (0.1 * w) / Math.max(1e-9, Math.hypot(right[0] - o[0], right[1] - o[1], right[2] - o[2]));
    const bar = scaleBar(pxPerMm, Math.min(100, w / 4));
    const x1 = w - 10;
    const y = h - 12;
    g.beginPath();
    g.moveTo(x1 - bar.px, y);
    g.lineTo(x1, y);
    g.moveTo(x1 - bar.px, y - 4);
    g.lineTo(x1 - bar.px, y + 4);
    g.moveTo(x1, y - 4);
    g.lineTo(x1, y + 4);
    g.strokeStyle = '#fff';
    g.lineWidth = 1.5;
    g.stroke();
    g.fillStyle = '#fff';
    g.font = '11px system-ui, sans-serif';
    g.textAlign = 'right';
    g.fillText(`${bar.mm} mm`, x1, y - 6);
    return f.glyphs.length;
  }

  private drawPairs(s: PairsScene, w: number, h: number, drawn: Drawn): void {
    const g = this.ctx;
    const stops = residualStops(s.scaleMm);
    const shown = pairsInSlab(s.pairs, CAMERA[this.name].normalAxis, s.slabCentreMm, s.halfSlabMm);
    let selected: Pt | null = null;
    for (const { pair, fixedIn, movingIn } of shown) {
      const color = cssColor(colorAt(stops, s.residualOf(pair)));
      drawn.colors[pair.index] = color;
      const a = this.at(pair.fixed, w, h);
      const b = this.at(pair.moving, w, h);
      this.segment(a, b, color, 1.5, fixedIn && movingIn ? [] : [4, 3]);
      if (movingIn) {
        g.beginPath();
        g.arc(b[0], b[1], 4, 0, 2 * Math.PI);
        g.lineWidth = 2;
        g.stroke();
        drawn.movingMarkers++;
        this.markers.push({ index: pair.index, at: b });
      }
      if (fixedIn) {
        g.beginPath();
        g.arc(a[0], a[1], 4, 0, 2 * Math.PI);
        g.fillStyle = color;
        g.fill();
        g.lineWidth = 1;
        g.strokeStyle = '#000';
        g.stroke();
        drawn.fixedMarkers++;
        this.markers.push({ index: pair.index, at: a });
      }
      if (pair.index === s.selected) selected = fixedIn ? a : b;
    }
    if (selected) {
      g.beginPath();
      g.arc(selected[0], selected[1], 7, 0, 2 * Math.PI);
      g.strokeStyle = '#fff';
      g.lineWidth = 2;
      g.stroke();
    }
    drawn.pairs = shown.length;
  }

  /** A line between two screen points (dash pattern [] = solid). */
  private segment(a: Pt, b: Pt, color: string, width: number, dash: number[]): void {
    const g = this.ctx;
    g.beginPath();
    g.setLineDash(dash);
    g.moveTo(a[0], a[1]);
    g.lineTo(b[0], b[1]);
    g.strokeStyle = color;
    g.lineWidth = width;
    g.stroke();
    g.setLineDash([]);
  }

  /** Coarse pairs: fixed point a filled square, moving point an open square, joined by a thin line. */
  private drawCoarsePairs(s: CoarsePairsScene, w: number, h: number): number {
    const g = this.ctx;
    const stops = residualStops(s.scaleMm);
    const shown = pairsInSlab(s.pairs, CAMERA[this.name].normalAxis, s.slabCentreMm, s.halfSlabMm);
    for (const { pair, fixedIn, movingIn } of shown) {
      const color = cssColor(colorAt(stops, pair.residualMm));
      const a = this.at(pair.fixed, w, h);
      const b = this.at(pair.moving, w, h);
      this.segment(a, b, color, 1, fixedIn && movingIn ? [] : [3, 3]);
      if (fixedIn) {
        g.fillStyle = color;
        g.fillRect(a[0] - 2.5, a[1] - 2.5, 5, 5);
      }
      if (movingIn) g.strokeRect(b[0] - 2.5, b[1] - 2.5, 5, 5);
    }
    return shown.length;
  }

  /**
   * Point tracking: the clicked fixed point (green +), its SAM match on the moving image (cyan ring,
   * score beside it) and the registration's mapping of the point (yellow x), each where it lies
   * within the slab of the shown slice; the match and the mapping joined by a dashed line.
   */
  private drawTracked(s: TrackedScene, w: number, h: number): string[] {
    const g = this.ctx;
    const axis = CAMERA[this.name].normalAxis;
    const inSlab = (p: readonly number[] | null): p is readonly number[] =>
      !!p && Math.abs(p[axis] - s.slabCentreMm) <= s.halfSlabMm;
    const t = s.tracked;
    const drawn: string[] = [];
    g.lineWidth = 2;
    if (inSlab(t.matched) && inSlab(t.mapped))
      this.segment(this.at(t.matched, w, h), this.at(t.mapped, w, h), '#ff0', 2, [4, 3]);
    if (inSlab(t.point)) {
      const [x, y] = this.at(t.point, w, h);
      g.beginPath();
      g.moveTo(x - 7, y);
      g.lineTo(x + 7, y);
      g.moveTo(x, y - 7);
      g.lineTo(x, y + 7);
      g.strokeStyle = '#3f3';
      g.stroke();
      drawn.push('fixed');
    }
    if (inSlab(t.mapped)) {
      const [x, y] = this.at(t.mapped, w, h);
      g.beginPath();
      g.moveTo(x - 5, y - 5);
      g.lineTo(x + 5, y + 5);
      g.moveTo(x - 5, y + 5);
      g.lineTo(x + 5, y - 5);
      g.strokeStyle = '#ff0';
      g.stroke();
      drawn.push('mapped');
    }
    if (inSlab(t.matched)) {
      const [x, y] = this.at(t.matched, w, h);
      g.beginPath();
      g.arc(x, y, 8, 0, 2 * Math.PI);
      g.strokeStyle = t.accepted ? '#0ff' : '#f80';
      g.stroke();
      g.fillStyle = g.strokeStyle;
      g.font = '11px system-ui, sans-serif';
      g.textAlign = 'left';
      g.fillText(`SAM ${t.score.toFixed(2)}`, x + 11, y - 6);
      drawn.push('matched');
    }
    return drawn;
  }

  /** The pair whose marker is under a point (CSS px in the view), or null. */
  pairAt(x: number, y: number): number | null {
    return hitMarker(this.markers, [x, y], 7)?.index ?? null;
  }
}
