/**
 * Loaded only by the mutation runs (stryker.config.mjs).
 *
 * Stryker's mocha runner records which test covers which mutant from the test id it sets
 * before each test, and never clears it: code run in a later suite's `before` hook (a whole
 * program run under the mock engine) would be charged to the previous suite's last test,
 * and its mutants tested against that test only. So the id is cleared after each test, and
 * what a `before` hook covers is charged to every test of the top-level suite it ran for:
 * Stryker then runs those tests against the mutant in the same process, and mocha runs the
 * suite's `before` hooks again with the mutant active. Without that, such coverage would
 * count as code run while loading the files ("static"), and each of those mutants would
 * cost a new process loading every spec of the group and running all of its tests.
 *
 * Code run while loading the spec files (module-level code, e.g. the config schema) stays
 * static: only a fresh load sees it mutated.
 */
import type { Context, Suite } from "mocha";

type Hits = Record<string, number>;
interface StrykerContext {
  currentTestId?: string;
  mutantCoverage?: { static: Hits; perTest: Record<string, Hits> };
}
declare const globalThis: { __stryker__?: StrykerContext };

/** Static coverage when the run started: what loading the spec files covered. */
let atLoad: Hits = {};

function topLevelSuite(suite: Suite): Suite {
  let s = suite;
  while (s.parent && !s.parent.root) s = s.parent;
  return s;
}

function testIds(suite: Suite): string[] {
  return [...suite.tests.map((t) => t.fullTitle()), ...suite.suites.flatMap(testIds)];
}

export const mochaHooks = {
  beforeAll(): void {
    const coverage = globalThis.__stryker__?.mutantCoverage;
    if (coverage) atLoad = { ...coverage.static };
  },
  beforeEach(this: Context): void {
    const coverage = globalThis.__stryker__?.mutantCoverage;
    const test = this.currentTest;
    if (!coverage || !test?.parent) return;
    // Hits since the last test, with no test running: hooks (mainly `before`) of this test's suites.
    const fromHooks: Hits = {};
    for (const [mutant, hits] of Object.entries(coverage.static)) {
      const extra = hits - (atLoad[mutant] ?? 0);
      if (extra <= 0) continue;
      fromHooks[mutant] = extra;
      if (atLoad[mutant]) coverage.static[mutant] = atLoad[mutant];
      else delete coverage.static[mutant];
    }
    if (Object.keys(fromHooks).length === 0) return;
    for (const id of testIds(topLevelSuite(test.parent))) {
      const hits = (coverage.perTest[id] ??= {});
      for (const [mutant, n] of Object.entries(fromHooks)) hits[mutant] = (hits[mutant] ?? 0) + n;
    }
  },
  afterEach(): void {
    if (globalThis.__stryker__) globalThis.__stryker__.currentTestId = undefined;
  },
};
