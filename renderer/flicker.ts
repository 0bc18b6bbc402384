/**
 * The flicker comparison's clock: while the compare mode is 'flicker', switches the store's phase
 * between the fixed and the warped image every half period (flickerHz full cycles per second); the
 * views only change their overlay layer's opacity (no volume pass, no texture upload). Off: the phase
 * returns to fixed.
 */
import { useApp } from './store/index.ts';

let timer: ReturnType<typeof setInterval> | undefined;
let runningHz = 0;

function update(): void {
  const s = useApp.getState();
  const on = s.compare === 'flicker' && !!s.warped;
  const hz = on ? s.flickerHz : 0;
  if (hz === runningHz) return;
  clearInterval(timer);
  timer = undefined;
  runningHz = hz;
  if (!on) {
    if (s.flickerWarped) s.setFlickerWarped(false);
    return;
  }
  timer = setInterval(() => {
    const st = useApp.getState();
    st.setFlickerWarped(!st.flickerWarped);
  }, 500 / hz);
}

useApp.subscribe((s, p) => {
  if (s.compare !== p.compare || s.flickerHz !== p.flickerHz || s.warped !== p.warped) update();
});
