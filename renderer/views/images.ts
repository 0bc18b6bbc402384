/**
 * vtkImageData for each loaded volume, built once on its int16 voxels (no copy) with the volume's
 * geometry (origin, spacing, direction: vtk.js places the slices in world LPS mm itself), shared by
 * the three views. Created and deleted here only.
 */
import vtkImageData from '@kitware/vtk.js/Common/DataModel/ImageData';
import vtkDataArray from '@kitware/vtk.js/Common/Core/DataArray';
import type { LoadedVolume } from '../store/volumes.ts';

const cache = new Map<string, { voxels: Int16Array; image: vtkImageData }>();

export function imageOf(v: LoadedVolume): vtkImageData {
  const hit = cache.get(v.desc.id);
  if (hit && hit.voxels === v.voxels) return hit.image;
  const image = vtkImageData.newInstance();
  image.setDimensions(v.desc.size[0], v.desc.size[1], v.desc.size[2]);
  image.setSpacing([...v.desc.spacing]);
  image.setOrigin([...v.desc.origin]);
  // vtk.js stores direction[3c..3c+2] = world vector of index axis c (gl-matrix column-major);
  // ours is row-major with columns = index axes, so transpose.
  const d = v.desc.direction;
  image.setDirection([d[0], d[3], d[6], d[1], d[4], d[7], d[2], d[5], d[8]]);
  const scalars = vtkDataArray.newInstance({ name: 'HU', numberOfComponents: 1, values: v.voxels });
  image.getPointData().setScalars(scalars);
  cache.set(v.desc.id, { voxels: v.voxels, image });
  return image;
}

/** Frees images of volumes no longer loaded. */
export function releaseImagesExcept(keep: string[]): void {
  for (const [id, e] of cache)
    if (!keep.includes(id)) {
      e.image.delete();
      cache.delete(id);
    }
}
