import * as assert from "node:assert/strict";
import fc from "fast-check";
import { configPerSuite } from "./support/config-per-suite";
import { withValue } from "./support/stack-settings";

// The config module as loaded for this run of the specs (support/config-per-suite.ts).
const { configModule, rawSettings } = configPerSuite();
const parseStackSettings = (raw: Record<string, unknown>) => configModule().parseStackSettings(raw);

/** Values that are not numbers (as typed in YAML or `pulumi config set`). */
const notANumber = fc.oneof(
  fc.string({ minLength: 1, maxLength: 12 }).filter((s) => s.trim() === "" || isNaN(Number(s))),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.integer(), { maxLength: 2 }),
  fc.constant({}),
);
const badRate = fc.oneof(fc.double({ min: 1.000001, max: 1e12, noNaN: true }), fc.double({ min: -1e12, max: -1e-9, noNaN: true }), notANumber);
const badPositive = fc.oneof(fc.double({ min: -1e9, max: 0, noNaN: true }), fc.constant(Infinity), notANumber);
const badWhole = (min: number, max: number) =>
  fc.oneof(
    fc.integer({ min: max + 1, max: max + 1_000_000 }),
    fc.integer({ min: min - 1_000_000, max: min - 1 }),
    fc.double({ min, max, noNaN: true }).filter((x) => !Number.isInteger(x)),
    notANumber,
  );
const badBoolean = fc.oneof(fc.string({ maxLength: 8 }).filter((s) => s !== "true" && s !== "false"), fc.integer(), fc.constant(null));
const name = fc.stringMatching(/^[a-z][a-z0-9-]{0,12}$/);
const badImage = fc.oneof(
  name.map((n) => `repo/${n}`), // no tag, no digest
  name.map((n) => `repo/${n}:latest`),
  name.map((n) => `registry:5000/${n}`), // a port is not a tag
  fc.integer(),
);
/** Strings that are not lowercase DNS-ish label values. */
const badLabelValue = fc.oneof(
  fc.string({ maxLength: 70 }).filter((s) => !/^[a-z0-9]([-_.a-z0-9]{0,61}[a-z0-9])?$/.test(s)),
  fc.integer(),
);
const badDnsLabel = fc.string({ maxLength: 70 }).filter((s) => !/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(s));
const badHandle = fc.string({ maxLength: 20 }).filter((s) => !/^@[\w.+-]+(@[\w.-]+)?$/.test(s));
const unknownKey = fc.stringMatching(/^[a-zA-Z][a-zA-Z0-9]{0,10}$/);

/** Each leaf of the config and values it must refuse. */
const LEAVES: [string, fc.Arbitrary<unknown>][] = [
  ["sampling.baseRate", badRate],
  ["sampling.errorRate", badRate],
  ["sampling.tierRates.premium", badRate],
  ["sampling.tierRates.enterprise", badRate],
  ["sampling.slowTraces.rate", badRate],
  ["sampling.slowTraces.thresholdMs", badPositive],
  ["sampling.rateLimit", badWhole(1, 100000)],
  ["sampling.sampledRuleMaxPerSecond", badWhole(1, 100000)],
  ["sampling.alwaysKeepPeakPerSecond", badWhole(0, 100000)],
  ["sampling.agent.targetTracesPerSecond", badPositive],
  ["sampling.agent.errorTracesPerSecond", badPositive],
  ["sampling.agent.rareSamplerEnabled", badBoolean],
  ["monitors.paymentErrorRate", badRate],
  ["monitors.paymentLatencyP95Seconds", badPositive],
  ["monitors.databaseLatencyP95Seconds", badPositive],
  ["monitors.notify.0", badHandle],
  ["services.payment.image", badImage],
  ["services.fraud.image", badImage],
  ["datadog.agentImage", badImage],
  ["services.payment.version", badLabelValue],
  ["services.fraud.version", badLabelValue],
  ["services.payment.replicas", badWhole(1, 100)],
  ["services.fraudTimeoutMs", badWhole(50, 30000)],
  ["services.namespace", badDnsLabel],
  ["datadog.namespace", badDnsLabel],
  ["datadog.apm.port", badWhole(1, 65535)],
  ["datadog.apm.socketEnabled", badBoolean],
  ["datadog.kubeletTlsVerify", badBoolean],
  ["database.port", badWhole(1, 65535)],
  ["database.poolMax", badWhole(1, 200)],
  ["redis.port", badWhole(1, 65535)],
  ["auth.issuer", fc.oneof(name.map((n) => `http://${n}.example.com/`), name, fc.constant(""), fc.integer())],
  ["auth.jwksUrl", fc.oneof(name.map((n) => `http://${n}.example.com/jwks`), name, fc.constant("https://"), fc.integer())],
  ["auth.audience", fc.oneof(fc.constant(""), fc.constant("   "), fc.integer(), fc.constant(null))],
  ["auth.clockToleranceSeconds", badWhole(0, 300)],
  ["payments.idempotencyWindowHours", badWhole(1, 720)],
  ["payments.rateLimit.perUserPerMinute", badWhole(1, 1_000_000)],
  ["payments.rateLimit.burst", badWhole(1, 1_000_000)],
  ["environment", badLabelValue],
  ["deployment", badLabelValue],
  ["cluster.region", fc.string({ maxLength: 20 }).filter((s) => !/^[a-z]{2}(-gov)?-[a-z]+-\d$/.test(s))],
  ["cluster.name", fc.string({ maxLength: 90 }).filter((s) => !/^[a-z0-9]([a-z0-9.-]{0,78}[a-z0-9])?$/.test(s))],
];
const OBJECTS = ["", "sampling", "sampling.agent", "sampling.tierRates", "services", "services.payment", "datadog", "datadog.apm", "database", "redis", "monitors", "cluster", "auth", "payments", "payments.rateLimit"];

