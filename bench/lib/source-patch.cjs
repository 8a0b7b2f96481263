/**
 * Preloaded into a service (NODE_OPTIONS=--require …/source-patch.cjs) by bench/experiments.ts
 * to measure a proposed change to the compiled app without touching app/: rewrites the
 * source of app/dist/src/<file> as it is loaded, by exact text replacement or by a whole
 * replacement file. BENCH_SOURCE_PATCHES holds the path of a JSON list of
 *   { "file": "server/http.js", "find": "…", "replace": "…" }  or
 *   { "file": "payment-service/fraud-client.js", "replaceWith": "/abs/path.js" }  or
 *   { "file": "payment-service/store.js", "append": "exports.transferFunds = …" }
 * (an appended export replaces what other modules call through `(0, store_1.transferFunds)(…)`).
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
      if (patch.replaceWith) {
        content = fs.readFileSync(patch.replaceWith, "utf8");
      } else if (patch.append) {
        content = `${content}\n${patch.append}\n`;
      } else {
        if (!content.includes(patch.find)) {
          process.stderr.write(`bench-patch: ${file}: text to replace not found: ${JSON.stringify(patch.find)}\n`);
          process.exit(70);
        }
        content = content.split(patch.find).join(patch.replace);
      }
      process.stderr.write(`bench-patch: applied to ${file}\n`);
    }
  }
  return compile.call(this, content, filename);
};
