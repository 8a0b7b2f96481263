import * as assert from "node:assert/strict";
import { execFile } from "node:child_process";
import * as path from "node:path";
import { promisify } from "node:util";
import { z } from "zod";
import { HTTP_SERVER_SPAN, SERVICES, TAGS } from "../app/src/tracing/conventions";
import { SERVICE_NODE } from "../app/test/support/services";
import { parseStackSettings } from "../components/config";
import { TraceRetention, agentSamplers, retentionFilters, retentionRate, samplingRulesFor, tracerSamplingEnv } from "../components/sampling";
import { runUnderMocks } from "../scripts/mock-engine";
import { rawSettings, withValue } from "./support/stack-settings";

/** The rule shape dd-trace documents for DD_TRACE_SAMPLING_RULES: nothing else is read. */
const documentedRule = z
  .object({
    service: z.string().optional(),
    name: z.string().optional(),
    resource: z.string().optional(),
    tags: z.record(z.string(), z.string()).optional(),
    sample_rate: z.number().min(0).max(1),
    max_per_second: z.number().positive().optional(),
  })
  .strict();

const prod = () => parseStackSettings(rawSettings("prod")).sampling;

describe("sampling policy", () => {
  for (const service of [SERVICES.payment, SERVICES.fraud]) {
    it(`renders DD_TRACE_SAMPLING_RULES for ${service} as valid JSON of the documented shape`, () => {
      const env = tracerSamplingEnv(prod(), service);
      const rules = JSON.parse(env.DD_TRACE_SAMPLING_RULES);
      assert.ok(Array.isArray(rules) && rules.length > 0);
      for (const rule of rules) documentedRule.parse(rule);
      assert.ok(rules.slice(0, -1).every((r: { service?: string }) => r.service === service), "each rule but the last is scoped to its service");
    });
  }

  it("ends with a catch-all rule at the base rate, capped, in place of dd-trace's own", () => {
    const rules = samplingRulesFor(prod(), SERVICES.payment);
    assert.deepEqual(rules.at(-1), { sample_rate: 0.1, max_per_second: 100 });
  });

  it("caps every sampled rule at sampledRuleMaxPerSecond and no always-keep rule", () => {
    const policy = parseStackSettings(withValue(rawSettings("prod"), "sampling.sampledRuleMaxPerSecond", 40)).sampling;
    for (const service of [SERVICES.payment, SERVICES.fraud]) {
      const rules = samplingRulesFor(policy, service);
      const kept = rules.filter(
        (r) => r.sample_rate === 1 && (r.tags?.[TAGS.flow] || r.tags?.[TAGS.rootAuth] || policy.alwaysKeep.includes(r.name ?? "")),
      );
      assert.ok(kept.length > 0);
      for (const r of kept) assert.equal(r.max_per_second, undefined, JSON.stringify(r));
      const sampled = rules.filter((r) => !kept.includes(r));
      assert.equal(sampled.length, 3, "two tiers and the base rate");
      for (const r of sampled) assert.equal(r.max_per_second, 40, JSON.stringify(r));
    }
  });

  it("keeps every payment trace by matching the local root span, not the business child span", () => {
    const rules = samplingRulesFor(prod(), SERVICES.payment);
    assert.deepEqual(rules[0], { service: "payment-service", name: HTTP_SERVER_SPAN, tags: { [TAGS.flow]: "payment" }, sample_rate: 1 });
    assert.ok(!rules.some((r) => r.name === "payment.process_payment"), "a rule on the child span would never match");
  });

  it("keeps every fraud-scoring trace that starts in fraud-service", () => {
    const rules = samplingRulesFor(prod(), SERVICES.fraud);
    assert.deepEqual(rules[0], { service: "fraud-service", name: HTTP_SERVER_SPAN, tags: { [TAGS.flow]: "fraud_score" }, sample_rate: 1 });
  });

  it("keeps operations without an HTTP entry point when they are the local root, by name", () => {
    const policy = parseStackSettings(withValue(rawSettings("prod"), "sampling.alwaysKeep", ["ledger.reconcile"])).sampling;
    const rules = samplingRulesFor(policy, SERVICES.payment);
    assert.deepEqual(rules[0], { service: "payment-service", name: "ledger.reconcile", sample_rate: 1 });
  });

  it("keeps failed authentications by the root's payments.auth tag in both services, not by the child span's name", () => {
    for (const service of [SERVICES.payment, SERVICES.fraud]) {
      const rules = samplingRulesFor(prod(), service);
      const auth = rules.filter((r) => r.tags?.[TAGS.rootAuth]);
      assert.deepEqual(auth, [{ service, name: HTTP_SERVER_SPAN, tags: { [TAGS.rootAuth]: "failed" }, sample_rate: 1 }]);
      assert.ok(!rules.some((r) => r.name === "user.authentication"), "a rule on the child span would never match");
    }
  });

  it("writes one failed-authentication rule however many authentication spans the policy keeps", () => {
    // A job's rule (no tags) first: the check must read rules without tags too.
    const policy = { ...prod(), alwaysKeep: ["ledger.migration", "user.authentication", "service.authentication", "user.authentication"] };
    assert.deepEqual(
      samplingRulesFor(policy, SERVICES.fraud).filter((r) => r.sample_rate === 1),
      [
        { service: "fraud-service", name: "ledger.migration", sample_rate: 1 },
        { service: "fraud-service", name: "fastify.request", tags: { "payments.auth": "failed" }, sample_rate: 1 },
      ],
    );
  });

  it("samples customer tiers at their rates after the always-kept flows", () => {
    const rules = samplingRulesFor(prod(), SERVICES.payment);
    const tierRules = rules.filter((r) => r.tags?.[TAGS.rootTier]);
    assert.deepEqual(
      tierRules.map((r) => [r.tags![TAGS.rootTier], r.sample_rate]),
      [
        ["premium", 0.3],
        ["enterprise", 0.5],
      ],
    );
    assert.ok(rules.indexOf(tierRules[0]) > 0, "first match wins: the payment flow rule comes first");
  });

  it("writes only tag keys that dd-trace reads back unchanged", async function () {
    this.timeout(30_000);
    // dd-trace camel-cases DD_TRACE_SAMPLING_RULES as it parses them, tag keys included: a
    // rule on `business.customer_tier` would look for `business.customerTier`. Its parser
    // runs in a child process: the app specs refuse to run with dd-trace in this one.
    for (const service of [SERVICES.payment, SERVICES.fraud]) {
      const rules = samplingRulesFor(prod(), service);
      const script = `
        const { transformers } = require("dd-trace/packages/dd-trace/src/config/parsers.js");
        console.log(JSON.stringify(transformers.toCamelCase(JSON.parse(process.argv.at(-1)))));`;
      const parsed = JSON.parse(await runWithTracer(script, [JSON.stringify(rules)], {})) as Array<{ tags?: object }>;
      assert.deepEqual(
        parsed.map((r) => r.tags),
        rules.map((r) => r.tags),
        service,
      );
    }
  });

  it("puts the base rate and rate limit into the tracer env", () => {
    const env = tracerSamplingEnv(parseStackSettings(withValue(rawSettings("prod"), "sampling.baseRate", 0.05)).sampling, SERVICES.payment);
    assert.equal(env.DD_TRACE_SAMPLE_RATE, "0.05");
    assert.equal(env.DD_TRACE_RATE_LIMIT, "500");
  });

  it("drops a kept flow from the rules when the policy no longer lists it", () => {
    const policy = parseStackSettings(withValue(rawSettings("prod"), "sampling.alwaysKeep", ["fraud.detection"])).sampling;
    assert.ok(!samplingRulesFor(policy, SERVICES.payment).some((r) => r.tags?.[TAGS.flow]));
  });

  it("hands the Agent its samplers", () => {
    assert.deepEqual(agentSamplers(prod()), { targetTracesPerSecond: 10, errorTracesPerSecond: 10, rareSamplerEnabled: true });
  });

  it("retains 50 % of error spans and 80 % of spans slower than 1 s, in nanoseconds", () => {
    const filters = retentionFilters(prod(), "prod", ["payment-service", "fraud-service"]);
    assert.deepEqual(
      filters.map((f) => [f.key, f.query, f.rate]),
      [
        ["errors", "env:prod AND service:(payment-service OR fraud-service) AND status:error", "0.5"],
        ["slow", "env:prod AND service:(payment-service OR fraud-service) AND @duration:>1000000000", "0.8"],
      ],
    );
  });

  it("creates one enabled span retention filter per kind, named after the env, in TraceRetention", async function () {
    this.timeout(30_000);
    const run = await runUnderMocks("test", { config: {}, secretKeys: [] }, () => {
      const retention = new TraceRetention("trace-retention", { policy: prod(), env: "staging", services: ["payment-service"] });
      return { filterIds: retention.filterIds };
    });
    const filters = run.resources.filter((r) => r.type === "datadog:index/apmRetentionFilter:ApmRetentionFilter");
    assert.deepEqual(
      filters.map((f) => [f.name, f.inputs]),
      [
        [
          "trace-retention-errors",
          { name: "payments-apm staging: error spans", enabled: true, filterType: "spans-sampling-processor", filter: { query: "env:staging AND service:(payment-service) AND status:error" }, rate: "0.5" },
        ],
        [
          "trace-retention-slow",
          {
            name: "payments-apm staging: spans slower than 1000 ms",
            enabled: true,
            filterType: "spans-sampling-processor",
            filter: { query: "env:staging AND service:(payment-service) AND @duration:>1000000000" },
            rate: "0.8",
          },
        ],
      ],
    );
    assert.deepEqual(Object.keys(run.outputs.filterIds as object).sort(), ["errors", "slow"]);
    assert.ok(run.resources.some((r) => r.type === "payments-apm:sampling:TraceRetention"));
    assert.deepEqual(run.componentOutputs["payments-apm:sampling:TraceRetention::trace-retention"], ["filterIds"], "the component hands the engine its filter ids");
  });

  it("writes retention rates as the decimal strings Datadog expects", () => {
    assert.deepEqual([0, 1, 0.25, 0.5].map(retentionRate), ["0.0", "1.0", "0.25", "0.5"]);
  });
});

