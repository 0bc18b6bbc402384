/**
 * Debian's Chromium for the UI tests (no Playwright browser download): the executable and the flags
 * that give WebGL2 through SwiftShader on a machine without a GPU.
 */
import { existsSync } from 'node:fs';

export const CHROMIUM = process.env.SAM_CHROMIUM ?? '/usr/bin/chromium';
export const hasChromium = existsSync(CHROMIUM);

export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--use-angle=swiftshader',
  '--enable-unsafe-swiftshader',
  '--enable-unsafe-webgpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  // The compositor rasterises in software; WebGL still runs on SwiftShader. On this 2-core machine
  // this doubles the frame rate of the slice views (compositing through SwiftShader costs a core).
  '--disable-gpu-compositing',
  '--disable-renderer-backgrounding',
  '--disable-background-timer-throttling',
  ...(process.env.SAM_CHROMIUM_EXTRA ?? '').split(' ').filter(Boolean),
];
