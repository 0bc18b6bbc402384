/**
 * A folder that already holds a registration result (any file a result or its review writes: a
 * whole one, or the rest of one whose qa.json is missing) gets a new one only after the old one's
 * files are moved aside, into previous-<time>/ inside it: a new result never sits beside files of an
 * older one (a coarse-pairs.csv or a signed report of another run would contradict it; a DICOM series
 * folder would take in a second series), and nothing is deleted. Only the files a result and its
 * review write are moved; anything else in the folder stays where it is.
 */
import { existsSync, mkdirSync, renameSync } from 'node:fs';
import { join } from 'node:path';

/** The files `sam review` (and the app's review export) writes. */
export const REVIEW_ENTRIES = [
  'report.json',
  'report.html',
  'confidence.nii.gz',
  'low-confidence.nii.gz',
  'jacobian.nii.gz',
  'folded.nii.gz',
];

/** Every file or folder that writeRegistration and the review write into a result folder. */
export const RESULT_ENTRIES = [
  'qa.json',
  'warped.nii.gz',
  'warped-dicom',
  'displacement.nii.gz',
  'affine.txt',
  'affine.tfm',
  'pairs.csv',
  'coarse-pairs.csv',
  ...REVIEW_ENTRIES,
];

/**
 * When `dir` holds any entry of a previous result, moves its entries into a new previous-<time> folder inside
 * `dir` and returns that folder; otherwise returns null.
 */
export function archivePreviousResult(dir: string, now = new Date()): string | null {
  return archiveEntries(dir, RESULT_ENTRIES, 'previous', now);
}

/**
 * A new review of a result moves the earlier review's files (a signed report above all, and a
 * confidence map that a review without SAM would leave beside its report) into
 * previous-review-<time>/ inside `dir`; null when there was none.
 */
export function archivePreviousReview(dir: string, now = new Date()): string | null {
  return archiveEntries(dir, REVIEW_ENTRIES, 'previous-review', now);
}

function archiveEntries(dir: string, entries: string[], prefix: string, now: Date): string | null {
  if (!entries.some((name) => existsSync(join(dir, name)))) return null;
  const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\..*/, '').replace('T', '-');
  let archive = join(dir, `${prefix}-${stamp}`);
  for (let n = 2; existsSync(archive); n++) archive = join(dir, `${prefix}-${stamp}-${n}`);
  mkdirSync(archive);
  for (const name of entries) {
    const from = join(dir, name);
    if (existsSync(from)) renameSync(from, join(archive, name));
  }
  return archive;
}
