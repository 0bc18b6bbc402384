/** Atomic writes (util/atomic-write.ts): a folder as the target is refused by name, nothing is left behind. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../../main/engine/util/atomic-write.ts';
import { VolumeWriteError } from '../../main/engine/errors.ts';
import { tempDir } from '../helpers.ts';

test('writeFileAtomic: writes whole files, refuses a folder and an input by name, leaves no temporary file', () => {
  const t = tempDir();
  try {
    const file = join(t.dir, 'a.json');
    writeFileAtomic(file, new TextEncoder().encode('{"x":1}'));
    assert.equal(readFileSync(file, 'utf8'), '{"x":1}');
    const folder = join(t.dir, 'head1');
    mkdirSync(folder);
    assert.throws(
      () => writeFileAtomic(folder, new Uint8Array(3)),
      (e: Error) => e instanceof VolumeWriteError && e.message.includes(folder) && /is a folder/.test(e.message),
    );
    assert.throws(
      () => writeFileAtomic(file, new Uint8Array(3), { protect: [file] }),
      /refusing to overwrite an input/,
    );
    assert.equal(readFileSync(file, 'utf8'), '{"x":1}', 'the input is untouched');
    assert.deepEqual(readdirSync(t.dir).sort(), ['a.json', 'head1'], 'no temporary file left');
  } finally {
    t.cleanup();
  }
});
