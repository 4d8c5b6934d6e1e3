/** A plain or any other object (not null): what a module's export or an option bag must be. */
export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}
