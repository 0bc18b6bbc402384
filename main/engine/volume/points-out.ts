/**
 * Point lists written out (world LPS mm): CSV (x,y,z, with a label column when there are labels), an
 * elastix/transformix point file, or a 3D Slicer markups file (.fcsv, 4.11 layout, its coordinate
 * system stated as LPS so that Slicer places the points right), read back by points.ts.
 */
import { InputError } from '../errors.ts';
import { csvField } from '../util/csv-field.ts';
import type { Vec3 } from './volume.ts';

export const POINT_FORMATS = ['csv', 'elastix', 'fcsv'] as const;
export type PointFormat = (typeof POINT_FORMATS)[number];

export function pointFormat(name: string): PointFormat {
  if ((POINT_FORMATS as readonly string[]).includes(name)) return name as PointFormat;
  throw new InputError('--format', `use ${POINT_FORMATS.join(', ')}, got '${name}'`);
}

const mm = (v: number) => v.toFixed(4);

/** The file's text; `labels` (one a point) name the points in CSV and .fcsv, `descriptions` go to .fcsv's desc. */
export function pointsText(points: Vec3[], format: PointFormat, labels?: string[], descriptions?: string[]): string {
  if (format === 'elastix')
    return ['point', String(points.length), ...points.map((p) => p.map(mm).join(' '))].join('\n') + '\n';
  if (format === 'csv')
    return (
      [
        labels ? 'label,x,y,z' : 'x,y,z',
        ...points.map((p, n) => (labels ? `${csvField(labels[n])},` : '') + p.map(mm).join(',')),
      ].join('\n') + '\n'
    );
  // .fcsv: Slicer splits its rows at every comma (no quoting), so a comma in a label or description goes
  const plain = (t: string) => t.replace(/[,\r\n]+/g, ' ');
  return (
    [
      '# Markups fiducial file version = 4.11',
      '# CoordinateSystem = LPS',
      '# columns = id,x,y,z,ow,ox,oy,oz,vis,sel,lock,label,desc,associatedNodeID',
      ...points.map((p, n) =>
        [
          `vtkMRMLMarkupsFiducialNode_${n + 1}`,
          ...p.map(mm),
          0,
          0,
          0,
          1,
          1,
          1,
          0,
          plain(labels?.[n] || `P-${n + 1}`),
          plain(descriptions?.[n] ?? ''),
          '',
        ].join(','),
      ),
    ].join('\n') + '\n'
  );
}
