/**
 * Names of the labels of a label map, for the per-organ confidence summaries: a JSON object
 * ({"1": "spleen", ...}) or lines of "<label><comma, tab or spaces><name>" (a header line and
 * lines starting with # are skipped), e.g. a TotalSegmentator class map saved as CSV; or a
 * TotalSegmentator statistics.json ({"spleen": {"volume": ..., ...}, "kidney_right": ...}), whose keys
 * come in class order: label n is its n-th key (TotalSegmentator writes them from its class map).
 */
import { InputError } from '../errors.ts';

export function parseLabelNames(text: string, source = 'label names'): Record<number, string> {
  const out: Record<number, string> = {};
  const t = text.trim();
  if (t.startsWith('{')) {
    let obj: unknown;
    try {
      obj = JSON.parse(t);
    } catch (e) {
      throw new InputError(source, `not valid JSON (${(e as Error).message})`);
    }
    const entries = Object.entries(obj as Record<string, unknown>);
    if (entries.length && entries.every(([k, v]) => !/^-?\d+$/.test(k) && !!v && typeof v === 'object'))
      return Object.fromEntries(entries.map(([k], i) => [i + 1, k]));
    for (const [k, v] of entries) {
      const n = Number(k);
      if (!Number.isInteger(n) || typeof v !== 'string')
        throw new InputError(source, `entry '${k}' is not label -> name`);
      out[n] = v;
    }
    return out;
  }
  let first = true;
  t.split(/\r?\n/).forEach((line, i) => {
    const l = line.trim();
    if (!l || l.startsWith('#')) return;
    const m = /^(-?\d+)\s*[,\t ]\s*(.+)$/.exec(l);
    const header = first;
    first = false;
    if (!m) {
      if (header) return;
      throw new InputError(source, `line ${i + 1}: expected '<label>,<name>'`);
    }
    out[Number(m[1])] = m[2].trim().replace(/^"(.*)"$/, '$1');
  });
  return out;
}
