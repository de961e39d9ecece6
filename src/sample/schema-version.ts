/** The version of the Sample document (`schemaVersion`); bumped on any incompatible change.
 * Kept apart from schema.ts so building a sample does not construct every schema. */
export const SAMPLE_SCHEMA_VERSION = 1;
