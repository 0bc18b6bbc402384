/**
 * A progress line for long CLI work: on a terminal it redraws one line (\r); otherwise (logs, CI)
 * it prints a line at most every `everySeconds`.
 */
export class ProgressLine {
  /** When the last line was printed (not on a terminal); the first update is always printed. */
  private last = -Infinity;
  private shown = false;
  constructor(
    private readonly stream: NodeJS.WriteStream = process.stderr,
    private readonly everySeconds = 10,
  ) {}

  update(text: string, force = false): void {
    if (this.stream.isTTY) {
      this.shown = true;
      const w = this.width();
      this.stream.write(`\r${text.slice(0, w).padEnd(Math.min(w, 119))}`);
      return;
    }
    const now = performance.now() / 1000;
    if (force || now - this.last >= this.everySeconds) {
      this.stream.write(`${text}\n`);
      this.last = now;
    }
  }

  /** A message that stays (a checkpoint saved...): on a terminal above the progress line, which the next update redraws. */
  note(text: string): void {
    if (this.stream.isTTY && this.shown) this.stream.write(`\r${' '.repeat(Math.min(this.width(), 119))}\r`);
    this.stream.write(`${text}\n`);
  }

  /** Characters a line may take: one less than the terminal's width (120 when it reports none, or 0). */
  private width(): number {
    const c = this.stream.columns;
    return c !== undefined && c > 1 ? c - 1 : 119;
  }

  done(text?: string): void {
    if (this.stream.isTTY && this.shown) this.stream.write('\n');
    if (text) this.stream.write(`${text}\n`);
  }
}

export function bar(fraction: number, width = 24): string {
  const f = Math.max(0, Math.min(1, fraction));
  const full = Math.round(f * width);
  return `[${'#'.repeat(full)}${'.'.repeat(width - full)}]`;
}

export function duration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h > 0 ? `${h}h${String(m).padStart(2, '0')}m` : m > 0 ? `${m}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}
