const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Parses `500ms`, `30s`, `15m`, `1h` or a bare number of seconds into milliseconds. */
export function parseDuration(text: string): number | undefined {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/.exec(text);
  if (!match) return undefined;
  return Math.round(Number(match[1]) * (units[match[2] ?? 's'] ?? 1000));
}

/** A duration given as a number of ms or as written (`30s`); undefined for anything else. */
export function durationMs(value: unknown): number | undefined {
  if (typeof value === 'number') return value;
  return typeof value === 'string' ? parseDuration(value) : undefined;
}

/** A duration the way one writes it, the inverse of parseDuration: `1h`, `30m`, `90s`, `1500ms`. */
export function asWritten(ms: number): string {
  for (const unit of ['h', 'm', 's'] as const) {
    const size = units[unit] as number;
    if (ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

export function formatDuration(ms: number): string {
  // Thresholds sit where rounding would carry over: never "1000ms", "60.0s" or "1m60s".
  if (ms < 999.5) return `${Math.round(ms)}ms`;
  if (ms < 59_950) return `${(ms / 1000).toFixed(1)}s`;
  const seconds = Math.round(ms / 1000);
  return `${Math.floor(seconds / 60)}m${seconds % 60}s`;
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
