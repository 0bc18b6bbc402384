/**
 * Writes the training set for the GPU machine: every CT in HU under the given inputs, resampled to
 * the network's 2 mm LPS grid (what training does first anyway), int16, as .nii.gz, so the whole
 * set fits the device transfer limit (each cropped to its body with a margin; inputs matching
 * $EXCLUDE, default the example_ct_sm subset of example_ct and the chest that prepare-bench.ts writes, are
 * left out).
 * Usage: tsx scripts/device/prepare-data.ts OUT_DIR INPUT...
 */
import { basename } from 'node:path';
import { findVolumeInputs } from '../../main/engine/train/dataset.ts';
import { prepareCt } from '../../main/engine/train/patch-pairs.ts';
import { checkCt } from '../../main/engine/volume/intensity.ts';
import { readVolume, writeVolume } from '../../main/engine/volume/io/index.ts';
import { withData } from '../../main/engine/volume/volume.ts';
import { boundingBox, cropIndex } from '../../main/engine/volume/crop.ts';
import { bodyMask } from '../../main/engine/volume/mask.ts';

const [out, ...inputs] = process.argv.slice(2);
// numbered from 1: 00 was the chest, now prepare-bench.ts's (the other files keep their names)
let n = 1;
// (the 141-slice chest, ITKElastix examples/data/00, travels once, uncropped, as the benchmarks' volume:
// prepare-bench.ts; train.sh adds it to the training set)
const exclude = new RegExp(process.env.EXCLUDE ?? 'example_ct_sm|ITKElastix/examples/data/00$');
for (const src of findVolumeInputs(inputs)) {
  if (exclude.test(src)) continue;
  let v;
  try {
    v = await readVolume(src);
  } catch {
    continue;
  }
  if (!checkCt(v).ok) continue;
  const prepared = prepareCt(v);
  const box = boundingBox(bodyMask(prepared.image), (x) => x > 0, 4);
  const img = box ? cropIndex(prepared.image, box.start, box.end) : prepared.image;
  const i16 = Int16Array.from(img.data, (x) => Math.max(-1024, Math.min(3071, Math.round(x))));
  const name = `${String(n++).padStart(2, '0')}-${basename(src).replace(/\.(nii\.gz|nii|mha|mhd|vti)$/, '')}.nii.gz`;
  await writeVolume(`${out}/${name}`, withData(img, i16));
  console.log(`${name}  ${img.size.join('x')}  <- ${src}`);
}