function problemsOf(raw: Record<string, unknown>): string[] {
  try {
    parseStackSettings(raw);
  } catch (e) {
    if (e instanceof configModule().ConfigError) return [...e.problems];
    throw e;
  }
  return [];
}

describe("stack config sweep (generated bad values)", () => {
  it("rejects a bad value at any leaf, naming that key", () => {
    const base = rawSettings("prod");
    fc.assert(
      fc.property(fc.constantFrom(...LEAVES).chain(([path, bad]) => bad.map((value) => [path, value] as const)), ([path, value]) => {
        const problems = problemsOf(withValue(base, path, value));
        const key = `payments-apm:${path}`;
        return problems.some((p) => p === `${key} is required` || p.startsWith(`${key} `));
      }),
      { numRuns: 1500, seed: 20261125 },
    );
  });

  it("rejects an unknown key at any level, naming it", () => {
    const base = rawSettings("prod");
    fc.assert(
      fc.property(fc.constantFrom(...OBJECTS), unknownKey, (parent, key) => {
        const path = parent ? `${parent}.${key}` : key;
        const existing = path.split(".").reduce<any>((o, k) => (o == null ? undefined : o[k]), base);
        fc.pre(existing === undefined && !["databasePassword", "databaseMigrationPassword", "databaseWorkerPassword", "rolloutChecksumKey", "redisKeySecret", "redisAuthToken"].includes(key));
        const problems = problemsOf(withValue(base, path, 1));
        return problems.some((p) => p.startsWith(`payments-apm:${path} is not a known setting`));
      }),
      { numRuns: 300, seed: 20261125 },
    );
  });

  it("rejects several bad values at once, naming each key", () => {
    const base = rawSettings("prod");
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.constantFrom(...LEAVES.filter(([p]) => !p.startsWith("monitors.notify"))), { minLength: 2, maxLength: 5, selector: ([p]) => p }).chain((leaves) =>
          fc.tuple(...leaves.map(([p, bad]) => bad.map((v) => [p, v] as const))),
        ),
        (changes) => {
          const raw = changes.reduce((r, [p, v]) => withValue(r, p, v), base);
          const problems = problemsOf(raw);
          return changes.every(([p]) => problems.some((x) => x.startsWith(`payments-apm:${p} `) || x === `payments-apm:${p} is required`));
        },
      ),
      { numRuns: 300, seed: 20261125 },
    );
  });

  it("accepts the stack files unchanged (the sweep's baseline is valid)", () => {
    assert.deepEqual(problemsOf(rawSettings("prod")), []);
    assert.deepEqual(problemsOf(rawSettings("staging")), []);
  });
});
