/**
 * Where the example CT lives, for the commands that default to it (demo, bench-embed, bench-reg,
 * bench-train, eval-match) and for the browser server's --data default: $SAM_DATA_DIR when set, else
 * ../shared/data from the current folder, else the shared/data folder beside the repository, so the
 * defaults work from any folder. When none exists the relative path is returned, so the error names it.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** How usage lines name the data root. */
export const SHARED_DATA_LABEL = '$SAM_DATA_DIR or ../shared/data';

const FROM_CWD = '../shared/data';

/** The data root, or undefined when none of the candidates exists. */
export function findSharedData(): string | undefined {
  if (process.env.SAM_DATA_DIR) return process.env.SAM_DATA_DIR;
  if (existsSync(FROM_CWD)) return FROM_CWD;
  const besideRepo = fileURLToPath(new URL('../../../shared/data', import.meta.url));
  return existsSync(besideRepo) ? besideRepo : undefined;
}

/** A path under the data root (../shared/data when none is found, for the error to name). */
export function sharedDataPath(...parts: string[]): string {
  return join(findSharedData() ?? FROM_CWD, ...parts);
}
