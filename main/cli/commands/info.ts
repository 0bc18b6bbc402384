/** `sam info <file|folder>`: geometry, values, modality and series of a volume. */
import { statSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { Command } from '../index.ts';
import { readVolume } from '../../engine/volume/io/index.ts';
import { listDicomSeries } from '../../engine/volume/io/dicom/read-series.ts';
import { isVtkJsDataSet } from '../../engine/volume/io/vtkjs-dataset.ts';
import { formatSummary, summarizeVolume } from '../../engine/volume/describe.ts';

export const infoCommand: Command = {
  name: 'info',
  summary: 'print size, spacing, origin, direction, value range, modality and series of a volume',
  usage: [
    'usage: sam info <file|folder|dicom files...> [--series UID] [--json]',
    '',
    '  <file>       .nii/.nii.gz, .mha/.mhd, .vti, .nrrd/.nhdr, or a DICOM file',
    '  <folder>     a DICOM folder; when it holds several series they are listed (choose with --series)',
    '  --series     SeriesInstanceUID to read from a folder with several series',
    '  --allow-gaps interpolate across missing slices of a DICOM series (refused otherwise)',
    '  --json       machine-readable output',
  ].join('\n'),
  async run(args) {
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: { series: { type: 'string' }, json: { type: 'boolean' }, 'allow-gaps': { type: 'boolean' } },
    });
    if (positionals.length === 0) {
      console.error(this.usage);
      return 2;
    }
    const input = positionals.length === 1 ? positionals[0] : positionals;
    if (typeof input === 'string' && !values.series && isDir(input) && !isVtkJsDataSet(input)) {
      const series = await listDicomSeries(input);
      if (series.length > 1) {
        if (values.json) console.log(JSON.stringify({ series }, null, 2));
        else {
          console.log(`${input}: ${series.length} DICOM series; choose one with --series UID`);
          for (const s of series)
            console.log(
              `  ${s.seriesInstanceUid}  ${s.modality ?? '?'}  ${s.sliceCount} files  "${s.description ?? ''}"`,
            );
        }
        return 0;
      }
    }
    const volume = await readVolume(input, { seriesUid: values.series, allowGaps: values['allow-gaps'] });
    const summary = summarizeVolume(volume);
    console.log(values.json ? JSON.stringify(summary, null, 2) : formatSummary(summary));
    return 0;
  },
};

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}
