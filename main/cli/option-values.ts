/**
 * Numeric command-line option values, checked: every sam command parses its integer, number and
 * list options here, so a mistyped value is refused with the option's name and what it takes
 * (an InputError: "--grid: a number > 0, got 'abc'") instead of running on NaN.
 */
import { InputError } from '../engine/errors.ts';

/** An integer >= min (default 1). */
export function intOption(name: string, v: string, min = 1): number {
  const n = v.trim() === '' ? NaN : Number(v);
  if (!Number.isInteger(n) || n < min) throw new InputError(`--${name}`, `an integer >= ${min}, got '${v}'`);
  return n;
}

export interface NumberBounds {
  /** Smallest accepted value (inclusive). */
  min?: number;
  /** Values must be greater than this. */
  above?: number;
}

/** A finite number within the bounds. */
export function numberOption(name: string, v: string, bounds: NumberBounds = {}): number {
  const n = v.trim() === '' ? NaN : Number(v);
  const ok =
    Number.isFinite(n) &&
    (bounds.min === undefined || n >= bounds.min) &&
    (bounds.above === undefined || n > bounds.above);
  if (!ok) {
    const what =
      bounds.above !== undefined
        ? `a number > ${bounds.above}`
        : bounds.min !== undefined
          ? `a number >= ${bounds.min}`
          : 'a number';
    throw new InputError(`--${name}`, `${what}, got '${v}'`);
  }
  return n;
}

/** intOption for an option that may be absent. */
export function optionalInt(name: string, v: string | undefined, min = 1): number | undefined {
  return v === undefined ? undefined : intOption(name, v, min);
}

/** numberOption for an option that may be absent. */
export function optionalNumber(name: string, v: string | undefined, bounds: NumberBounds = {}): number | undefined {
  return v === undefined ? undefined : numberOption(name, v, bounds);
}

/** Three positive integers "X,Y,Z" (sizes). */
export function sizeOption(name: string, v: string): [number, number, number] {
  const parts = v.split(',');
  if (parts.length !== 3) throw new InputError(`--${name}`, `three sizes X,Y,Z, got '${v}'`);
  return parts.map((p) => intOption(name, p.trim())) as [number, number, number];
}
