/**
 * The review overlays drawn over the views: the affine pairs of the shown slab (coloured by
 * residual, with the legend; click a marker to go to the pair), the field's arrow glyphs and deformed
 * grid lines (their spacing on screen; glyphs true to scale, coloured by |u|), and the legends of the
 * Jacobian and displacement magnitude maps when those are shown.
 */
import { useMemo } from 'react';
import { useShallow } from 'zustand/react/shallow';
import { reviewable } from '../review-actions.ts';
import { useApp } from '../store/index.ts';
import { JACOBIAN_STOPS, magnitudeScaleMm, magnitudeStops, residualStops } from '../views/color-maps.ts';
import { pairResidualScaleMm } from '../views/overlay-geometry.ts';
import { Legend } from './Legend.tsx';
import { Checkbox } from './Checkbox.tsx';

export function OverlayPanel(): React.JSX.Element | null {
  const s = useApp(
    useShallow((a) => ({
      pairs: a.summary?.pairs,
      coarse: a.summary?.coarsePairs,
      showCoarse: a.showCoarsePairs,
      setShowCoarse: a.setShowCoarsePairs,
      gridMm: a.summary?.gridMm,
      live: reviewable(a),
      warped: a.warped,
      maxMm: a.fieldQa?.displacementMm.max,
      showPairs: a.showPairs,
      showGlyphs: a.showGlyphs,
      showGrid: a.showGrid,
      spacing: a.glyphSpacingPx,
      showJacobian: a.showJacobian,
      showMagnitude: a.showMagnitude,
      setShowPairs: a.setShowPairs,
      setShowGlyphs: a.setShowGlyphs,
      setShowGrid: a.setShowGrid,
      setSpacing: a.setGlyphSpacingPx,
    })),
  );
  const residualMm = useMemo(() => pairResidualScaleMm(s.pairs ?? []), [s.pairs]);
  if (!s.warped) return null;
  const magMm = magnitudeScaleMm(s.maxMm);
  return (
    <section className="panel side-panel" data-testid="overlay-panel">
      <Checkbox
        testId="overlay-pairs"
        disabled={!s.pairs?.length}
        checked={s.showPairs}
        onChange={(checked) => s.setShowPairs(checked)}
      >
        affine pairs (±{((s.gridMm ?? 24) / 2).toFixed(0)} mm slab)
      </Checkbox>
      <Checkbox
        testId="overlay-coarse-pairs"
        disabled={!s.coarse?.length}
        checked={s.showCoarse}
        onChange={(checked) => s.setShowCoarse(checked)}
      >
        coarse pairs{s.coarse?.length ? ` (${s.coarse.length})` : ''}
      </Checkbox>
      <Checkbox
        testId="overlay-glyphs"
        disabled={!s.live}
        checked={s.showGlyphs}
        onChange={(checked) => s.setShowGlyphs(checked)}
      >
        arrows u(x)
      </Checkbox>
      <Checkbox
        testId="overlay-grid"
        disabled={!s.live}
        checked={s.showGrid}
        onChange={(checked) => s.setShowGrid(checked)}
      >
        deformed grid
      </Checkbox>
      <label>
        every{' '}
        <input
          data-testid="overlay-spacing"
          type="number"
          min={8}
          max={200}
          value={s.spacing}
          onChange={(e) => s.setSpacing(Number(e.target.value))}
          style={{ width: '3.5em' }}
        />{' '}
        px
      </label>
      {s.showPairs && !!s.pairs?.length && (
        <Legend title="pair residual" stops={residualStops(residualMm)} unit="mm" testId="legend-residual" />
      )}
      {(s.showMagnitude || s.showGlyphs) && s.maxMm !== undefined && (
        <Legend title="|u|" stops={magnitudeStops(magMm)} unit="mm" scale={10} testId="legend-magnitude" />
      )}
      {s.showJacobian && (
        <Legend title="Jacobian" stops={JACOBIAN_STOPS} unit="" scale={1000} testId="legend-jacobian" />
      )}
    </section>
  );
}
