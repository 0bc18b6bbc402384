/** Window/level presets and values, and the overlay (moving or warped over fixed) with its opacity. */
import { useApp } from '../store/index.ts';
import { PRESETS, type PresetName } from '../store/view.ts';

export function DisplayPanel(): React.JSX.Element {
  const { window, level, overlay, opacity, setWindowLevel, setOverlay, setOpacity, warped } = useApp();
  return (
    <section className="panel">
      {(Object.keys(PRESETS) as PresetName[]).map((p) => (
        <button key={p} data-testid={`preset-${p.replace(' ', '-')}`} onClick={() => setWindowLevel(PRESETS[p].window, PRESETS[p].level)}>
          {p}
        </button>
      ))}
      <span data-testid="wl">
        W {Math.round(window)} L {Math.round(level)}
      </span>
      <label>
        overlay{' '}
        <select data-testid="overlay" value={overlay} onChange={(e) => setOverlay(e.target.value as typeof overlay)}>
          <option value="none">none</option>
          <option value="moving">moving (unregistered)</option>
          <option value="warped" disabled={!warped}>
            warped moving
          </option>
        </select>
      </label>
      <label>
        opacity{' '}
        <input
          data-testid="opacity"
          type="range"
          min={0}
          max={1}
          step={0.05}
          value={opacity}
          onChange={(e) => setOpacity(Number(e.target.value))}
        />
      </label>
    </section>
  );
}
