/**
 * Application shell. For now: open a volume and show its geometry; the viewers, registration and
 * review panels are built on this (see the issues).
 */
import { useState } from 'react';
import { samApi } from './api/client.ts';
import type { VolumeSummary } from '../main/engine/volume/describe.ts';

export function App(): React.JSX.Element {
  const [summary, setSummary] = useState<VolumeSummary | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  async function open(): Promise<void> {
    setError(null);
    const path = await samApi().pickVolume();
    if (!path) return;
    setBusy(true);
    try {
      setSummary(await samApi().volumeInfo(path));
    } catch (e) {
      setError((e as Error).message);
    } finally {
      setBusy(false);
    }
  }

  return (
    <main style={{ fontFamily: 'system-ui, sans-serif', padding: 16 }}>
      <h1>SAM Registration Workstation</h1>
      <button onClick={() => void open()} disabled={busy}>
        {busy ? 'Reading…' : 'Open CT volume…'}
      </button>
      {error && (
        <p role="alert" style={{ color: '#b00' }}>
          {error}
        </p>
      )}
      {summary && <pre data-testid="volume-summary">{JSON.stringify(summary, null, 2)}</pre>}
    </main>
  );
}
