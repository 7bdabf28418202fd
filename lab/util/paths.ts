import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The project root: two levels above this file in both `lab/util` and `dist/lab/util`. */
function findRoot(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const up = resolve(here, '..', '..');
  return up.endsWith('/dist') ? dirname(up) : up;
}

export const projectRoot = findRoot();
export const provisionersDir = join(projectRoot, 'provisioners');
export const scenariosDir = join(projectRoot, 'scenarios');

/** Where images and package downloads are cached (outside the repository). */
export const cacheDir = (): string => process.env.LAB_CACHE_DIR ?? '/var/cache/lab';
/** Where live runs keep their overlays, sockets and PIDs until they are destroyed. */
export const stateDir = (): string => process.env.LAB_STATE_DIR ?? '/var/lib/lab';
/** Where run reports go. */
export const reportsDir = (): string => process.env.LAB_REPORTS_DIR ?? join(projectRoot, 'reports');

/** Now as a report folder's name part: 20261206-051400. */
export const folderStamp = (): string => new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
