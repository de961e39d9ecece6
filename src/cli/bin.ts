/** The `gpu-layers` executable: hands the process's argv, streams and environment to main(). */
import { main } from './main.js';

main(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env }).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`gpu-layers: ${String(error)}\n`);
    process.exitCode = 3;
  },
);
