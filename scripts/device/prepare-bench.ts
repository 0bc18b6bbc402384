/**
 * Writes the benchmark volume for the GPU machine: the 141-slice chest CT (ITKElastix examples/data/00,
 * a DICOM series too large to carry) resampled to the network's 2 mm LPS grid (250x250x141), int16,
 * as .nii.gz. gpu-session.sh's bench-embed and bench-reg read it.
 * Usage: tsx scripts/device/prepare-bench.ts OUT_FILE [DATA_DIR]
 */
import { prepareCt } from '../../main/engine/train/patch-pairs.ts';
import { readVolume, writeVolume } from '../../main/engine/volume/io/index.ts';
import { withData } from '../../main/engine/volume/volume.ts';

const [out, data = '../shared/data'] = process.argv.slice(2);
const { image } = prepareCt(await readVolume(`${data}/ITKElastix/examples/data/00`));
const i16 = Int16Array.from(image.data, (x) => Math.max(-1024, Math.min(3071, Math.round(x))));
await writeVolume(out, withData(image, i16));
console.log(`${out}  ${image.size.join('x')}  ${image.spacing.map((s) => s.toFixed(3)).join(' x ')} mm`);
