/**
 * The SAM review tools: the confidence map (computed by the engine on request: both images embedded
 * once per result), its overlay toggle and per-region summary, the QA flags (review/qa-flags.ts: the
 * confidence rules and the Jacobian rules; before the map exists, the Jacobian rules alone), and
 * point tracking (in tracking mode a double-click finds the point on the moving image; "show on
 * moving" puts the cursor there over the moving image).
 */
import { useState } from 'react';
import { useShallow } from 'zustand/react/shallow';
import { qaFlags } from '../../main/engine/review/qa-flags.ts';
import { computeConfidence } from '../confidence-actions.ts';
import { reviewable } from '../review-actions.ts';
import { useApp } from '../store/index.ts';
import type { Vec3 } from '../store/view.ts';
import { confidenceStops } from '../views/color-maps.ts';
import { Checkbox } from './Checkbox.tsx';
import { Legend } from './Legend.tsx';

const pct = (x: number) => (Number.isFinite(x) ? `${x.toFixed(1)} %` : '–');
const mm = (p: readonly number[]) => p.map((x) => x.toFixed(1)).join(', ');

export function ConfidencePanel(): React.JSX.Element | null {
  const s = useApp(
    useShallow((st) => ({
      warped: st.warped,
      samModel: !!st.caps?.samModel,
      live: reviewable(st),
      fieldQa: st.fieldQa,
      confidence: st.confidence,
      status: st.confidenceStatus,
      progress: st.confidenceProgress,
      show: st.showConfidence,
      trackMode: st.trackMode,
      tracked: st.tracked,
      tracking: st.tracking,
    })),
  );
  const [labelsPath, setLabelsPath] = useState('');
  const [namesPath, setNamesPath] = useState('');
  if (!s.warped) return null;
  const app = useApp.getState();
  const organs = s.confidence ? [...s.confidence.summary.labels].sort((a, b) => b.percentBelow - a.percentBelow) : [];
  const c = s.confidence;
  const flags = c ? c.flags : s.fieldQa ? qaFlags(null, s.fieldQa.jacobian) : null;
  const worstOctant = c?.summary.octants.reduce((a, b) => (b.percentBelow > a.percentBelow ? b : a));
  const t = s.tracked;
  // shows the image itself: the map overlays (which take the overlay layer) are turned off
  const goTo = (p: Vec3, overlay: 'moving' | 'warped') => {
    app.showMap(null);
    app.setOverlay(overlay);
    app.setCursor(p);
  };
  return (
    <section className="panel tall" data-testid="confidence-panel">
      <button
        data-testid="confidence-compute"
        disabled={!s.samModel || !s.live || s.status === 'running'}
        title={s.samModel ? 'SAM similarity of the fixed and warped embeddings' : 'no SAM model installed'}
        onClick={() =>
          void computeConfidence(
            labelsPath.trim() ? { path: labelsPath.trim(), namesPath: namesPath.trim() || undefined } : undefined,
          )
        }
      >
        SAM confidence
      </button>
      <label title="a label map of the fixed image (e.g. TotalSegmentator), for per-organ summaries">
        labels{' '}
        <input
          data-testid="confidence-labels"
          value={labelsPath}
          placeholder="optional label map"
          onChange={(e) => setLabelsPath(e.target.value)}
          size={14}
        />
      </label>
      <label title='label names: JSON {"1": "spleen"}, lines &apos;1,spleen&apos;, or a TotalSegmentator statistics.json'>
        names{' '}
        <input
          data-testid="confidence-label-names"
          value={namesPath}
          placeholder="optional"
          onChange={(e) => setNamesPath(e.target.value)}
          size={10}
        />
      </label>
      <span data-testid="confidence-status" data-status={s.status}>
        {s.status === 'running'
          ? s.progress
            ? `${s.progress.stage} ${s.progress.done}/${s.progress.total}`
            : 'starting…'
          : s.status === 'done' && c
            ? `below ${c.summary.threshold}: body ${pct(c.summary.body.percentBelow)} (mean ${c.summary.body.meanSimilarity.toFixed(3)}); ` +
              `thirds ${c.summary.thirds.map((r) => pct(r.percentBelow)).join(' / ')}; worst octant ${worstOctant!.name} ${pct(worstOctant!.percentBelow)}`
            : s.samModel
              ? ''
              : 'no SAM model: confidence and tracking unavailable'}
      </span>
      {organs.length > 0 && (
        <span data-testid="confidence-organs" data-organs={JSON.stringify(organs)}>
          organs, most below {c!.summary.threshold}:{' '}
          {organs
            .slice(0, 5)
            .map((o) => `${o.name} ${pct(o.percentBelow)}`)
            .join(', ')}
        </span>
      )}
      <Checkbox
        testId="overlay-confidence"
        disabled={!c}
        checked={s.show}
        onChange={(checked) => app.showMap(checked ? 'confidence' : null)}
      >
        confidence map
      </Checkbox>
      {s.show && c && (
        <Legend
          title={`SAM similarity (red: below ${c.summary.threshold})`}
          stops={confidenceStops(c.summary.threshold).slice(0, -1)}
          unit=""
          scale={1000}
          testId="legend-confidence"
        />
      )}
      <span
        data-testid="qa-flags"
        data-flags={flags ? JSON.stringify(flags) : ''}
        className={flags?.length ? 'error' : 'ok'}
        title={flags?.map((f) => f.message).join('\n')}
      >
        {flags === null
          ? ''
          : flags.length
            ? `QA: ${flags.length} flag${flags.length > 1 ? 's' : ''}: ${flags.map((f) => f.message).join('; ')}`
            : `QA: nothing flagged${c ? '' : ' (Jacobian only; no confidence map yet)'}`}
      </span>
      <Checkbox
        testId="track-mode"
        disabled={!s.samModel || !s.live}
        checked={s.trackMode}
        onChange={(checked) => app.setTrack(checked ? { trackMode: true } : { trackMode: false, tracked: null })}
      >
        track points (double-click)
      </Checkbox>
      {s.tracking && (
        <span className="info" data-testid="tracking">
          tracking… (the first point embeds both images with SAM: a few seconds)
        </span>
      )}
      {t && (
        <span data-testid="tracked" data-tracked={JSON.stringify(t)}>
          ({mm(t.point)}) mm → moving ({mm(t.matched)}) mm, score {t.score.toFixed(3)}
          {t.accepted ? '' : ' (rejected by the cycle check)'}
          {t.distanceMm !== null ? `, ${t.distanceMm.toFixed(1)} mm from the registration's mapping` : ''}{' '}
          <button data-testid="track-show-moving" onClick={() => goTo(t.matched, 'moving')}>
            show on moving
          </button>{' '}
          <button data-testid="track-show-fixed" onClick={() => goTo(t.point, 'warped')}>
            back to fixed
          </button>
        </span>
      )}
    </section>
  );
}