/**
 * Decides `payments` payment-flow roots, each followed by `others` untagged roots and one
 * premium root, as fast as one process can, with dd-trace's own sampler and the given env
 * (no agent: `inject` takes the decision and writes it to the headers). Counts what was kept.
 */
async function decideInOneProcess(env: Record<string, string>, payments: number, others: number) {
  const script = `
    const tracer = require("dd-trace").init();
    const [payments, others] = process.argv.slice(-2).map(Number);
    const keep = (tags) => {
      const headers = {};
      tracer.inject(tracer.startSpan(${JSON.stringify(HTTP_SERVER_SPAN)}, { tags }).context(), "text_map", headers);
      return Number(headers["x-datadog-sampling-priority"]) > 0;
    };
    const kept = { payments: 0, others: 0 };
    const started = Date.now();
    for (let i = 0; i < payments; i++) {
      if (keep({ ${JSON.stringify(TAGS.flow)}: "payment" })) kept.payments++;
      for (let k = 0; k < others; k++) if (keep({})) kept.others++;
      if (keep({ ${JSON.stringify(TAGS.rootTier)}: "premium" })) kept.others++;
    }
    console.log(JSON.stringify({ ...kept, ms: Date.now() - started }));
    process.exit(0);`;
  const stdout = await runWithTracer(script, [String(payments), String(others)], env);
  return JSON.parse(stdout) as { payments: number; others: number; ms: number };
}

