/**
 * A result folder written twice (register/previous-result.ts, register-output.ts): the earlier
 * result's files move into previous-<time>/ whole, the user's own files stay, nothing is deleted.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { archivePreviousResult } from '../../main/engine/register/previous-result.ts';
import { tempDir } from '../helpers.ts';

test('a previous result moves into previous-<time>/, other files stay, a second archive gets its own folder', () => {
  const t = tempDir();
  try {
    const dir = join(t.dir, 'out');
    mkdirSync(dir);
    assert.equal(archivePreviousResult(dir), null, 'no result file: nothing to move');
    for (const f of ['qa.json', 'coarse-pairs.csv', 'report.json', 'notes.txt']) writeFileSync(join(dir, f), f);
    mkdirSync(join(dir, 'warped-dicom'));
    writeFileSync(join(dir, 'warped-dicom', 'IM0001.dcm'), 'x');
    const when = new Date('2026-11-27T09:30:05.123Z');
    const a = archivePreviousResult(dir, when);
    assert.equal(a, join(dir, 'previous-20261127-093005'));
    assert.deepEqual(readdirSync(a!).sort(), ['coarse-pairs.csv', 'qa.json', 'report.json', 'warped-dicom']);
    assert.equal(readFileSync(join(a!, 'report.json'), 'utf8'), 'report.json', 'moved, not rewritten');
    assert.ok(existsSync(join(a!, 'warped-dicom', 'IM0001.dcm')));
    assert.deepEqual(readdirSync(dir).sort(), ['notes.txt', 'previous-20261127-093005'], "the user's file stays");
    writeFileSync(join(dir, 'qa.json'), 'second');
    const b = archivePreviousResult(dir, when);
    assert.equal(b, join(dir, 'previous-20261127-093005-2'), 'the same second: a new folder, not a merge');
    assert.equal(readFileSync(join(b!, 'qa.json'), 'utf8'), 'second');
    // the rest of a result without its qa.json (an interrupted writer of an older version, a stray
    // file): moved aside too, so that a new result never sits beside it or merges into its series
    writeFileSync(join(dir, 'coarse-pairs.csv'), 'stray');
    mkdirSync(join(dir, 'warped-dicom'));
    const c = archivePreviousResult(dir, new Date('2026-11-28T10:00:00Z'));
    assert.deepEqual(readdirSync(c!).sort(), ['coarse-pairs.csv', 'warped-dicom']);
  } finally {
    t.cleanup();
  }
});
