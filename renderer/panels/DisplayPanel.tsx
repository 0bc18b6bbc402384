/**
 * Window/level presets and values, the overlay (moving or warped over fixed) with its opacity, and
 * the fixed/warped comparison mode (blend, checkerboard with its tile size, difference, flicker with
 * its rate, spyglass with its lens radius).
 */
import { useShallow } from 'zustand/react/shallow';
import { useApp } from '../store/index.ts';
import { PRESETS, type PresetName } from '../store/view.ts';
import { DIFFERENCE_NO_DATA_RGB, DIFFERENCE_STOPS } from '../views/color-maps.ts';
import { Legend } from './Legend.tsx';

export function DisplayPanel(): React.JSX.Element {
  const {
    window,
    level,
    overlay,
    opacity,
    setWindowLevel,
    setOverlay,
    setOpacity,
    warped,
    compare,
    checkerSize,
    setCompare,
    setCheckerSize,
    flickerHz,
    setFlickerHz,
    spyglassPx,
    setSpyglassPx,
  } = useApp(
    useShallow((s) => ({
      window: s.window,
      level: s.level,
      overlay: s.overlay,
      opacity: s.opacity,
      setWindowLevel: s.setWindowLevel,
      setOverlay: s.setOverlay,
      setOpacity: s.setOpacity,
      warped: s.warped,
      compare: s.compare,
      checkerSize: s.checkerSize,
      setCompare: s.setCompare,
      setCheckerSize: s.setCheckerSize,
      flickerHz: s.flickerHz,
      setFlickerHz: s.setFlickerHz,
      spyglassPx: s.spyglassPx,
      setSpyglassPx: s.setSpyglassPx,
    })),
  );
  return (
    <section className="panel display-bar" data-testid="display-bar">
      {(Object.keys(PRESETS) as PresetName[]).map((p) => (
        <button
          key={p}
          data-testid={`preset-${p.replace(' ', '-')}`}
          onClick={() => setWindowLevel(PRESETS[p].window, PRESETS[p].level)}
        >
          {p}
        </button>
      ))}
      <span data-testid="wl">
        W {Math.round(window)} L {Math.round(level)} HU
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
      <label>
        compare{' '}
        <select
          data-testid="compare-mode"
          value={compare}
          disabled={!warped}
          onChange={(e) => setCompare(e.target.value as typeof compare)}
        >
          <option value="blend">blend</option>
          <option value="checker">checkerboard</option>
          <option value="difference">difference |fixed − warped|</option>
          <option value="flicker">flicker fixed / warped</option>
          <option value="spyglass">spyglass (warped in a lens)</option>
        </select>
      </label>
      {compare === 'flicker' && (
        <label>
          rate{' '}
          <input
            data-testid="flicker-hz"
            type="range"
            min={0.5}
            max={4}
            step={0.5}
            value={flickerHz}
            onChange={(e) => setFlickerHz(Number(e.target.value))}
          />{' '}
          {flickerHz} Hz
        </label>
      )}
      {compare === 'spyglass' && (
        <label>
          lens radius (px){' '}
          <input
            data-testid="spyglass-radius"
            type="number"
            min={10}
            max={300}
            value={spyglassPx}
            onChange={(e) => setSpyglassPx(Number(e.target.value))}
            style={{ width: '4em' }}
          />
        </label>
      )}
      {compare === 'difference' && (
        <Legend
          title="|fixed − warped|"
          stops={DIFFERENCE_STOPS}
          unit="HU"
          testId="legend-difference"
          noData={DIFFERENCE_NO_DATA_RGB}
          inline
        />
      )}
      {compare === 'checker' && (
        <label>
          tile (voxels){' '}
          <input
            data-testid="checker-size"
            type="number"
            min={1}
            max={256}
            value={checkerSize}
            onChange={(e) => setCheckerSize(Number(e.target.value))}
            style={{ width: '4em' }}
          />
        </label>
      )}
      {warped && (
        <span className="info" data-testid="info-warped" data-desc={JSON.stringify(warped.desc)}>
          warped {warped.desc.size.join('×')}; {(warped.transfer.bytes / 1e6).toFixed(1)} MB in{' '}
          {warped.transfer.ms.toFixed(0)} ms
        </span>
      )}
    </section>
  );
}
