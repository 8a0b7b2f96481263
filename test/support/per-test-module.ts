/**
 * A module of the program loaded anew for each test that uses it (once per test, on first
 * use), the way every program run under the mock engine loads the program's modules.
 *
 * Why: a module's top-level code (the stack config's schema, the policies and their
 * patterns) runs when it loads. Loaded once with the spec files, a change to that code (a
 * mutation-testing mutant, `npm run test:mutation`) can only be tried by loading every spec
 * again in a new process, for each change; loaded within the test, it is code the test
 * runs, tried in the same process against the tests that run it.
 */
import type * as ConfigModule from "../../components/config";

/** `() => the module at file, as loaded for the running test`. */
export function perTestModule<T>(file: string): () => T {
  let loaded: T | undefined;
  beforeEach(() => {
    loaded = undefined;
  });
  return () => {
    if (loaded === undefined) {
      delete require.cache[file];
      loaded = require(file) as T;
    }
    return loaded;
  };
}

/** components/config.ts, as loaded for the running test. */
export const configModule = perTestModule<typeof ConfigModule>(require.resolve("../../components/config"));
