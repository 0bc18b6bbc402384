/**
 * One vtk.js slice view (axial, coronal or sagittal): a render window on a container, a base layer
 * (the fixed volume, grey, window/level) and an overlay layer (moving or warped, orange, blended by
 * opacity; grey in the flicker comparison, hidden at opacity 0; or the Jacobian or displacement
 * magnitude map in its own colours, color-maps.ts). In the difference comparison mode the base layer
 * shows |fixed - warped| in a heat colour map. Every vtk object of a view is created in the constructor and deleted in delete().
 * Rendering happens only when something changed (no render loop). While the user scrolls, zooms or
 * pans, the view renders at half resolution (a quarter of the pixels, as VTK's interactive update
 * rate does) and returns to full resolution 200 ms after the last event: with a software WebGL
 * (SwiftShader) the pixel count decides the frame rate.
 */
import '@kitware/vtk.js/Rendering/OpenGL/Profiles/Volume';
import vtkRenderWindow from '@kitware/vtk.js/Rendering/Core/RenderWindow';
import vtkRenderer from '@kitware/vtk.js/Rendering/Core/Renderer';
import vtkOpenGLRenderWindow from '@kitware/vtk.js/Rendering/OpenGL/RenderWindow';
import vtkImageMapper from '@kitware/vtk.js/Rendering/Core/ImageMapper';
import vtkImageSlice from '@kitware/vtk.js/Rendering/Core/ImageSlice';
import vtkColorTransferFunction from '@kitware/vtk.js/Rendering/Core/ColorTransferFunction';
import vtkPiecewiseFunction from '@kitware/vtk.js/Common/DataModel/PiecewiseFunction';
import type vtkImageData from '@kitware/vtk.js/Common/DataModel/ImageData';
import type { VolumeDescriptor } from '../../main/engine/workstation/types.ts';
import type { Vec3 } from '../store/view.ts';
import {
  confidenceOpacityStops,
  confidenceStops,
  DIFFERENCE_NO_DATA,
  DIFFERENCE_NO_DATA_RGB,
  DIFFERENCE_STOPS,
  JACOBIAN_STOPS,
  magnitudeStops,
  type Stop,
} from './color-maps.ts';
import {
  CAMERA,
  centreOf,
  indexAxisAlong,
  indexToWorld,
  screenRight,
  sliceFor,
  worldToIndex,
  type ViewName,
} from './view-geometry.ts';

const INTERACTIVE_SCALE = 0.5;
const STILL_AFTER_MS = 200;

export type BaseColors = 'grey' | 'difference';
export type OverlayColors = 'orange' | 'grey' | 'jacobian' | 'magnitude' | 'confidence';

function setStops(f: vtkColorTransferFunction, stops: readonly Stop[]): void {
  f.removeAllPoints();
  for (const [x, r, g, b] of stops) f.addRGBPoint(x, r, g, b);
}

interface Layer {
  mapper: vtkImageMapper;
  actor: vtkImageSlice;
  image: vtkImageData | null;
  desc: VolumeDescriptor | null;
}

export class SliceView {
  private readonly renderWindow = vtkRenderWindow.newInstance();
  private readonly renderer = vtkRenderer.newInstance({ background: [0, 0, 0] });
  private readonly glWindow = vtkOpenGLRenderWindow.newInstance();
  private readonly overlayColors = vtkColorTransferFunction.newInstance();
  private readonly differenceColors = vtkColorTransferFunction.newInstance();
  private readonly jacobianColors = vtkColorTransferFunction.newInstance();
  private readonly confidenceColors = vtkColorTransferFunction.newInstance();
  private readonly confidenceOpacity = vtkPiecewiseFunction.newInstance();
  private confidenceThreshold = NaN;
  private readonly magnitudeColors = vtkColorTransferFunction.newInstance();
  private magnitudeMaxMm = 0;
  private baseKind: BaseColors = 'grey';
  private overlayKind: OverlayColors = 'orange';
  private readonly base: Layer;
  private readonly overlay: Layer;
  private cursor: Vec3 = [0, 0, 0];
  private window = 1500;
  private level = -600;
  private opacity = 0.5;
  private zoom = 1;
  private pan: [number, number] = [0, 0];
  private readonly resizeObserver: ResizeObserver;
  /** Drawing-buffer scale: 1 when still, INTERACTIVE_SCALE while interacting. */
  private scale = 1;
  private stillTimer: ReturnType<typeof setTimeout> | undefined;
  /** Called after every render (the crosshair follows the camera and the cursor). */
  onRender: (() => void) | null = null;
  /** Slice index the base layer shows (for the UI and tests). */
  slice = 0;
  /** Whether the shown plane cuts the overlay volume (else the overlay is hidden). */
  private overlayInside = true;
  sliceCount = 0;

