/**
 * Opening the fixed and the moving volume: a path (typed, or from the native dialog in the desktop
 * app), and for a DICOM folder holding several series, a choice of series.
 */
import { useEffect, useState } from 'react';
import type { SeriesChoice } from '../../main/engine/workstation/types.ts';
import { samApi } from '../api/client.ts';
import { loadVolume } from '../actions.ts';
import { useApp } from '../store/index.ts';

function OpenRow({ role }: { role: 'fixed' | 'moving' }): React.JSX.Element {
  const [path, setPath] = useState('');
  const [series, setSeries] = useState<SeriesChoice[]>([]);
  const [chosen, setChosen] = useState('');
  const loaded = useApp((s) => s[role]);
  const desktop = useApp((s) => s.caps?.mode === 'desktop');
  const busy = useApp((s) => s.busy);
  // a volume opened another way (a reopened session) shows its path here
  const loadedPath = loaded?.desc.path;
  useEffect(() => {
    if (loadedPath) setPath(loadedPath);
  }, [loadedPath]);

  async function open(): Promise<void> {
    const uid = chosen || undefined;
    if (!uid) {
      const list = await samApi()
        .listSeries(path)
        .catch(() => []);
      if (list.length > 1) {
        setSeries(list);
        useApp.getState().setError(`${path} holds ${list.length} series: choose one`);
        return;
      }
    }
    if (await loadVolume(role, path, uid)) setSeries([]);
  }

  async function browse(kind: 'volume' | 'dicom-folder'): Promise<void> {
    const p = await samApi().pickPath(kind);
    if (p) {
      setPath(p);
      setSeries([]);
      setChosen('');
    }
  }

  return (
    <div className="open-row">
      <label>
        {role}{' '}
        <input
          data-testid={`path-${role}`}
          value={path}
          placeholder="NIfTI / MHA file or DICOM folder"
          onChange={(e) => (setPath(e.target.value), setSeries([]), setChosen(''))}
          size={40}
        />
      </label>
      {desktop && (
        <>
          <button onClick={() => void browse('volume')}>File…</button>
          <button onClick={() => void browse('dicom-folder')}>DICOM folder…</button>
        </>
      )}
      {series.length > 1 && (
        <select data-testid={`series-${role}`} value={chosen} onChange={(e) => setChosen(e.target.value)}>
          <option value="">choose a series</option>
          {series.map((s) => (
            <option key={s.seriesInstanceUid} value={s.seriesInstanceUid}>
              {s.description || s.seriesInstanceUid} ({s.size})
            </option>
          ))}
        </select>
      )}
      <button data-testid={`open-${role}`} disabled={!path || !!busy} onClick={() => void open()}>
        Open {role}
      </button>
      {loaded && (
        <span
          className="info"
          data-testid={`info-${role}`}
          data-desc={JSON.stringify(loaded.desc)}
          title={[loaded.desc.notCt, ...loaded.desc.warnings, loaded.desc.path].filter(Boolean).join('\n')}
        >
          {/* (a warning first: on a narrow window the line is cut at its end) */}
          {loaded.desc.notCt && (
            <span className="error not-ct" data-testid={`not-ct-${role}`}>
              {loaded.desc.notCt}{' '}
            </span>
          )}
          {/* how the reader changed the voxels (gantry tilt, uneven spacing resampled...): a reader of
              the images must know which slices are interpolated */}
          {loaded.desc.warnings.length > 0 && (
            <span className="volume-warning" data-testid={`warnings-${role}`}>
              ⚠ {loaded.desc.warnings.length > 1 ? `${loaded.desc.warnings.length} notes: ` : ''}
              {loaded.desc.warnings.join('; ')}{' '}
            </span>
          )}
          <b data-testid={`name-${role}`}>
            {loaded.desc.path.split(/[\\/]/).filter(Boolean).pop()}
            {loaded.desc.description ? ` (${loaded.desc.description})` : ''}
          </b>
          : {loaded.desc.size.join('×')} @ {loaded.desc.spacing.map((x) => x.toFixed(2)).join('×')} mm{' '}
          {loaded.desc.orientation}; {(loaded.transfer.bytes / 1e6).toFixed(1)} MB in {loaded.transfer.ms.toFixed(0)} ms
        </span>
      )}
    </div>
  );
}

export function OpenPanel(): React.JSX.Element {
  return (
    <section className="panel tall">
      <OpenRow role="fixed" />
      <OpenRow role="moving" />
    </section>
  );
}
