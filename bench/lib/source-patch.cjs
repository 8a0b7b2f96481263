/**
 * Preloaded into a service (NODE_OPTIONS=--require …/source-patch.cjs) for a variant of
 * lib/configs.ts: rewrites the source of app/dist/src/<file> as it loads, by exact text
 * replacement. BENCH_SOURCE_PATCHES: the path of a JSON list of { file, find, replace }.
 * A `find` that is not in the file stops the process: a stale patch must not measure nothing.
 */
"use strict";

const fs = require("node:fs");
const Module = require("node:module");

const patches = JSON.parse(fs.readFileSync(process.env.BENCH_SOURCE_PATCHES, "utf8"));
const MARKER = "/app/dist/src/";
const compile = Module.prototype._compile;

Module.prototype._compile = function patchedCompile(content, filename) {
  const file = filename.includes(MARKER) ? filename.slice(filename.indexOf(MARKER) + MARKER.length) : "";
  for (const patch of patches.filter((p) => p.file === file)) {
    if (!content.includes(patch.find)) {
      process.stderr.write(`bench-patch: ${file}: text to replace not found: ${JSON.stringify(patch.find)}\n`);
      process.exit(70);
    }
    content = content.split(patch.find).join(patch.replace);
  }
  return compile.call(this, content, filename);
};
