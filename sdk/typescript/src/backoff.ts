/** The wait before attempt `attempt` (1, 2, ...): `initialMs` doubling up to `maxMs`, then a random time between half of it and all of it, so that clients cut off together do not all come back together. */
export function backoffDelay(attempt: number, initialMs: number, maxMs: number, random: () => number = Math.random): number {
  const doubled = initialMs * 2 ** Math.max(0, attempt - 1);
  const capped = Math.min(doubled, Math.max(maxMs, initialMs));
  return Math.round(capped * (0.5 + random() / 2));
}
