/**
 * The review panel: the engine's readout at the cursor (double-click a view), the deformation QA
 * (Jacobian min/max, folded %, displacement) with the Jacobian and displacement magnitude (|u|) map
 * overlay toggles (one at a time; legends in the overlay panel), and the sign-off
 * (approve / reject with a comment), written into the export's report.json / report.html.
 */
import { useState } from 'react';
import { useShallow } from 'zustand/react/shallow';
import { reviewable, signOff } from '../review-actions.ts';
import { useApp } from '../store/index.ts';
import { Checkbox } from './Checkbox.tsx';

const f = (x: number | null | undefined, d = 1) => (x === null || x === undefined ? '–' : x.toFixed(d));

export function ReviewPanel(): React.JSX.Element | null {
  const { warped, readout, fieldQa, showJacobian, showMagnitude, showMap, signed, live } = useApp(
    useShallow((s) => ({
      warped: s.warped,
      readout: s.readout,
      fieldQa: s.fieldQa,
      showJacobian: s.showJacobian,
      showMagnitude: s.showMagnitude,
      showMap: s.showMap,
      signed: s.signOff,
      live: reviewable(s),
    })),
  );
  const [comment, setComment] = useState('');
  const [reviewer, setReviewer] = useState('');
  if (!warped) return null;
  const j = fieldQa?.jacobian;
  return (
    <section className="panel">
      <span data-testid="readout" data-readout={readout ? JSON.stringify(readout) : ''}>
        {readout
          ? `voxel ${readout.index.join(',')} (${readout.point.map((x) => x.toFixed(1)).join(', ')} mm LPS): fixed ${f(readout.fixedHu, 0)} HU, warped ${f(readout.warpedHu, 0)} HU (moving ${f(readout.movingHu, 0)} at x+u), ` +
            `u (${readout.displacement.map((x) => x.toFixed(2)).join(', ')}) mm, J ${f(readout.jacobian, 3)}` +
            (readout.folded ? ' (folded)' : '') +
            (readout.samSimilarity !== null
              ? `, SAM ${f(readout.samSimilarity, 3)}`
              : ', SAM – (after the confidence map)')
          : live
            ? 'double-click a view for the readout'
            : 'no readout (this result was not registered in this session)'}
      </span>
      <span data-testid="qa-panel" data-qa={fieldQa ? JSON.stringify(fieldQa.jacobian) : ''}>
        {j
          ? `in the fixed body: Jacobian min ${f(j.min, 3)} max ${f(j.max, 3)} mean ${f(j.mean, 3)}; folded ${j.folded} (${f(j.foldedPercent, 3)} %); ` +
            `|u| mean ${f(fieldQa.displacementMm.mean, 2)} max ${f(fieldQa.displacementMm.max, 2)} mm`
          : live
            ? 'field QA…'
            : 'no field QA'}
      </span>
      <Checkbox
        testId="overlay-jacobian"
        title="the Jacobian determinant map, in place of the overlay layer"
        disabled={!fieldQa}
        checked={showJacobian}
        onChange={(checked) => showMap(checked ? 'jacobian' : null)}
      >
        Jacobian map
      </Checkbox>
      <Checkbox
        testId="overlay-magnitude"
        title="the displacement magnitude |u| map (the engine sends |u| x 10 as int16, 0.1 mm steps)"
        disabled={!fieldQa}
        checked={showMagnitude}
        onChange={(checked) => showMap(checked ? 'magnitude' : null)}
      >
        |u| map
      </Checkbox>
      {(showJacobian || showMagnitude) && (
        <span className="info" data-testid="map-replaces-overlay">
          (the map takes the overlay layer's place: untick it to see the warped image again)
        </span>
      )}
      <label>
        reviewer{' '}
        <input
          data-testid="signoff-reviewer"
          value={reviewer}
          onChange={(e) => setReviewer(e.target.value)}
          size={12}
        />
      </label>
      <label>
        comment{' '}
        <input data-testid="signoff-comment" value={comment} onChange={(e) => setComment(e.target.value)} size={24} />
      </label>
      <button data-testid="signoff-approve" onClick={() => signOff('approved', comment, reviewer)}>
        Approve
      </button>
      <button data-testid="signoff-reject" onClick={() => signOff('rejected', comment, reviewer)}>
        Reject
      </button>
      {signed && (
        <span data-testid="signoff-status">
          {signed.decision} by {signed.reviewer} {signed.comment ? `(“${signed.comment}”)` : ''}
        </span>
      )}
    </section>
  );
}
