/**
 * The affine stage's matched point pairs: a sortable residual table (click a header to sort, a row to
 * move the linked cursor to the pair's fixed point), a checkbox per pair to exclude it, which refits
 * the affine at once without the excluded pairs (the engine's review/refit.ts), with its RMS and residual
 * histogram; the rows keep their order until a header is clicked again. The refit is reported only: the warped image is not recomputed; it goes to the store, so
 * that the pair markers over the views take its residuals' colours. The selected pair (a row click or
 * a marker click in a view) is highlighted and scrolled into sight.
 */
import { useEffect, useMemo, useRef, useState } from 'react';
import type { AffinePair, AffineRefit } from '../../main/engine/workstation/types.ts';
import { samApi } from '../api/client.ts';
import { useApp } from '../store/index.ts';

type SortKey = 'index' | 'score' | 'residualMm' | 'inlier';
const COLUMNS: { key: SortKey | null; label: string }[] = [
  { key: null, label: 'excl.' },
  { key: 'index', label: '#' },
  { key: null, label: 'fixed (mm)' },
  { key: null, label: 'moving (mm)' },
  { key: 'score', label: 'score' },
  { key: 'residualMm', label: 'residual (mm)' },
  { key: 'inlier', label: 'inlier' },
];

/** What the inlier column's values mean (its header's tooltip). */
const INLIER_HELP =
  'yes: fitted (an inlier of the robust affine fit)\n' +
  'no: kept by the similarity and cycle checks, but an outlier of the fit\n' +
  'not kept: failed the similarity or forward-backward cycle check, not fitted\n' +
  '(residual sort: the kept pairs first, then the not kept)';

const mm = (p: number[]) => p.map((x) => x.toFixed(1)).join(', ');

function Histogram({ h }: { h: AffineRefit['histogram'] }): React.JSX.Element {
  const counts = h.fitted.map((n, b) => n + h.excluded[b]);
  const top = Math.max(1, ...counts);
  const w = 8;
  return (
    <svg
      data-testid="residual-histogram"
      data-bins={JSON.stringify(counts)}
      width={counts.length * w}
      height={36}
      aria-label="residual histogram (mm)"
    >
      {counts.map((n, b) => (
        <rect key={b} x={b * w} y={36 - (36 * n) / top} width={w - 1} height={(36 * n) / top} fill="#7ab">
          <title>{`${h.edgesMm[b]}–${h.edgesMm[b + 1]} mm: ${n}`}</title>
        </rect>
      ))}
    </svg>
  );
}

