import * as assert from "node:assert/strict";
import { SERVICES } from "../app/src/tracing/conventions";
import { parseStackSettings } from "../components/config";
import type { SamplingPolicy } from "../components/sampling";
import { serviceEnv, unifiedServiceLabels } from "../components/traced-service";
import { rawSettings } from "./support/stack-settings";

/** A sampling policy small enough to write its rules out: the base rate alone. */
const sampling: SamplingPolicy = {
  ...parseStackSettings(rawSettings("prod")).sampling,
  alwaysKeep: [],
  tierRates: {} as SamplingPolicy["tierRates"],
  baseRate: 0.25,
  rateLimit: 40,
  sampledRuleMaxPerSecond: 5,
};

function envArgs(overrides: Partial<Parameters<typeof serviceEnv>[0]> = {}): Parameters<typeof serviceEnv>[0] {
  return {
    service: SERVICES.payment,
    version: "3.1.0",
    env: "staging",
    globalTags: { cluster: "payments-staging", region: "eu-west-1", deployment: "green" },
    sampling,
    agent: { socketEnabled: false, portEnabled: true, port: 8126 },
    appEnv: { PGHOST: "ledger.internal", FRAUD_TIMEOUT_MS: "800" },
    ...overrides,
  };
}

const fromLabel = (name: string, key: string) => ({ name, valueFrom: { fieldRef: { fieldPath: `metadata.labels['tags.datadoghq.com/${key}']` } } });
const tracing = [
  fromLabel("DD_ENV", "env"),
  fromLabel("DD_SERVICE", "service"),
  fromLabel("DD_VERSION", "version"),
  { name: "DD_AGENT_HOST", valueFrom: { fieldRef: { fieldPath: "status.hostIP" } } },
  { name: "DD_TRACE_AGENT_PORT", value: "8126" },
  { name: "DD_TAGS", value: "cluster:payments-staging,region:eu-west-1,deployment:green" },
  { name: "DD_TRACE_SAMPLE_RATE", value: "0.25" },
  { name: "DD_TRACE_SAMPLING_RULES", value: '[{"sample_rate":0.25,"max_per_second":5}]' },
  { name: "DD_TRACE_RATE_LIMIT", value: "40" },
  { name: "DD_LOGS_INJECTION", value: "true" },
  { name: "DD_RUNTIME_METRICS_ENABLED", value: "true" },
  { name: "DD_TRACE_PROPAGATION_STYLE", value: "datadog,tracecontext" },
  { name: "DD_TRACE_OBFUSCATION_QUERY_STRING_REGEXP", value: "[^&]+" },
];

describe("a traced service's container env (serviceEnv)", () => {
  it("renders the tracing contract, then where to listen, then the app's settings, then its secrets by reference", () => {
    const env = serviceEnv(envArgs({ secretEnv: { PGPASSWORD: "db-password-sentinel", API_TOKEN: "token-sentinel" } }));
    assert.deepEqual(env, [
      ...tracing,
      { name: "PORT", value: "8080" },
      { name: "HOST", value: "0.0.0.0" },
      { name: "PGHOST", value: "ledger.internal" },
      { name: "FRAUD_TIMEOUT_MS", value: "800" },
      { name: "PGPASSWORD", valueFrom: { secretKeyRef: { name: "payment-service-secrets", key: "PGPASSWORD" } } },
      { name: "API_TOKEN", valueFrom: { secretKeyRef: { name: "payment-service-secrets", key: "API_TOKEN" } } },
    ]);
    assert.ok(!JSON.stringify(env).includes("sentinel"), "no secret value in the env");
  });

  it("tells a service that listens where to listen, by default and when told so", () => {
    for (const listens of [undefined, true]) {
      const env = serviceEnv(envArgs({ listens, appEnv: {} }));
      assert.deepEqual(env.slice(tracing.length), [
        { name: "PORT", value: "8080" },
        { name: "HOST", value: "0.0.0.0" },
      ]);
    }
  });

  it("gives a worker no PORT or HOST, only the tracing contract and its own settings", () => {
    assert.deepEqual(serviceEnv(envArgs({ listens: false, appEnv: { BROKER_HOST: "mq.internal" } })), [...tracing, { name: "BROKER_HOST", value: "mq.internal" }]);
  });

  it("lets the app's own settings override PORT and HOST", () => {
    const env = serviceEnv(envArgs({ appEnv: { HOST: "127.0.0.1" } }));
    assert.deepEqual(env.slice(tracing.length), [
      { name: "PORT", value: "8080" },
      { name: "HOST", value: "127.0.0.1" },
    ]);
  });

  it("points the tracer at the Agent's socket when it listens on one", () => {
    const env = serviceEnv(envArgs({ agent: { socketEnabled: true, portEnabled: false, port: 8126 }, appEnv: {} }));
    assert.deepEqual(env.slice(3, 5), [
      { name: "DD_TRACE_AGENT_URL", value: "unix:///var/run/datadog/apm.socket" },
      { name: "DD_TAGS", value: "cluster:payments-staging,region:eu-west-1,deployment:green" },
    ]);
  });

  it("tags a stack with one global tag without a separator, and with none as an empty DD_TAGS", () => {
    const ddTags = (globalTags: Record<string, string>) => serviceEnv(envArgs({ globalTags })).find((e) => e.name === "DD_TAGS");
    assert.deepEqual(ddTags({ cluster: "payments-dev" }), { name: "DD_TAGS", value: "cluster:payments-dev" });
    assert.deepEqual(ddTags({}), { name: "DD_TAGS", value: "" });
  });
});

describe("unified service tagging labels", () => {
  it("label the pods with env, service and version, the labels DD_ENV, DD_SERVICE and DD_VERSION are read from", () => {
    assert.deepEqual(unifiedServiceLabels({ env: "prod", service: SERVICES.fraud, version: "2.0.1" }), {
      "tags.datadoghq.com/env": "prod",
      "tags.datadoghq.com/service": "fraud-service",
      "tags.datadoghq.com/version": "2.0.1",
    });
  });
});
