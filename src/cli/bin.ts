/** The `gpu-layers` executable: hands the process's argv, streams and environment to main(). */
import { main } from './main.js';

// A reader that stops early (`gpu-layers probe | head`) closes the pipe. Stop quietly, as Unix
// tools do, instead of dying on an unhandled EPIPE with a stack trace; any other failure to write
// is said once on stderr (if it still works) with exit code 3.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    if (stream === process.stdout) process.stderr.write(`gpu-layers: cannot write the output: ${error.message}\n`);
    process.exit(3);
  });
}

// stdin as a getter: process.stdin opens the stream, which only `watch` needs.
const io = {
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  get stdin() {
    return process.stdin;
  },
};

main(process.argv.slice(2), io).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`gpu-layers: ${String(error)}\n`);
    process.exitCode = 3;
  },
);
