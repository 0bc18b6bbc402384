/**
 * The affine stage's matched point pairs: a sortable residual table (click a header to sort, a row to
 * move the linked cursor to the pair's fixed point), a checkbox per pair to exclude it, and a refit of
 * the affine without the excluded pairs (the engine's review/refit.ts) with its RMS and residual
 * histogram. The refit is reported only: the warped image is not recomputed; it goes to the store, so
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
  const [busy, setBusy] = useState(false);
  const body = useRef<HTMLTableSectionElement>(null);
  useEffect(() => {
    if (selected === null) return;
    body.current?.querySelector(`tr[data-index="${selected}"]`)?.scrollIntoView({ block: 'nearest' });
  }, [selected]);
  const rows = useMemo(() => {
    const s = pairs.map((p) => {
      const r = refit?.residuals[p.index];
      return r ? { ...p, residualMm: r.residualMm, inlier: r.inlier } : p;
    });
    const v = (p: AffinePair) => Number(p[sort.key]);
    return s.sort((a, b) => (sort.desc ? v(b) - v(a) : v(a) - v(b)) || a.index - b.index);
  }, [pairs, refit, sort]);
  const toggle = (i: number) =>
    setExcluded((e) => {
      const n = new Set(e);
      if (!n.delete(i)) n.add(i);
      return n;
    });
  const doRefit = async () => {
    setBusy(true);
    try {
      useApp.getState().setRefit(await samApi().refitAffine([...excluded].sort((a, b) => a - b)));
      useApp.getState().setError(null);
    } catch (e) {
      useApp.getState().setError(`refit: ${(e as Error).message}`);
    } finally {
      setBusy(false);
    }
  };
  return (
    <>
      <div style={{ display: 'flex', flexWrap: 'wrap', gap: 6, alignItems: 'center', flex: 'none' }}>
        <span data-testid="pairs-rms" data-rms={rmsMm}>
          {pairs.length} affine pairs, registration's affine: RMS {rmsMm.toFixed(3)} mm
        </span>{' '}
        <button data-testid="refit" disabled={busy} onClick={() => void doRefit()}>
          Refit ({excluded.size} excluded)
        </button>{' '}
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
                  onClick={() => c.key && setSort((s) => ({ key: c.key!, desc: s.key === c.key ? !s.desc : true }))}
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
