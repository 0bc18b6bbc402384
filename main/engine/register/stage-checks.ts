/**
 * The cascade's checks that a stage's correction improves on the earlier map (map-ncc.ts), made where
 * the registration's dense work runs: on the GPU (device/map-ncc-on-device.ts) when asked and the
 * images fit, else on the host. The smoothed pair is made once, on first use, and serves every check.
 */
import type { Affine3x4 } from './affine-fit.ts';
import type { Field } from './field/field.ts';
import type { Volume } from '../volume/volume.ts';
import type { DeviceImages } from '../compute/device-images.ts';
import {
  lnccOfSamples,
  movingThroughMaps,
  nccOfSamples,
  smoothedPair,
  type MapSamples,
  type SmoothedPair,
} from './map-ncc.ts';
import {
  lnccThroughMapsOnDevice,
  movingThroughMapsOnDevice,
  smoothedPairOnDevice,
} from './device/map-ncc-on-device.ts';
import { profiler } from '../util/profile.ts';

export class StageChecks {
  private pair: Promise<SmoothedPair> | undefined;

  constructor(
    private readonly fixed: Volume,
    private readonly moving: Volume,
    private readonly fixedMask: Volume,
    private readonly affine: Affine3x4,
    /** On the GPU (tfjs' webgpu backend active); `images`: the registration's voxels there. */
    private readonly device: { images?: DeviceImages } | null,
  ) {}

  /** The NCC of the smoothed images over the fixed body through each map (map-ncc.ts nccThroughMaps). */
  async ncc(maps: Field[][]): Promise<number[]> {
    const prof = profiler('stage check (NCC)');
    const pair = await this.smoothed();
    prof.mark('smoothed pair');
    const s = await this.samples(pair, maps, true);
    prof.mark(`samples through ${maps.length} maps`);
    const r = nccOfSamples(pair, s);
    prof.mark('NCC');
    prof.done(this.device ? 'GPU' : 'host');
    return r;
  }

  /** The local NCC of the smoothed images through each map (map-ncc.ts lnccThroughMaps). */
  async lncc(maps: Field[][], r = 2): Promise<number[]> {
    const prof = profiler('stage check (LNCC)');
    const pair = await this.smoothed();
    prof.mark('smoothed pair');
    // on the GPU the samples and the local sums stay there
    const onDevice = this.device ? await lnccThroughMapsOnDevice(pair, this.affine, maps, r) : null;
    const out = onDevice ?? lnccOfSamples(pair, await this.samples(pair, maps, false), r);
    prof.mark(`samples through ${maps.length} maps, LNCC`);
    prof.done(this.device ? 'GPU' : 'host');
    return out;
  }

  private smoothed(): Promise<SmoothedPair> {
    const { fixed, moving, fixedMask, device } = this;
    this.pair ??= (async () =>
      (device ? await smoothedPairOnDevice(fixed, moving, fixedMask, device.images) : null) ??
      smoothedPair(fixed, moving, fixedMask))();
    return this.pair;
  }

  private async samples(pair: SmoothedPair, maps: Field[][], inBodyOnly: boolean): Promise<MapSamples> {
    return (
      (this.device ? await movingThroughMapsOnDevice(pair, this.affine, maps) : null) ??
      movingThroughMaps(pair, this.affine, maps, inBodyOnly ? pair.mask : undefined)
    );
  }
}
