/**
 * Preloaded into a service (NODE_OPTIONS=--require …/source-patch.cjs) for a candidate cut
 * of lib/configs.ts: rewrites the source of app/dist/src/<file> as it is loaded, by exact
 * text replacement. BENCH_SOURCE_PATCHES holds the path of a JSON list of
 *   { "file": "ledger/db.js", "find": "…", "replace": "…" }
 * A `find` that is not in the file stops the process: a stale patch must not measure nothing.
 */
"use strict";

const fs = require("node:fs");
const Module = require("node:module");

const patches = JSON.parse(fs.readFileSync(process.env.BENCH_SOURCE_PATCHES, "utf8"));
const MARKER = "/app/dist/src/";
const compile = Module.prototype._compile;

Module.prototype._compile = function patchedCompile(content, filename) {
  const at = filename.indexOf(MARKER);
  if (at >= 0) {
    const file = filename.slice(at + MARKER.length);
    for (const patch of patches) {
      if (patch.file !== file) continue;
      if (!content.includes(patch.find)) {
        process.stderr.write(`bench-patch: ${file}: text to replace not found: ${JSON.stringify(patch.find)}\n`);
        process.exit(70);
      }
      content = content.split(patch.find).join(patch.replace);
    }
  }
  return compile.call(this, content, filename);
};
