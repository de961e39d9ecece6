/** `gpu-layers schema`: the JSON Schema of `probe --json` (the layered sample), from the zod schema. */
import * as z from 'zod/mini';

import { layeredSampleSchema } from '../../layers/schema.js';
import type { CliIo } from '../cli-io.js';
import { EXIT_OK } from '../exit-codes.js';
import { parseFlags } from '../parse-flags.js';
import { SCHEMA_HELP } from '../usage.js';

export function sampleJsonSchema(): Record<string, unknown> {
  return {
    title: 'gpu-layers probe --json',
    ...z.toJSONSchema(layeredSampleSchema, { target: 'draft-2020-12' }),
  };
}

export async function schemaCommand(args: string[], io: CliIo): Promise<number> {
  const flags = parseFlags(args, { help: { type: 'boolean', short: 'h' } });
  if (flags.help === true) {
    io.stdout.write(SCHEMA_HELP);
    return EXIT_OK;
  }
  io.stdout.write(JSON.stringify(sampleJsonSchema(), null, 2) + '\n');
  return EXIT_OK;
}
