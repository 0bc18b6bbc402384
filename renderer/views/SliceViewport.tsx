/**
 * React wrapper of one SliceView: mounts it, feeds it from the store without React re-renders
 * (zustand subscribe; a view renders only when its slice, layers or display changed), and maps the
 * mouse: wheel = scroll slices (Ctrl+wheel = zoom), left drag = window/level, right drag = zoom,
 * middle or Shift+left drag = pan, double-click = move the linked cursor there (and ask the engine for
 * the readout, and in tracking mode track the point into the moving image), left click on an affine
 * pair's marker = move the cursor to the pair; keys over a view: arrow up/down one slice, Page Up/Down
 * ten. The review overlays are drawn over the view by an
 * OverlayController (overlay-controller.ts).
 */
import { useEffect, useRef, useState } from 'react';
import { trackAt } from '../confidence-actions.ts';
import { readoutAt } from '../review-actions.ts';
import { useApp, type AppState } from '../store/index.ts';
import { imageOf } from './images.ts';
import { magnitudeScaleMm } from './color-maps.ts';
import { OverlayController } from './overlay-controller.ts';
import { liveOverlays, liveViews } from './registry.ts';
import { SliceView, type OverlayColors } from './slice-view.ts';
import {
  CAMERA,
  indexToWorld,
  NORMAL_NAME,
  orientationLabels,
  stepCursor,
  VIEWS,
  worldToIndex,
  type ViewName,
} from './view-geometry.ts';

/** The base layer: the comparison composite when one is on, else the fixed volume. */
function baseOf(s: AppState): AppState['fixed'] {
  return s.composite ?? s.fixed;
}

/**
 * The overlay layer: the confidence, Jacobian or |u| map when toggled on, else moving/warped (none over a
 * composite or under the spyglass, which draws the warped slice itself; the warped one in flicker).
 */
function overlayOf(s: AppState): AppState['fixed'] {
  if (s.showConfidence && s.confidenceMap) return s.confidenceMap;
  if (s.showJacobian && s.jacobian) return s.jacobian;
  if (s.showMagnitude && s.magnitude) return s.magnitude;
  if (s.composite || s.compare === 'spyglass') return null;
  if (s.compare === 'flicker') return s.warped;
  if (s.overlay === 'none') return null;
  return s[s.overlay];
}

/** The overlay layer's colours and opacity: flicker shows the warped image in grey, opaque or not at all. */
function overlayLook(s: AppState): { colors: OverlayColors; opacity: number } {
  if (s.showConfidence && s.confidenceMap) return { colors: 'confidence', opacity: s.opacity };
  if (s.showJacobian && s.jacobian) return { colors: 'jacobian', opacity: s.opacity };
  if (s.showMagnitude && s.magnitude) return { colors: 'magnitude', opacity: s.opacity };
  if (s.compare === 'flicker') return { colors: 'grey', opacity: s.flickerWarped ? 1 : 0 };
  return { colors: 'orange', opacity: s.opacity };
}

/**
 * Brings a view up to date with the store. 'heavy' = a layer got a new volume (a new texture to
 * upload): the three views then render one per animation frame instead of all in one frame.
 */
function sync(view: SliceView, s: AppState, prev: AppState | null): false | 'light' | 'heavy' {
  let dirty = false;
  let heavy = false;
  const base = baseOf(s);
  if (!prev || base !== baseOf(prev)) {
    view.setBase(base ? imageOf(base) : null, base?.desc ?? null, !!prev && prev.fixed === s.fixed);
    dirty = heavy = true;
  }
  const over = overlayOf(s);
  const prevOver = prev ? overlayOf(prev) : undefined;
  if (over !== prevOver) {
    view.setOverlay(over ? imageOf(over) : null, over?.desc ?? null);
    heavy = heavy || !!over;
    dirty = true;
  }
  const baseColors = s.composite && s.compare === 'difference' ? 'difference' : 'grey';
  const look = overlayLook(s);
  if (view.setMagnitudeRange(magnitudeScaleMm(s.fieldQa?.displacementMm.max))) dirty = true;
  if (s.confidence && view.setConfidenceThreshold(s.confidence.summary.threshold)) dirty = true;
  if (view.setColors(baseColors, look.colors)) dirty = true;
  if (!prev || s.window !== prev.window || s.level !== prev.level || look.opacity !== overlayLook(prev).opacity) {
    view.setWindowLevel(s.window, s.level, look.opacity);
    dirty = true;
  }
  if (!prev || s.cursor !== prev.cursor) dirty = view.setCursor(s.cursor) || dirty;
  return heavy ? 'heavy' : dirty ? 'light' : false;
}

