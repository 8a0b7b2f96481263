// Preloaded (node --require) into the Stryker processes by `npm run test:mutation`.
// @stryker-mutator/mocha-runner 10.1.1 requires mocha's cli internals without an extension
// (`mocha/lib/cli/run-helpers`), and mocha 12 ships them as `.cjs`, which CommonJS
// resolution does not probe (stryker-js#6205, fixed upstream but unreleased). Letting it
// probe `.cjs` like `.js` finds them; the files themselves load unchanged.
"use strict";
if (!require.extensions[".cjs"]) require.extensions[".cjs"] = require.extensions[".js"];
