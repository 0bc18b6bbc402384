/**
 * `sam convert <input> <output>`: read any supported volume and write it as NIfTI (.nii/.nii.gz),
 * MetaImage (.mha/.mhd) or, with --dicom, a derived DICOM CT series into a folder. Never writes
 * over the input, nor over an existing file without --force; every file is written atomically.
 */
import { parseArgs } from 'node:util';
import type { Command } from '../index.ts';
import { checkOutputFile } from '../output-file.ts';
import { readVolume, writeVolume } from '../../engine/volume/io/index.ts';
import { writeDicomSeries } from '../../engine/volume/io/dicom/write-series.ts';
import { listDicomSeries } from '../../engine/volume/io/dicom/scan.ts';

export const convertCommand: Command = {
  name: 'convert',
  summary: 'convert a volume to NIfTI, MetaImage or a DICOM series',
  usage: [
    'usage: sam convert <input> <output.nii.gz|.nii|.mha|.mhd> [--series UID]',
    '       sam convert <input> <output-folder> --dicom [--description TEXT] [--series UID]',
    '                   [--patient-id ID] [--patient-name NAME]',
    '',
    '  --dicom         write a derived CT series (new series and instance UIDs; patient and study kept',
    '                  when the input is DICOM) into the output folder',
    '  --description   SeriesDescription of the derived series (default: "Converted by sam")',
    '  --patient-id, --patient-name',
    '                  the series\' PatientID / PatientName (DICOM person name, e.g. "Doe^Jane"), in place',
    "                  of the input's (a NIfTI input has none, and many PACS quarantine a series without an ID)",
    '  --series        SeriesInstanceUID to read from an input folder with several series',
    '  --allow-gaps    interpolate across missing slices of a DICOM series (refused otherwise)',
    '  --force         replace an existing output file (never the input)',
  ].join('\n'),
  async run(args) {
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: {
        dicom: { type: 'boolean' },
        description: { type: 'string' },
        'patient-id': { type: 'string' },
        'patient-name': { type: 'string' },
        series: { type: 'string' },
        'allow-gaps': { type: 'boolean' },
        force: { type: 'boolean' },
      },
    });
    if (positionals.length !== 2) {
      console.error(this.usage);
      return 2;
    }
    const [input, output] = positionals;
    if (!values.dicom) checkOutputFile(output, { inputs: [input], force: values.force });
    const volume = await readVolume(input, { seriesUid: values.series, allowGaps: values['allow-gaps'] });
    if (!values.dicom && (values['patient-id'] !== undefined || values['patient-name'] !== undefined)) {
      console.error('sam convert: --patient-id and --patient-name apply to a DICOM series (--dicom) only');
      return 2;
    }
    if (values.dicom) {
      const r = await writeDicomSeries(output, volume, {
        seriesDescription: values.description ?? 'Converted by sam',
        patient: {
          ...(values['patient-id'] !== undefined ? { id: values['patient-id'] } : {}),
          ...(values['patient-name'] !== undefined ? { name: values['patient-name'] } : {}),
        },
        protect: [input],
      });
      console.log(`wrote ${r.files.length} files of series ${r.seriesInstanceUid} to ${output}`);
      // a folder that held a series already now holds two: reading it then needs the series named
      // (a folder that cannot be scanned again changes nothing of what was written)
      const series = await listDicomSeries(output).catch(() => []);
      if (series.length > 1)
        console.error(
          `sam convert: note: ${output} now holds ${series.length} series (the new one beside the earlier); ` +
            `read it with --series ${r.seriesInstanceUid}, or write into an empty folder`,
        );
    } else {
      await writeVolume(output, volume, { protect: [input] });
      console.log(`wrote ${output} (${volume.size.join('x')})`);
    }
    return 0;
  },
};