function PairsTable({ pairs, rmsMm }: { pairs: AffinePair[]; rmsMm: number }): React.JSX.Element {
  const [sort, setSort] = useState<{ key: SortKey; desc: boolean }>({ key: 'residualMm', desc: true });
  const [excluded, setExcluded] = useState<Set<number>>(new Set());
  const refit = useApp((s) => s.refit);
  const selected = useApp((s) => s.selectedPair);
  /** The residuals the rows are ordered by: taken when a header is clicked, so a refit does not move rows under the mouse. */
  const [orderBy, setOrderBy] = useState<AffineRefit | null>(null);
  const latest = useRef(0);
  const body = useRef<HTMLTableSectionElement>(null);
  useEffect(() => {
    if (selected === null) return;
    body.current?.querySelector(`tr[data-index="${selected}"]`)?.scrollIntoView({ block: 'nearest' });
  }, [selected]);
  const rows = useMemo(() => {
    const withRefit = (p: AffinePair, f: AffineRefit | null) => {
      const r = f?.residuals[p.index];
      return r ? { ...p, residualMm: r.residualMm, inlier: r.inlier } : p;
    };
    const v = (p: AffinePair) => Number(withRefit(p, orderBy)[sort.key]);
    // by residual, the pairs the fit used come first: the not-kept ones (failed the similarity or
    // cycle check, residuals of hundreds of mm) would otherwise fill the top of a worst-first table
    const group = (p: AffinePair) => (sort.key === 'residualMm' && !p.kept ? 1 : 0);
    const order = [...pairs].sort(
      (a, b) => group(a) - group(b) || (sort.desc ? v(b) - v(a) : v(a) - v(b)) || a.index - b.index,
    );
    return order.map((p) => withRefit(p, refit));
  }, [pairs, refit, orderBy, sort]);
  /** Excluding or including a pair refits the affine at once (the engine's robust fit, ~10-30 ms); the latest answer wins. */
  const toggle = (i: number) => {
    const n = new Set(excluded);
    if (!n.delete(i)) n.add(i);
    setExcluded(n);
    const ask = ++latest.current;
    samApi()
      .refitAffine([...n].sort((a, b) => a - b))
      .then((r) => {
        if (ask !== latest.current) return;
        useApp.getState().setRefit(r);
        useApp.getState().setError(null);
      })
      .catch((e: Error) => ask === latest.current && useApp.getState().setError(`refit: ${e.message}`));
  };
  return (
    <>
      <div style={{ display: 'flex', flexWrap: 'wrap', gap: 6, alignItems: 'center', flex: 'none' }}>
        <span data-testid="pairs-rms" data-rms={rmsMm}>
          {pairs.length} affine pairs, registration's affine: RMS {rmsMm.toFixed(3)} mm
        </span>{' '}
        <span data-testid="excluded-count">{excluded.size} excluded</span>{' '}
        {refit && (
          <span data-testid="refit-result" data-rms={refit.rmsMm}>
            refit affine: RMS {refit.rmsMm.toFixed(3)} mm (not applied), {refit.fitted} fitted, {refit.inliers} inliers
          </span>
        )}
        {refit && <Histogram h={refit.histogram} />}
      </div>
      <div className="pairs-scroll">
        <table data-testid="residual-table">
          <thead>
            <tr>
              {COLUMNS.map((c) => (
                <th
                  key={c.label}
                  data-testid={c.key ? `sort-${c.key}` : undefined}
                  style={c.key ? { cursor: 'pointer' } : undefined}
                  title={c.key === 'inlier' ? INLIER_HELP : undefined}
                  onClick={() => {
                    if (!c.key) return;
                    setOrderBy(refit);
                    setSort((s) => ({ key: c.key!, desc: s.key === c.key ? !s.desc : true }));
                  }}
                >
                  {c.label}
                  {sort.key === c.key ? (sort.desc ? ' ▼' : ' ▲') : ''}
                </th>
              ))}
            </tr>
          </thead>
          <tbody ref={body}>
            {rows.map((p) => (
              <tr
                key={p.index}
                data-testid="pair-row"
                data-index={p.index}
                data-residual={p.residualMm}
                className={p.index === selected ? 'selected' : undefined}
                onClick={() => {
                  useApp.getState().setSelectedPair(p.index);
                  useApp.getState().setCursor([...p.fixed]);
                }}
              >
                <td>
                  <input
                    type="checkbox"
                    data-testid="exclude"
                    checked={excluded.has(p.index)}
                    onClick={(e) => e.stopPropagation()}
                    onChange={() => toggle(p.index)}
                  />
                </td>
                <td>{p.index}</td>
                <td>{mm(p.fixed)}</td>
                <td>{mm(p.moving)}</td>
                <td>{p.score.toFixed(3)}</td>
                <td>{p.residualMm.toFixed(2)}</td>
                <td>{p.inlier ? 'yes' : p.kept ? 'no' : 'not kept'}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </>
  );
}

export function PairsPanel(): React.JSX.Element | null {
  const summary = useApp((s) => s.summary);
  if (!summary?.pairs?.length) return null;
  return (
    <section className="panel pairs">
      <PairsTable key={summary.warped.id} pairs={summary.pairs} rmsMm={summary.affineRmsMm ?? NaN} />
    </section>
  );
}
