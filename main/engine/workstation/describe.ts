/** A loaded volume's descriptor for the renderer (geometry, not voxels). */
import { orientationCode } from '../volume/geometry.ts';
import { valueRange, voxelTypeOf, voxelCount, type Volume } from '../volume/volume.ts';
import type { VolumeDescriptor } from './types.ts';

export function describeVolume(id: string, path: string, v: Volume, series?: string): VolumeDescriptor {
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
    displayBytes: voxelCount(v.size) * 2,
  };
}