  constructor(
    private readonly container: HTMLElement,
    readonly view: ViewName,
  ) {
    this.renderWindow.addRenderer(this.renderer);
    this.renderWindow.addView(this.glWindow);
    this.glWindow.setContainer(container);
    this.base = this.layer();
    this.overlay = this.layer();
    this.overlay.actor.getProperty().setRGBTransferFunction(0, this.overlayColors);
    setStops(this.differenceColors, DIFFERENCE_STOPS);
    this.differenceColors.addRGBPoint(DIFFERENCE_NO_DATA, ...DIFFERENCE_NO_DATA_RGB);
    setStops(this.jacobianColors, JACOBIAN_STOPS);
    this.setMagnitudeRange(10);
    this.setConfidenceThreshold(0.6);
    this.renderer.getActiveCamera().setParallelProjection(true);
    this.resizeObserver = new ResizeObserver(() => this.resize());
    this.resizeObserver.observe(container);
    this.resize();
  }

  private layer(): Layer {
    const mapper = vtkImageMapper.newInstance();
    const actor = vtkImageSlice.newInstance();
    actor.setMapper(mapper);
    actor.getProperty().setInterpolationTypeToLinear();
    actor.setVisibility(false);
    this.renderer.addActor(actor);
    return { mapper, actor, image: null, desc: null };
  }

  /** The canvas vtk.js draws into. */
  canvas(): HTMLCanvasElement | null {
    return this.container.querySelector('canvas');
  }

  /** Call on each interactive event: lowers the resolution now, restores it when events stop. */
  interacting(): void {
    clearTimeout(this.stillTimer);
    if (this.scale !== INTERACTIVE_SCALE) {
      this.scale = INTERACTIVE_SCALE;
      this.resize(false);
    }
    this.stillTimer = setTimeout(() => {
      this.scale = 1;
      this.resize();
    }, STILL_AFTER_MS);
  }

  private resize(render = true): void {
    const r = this.container.getBoundingClientRect();
    const dpr = (window.devicePixelRatio || 1) * this.scale;
    this.glWindow.setSize(Math.max(1, Math.floor(r.width * dpr)), Math.max(1, Math.floor(r.height * dpr)));
    this.placeCamera();
    if (render) this.render();
  }

  private setLayer(l: Layer, image: vtkImageData | null, desc: VolumeDescriptor | null): boolean {
    if (l.image === image) return false;
    l.image = image;
    l.desc = desc;
    if (image) l.mapper.setInputData(image);
    this.updateVisibility();
    return true;
  }

  /** The base layer shows when it has an image; the overlay also needs an opacity above 0. */
  private updateVisibility(): void {
    this.base.actor.setVisibility(!!this.base.image);
    this.overlay.actor.setVisibility(!!this.overlay.image && this.opacity > 0 && this.overlayInside);
  }

  /** keepCamera: the same grid shown differently (a comparison composite): zoom and pan stay. */
  setBase(image: vtkImageData | null, desc: VolumeDescriptor | null, keepCamera = false): void {
    if (!this.setLayer(this.base, image, desc)) return;
    if (desc && !keepCamera) {
      this.zoom = 1;
      this.pan = [0, 0];
    }
    this.updateSlices();
    this.placeCamera();
  }

  setOverlay(image: vtkImageData | null, desc: VolumeDescriptor | null): void {
    if (this.setLayer(this.overlay, image, desc)) this.updateSlices();
  }

  /** The confidence overlay's threshold (SAM similarity); returns whether it changed. */
  setConfidenceThreshold(threshold: number): boolean {
    if (threshold === this.confidenceThreshold) return false;
    this.confidenceThreshold = threshold;
    setStops(this.confidenceColors, confidenceStops(threshold));
    this.confidenceOpacity.removeAllPoints();
    for (const [x, a] of confidenceOpacityStops(threshold)) this.confidenceOpacity.addPoint(x, a);
    return true;
  }

