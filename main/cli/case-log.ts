/**
 * The lines `sam train` and `sam train-reg` print while reading their data: every volume used, the
 * first skipped inputs with their reasons, then (a data folder of a code repository skips hundreds of
 * files) a count per reason instead of a line per file.
 */
const SHOWN = 20;

export function caseLog(print: (line: string) => void = (l) => console.error(l)) {
  let skips = 0;
  // per kind of reason: how many, and the first one's own words (the kind hides its numbers)
  const byReason = new Map<string, { n: number; example: string }>();
  return {
    onCase(source: string, ok: boolean, reason: string): void {
      if (ok) return print(`  use  ${source}`);
      skips++;
      // the reason's kind, without the numbers and names that differ between files
      const kind = reason
        .replace(/\(.*$/, '')
        .replace(/[\d.]+/g, 'N')
        .trim();
      const e = byReason.get(kind) ?? { n: 0, example: reason };
      e.n++;
      byReason.set(kind, e);
      if (skips <= SHOWN) print(`  skip ${source}: ${reason}`);
      else if (skips === SHOWN + 1) print(`  ... more inputs skipped: counted by reason below`);
    },
    /** After the data is read: the count per reason, when some skips were not shown. */
    summary(): void {
      if (skips <= SHOWN) return;
      print(`  ${skips} inputs skipped:`);
      for (const { n, example } of [...byReason.values()].sort((a, b) => b.n - a.n))
        print(`    ${String(n).padStart(5)}  ${n > 1 ? 'like ' : ''}${example}`);
    },
  };
}
