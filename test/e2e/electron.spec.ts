/**
 * The desktop app under Playwright's Electron driver: the window opens with the sandboxed preload
 * bridge (mode 'desktop'), reads a real volume through IPC and draws it in the three views. Skipped
 * where the Electron binary is not installed (ELECTRON_SKIP_BINARY_DOWNLOAD=1, as on the test machine).
 */
import { _electron as electron, expect, test } from '@playwright/test';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { DATA } from './web-server.ts';

function electronBinary(): string | null {
  try {
    const p = createRequire(import.meta.url)('electron') as unknown;
    return typeof p === 'string' && existsSync(p) ? p : null;
  } catch {
    return null;
  }
}

const binary = electronBinary();
test.skip(!binary, 'the Electron binary is not installed here (ELECTRON_SKIP_BINARY_DOWNLOAD=1)');
test.skip(!existsSync('out/main/index.js'), 'build the app first (npm run build)');

test('desktop app: bridge, open a volume over IPC, three views drawn', async () => {
  const app = await electron.launch({ executablePath: binary!, args: ['out/main/index.js'] });
  try {
    const page = await app.firstWindow();
    await expect(page.getByTestId('mode')).toHaveText('desktop');
    await page.getByTestId('path-fixed').fill(join(DATA, 'elastix/Testing/Data/3DCT_lung_baseline_small.mha'));
    await page.getByTestId('open-fixed').click();
    await expect(page.getByTestId('info-fixed')).toContainText('57×78×64', { timeout: 60_000 });
    for (const v of ['axial', 'coronal', 'sagittal']) {
      const s = await page.evaluate((name) => window.__sam!.stats(window.__sam!.views.get(name as 'axial')!)!, v);
      expect(s.std).toBeGreaterThan(5);
    }
    await page.screenshot({ path: 'test-results/e2e/electron-window.png' });
  } finally {
    await app.close();
  }
});
