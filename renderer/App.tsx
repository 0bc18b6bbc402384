/**
 * Application shell: open fixed and moving, display controls, three linked slice views with the
 * review tools in a column at their right (readout, QA and sign-off, overlays, affine pairs),
 * registration with progress and cancel, export and sessions.
 */
import { useEffect } from 'react';
import { samApi } from './api/client.ts';
import { exportTo, loadVolume, openSession, saveSession } from './actions.ts';
import { useApp } from './store/index.ts';
import { SliceViewport } from './views/SliceViewport.tsx';
import { VIEWS } from './views/view-geometry.ts';
import { OpenPanel } from './panels/OpenPanel.tsx';
import { DisplayPanel } from './panels/DisplayPanel.tsx';
import { RegisterPanel } from './panels/RegisterPanel.tsx';
import { ExportPanel } from './panels/ExportPanel.tsx';
import { ReviewPanel } from './panels/ReviewPanel.tsx';
import { PairsPanel } from './panels/PairsPanel.tsx';
import { ConfidencePanel } from './panels/ConfidencePanel.tsx';
import { OverlayPanel } from './panels/OverlayPanel.tsx';
import './flicker.ts';

export function App(): React.JSX.Element {
  const error = useApp((s) => s.error);
  const busy = useApp((s) => s.busy);
  const caps = useApp((s) => s.caps);

  useEffect(() => {
    samApi()
      .capabilities()
      .then((c) => {
        const s = useApp.getState();
        s.setCaps(c);
        s.setSettings({ matcher: c.defaultMatcher });
      })
      .catch((e: Error) => useApp.getState().setError(e.message));
    // desktop: the File menu's commands do what the panels' buttons do
    return samApi().onMenu?.((m) => {
      if (m.action === 'open-fixed') void loadVolume('fixed', m.path);
      else if (m.action === 'open-moving') void loadVolume('moving', m.path);
      else if (m.action === 'export') void exportTo(m.path);
      else if (m.action === 'session-save') void saveSession(m.path);
      else void openSession(m.path);
    });
  }, []);

  return (
    <main className="app">
      <header>
        <strong>SAM Registration Workstation</strong> <span data-testid="mode">{caps?.mode ?? 'connecting…'}</span>
        {busy && <span data-testid="busy"> {busy}…</span>}
        {error && (
          <span role="alert" className="error" data-testid="error">
            {error}
          </span>
        )}
      </header>
      <OpenPanel />
      <DisplayPanel />
      <div className="workspace">
        <div className="views">
          {VIEWS.map((v) => (
            <SliceViewport key={v} name={v} />
          ))}
        </div>
        <aside className="side" data-testid="side-column">
          <ReviewPanel />
          <ConfidencePanel />
          <OverlayPanel />
          <PairsPanel />
        </aside>
      </div>
      <RegisterPanel />
      <ExportPanel />
    </main>
  );
}
