/**
 * Loaded only by the mutation runs (stryker.config.mjs).
 *
 * Stryker's mocha runner records which test covers which mutant from the test id it sets
 * before each test, and never clears it: code run in a later suite's `before` hook (a whole
 * program run under the mock engine) would be charged to the previous suite's last test,
 * and its mutants tested against that test only. So the id is cleared after each test, and
 * what the hooks run between two tests is charged to every test of the run: a program run
 * may be shared by several suites (support/rendered-env.ts caches one per stack), so any of
 * them may be the one to see a mutant of it. Stryker then tries those mutants in the same
 * process, and the hooks run again with the mutant on (the cached program runs are
 * forgotten before each run of the tests). Without that, such coverage would count as code
 * run while loading the files ("static"), and each of those mutants would cost a new
 * process loading every spec of the group.
 *
 * Code run while loading the spec files (module-level code) stays static: only a fresh
 * load sees it mutated.
 */
import type { Context, Suite } from "mocha";
import { forgetStackRuns } from "./rendered-env";

type Hits = Record<string, number>;
interface StrykerContext {
  currentTestId?: string;
  mutantCoverage?: { static: Hits; perTest: Record<string, Hits> };
}
declare const globalThis: { __stryker__?: StrykerContext };

/** Static coverage when the run started: what loading the spec files covered. */
let atLoad: Hits = {};

function rootOf(suite: Suite): Suite {
  let s = suite;
  while (s.parent) s = s.parent;
  return s;
}

function testIds(suite: Suite): string[] {
  return [...suite.tests.map((t) => t.fullTitle()), ...suite.suites.flatMap(testIds)];
}

export const mochaHooks = {
  beforeAll(): void {
    forgetStackRuns();
    const coverage = globalThis.__stryker__?.mutantCoverage;
    if (coverage) atLoad = { ...coverage.static };
  },
  beforeEach(this: Context): void {
    const coverage = globalThis.__stryker__?.mutantCoverage;
    const test = this.currentTest;
    if (!coverage || !test?.parent) return;
    // Hits since the last test, with no test running: the hooks of the suites.
    const fromHooks: Hits = {};
    for (const [mutant, hits] of Object.entries(coverage.static)) {
      const extra = hits - (atLoad[mutant] ?? 0);
      if (extra <= 0) continue;
      fromHooks[mutant] = extra;
      if (atLoad[mutant]) coverage.static[mutant] = atLoad[mutant];
      else delete coverage.static[mutant];
    }
    if (Object.keys(fromHooks).length === 0) return;
    for (const id of testIds(rootOf(test.parent))) {
      const hits = (coverage.perTest[id] ??= {});
      for (const [mutant, n] of Object.entries(fromHooks)) hits[mutant] = (hits[mutant] ?? 0) + n;
    }
  },
  afterEach(): void {
    if (globalThis.__stryker__) globalThis.__stryker__.currentTestId = undefined;
  },
};
