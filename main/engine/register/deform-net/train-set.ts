/**
 * The training set of `sam train-reg`: CTs found under the given folders / files (as `sam train`,
 * train/dataset.ts findVolumeInputs), or listed in a .txt file, one per line, optionally followed by a
 * label map of the same CT ("ct.nii.gz labels.nii.gz"; paths relative to the list): labels add the
 * Dice term. Each CT is read, checked to be CT in HU (others are skipped with the reason), embedded once
 * with the SAM engine, and its local embeddings reduced to unit-normalised principal components
 * (embedding-features.ts), the features the network's correlation and similarity terms read.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { InputError } from '../../errors.ts';
import type { EmbeddingEngine } from '../../compute/embedding-engine.ts';
import { embedVolume } from '../../sam/embed-volume.ts';
import { findVolumeInputs } from '../../train/dataset.ts';
import { checkCt } from '../../volume/intensity.ts';
import { readVolume } from '../../volume/io/index.ts';
import { embeddingFeatures } from '../deform/embedding-features.ts';
import { caseBodyGrid, type RegTrainingCase } from './train-data.ts';

function listInputs(inputs: string[]): { ct: string; labels?: string }[] {
  const out: { ct: string; labels?: string }[] = [];
  for (const input of inputs) {
    if (!existsSync(input)) throw new InputError(input, 'no such file or folder');
    if (statSync(input).isFile() && input.toLowerCase().endsWith('.txt')) {
      for (const line of readFileSync(input, 'utf8').split(/\r?\n/)) {
        const t = line.trim();
        if (!t || t.startsWith('#')) continue;
        const [ct, labels] = t.split(/\s+/);
        const base = dirname(input);
        if (labels) out.push({ ct: resolve(base, ct), labels: resolve(base, labels) });
        else for (const p of findVolumeInputs([resolve(base, ct)])) out.push({ ct: p });
      }
    } else for (const p of findVolumeInputs([input])) out.push({ ct: p });
  }
  return out;
}

export async function loadRegTrainingSet(
  inputs: string[],
  engine: EmbeddingEngine,
  o: {
    spacingMm: number;
    featureChannels: number;
    onCase?: (source: string, ok: boolean, reason: string) => void;
    signal?: AbortSignal;
  },
): Promise<RegTrainingCase[]> {
  const cases: RegTrainingCase[] = [];
  for (const { ct: source, labels } of listInputs(inputs)) {
    o.signal?.throwIfAborted();
    try {
      const ct = await readVolume(source);
      const c = checkCt(ct);
      if (!c.ok) {
        o.onCase?.(source, false, `not CT in HU: ${c.reason}`);
        continue;
      }
      const ev = await embedVolume(ct, engine, { signal: o.signal });
      const features = embeddingFeatures({ fixed: ev, moving: ev }, o.featureChannels).fixed;
      cases.push({
        source,
        ct,
        labels: labels ? await readVolume(labels) : undefined,
        features,
        bodyGrid: caseBodyGrid(ct, o.spacingMm),
      });
      o.onCase?.(source, true, labels ? `with labels ${labels}` : c.reason);
    } catch (e) {
      if (o.signal?.aborted) throw e;
      o.onCase?.(source, false, (e as Error).message);
    }
  }
  if (cases.length === 0) throw new InputError(inputs.join(', '), 'no CT volume in HU found for training');
  return cases;
}