/** Runs `script` in a fresh Node process with dd-trace resolvable and `env` (plus no agent). */
async function runWithTracer(script: string, args: string[], env: Record<string, string>): Promise<string> {
  const { stdout } = await promisify(execFile)(SERVICE_NODE, ["-e", script, ...args], {
    cwd: path.join(__dirname, "..", "app"), // where dd-trace is a dependency
    env: {
      PATH: process.env.PATH,
      ...env,
      DD_TRACE_AGENT_URL: "http://127.0.0.1:9", // nothing is flushed before the exit
      DD_REMOTE_CONFIGURATION_ENABLED: "false",
      DD_INSTRUMENTATION_TELEMETRY_ENABLED: "false",
      DD_TRACE_STARTUP_LOGS: "false",
    },
  });
  return stdout;
}

/** How many of `n` roots with `tags` dd-trace's own sampler keeps under `env`. */
async function decideTagged(env: Record<string, string>, tags: Record<string, string>, n: number): Promise<number> {
  const script = `
    const tracer = require("dd-trace").init();
    const [tags, n] = [JSON.parse(process.argv.at(-2)), Number(process.argv.at(-1))];
    let kept = 0;
    for (let i = 0; i < n; i++) {
      const headers = {};
      tracer.inject(tracer.startSpan(${JSON.stringify(HTTP_SERVER_SPAN)}, { tags }).context(), "text_map", headers);
      if (Number(headers["x-datadog-sampling-priority"]) > 0) kept++;
    }
    console.log(kept);
    process.exit(0);`;
  return Number((await runWithTracer(script, [JSON.stringify(tags), String(n)], env)).trim());
}

