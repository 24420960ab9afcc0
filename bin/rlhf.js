#!/usr/bin/env node
// The `rlhf` command: the compiled CLI (run `npm run setup` once to build it).
import('../dist/src/cli/main.js').then((m) => m.main(process.argv.slice(2))).catch((e) => {
  process.stderr.write(`rlhf: ${e?.message ? e.message : e}\n`);
  process.exit(1);
});
