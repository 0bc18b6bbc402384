/** Export of the result into a chosen folder, and saving/reopening the session file. */
import { useState } from 'react';
import { samApi } from '../api/client.ts';
import { exportTo, openSession, saveSession } from '../actions.ts';
import { useShallow } from 'zustand/react/shallow';
import { useApp } from '../store/index.ts';

export function ExportPanel(): React.JSX.Element {
  const [dir, setDir] = useState('');
  const [session, setSession] = useState('');
  const { summary, lastExport, busy, caps, sessionSaved } = useApp(
    useShallow((a) => ({
      summary: a.summary,
      lastExport: a.lastExport,
      busy: a.busy,
      caps: a.caps,
      sessionSaved: a.sessionSaved,
    })),
  );
  const desktop = caps?.mode === 'desktop';
  const pick = async (kind: 'export-folder' | 'session-save' | 'session-open', set: (p: string) => void) => {
    const p = await samApi().pickPath(kind);
    if (p) set(p);
  };
  return (
    <section className="panel">
      <label>
        export folder <input data-testid="export-dir" value={dir} onChange={(e) => setDir(e.target.value)} size={30} />
      </label>
      {desktop && <button onClick={() => void pick('export-folder', setDir)}>Choose…</button>}
      <button data-testid="export" disabled={!summary || !dir || !!busy} onClick={() => void exportTo(dir)}>
        Export
      </button>
      {lastExport && (
        <span data-testid="export-result" title={lastExport.files.join('\n')}>
          {lastExport.reopened
            ? `result reopened from ${lastExport.dir}`
            : `${lastExport.files.length} files in ${lastExport.dir}`}
          {lastExport.previous && (
            <span data-testid="export-previous">
              {' '}
              (the earlier result there moved to {lastExport.previous.split(/[\\/]/).pop()})
            </span>
          )}
          {lastExport.notes?.map((n) => (
            <span key={n} data-testid="export-note">
              {' '}
              · {n}
            </span>
          ))}
        </span>
      )}
      <label>
        session file{' '}
        <input data-testid="session-path" value={session} onChange={(e) => setSession(e.target.value)} size={30} />
      </label>
      {desktop && <button onClick={() => void pick('session-save', setSession)}>Choose…</button>}
      <button data-testid="session-save" disabled={!session || !!busy} onClick={() => void saveSession(session)}>
        Save session
      </button>
      <button data-testid="session-open" disabled={!session || !!busy} onClick={() => void openSession(session)}>
        Open session
      </button>
      {sessionSaved && (
        <span data-testid="session-saved">
          session saved to {sessionSaved.path}
          {sessionSaved.replaced ? ' (replacing the earlier session saved there)' : ''}
        </span>
      )}
    </section>
  );
}