describe("the rendered sampling env under dd-trace's own sampler (one process)", () => {
  const policy = prod();
  // Fifty other roots per payment: without the sampled rules' caps, the base rate alone keeps
  // 10 000 × 0.1 = 1 000 of them, twice what DD_TRACE_RATE_LIMIT (500) leaves room for.
  const others = 50;
  let kept: Awaited<ReturnType<typeof decideInOneProcess>>;

  before(async function () {
    this.timeout(30_000);
    const env = { ...tracerSamplingEnv(policy, SERVICES.payment), DD_SERVICE: SERVICES.payment, DD_ENV: "prod" };
    kept = await decideInOneProcess(env, policy.alwaysKeepPeakPerSecond, others);
  });

  it("keeps every payment trace at the peak rate while fifty times as many other roots arrive", () => {
    // The limiter is shared by every rule: without the caps the others' kept share takes
    // the payments' tokens (the former env, rateLimit 100 and no caps, kept 43-48 of 200).
    assert.equal(policy.alwaysKeepPeakPerSecond, 200);
    assert.equal(kept.payments, 200, JSON.stringify(kept));
  });

  it("samples premium roots, tagged as payment-service tags them, at the premium rate", async function () {
    this.timeout(30_000);
    // Caps high enough not to bind: this measures the rule's rate, not its cap.
    const raw = withValue(withValue(rawSettings("prod"), "sampling.sampledRuleMaxPerSecond", 10_000), "sampling.rateLimit", 50_000);
    const roomy = parseStackSettings(raw).sampling;
    const env = { ...tracerSamplingEnv(roomy, SERVICES.payment), DD_SERVICE: SERVICES.payment, DD_ENV: "prod" };
    const n = 1_000;
    // The tags annotateRootTier sets on the root.
    const premium = await decideTagged(env, { [TAGS.rootTier]: "premium", [TAGS.customerTier]: "premium" }, n);
    // Premium 30 % (expect 300, sd 14.5), not the 10 % base rate (100) a rule that never
    // matches leaves (see the next test).
    assert.equal(roomy.tierRates.premium, 0.3);
    assert.ok(premium > 0.22 * n && premium < 0.38 * n, `${premium} of ${n} premium roots kept`);
  });

  it("keeps every root tagged with a failed authentication, and samples successful ones at the base rate", async function () {
    this.timeout(30_000);
    // Only the authentication rule: the payment flow rule must not be what keeps them.
    const onlyAuth = parseStackSettings(withValue(rawSettings("prod"), "sampling.alwaysKeep", ["user.authentication"])).sampling;
    const n = 200;
    for (const service of [SERVICES.payment, SERVICES.fraud]) {
      const env = { ...tracerSamplingEnv(onlyAuth, service), DD_SERVICE: service, DD_ENV: "prod" };
      assert.equal(await decideTagged(env, { [TAGS.rootAuth]: "failed" }, n), n, service);
      const ok = await decideTagged(env, { [TAGS.rootAuth]: "ok" }, n);
      // Base rate 10 %: expect 20 (sd 4.2).
      assert.ok(ok > 0 && ok < 0.25 * n, `${service}: ${ok} of ${n} authenticated roots kept`);
    }
  });

  it("is needed: dd-trace still camel-cases rule tag keys, so a key with `_` before a letter never matches", async function () {
    this.timeout(30_000);
    const rule = (key: string) => ({ DD_TRACE_SAMPLE_RATE: "0", DD_TRACE_SAMPLING_RULES: JSON.stringify([{ tags: { [key]: "premium" }, sample_rate: 1 }]) });
    const tags = { [TAGS.rootTier]: "premium", [TAGS.customerTier]: "premium" };
    assert.equal(TAGS.customerTier, "business.customer_tier");
    assert.equal(await decideTagged(rule(TAGS.customerTier), tags, 50), 0, "a rule on business.customer_tier");
    assert.equal(await decideTagged(rule(TAGS.rootTier), tags, 50), 50, `a rule on ${TAGS.rootTier}`);
  });

  it("still stops the other roots at the sampled rules' cap", () => {
    // Two capped rules see this traffic (the base rate and premium), 100 traces/s each; a cap
    // holds per 1-second window and the decisions span `windows` at most. Uncapped, the base
    // rate would keep about 1 000 of them, as many as the 500/s limiter lets through.
    assert.equal(policy.sampledRuleMaxPerSecond, 100);
    const windows = Math.floor(kept.ms / 1000) + 1;
    assert.ok(kept.others > 0 && kept.others <= 2 * 100 * windows, JSON.stringify(kept));
  });
});
