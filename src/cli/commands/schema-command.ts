/** `gpu-layers schema`: the JSON Schema of `probe --json` (the layered sample), from the zod schema. */
import * as z from 'zod/mini';

import { layeredSampleSchema } from '../../layers/schema.js';
import type { CliIo } from '../cli-io.js';
import { EXIT_OK } from '../exit-codes.js';
import { parseFlags } from '../parse-flags.js';

export function sampleJsonSchema(): Record<string, unknown> {
  return {
    title: 'gpu-layers probe --json',
    ...z.toJSONSchema(layeredSampleSchema, { target: 'draft-2020-12' }),
  };
}

export async function schemaCommand(args: string[], io: CliIo): Promise<number> {
  parseFlags(args, {});
  io.stdout.write(JSON.stringify(sampleJsonSchema(), null, 2) + '\n');
  return EXIT_OK;
}
