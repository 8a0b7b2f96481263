/**
 * components/config.ts loaded anew once per run of the config specs (in a `before` hook),
 * with the raw settings of the stack files read through it.
 *
 * Why: the module's top-level code (the whole schema) must run inside the test run, not
 * while the spec files load (see per-test-module.ts), but building the schema takes about
 * 0.1 s: loaded once per test, it was most of the time of a run of the config specs, which
 * a mutation run repeats for each mutant. A `before` hook runs in every run of its suite,
 * so each run still sees the module as it is then.
 */
import type * as ConfigModule from "../../components/config";
import { rawSettings as rawSettingsOf } from "./stack-settings";

const FILE = require.resolve("../../components/config");

export interface ConfigUnderTest {
  /** components/config.ts as loaded for this run of the suite. */
  readonly configModule: () => typeof ConfigModule;
  /** The `payments-apm:*` values of Pulumi.<stack>.yaml as the program receives them, parsed. */
  readonly rawSettings: (stack: string) => Record<string, any>;
}

/** Registers the `before` hook that loads the module (at the top of a spec file: once per run). */
export function configPerSuite(): ConfigUnderTest {
  let loaded: typeof ConfigModule | undefined;
  before(() => {
    delete require.cache[FILE];
    loaded = require(FILE) as typeof ConfigModule;
  });
  const configModule = () => {
    if (!loaded) throw new Error("configPerSuite: the module is loaded by a before hook; use it within a test");
    return loaded;
  };
  const rawSettings = (stack: string) => rawSettingsOf(stack, configModule());
  return { configModule, rawSettings };
}