  /** Colour maps of the two layers; returns whether anything changed. */
  setColors(base: BaseColors, overlay: OverlayColors): boolean {
    if (base === this.baseKind && overlay === this.overlayKind) return false;
    this.baseKind = base;
    this.overlayKind = overlay;
    this.setWindowLevel(this.window, this.level, this.opacity);
    return true;
  }

  /** The displacement magnitude map's colour scale: 0..maxMm (the map holds |u| x 10). */
  setMagnitudeRange(maxMm: number): boolean {
    if (maxMm === this.magnitudeMaxMm || !(maxMm > 0)) return false;
    this.magnitudeMaxMm = maxMm;
    setStops(this.magnitudeColors, magnitudeStops(maxMm));
    return true;
  }

  setCursor(c: Vec3): boolean {
    this.cursor = c;
    return this.updateSlices();
  }

  setWindowLevel(window: number, level: number, opacity: number): void {
    this.window = window;
    this.level = level;
    this.opacity = opacity;
    const p = this.base.actor.getProperty();
    p.setColorWindow(window);
    p.setColorLevel(level);
    if (this.baseKind === 'difference') {
      p.setRGBTransferFunction(0, this.differenceColors);
      p.setUseLookupTableScalarRange(true);
    } else {
      p.setRGBTransferFunction(0, null);
      p.setUseLookupTableScalarRange(false);
    }
    const lo = level - window / 2;
    const hi = level + window / 2;
    this.overlayColors.removeAllPoints();
    this.overlayColors.addRGBPoint(lo, 0, 0, 0);
    this.overlayColors.addRGBPoint(hi, 1, 0.6, 0.1);
    const o = this.overlay.actor.getProperty();
    const lut = {
      orange: this.overlayColors,
      grey: null,
      jacobian: this.jacobianColors,
      magnitude: this.magnitudeColors,
      confidence: this.confidenceColors,
    };
    o.setRGBTransferFunction(0, lut[this.overlayKind]);
    o.setPiecewiseFunction(0, this.overlayKind === 'confidence' ? this.confidenceOpacity : null);
    o.setUseLookupTableScalarRange(this.overlayKind !== 'grey');
    o.setColorWindow(window);
    o.setColorLevel(level);
    o.setOpacity(opacity);
    this.updateVisibility();
  }

  /** Multiplies the zoom (>1 = closer) and moves the view by screen-fraction offsets. */
  zoomBy(f: number): void {
    this.zoom = Math.min(50, Math.max(0.1, this.zoom * f));
    this.placeCamera();
  }

  panBy(dxFrac: number, dyFrac: number): void {
    const s = (this.fitScale() / this.zoom) * 2;
    this.pan = [this.pan[0] - dxFrac * s * this.aspect(), this.pan[1] + dyFrac * s];
    this.placeCamera();
  }

  /** Parallel scale (half the view height in mm) at which the base volume just fits the view. */
  private fitScale(): number {
    const desc = this.base.desc;
    if (!desc) return 100;
    const { up, normalAxis } = CAMERA[this.view];
    const upAxis = up.findIndex((x) => x !== 0);
    const acrossAxis = [0, 1, 2].find((a) => a !== upAxis && a !== normalAxis)!;
    const extent = (worldAxis: number) => {
      const c = indexAxisAlong(desc, worldAxis);
      return desc.size[c] * desc.spacing[c];
    };
    return Math.max(extent(upAxis) / 2, extent(acrossAxis) / (2 * this.aspect())) * 1.02;
  }

  private aspect(): number {
    const [w, h] = this.glWindow.getSize();
    return w / Math.max(1, h);
  }

