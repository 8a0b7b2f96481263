/**
 * Loaded only by the mutation runs (stryker.config.mjs). Stryker's mocha runner records
 * which test covers which mutant from the test id it sets before each test, and never
 * clears it: code run in a later suite's `before` hook (a whole program run under the mock
 * engine) would be charged to the previous suite's last test, and its mutants tested
 * against that test only. Clearing the id after each test makes such code count as covered
 * by every test of the run, which is what a `before` hook means.
 */
declare const globalThis: { __stryker__?: { currentTestId?: string } };

export const mochaHooks = {
  afterEach(): void {
    if (globalThis.__stryker__) globalThis.__stryker__.currentTestId = undefined;
  },
};
