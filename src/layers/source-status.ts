/** The status of one outside source in a layered sample: what was read, and why it failed. */
import type { FieldError } from '../sample/schema.js';
import type { SourceStatus } from './schema.js';

/** `location` null: the source was not asked for. */
export function sourceStatus(location: string | null, error: FieldError | null): SourceStatus {
  return { location, ok: location !== null && error === null, error };
}