function afterFrames(n: number, f: () => void): void {
  if (n <= 0) f();
  else requestAnimationFrame(() => afterFrames(n - 1, f));
}

export function SliceViewport({ name }: { name: ViewName }): React.JSX.Element {
  const host = useRef<HTMLDivElement>(null);
  const crossH = useRef<HTMLDivElement>(null);
  const crossV = useRef<HTMLDivElement>(null);
  const [label, setLabel] = useState('');

  useEffect(() => {
    const el = host.current!;
    const view = new SliceView(el, name);
    liveViews.set(name, view);
    const show = () => {
      const mm = view.slicePositionMm();
      setLabel(
        view.sliceCount
          ? `${view.slice + 1}/${view.sliceCount}` + (mm === null ? '' : ` · ${NORMAL_NAME[name]} ${mm.toFixed(1)} mm`)
          : '',
      );
    };
    const overlay = new OverlayController(el, view, name);
    liveOverlays.set(name, overlay.overlay);
    sync(view, useApp.getState(), null);
    // the crosshair: the linked cursor, where the other two views' planes cross this one
    let crossAt = '';
    let crossTimer: ReturnType<typeof setTimeout> | undefined;
    let lastCrossEvent = 0;
    const cross = () => {
      const s = useApp.getState();
      const [fx, fy] = view.project(s.cursor);
      const visible = !!s.fixed;
      const key = visible ? `${fx.toFixed(4)} ${fy.toFixed(4)}` : 'hidden';
      if (key === crossAt) return; // unchanged: touch nothing (style writes cost frames here)
      crossAt = key;
      crossV.current!.style.left = `${(fx * 100).toFixed(2)}%`;
      crossH.current!.style.top = `${(fy * 100).toFixed(2)}%`;
      crossV.current!.style.display = crossH.current!.style.display = visible ? 'block' : 'none';
    };
    view.onRender = () => {
      cross();
      overlay.draw();
    };
    view.render();
    show();
    let alive = true;
    const unsub = useApp.subscribe((s, prev) => {
      const change = sync(view, s, prev);
      if (change === 'light') {
        view.render();
        show();
      } else if (!change && s.cursor !== prev.cursor) {
        // only the crosshair moved: at once for a single move (a double-click elsewhere), but while
        // another view scrolls, once scrolling pauses, so that view keeps the frames to itself
        clearTimeout(crossTimer);
        const now = performance.now();
        if (now - lastCrossEvent > 150) cross();
        else crossTimer = setTimeout(cross, 150);
        lastCrossEvent = now;
      } else if (change === 'heavy')
        afterFrames(VIEWS.indexOf(name), () => {
          if (!alive) return;
          view.render();
          show();
        });
    });

    let drag: { x: number; y: number; button: number; shift: boolean; w: number; l: number } | null = null;
    const onWheel = (e: WheelEvent) => {
      e.preventDefault();
      const s = useApp.getState();
      view.interacting();
      if (e.ctrlKey) {
        view.zoomBy(e.deltaY < 0 ? 1.1 : 1 / 1.1);
        view.render();
        return;
      }
      if (!s.fixed) return;
      s.setCursor(stepCursor(s.fixed.desc, name, s.cursor, e.deltaY > 0 ? 1 : -1));
    };
    const onDown = (e: PointerEvent) => {
      if (e.button === 0 && !e.shiftKey && overlay.pickPair(e)) return;
      const s = useApp.getState();
      drag = { x: e.clientX, y: e.clientY, button: e.button, shift: e.shiftKey, w: s.window, l: s.level };
      el.setPointerCapture(e.pointerId);
    };
    const onMove = (e: PointerEvent) => {
      if (!drag) return;
      const r = el.getBoundingClientRect();
      const dx = e.clientX - drag.x;
      const dy = e.clientY - drag.y;
      view.interacting();
      if (drag.button === 1 || (drag.button === 0 && drag.shift)) {
        view.panBy(dx / r.width, dy / r.height);
        view.render();
        drag.x = e.clientX;
        drag.y = e.clientY;
      } else if (drag.button === 2) {
        view.zoomBy(Math.exp(-dy / 200));
        view.render();
        drag.y = e.clientY;
      } else if (drag.button === 0) {
        useApp.getState().setWindowLevel(drag.w + dx * 4, drag.l + dy * 2);
      }
    };
    const onUp = () => (drag = null);
    const onDbl = (e: MouseEvent) => {
      const s = useApp.getState();
      if (!s.fixed) return;
      const r = el.getBoundingClientRect();
      const picked = view.pick((e.clientX - r.left) / r.width, (e.clientY - r.top) / r.height);
      // keep the view's own slice, move the other two axes to the clicked point
      const axis = CAMERA[name].normalAxis;
      picked[axis] = s.cursor[axis];
      const g = s.fixed.desc;
      const ci = worldToIndex(g, picked);
      // a double click beside the image (the black around it) reads nothing and moves nothing
      if (ci.some((v, a) => !(v >= -0.5 && v <= g.size[a] - 0.5))) return;
      const c = indexToWorld(g, ci);
      s.setCursor(c);
      void readoutAt(c);
      void trackAt(c);
    };
    const noMenu = (e: Event) => e.preventDefault();
    // keys step the slices of the view under the mouse (not while typing in a field)
    let hovered = false;
    const onEnter = () => (hovered = true);
    const onLeave = () => (hovered = false);
    const STEPS: Record<string, number> = { ArrowUp: -1, ArrowDown: 1, PageUp: -10, PageDown: 10 };
    const onKey = (e: KeyboardEvent) => {
      const n = STEPS[e.key];
      const target = e.target as HTMLElement | null;
      if (!hovered || n === undefined || target?.closest('input, select, textarea')) return;
      const s = useApp.getState();
      if (!s.fixed) return;
      e.preventDefault();
      s.setCursor(stepCursor(s.fixed.desc, name, s.cursor, n));
    };
    el.addEventListener('pointerenter', onEnter);
    el.addEventListener('pointerleave', onLeave);
    window.addEventListener('keydown', onKey);
    el.addEventListener('wheel', onWheel, { passive: false });
    el.addEventListener('pointerdown', onDown);
    el.addEventListener('pointermove', onMove);
    el.addEventListener('pointerup', onUp);
    el.addEventListener('dblclick', onDbl);
    el.addEventListener('contextmenu', noMenu);
    return () => {
      alive = false;
      unsub();
      el.removeEventListener('wheel', onWheel);
      el.removeEventListener('pointerenter', onEnter);
      el.removeEventListener('pointerleave', onLeave);
      window.removeEventListener('keydown', onKey);
      el.removeEventListener('pointerdown', onDown);
      el.removeEventListener('pointermove', onMove);
      el.removeEventListener('pointerup', onUp);
      el.removeEventListener('dblclick', onDbl);
      el.removeEventListener('contextmenu', noMenu);
      clearTimeout(crossTimer);
      view.onRender = null;
      overlay.dispose();
      liveOverlays.delete(name);
      liveViews.delete(name);
      view.delete();
    };
  }, [name]);

  const edges = orientationLabels(name);
  return (
    <div className="viewport">
      <div className="view-host" ref={host} data-testid={`view-${name}`} />
      <div className="cross-h" ref={crossH} />
      <div className="cross-v" ref={crossV} />
      <div className="view-label">
        {name} <span data-testid={`slice-${name}`}>{label}</span>
      </div>
      {label && (
        <>
          <div className="orient orient-left" data-testid={`orient-${name}-left`}>
            {edges.left}
          </div>
          <div className="orient orient-right">{edges.right}</div>
          <div className="orient orient-top">{edges.top}</div>
          <div className="orient orient-bottom">{edges.bottom}</div>
        </>
      )}
    </div>
  );
}
