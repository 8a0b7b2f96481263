import * as assert from "node:assert/strict";
import { z } from "zod";
import { HTTP_SERVER_SPAN, SERVICES, TAGS } from "../app/src/tracing/conventions";
import { parseStackSettings } from "../components/config";
import { agentSamplers, retentionFilters, retentionRate, samplingRulesFor, tracerSamplingEnv } from "../components/sampling";
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
      assert.ok(rules.every((r: { service?: string }) => r.service === service), "each rule is scoped to its service");
    });
  }

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
    const rules = samplingRulesFor(prod(), SERVICES.payment);
    assert.ok(rules.some((r) => r.name === "user.authentication" && r.sample_rate === 1 && !r.tags));
  });

  it("samples customer tiers at their rates after the always-kept flows", () => {
    const rules = samplingRulesFor(prod(), SERVICES.payment);
    const tierRules = rules.filter((r) => r.tags?.[TAGS.customerTier]);
    assert.deepEqual(
      tierRules.map((r) => [r.tags![TAGS.customerTier], r.sample_rate]),
      [
        ["premium", 0.3],
        ["enterprise", 0.5],
      ],
    );
    assert.ok(rules.indexOf(tierRules[0]) > 0, "first match wins: the payment flow rule comes first");
  });

  it("puts the base rate and rate limit into the tracer env", () => {
    const env = tracerSamplingEnv(parseStackSettings(withValue(rawSettings("prod"), "sampling.baseRate", 0.05)).sampling, SERVICES.payment);
    assert.equal(env.DD_TRACE_SAMPLE_RATE, "0.05");
    assert.equal(env.DD_TRACE_RATE_LIMIT, "100");
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

  it("writes retention rates as the decimal strings Datadog expects", () => {
    assert.deepEqual([0, 1, 0.25, 0.5].map(retentionRate), ["0.0", "1.0", "0.25", "0.5"]);
  });
});
