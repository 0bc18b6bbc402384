/** Points named in a message by their 1-based numbers: "point 3", "points 2, 5, 9", the first `max` then "...". */
export function pointNumbers(numbers: number[], max = 10): string {
  const shown = numbers.slice(0, max).join(', ');
  return `point${numbers.length > 1 ? 's' : ''} ${shown}${numbers.length > max ? ', ...' : ''}`;
}
