// Builds a JavaScript handler into an ej component with componentize-js.
//
//   node build.mjs SOURCE.js WIT_DIR OUT.wasm
//
// Run it from a directory where package.json's dependencies are installed
// (`npm ci`): a project's `build.sh` (from `ej new --lang js`) installs them
// in its tools directory, copies this script there and runs it; so does
// `cargo xtask guests` in ej's repository, under target/tools/js.
//
// `http` and `fetch-event` are disabled: with them the component imports
// wasi:http, which ej does not provide, and fails to instantiate. `stdio`,
// `random` and `clocks` stay, so that an uncaught exception is written to
// stderr and lands in ej's crash report.

import { writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { componentize } from '@bytecodealliance/componentize-js';

const [source, wit, out] = process.argv.slice(2);
if (!out) {
  console.error('usage: node build.mjs SOURCE.js WIT_DIR OUT.wasm');
  process.exit(2);
}

const { component } = await componentize({
  sourcePath: resolve(source),
  witPath: resolve(wit),
  worldName: 'handler',
  disableFeatures: ['http', 'fetch-event'],
});
await writeFile(out, component);
