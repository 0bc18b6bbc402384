/** The CLI's progress line on terminals of any reported width, and in logs. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ProgressLine } from '../../main/cli/progress.ts';

function fakeStream(isTTY: boolean, columns: number | undefined) {
  const written: string[] = [];
  const stream = { isTTY, columns, write: (s: string) => (written.push(s), true) } as unknown as NodeJS.WriteStream;
  return { stream, written };
}

test('a terminal that reports 0 columns (some pseudo-terminals, docker -t) gets whole lines, no crash', () => {
  const { stream, written } = fakeStream(true, 0);
  const p = new ProgressLine(stream);
  p.update('iteration 3/5 loss 1.234 lr 6.0e-5');
  p.note('checkpoint saved');
  p.done('done');
  assert.equal(written[0], '\r' + 'iteration 3/5 loss 1.234 lr 6.0e-5'.padEnd(119));
  assert.equal(written[1], '\r' + ' '.repeat(119) + '\r');
  assert.deepEqual(written.slice(2), ['checkpoint saved\n', '\n', 'done\n']);
});

test('a narrow terminal truncates to its width less one; a wide one pads to 119 at most', () => {
  const narrow = fakeStream(true, 20);
  new ProgressLine(narrow.stream).update('x'.repeat(50));
  assert.equal(narrow.written[0], '\r' + 'x'.repeat(19));
  const wide = fakeStream(true, 300);
  new ProgressLine(wide.stream).update('x'.repeat(200));
  assert.equal(wide.written[0], '\r' + 'x'.repeat(200).slice(0, 299));
  new ProgressLine(wide.stream).update('short');
  assert.equal(wide.written[1], '\r' + 'short'.padEnd(119));
});

test('not a terminal: whole lines, at most one per interval unless forced', () => {
  const { stream, written } = fakeStream(false, undefined);
  const p = new ProgressLine(stream, 3600);
  p.update('first');
  p.update('second');
  p.update('third', true);
  assert.deepEqual(written, ['first\n', 'third\n']);
});

test('the data log: every volume used, the first 20 skips, then a count per reason with an example', async () => {
  const { caseLog } = await import('../../main/cli/case-log.ts');
  const lines: string[] = [];
  const log = caseLog((l) => lines.push(l));
  log.onCase('/d/ct.nii.gz', true, 'CT');
  for (let n = 0; n < 30; n++) log.onCase(`/d/f${n}.txt`, false, 'not a volume file this reads (NIfTI, ...)');
  for (let n = 0; n < 5; n++) log.onCase(`/d/seg${n}.nii.gz`, false, `not CT in HU: ${n + 40} distinct integer values`);
  log.summary();
  assert.equal(lines[0], '  use  /d/ct.nii.gz');
  assert.equal(lines.filter((l) => l.startsWith('  skip ')).length, 20);
  assert.ok(lines.includes('  ... more inputs skipped: counted by reason below'));
  assert.ok(lines.includes('  35 inputs skipped:'));
  // each kind once, in the words of its first input (numbers kept: "N" made some unreadable)
  assert.ok(lines.includes('       30  like not a volume file this reads (NIfTI, ...)'), lines.join('\n'));
  assert.ok(lines.includes('        5  like not CT in HU: 40 distinct integer values'));
});
