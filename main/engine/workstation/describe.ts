/** A loaded volume's descriptor for the renderer (geometry, not voxels). */
import { orientationCode } from '../volume/geometry.ts';
import { valueRange, voxelTypeOf, voxelCount, type Volume } from '../volume/volume.ts';
import type { VolumeDescriptor } from './types.ts';
import { checkCt } from '../volume/intensity.ts';

export function describeVolume(id: string, path: string, v: Volume, series?: string): VolumeDescriptor {
  const ct = checkCt(v);
  return {
    id,
    path,
    series,
    description: v.meta.description,
    size: [...v.size],
    spacing: [...v.spacing],
    origin: [...v.origin],
    direction: [...v.direction],
    orientation: orientationCode(v.direction),
    voxelType: voxelTypeOf(v.data),
    valueRange: valueRange(v.data),
    warnings: [...v.meta.warnings],
    ...(ct.ok ? {} : { notCt: `not a CT in Hounsfield units: ${ct.reason}; registration will refuse it` }),
    displayBytes: voxelCount(v.size) * 2,
  };
}
