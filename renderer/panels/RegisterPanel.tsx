/** Registration: matcher, grid and stages, run and cancel, per-stage progress, and the result's QA figures. */
import { cancelRegistration, runRegistration } from '../actions.ts';
import { useShallow } from 'zustand/react/shallow';
import { useApp } from '../store/index.ts';
import type { StageName } from '../../main/engine/workstation/types.ts';
import { Checkbox } from './Checkbox.tsx';

/** The cascade's stages in order; a run takes a prefix of them. */
const STAGES: StageName[] = ['affine', 'coarse', 'deform'];

function num(v: unknown, digits = 3): string {
  return typeof v === 'number' ? v.toFixed(digits) : '–';
}

export function RegisterPanel(): React.JSX.Element {
  const s = useApp(
    useShallow((a) => ({
      matcher: a.matcher,
      refine: a.refine,
      gridMm: a.gridMm,
      stages: a.stages,
      status: a.status,
      progress: a.progress,
      summary: a.summary,
      regError: a.regError,
      caps: a.caps,
      fixed: a.fixed,
      moving: a.moving,
      setSettings: a.setSettings,
    })),
  );
  const running = s.status === 'running';
  const qa = s.summary?.qa as
    | {
        nccInFixedBody?: { before: number; after: number };
        nccWhereMovingHasData?: { before: number; after: number; afterPercent: number };
        pairs?: { inliers: number; rmsMm: number };
        secondsTotal?: number;
      }
    | undefined;
  return (
    <section className="panel tall">
      <label>
        matcher{' '}
        <select
          data-testid="matcher"
          value={s.matcher}
          disabled={running}
          onChange={(e) => s.setSettings({ matcher: e.target.value as 'sam' | 'ncc' })}
        >
          <option value="sam" disabled={!s.caps?.samModel}>
            SAM{s.caps?.samModel ? '' : ' (no model installed)'}
          </option>
          <option value="ncc">NCC</option>
        </select>
      </label>
      <Checkbox
        testId="refine"
        disabled={running || s.matcher !== 'sam'}
        checked={s.matcher === 'sam' && s.refine === 'ncc'}
        title="SAM matcher: each affine match refined by NCC template matching within 8 mm of it (with its own cycle check), and the coarse stage's points found by NCC around the affine's prediction"
        onChange={(checked) => s.setSettings({ refine: checked ? 'ncc' : 'none' })}
      >
        NCC refine
      </Checkbox>
      <label>
        grid mm{' '}
        <input
          data-testid="grid"
          type="number"
          min={4}
          max={100}
          value={s.gridMm}
          disabled={running}
          onChange={(e) => s.setSettings({ gridMm: Number(e.target.value) })}
        />
      </label>
      <label>
        stages{' '}
        <select
          data-testid="stages"
          value={s.stages.join(',')}
          disabled={running}
          onChange={(e) => s.setSettings({ stages: e.target.value.split(',') as StageName[] })}
        >
          {(s.caps?.stages ?? STAGES).map((_, n, all) => (
            <option key={n} value={all.slice(0, n + 1).join(',')}>
              {all.slice(0, n + 1).join(' → ')}
            </option>
          ))}
        </select>
      </label>
      <button
        data-testid="register"
        disabled={running || !s.fixed || !s.moving || !!s.fixed.desc.notCt || !!s.moving.desc.notCt}
        title={
          s.fixed?.desc.notCt || s.moving?.desc.notCt
            ? 'an input is not a CT in Hounsfield units (see its warning)'
            : undefined
        }
        onClick={() => void runRegistration()}
      >
        Register
      </button>
      <button data-testid="cancel" disabled={!running} onClick={() => void cancelRegistration()}>
        Cancel
      </button>
      <span data-testid="reg-status">{s.status}</span>
      {/* the stage now running (or the last one), the earlier ones in the tooltip: one row, so the panel
          never grows and the views never resize while a registration runs */}
      <ul
        className="progress"
        data-testid="progress"
        title={Object.values(s.progress)
          .map((p) => `${p.stage}: ${p.done}/${p.total} (${p.elapsed.toFixed(1)} s)`)
          .join('\n')}
      >
        {Object.values(s.progress)
          .slice(-1)
          .map((p) => (
            <li key={p.stage}>
              {p.stage}:{' '}
              <span className="bar">
                <span style={{ width: `${(100 * p.done) / (p.total || 1)}%` }} />
              </span>{' '}
              {p.done}/{p.total} ({p.elapsed.toFixed(1)} s)
            </li>
          ))}
      </ul>
      {s.summary && !running && (
        <span data-testid="reg-result">
          {s.summary.reopenedFrom
            ? `reopened (registered in ${num(qa?.secondsTotal, 1)} s)`
            : `done in ${s.summary.seconds.toFixed(1)} s`}
          {/* where the moving image has data (results from before session 18: over the whole body) */}
          {qa?.nccWhereMovingHasData ? (
            <span title="normalised cross-correlation over the fixed body where the moving image has data">
              ; NCC {num(qa.nccWhereMovingHasData.before)} → {num(qa.nccWhereMovingHasData.after)} (
              {qa.nccWhereMovingHasData.afterPercent.toFixed(0)} % of the body covered);{' '}
            </span>
          ) : (
            <>
              ; NCC in body {num(qa?.nccInFixedBody?.before)} → {num(qa?.nccInFixedBody?.after)};{' '}
            </>
          )}
          {qa?.pairs?.inliers ?? '–'} inlier pairs, RMS {num(qa?.pairs?.rmsMm, 2)} mm
        </span>
      )}
      {s.regError && s.status !== 'cancelled' && <span className="error">{s.regError}</span>}
    </section>
  );
}
