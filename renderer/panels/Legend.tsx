/** A colour-map legend: a gradient bar over a map's stops with its title, end values and unit. */
import { cssColor, cssGradient, type Rgb, type Stop } from '../views/color-maps.ts';

export function Legend({
  title,
  stops,
  unit,
  scale = 1,
  testId,
  noData,
  inline = false,
}: {
  title: string;
  stops: readonly Stop[];
  unit: string;
  /** Divides the stops' values for the labels (e.g. 10 for a map holding mm x 10). */
  scale?: number;
  testId: string;
  /** The colour of voxels without data, shown as a swatch after the bar. */
  noData?: Rgb;
  /** One line (title, low end, bar, high end): for the one-row display bar. */
  inline?: boolean;
}): React.JSX.Element {
  const lo = stops[0][0] / scale;
  const hi = stops[stops.length - 1][0] / scale;
  const fmt = (x: number) => (Number.isInteger(x) ? String(x) : x.toFixed(x < 1 ? 2 : 1));
  const swatch = noData && (
    <span className="legend-no-data">
      <span className="legend-swatch" style={{ background: cssColor(noData) }} /> no data
    </span>
  );
  if (inline)
    return (
      <span className="legend legend-inline" data-testid={testId} data-range={`${lo} ${hi}`}>
        <span className="legend-title">{title}</span> {fmt(lo)}
        <span className="legend-bar" style={{ background: cssGradient(stops) }} />≥ {fmt(hi)} {unit}
        {swatch}
      </span>
    );
  return (
    <div className="legend" data-testid={testId} data-range={`${lo} ${hi}`}>
      <span className="legend-title">{title}</span>
      <span className="legend-bar" style={{ background: cssGradient(stops) }} />
      <span className="legend-ends">
        <span>{fmt(lo)}</span>
        <span>
          ≥ {fmt(hi)} {unit}
        </span>
      </span>
      {swatch}
    </div>
  );
}