  private updateSlices(): boolean {
    let changed = false;
    for (const l of [this.base, this.overlay]) {
      if (!l.desc) continue;
      const { axis, slice, count, inside } = sliceFor(l.desc, this.view, this.cursor);
      if (l === this.overlay && inside !== this.overlayInside) {
        // an overlay volume (the unregistered moving image) that this plane misses is not drawn:
        // its clamped edge slice would sit where it has no data
        this.overlayInside = inside;
        this.updateVisibility();
        changed = true;
      }
      if (l.mapper.getSlicingMode() !== axis) {
        l.mapper.setSlicingMode(axis);
        changed = true;
      }
      if (l.mapper.getSlice() !== slice) {
        l.mapper.setSlice(slice);
        changed = true;
      }
      if (l === this.base) {
        this.slice = slice;
        this.sliceCount = count;
      }
    }
    return changed;
  }

  /** Camera: looks along the view's normal through the volume centre, in the radiological orientation. */
  private placeCamera(): void {
    const desc = this.base.desc;
    if (!desc) return;
    const { dop, up } = CAMERA[this.view];
    const c = centreOf(desc);
    const right = screenRight(this.view);
    const f: Vec3 = [0, 1, 2].map((i) => c[i] + right[i] * this.pan[0] + up[i] * this.pan[1]) as Vec3;
    const cam = this.renderer.getActiveCamera();
    const dist = 2000;
    cam.setFocalPoint(f[0], f[1], f[2]);
    cam.setPosition(f[0] - dop[0] * dist, f[1] - dop[1] * dist, f[2] - dop[2] * dist);
    cam.setViewUp(up[0], up[1], up[2]);
    cam.setParallelScale(this.fitScale() / this.zoom);
    cam.setClippingRange(1, 10000);
  }

  /** World point under a screen position given as fractions of the view (0..1, y down). */
  pick(fx: number, fy: number): Vec3 {
    const cam = this.renderer.getActiveCamera();
    const f = cam.getFocalPoint();
    const { up } = CAMERA[this.view];
    const right = screenRight(this.view);
    const s = cam.getParallelScale();
    const a = (fx - 0.5) * 2 * s * this.aspect();
    const b = (0.5 - fy) * 2 * s;
    return [0, 1, 2].map((i) => f[i] + right[i] * a + up[i] * b) as Vec3;
  }

  /** Screen position (fractions of the view, y down) of a world point: the inverse of pick(). */
  project(x: Vec3): [number, number] {
    const cam = this.renderer.getActiveCamera();
    const f = cam.getFocalPoint();
    const { up } = CAMERA[this.view];
    const right = screenRight(this.view);
    const d = [x[0] - f[0], x[1] - f[1], x[2] - f[2]];
    const a = d[0] * right[0] + d[1] * right[1] + d[2] * right[2];
    const b = d[0] * up[0] + d[1] * up[1] + d[2] * up[2];
    const s = cam.getParallelScale();
    return [0.5 + a / (2 * s * this.aspect()), 0.5 - b / (2 * s)];
  }

  render(): void {
    this.renderWindow.render();
    this.onRender?.();
  }

  delete(): void {
    clearTimeout(this.stillTimer);
    this.resizeObserver.disconnect();
    for (const l of [this.base, this.overlay]) {
      this.renderer.removeActor(l.actor);
      l.actor.delete();
      l.mapper.delete();
    }
    this.overlayColors.delete();
    this.differenceColors.delete();
    this.jacobianColors.delete();
    this.confidenceColors.delete();
    this.confidenceOpacity.delete();
    this.magnitudeColors.delete();
    this.glWindow.setContainer(null as unknown as HTMLElement);
    this.glWindow.delete();
    this.renderer.delete();
    this.renderWindow.delete();
  }

  /** Current display settings (for tests and the status line). */
  /**
   * World position (LPS mm) of the shown base slice along the view's normal axis, at the cursor's
   * in-plane position (null without a volume).
   */
  slicePositionMm(): number | null {
    const desc = this.base.desc;
    if (!desc) return null;
    const { axis, slice } = sliceFor(desc, this.view, this.cursor);
    const ijk = worldToIndex(desc, this.cursor);
    ijk[axis] = slice;
    return indexToWorld(desc, ijk)[CAMERA[this.view].normalAxis];
  }

  state(): { window: number; level: number; opacity: number; zoom: number; slice: number; sliceCount: number } {
    return {
      window: this.window,
      level: this.level,
      opacity: this.opacity,
      zoom: this.zoom,
      slice: this.slice,
      sliceCount: this.sliceCount,
    };
  }
}
