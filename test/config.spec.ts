import * as assert from "node:assert/strict";
import { configPerSuite } from "./support/config-per-suite";
import { withValue } from "./support/stack-settings";

// The config module as loaded for this run of the specs (support/config-per-suite.ts).
const { configModule, rawSettings } = configPerSuite();
const parseStackSettings = (raw: Record<string, unknown>) => configModule().parseStackSettings(raw);
const datadogProviderProblems = (site: string, apiUrl: string | undefined) => configModule().datadogProviderProblems(site, apiUrl);

function problemsOf(raw: Record<string, unknown>): string[] {
  try {
    parseStackSettings(raw);
  } catch (e) {
    assert.ok(e instanceof configModule().ConfigError, `expected a ConfigError, got ${e}`);
    return [...e.problems];
  }
  assert.fail("the config was accepted");
}

describe("stack config", () => {
  for (const stack of ["prod", "staging"]) {
    it(`accepts Pulumi.${stack}.yaml as written`, () => {
      const settings = parseStackSettings(rawSettings(stack));
      assert.equal(settings.environment, stack);
      assert.ok(Object.isFrozen(settings.sampling.tierRates), "settings are frozen all the way down");
    });
  }

  it("fills the original design's defaults for everything not set", () => {
    const minimal = {
      environment: "dev",
      deployment: "payments-dev",
      cluster: { name: "payments-dev", region: "eu-west-1" },
      services: {
        payment: { image: "repo/payment-service:1.0.0", version: "1.0.0" },
        fraud: { image: "repo/fraud-service@sha256:" + "a".repeat(64), version: "1.0.0" },
        relay: { image: "repo/outbox-relay:1.0.0", version: "1.0.0" },
        postProcessing: { image: "repo/post-processing:1.0.0", version: "1.0.0" },
      },
      database: { host: "db.internal", caBundle: rawSettings("prod").database.caBundle },
      redis: { host: "redis.internal" },
      broker: { host: "b-1.mq.eu-west-1.amazonaws.com", user: "payments" },
      monitors: { notify: ["@slack-payments"] },
      network: {
        paymentIngressFrom: [{ namespaceSelector: { "kubernetes.io/metadata.name": "ingress-nginx" } }],
        databaseCidrs: ["10.0.64.0/20"],
        redisCidrs: ["10.0.96.0/20"],
        brokerCidrs: ["10.0.112.0/20"],
        nodeCidrs: ["10.0.0.0/19"],
        jwksCidrs: ["10.0.200.0/24"],
      },
      auth: { issuer: "https://id.example.com/", audience: "payments", jwksUrl: "https://id.example.com/jwks" },
    };
    // Written out in full: every default a stack relies on without setting it.
    assert.deepEqual(parseStackSettings(minimal), {
      ...minimal,
      datadog: {
        site: "datadoghq.com",
        deployAgent: true,
        namespace: "datadog",
        agentImage: "public.ecr.aws/datadog/agent:7.81.1",
        priorityClass: { create: true, value: 1_000_000_000 },
        criSocketPath: "/var/run/containerd/containerd.sock",
        useHostnameFromFile: false,
        // The port too: the services' namespace enforces Pod Security restricted, which forbids the socket's hostPath.
        apm: { socketEnabled: true, portEnabled: true, port: 8126 },
        // EKS kubelets serve self-signed certificates: verifying them would stop the Agent.
        kubeletTlsVerify: false,
        tolerations: [],
        agentResources: { cpuRequest: "200m", memoryRequest: "256Mi", memoryLimit: "512Mi" },
        traceAgentResources: { cpuRequest: "100m", memoryRequest: "200Mi", memoryLimit: "400Mi", cpuLimit: "1" },
      },
      services: {
        namespace: "payments",
        payment: { ...minimal.services.payment, replicas: 3, minAvailable: 1, resources: { cpuRequest: "250m", memoryRequest: "256Mi", memoryLimit: "512Mi" } },
        fraud: { ...minimal.services.fraud, replicas: 2, minAvailable: 1, resources: { cpuRequest: "250m", memoryRequest: "256Mi", memoryLimit: "512Mi" } },
        relay: { ...minimal.services.relay, replicas: 2, minAvailable: 1, resources: { cpuRequest: "250m", memoryRequest: "256Mi", memoryLimit: "512Mi" } },
        postProcessing: { ...minimal.services.postProcessing, replicas: 2, minAvailable: 1, resources: { cpuRequest: "250m", memoryRequest: "256Mi", memoryLimit: "512Mi" } },
        fraudTimeoutMs: 800,
        enforceRestricted: true,
      },
      database: {
        host: "db.internal",
        port: 5432,
        name: "payments",
        user: "payments",
        migrationUser: "payments_migrations",
        workerUser: "payments_worker",
        poolMax: 10,
        migrations: { backoffLimit: 2, activeDeadlineSeconds: 600 },
        caBundle: minimal.database.caBundle,
      },
      redis: { host: "redis.internal", port: 6379, tls: true },
      // Amazon MQ for RabbitMQ: amqps on 5671.
      broker: { host: "b-1.mq.eu-west-1.amazonaws.com", port: 5671, vhost: "/", user: "payments", tls: true, exchange: "payments.events", outboxRetentionHours: 168 },
      sampling: {
        baseRate: 0.1,
        rateLimit: 500,
        sampledRuleMaxPerSecond: 100,
        alwaysKeepPeakPerSecond: 200,
        alwaysKeep: ["payment.process_payment", "fraud.detection", "user.authentication"],
        tierRates: { premium: 0.3, enterprise: 0.5 },
        errorRate: 0.5,
        slowTraces: { thresholdMs: 1000, rate: 0.8 },
        agent: { targetTracesPerSecond: 10, errorTracesPerSecond: 10, rareSamplerEnabled: true },
      },
      monitors: { notify: ["@slack-payments"], paymentLatencyP95Seconds: 2, paymentErrorRate: 0.05, databaseLatencyP95Seconds: 1, postProcessingLagP95Seconds: 60 },
      slos: { timeframe: "30d", availabilityTarget: 99.9, latencyTarget: 99.5 },
      network: { ...minimal.network, clusterEnforces: true },
      auth: { ...minimal.auth, clockToleranceSeconds: 30 },
      payments: { idempotencyWindowHours: 24, rateLimit: { perUserPerMinute: 60, burst: 10 } },
    });
  });

  it("accepts images pinned by tag, by sha256 digest, or both, and registries with a port", () => {
    const digest = "sha256:" + "0123456789abcdef".repeat(4);
    for (const image of [
      "repo/payment-service:1.4.2",
      `repo/payment-service@${digest}`,
      `repo/payment-service:1.4.2@${digest}`,
      "123456789012.dkr.ecr.us-east-1.amazonaws.com/payment-service:v1.4.2_rc.1",
      "registry.internal:5000/payments/payment-service:1.4.2",
      `registry.internal:5000/payments/payment-service@${digest}`,
    ]) {
      assert.equal(parseStackSettings(withValue(rawSettings("prod"), "services.payment.image", image)).services.payment.image, image);
    }
  });

  it("takes numbers and booleans typed as strings by `pulumi config set --path`", () => {
    const raw = withValue(withValue(rawSettings("prod"), "sampling.baseRate", "0.25"), "datadog.apm.portEnabled", "true");
    const s = parseStackSettings(raw);
    assert.equal(s.sampling.baseRate, 0.25);
    assert.equal(s.datadog.apm.portEnabled, true);
  });

  const badConfigs: { change: [string, unknown]; problem: string }[] = [
    { change: ["sampling.baseRate", 1.5], problem: "payments-apm:sampling.baseRate must be between 0 and 1, got 1.5" },
    { change: ["sampling.baseRate", "often"], problem: 'payments-apm:sampling.baseRate must be a number between 0 and 1, got "often"' },
    // A blank number must not read as 0 (a base rate of 0 keeps no traces).
    { change: ["sampling.baseRate", ""], problem: 'payments-apm:sampling.baseRate must be a number between 0 and 1, got ""' },
    { change: ["sampling.baseRate", "  "], problem: 'payments-apm:sampling.baseRate must be a number between 0 and 1, got "  "' },
    { change: ["sampling.rateLimit", ""], problem: 'payments-apm:sampling.rateLimit must be a whole number between 1 and 100000, got ""' },
    { change: ["sampling.tierRates.premium", -0.1], problem: "payments-apm:sampling.tierRates.premium must be between 0 and 1, got -0.1" },
    { change: ["sampling.slowTraces.thresholdMs", 0], problem: "payments-apm:sampling.slowTraces.thresholdMs must be greater than 0, got 0" },
    { change: ["sampling.rateLimit", 2.5], problem: "payments-apm:sampling.rateLimit must be a whole number between 1 and 100000, got 2.5" },
    {
      change: ["sampling.rateLimit", 100],
      problem:
        "payments-apm:sampling.rateLimit must be at least 500 (traces/s per service instance): dd-trace counts always-kept traces against it too, " +
        "so it must cover alwaysKeepPeakPerSecond (200) plus sampledRuleMaxPerSecond (100) for each sampled rule (base rate, premium, enterprise), got 100",
    },
    { change: ["sampling.sampledRuleMaxPerSecond", 150], problem: "payments-apm:sampling.rateLimit must be at least 650 " },
    { change: ["sampling.alwaysKeepPeakPerSecond", 300], problem: "payments-apm:sampling.rateLimit must be at least 600 " },
    { change: ["sampling.sampledRuleMaxPerSecond", 0], problem: "payments-apm:sampling.sampledRuleMaxPerSecond must be a whole number between 1 and 100000, got 0" },
    { change: ["sampling.alwaysKeepPeakPerSecond", 2.5], problem: "payments-apm:sampling.alwaysKeepPeakPerSecond must be a whole number between 0 and 100000, got 2.5" },
    { change: ["sampling.alwaysKeep", ["Payment Process"]], problem: 'payments-apm:sampling.alwaysKeep.0 must be a span name such as payment.process_payment, got "Payment Process"' },
    { change: ["sampling.baseRat", 0.2], problem: "payments-apm:sampling.baseRat is not a known setting" },
    { change: ["cluster.name", "Payments_Prod"], problem: "payments-apm:cluster.name must be lowercase" },
    { change: ["cluster.region", "mars-1"], problem: 'payments-apm:cluster.region must be an AWS region such as us-east-1, got "mars-1"' },
    { change: ["cluster.region", "us-east-1a"], problem: 'payments-apm:cluster.region must be an AWS region such as us-east-1, got "us-east-1a"' },
    { change: ["cluster.region", "xus-east-1"], problem: 'payments-apm:cluster.region must be an AWS region such as us-east-1, got "xus-east-1"' },
    { change: ["cluster.name", undefined], problem: "payments-apm:cluster.name is required" },
    { change: ["environment", "Prod Env"], problem: 'payments-apm:environment must be lowercase letters, digits' },
    { change: ["services.payment.version", "1.4.2+build 7"], problem: 'payments-apm:services.payment.version must be lowercase letters, digits' },
    { change: ["services.payment.image", "repo/payment-service:latest"], problem: "payments-apm:services.payment.image must not use the mutable tag 'latest'" },
    { change: ["services.fraud.image", "repo/fraud-service"], problem: "payments-apm:services.fraud.image must be pinned by tag or digest" },
    { change: ["services.fraud.image", "repo/fraud-service@sha256:abc"], problem: "payments-apm:services.fraud.image has a digest that is not sha256: followed by 64 lowercase hex digits" },
    { change: ["services.fraud.image", "repo/fraud-service@sha256:" + "g".repeat(64)], problem: "payments-apm:services.fraud.image has a digest that is not sha256: followed by 64 lowercase hex digits" },
    { change: ["services.fraud.image", "repo/fraud-service@sha256:" + "a".repeat(65)], problem: "payments-apm:services.fraud.image has a digest that is not sha256: followed by 64 lowercase hex digits" },
    { change: ["services.fraud.image", "repo/fraud-service@sha512:" + "a".repeat(64)], problem: "payments-apm:services.fraud.image has a digest that is not sha256: followed by 64 lowercase hex digits" },
    { change: ["services.fraud.image", "registry.internal:5000/fraud-service"], problem: "payments-apm:services.fraud.image must be pinned by tag or digest" },
    { change: ["datadog.agentImage", "gcr.io/datadoghq/agent:7.81.1 "], problem: "payments-apm:datadog.agentImage must be pinned by tag or digest" },
    { change: ["services.payment.replicas", 0], problem: "payments-apm:services.payment.replicas must be a whole number between 1 and 100, got 0" },
    { change: ["services.payment.minAvailable", 3], problem: "payments-apm:services.payment.minAvailable must be less than replicas, got 3" },
    { change: ["services.namespace", "Payments"], problem: 'payments-apm:services.namespace must be a DNS-1123 label' },
    { change: ["datadog.agentImage", "gcr.io/datadoghq/agent:latest"], problem: "payments-apm:datadog.agentImage must not use the mutable tag 'latest'" },
    { change: ["datadog.apm", { socketEnabled: false, portEnabled: false }], problem: "payments-apm:datadog.apm needs socketEnabled or portEnabled" },
    {
      change: ["datadog.apm", { socketEnabled: true, portEnabled: false }],
      problem: "payments-apm:datadog.apm.portEnabled must be true while payments-apm:services.enforceRestricted is true",
    },
    {
      change: ["datadog", { deployAgent: false, existingAgent: { socketPath: "/var/run/datadog/apm.socket" } }],
      problem: "payments-apm:datadog.existingAgent.port is required while payments-apm:services.enforceRestricted is true",
    },
    { change: ["datadog.apm.port", 70000], problem: "payments-apm:datadog.apm.port must be a whole number between 1 and 65535, got 70000" },
    { change: ["datadog.site", "datadog.com"], problem: 'payments-apm:datadog.site must be a Datadog site such as datadoghq.com or datadoghq.eu, got "datadog.com"' },
    { change: ["datadog.tolerations", [{ key: "x", operator: "Maybe" }]], problem: 'payments-apm:datadog.tolerations.0.operator must be Exists or Equal, got "Maybe"' },
    { change: ["datadog.agentResources.memoryLimit", "lots"], problem: 'payments-apm:datadog.agentResources.memoryLimit must be a Kubernetes quantity such as "100m" or "256Mi", got "lots"' },
    { change: ["datadog.agentResources.memoryLimit", "512MB"], problem: 'payments-apm:datadog.agentResources.memoryLimit must be a Kubernetes quantity such as "100m" or "256Mi", got "512MB"' },
    { change: ["services.payment.resources.cpuRequest", "~250m"], problem: 'payments-apm:services.payment.resources.cpuRequest must be a Kubernetes quantity such as "100m" or "256Mi", got "~250m"' },
    { change: ["monitors.notify", ["slack-payments"]], problem: 'payments-apm:monitors.notify.0 must be a Datadog notification handle such as @slack-payments-alerts or @pagerduty-payments, got "slack-payments"' },
    { change: ["monitors.notify", ["payments@slack-payments"]], problem: 'payments-apm:monitors.notify.0 must be a Datadog notification handle such as @slack-payments-alerts or @pagerduty-payments, got "payments@slack-payments"' },
    { change: ["monitors.notify", ["@slack-payments alerts"]], problem: 'payments-apm:monitors.notify.0 must be a Datadog notification handle such as @slack-payments-alerts or @pagerduty-payments, got "@slack-payments alerts"' },
    { change: ["monitors.notify", []], problem: "payments-apm:monitors.notify must name at least one notification handle, got []" },
    { change: ["monitors.paymentErrorRate", 5], problem: "payments-apm:monitors.paymentErrorRate must be between 0 and 1, got 5" },
    { change: ["database.host", ""], problem: 'payments-apm:database.host must not be empty, got ""' },
    { change: ["auth.issuer", "http://login.payments.example.com/"], problem: 'payments-apm:auth.issuer must be an https:// URL, got "http://login.payments.example.com/"' },
    { change: ["auth.jwksUrl", "login.payments.example.com/jwks"], problem: 'payments-apm:auth.jwksUrl must be an https:// URL, got "login.payments.example.com/jwks"' },
    { change: ["auth.audience", ""], problem: 'payments-apm:auth.audience must not be empty, got ""' },
    { change: ["auth.audience", "  "], problem: 'payments-apm:auth.audience must not be empty, got "  "' },
    { change: ["auth", undefined], problem: "payments-apm:auth is required" },
    { change: ["sampling.agent.rareSamplerEnabled", "yes"], problem: 'payments-apm:sampling.agent.rareSamplerEnabled must be true or false, got "yes"' },
    { change: ["broker.host", undefined], problem: "payments-apm:broker.host is required" },
    { change: ["broker.host", "amqps://b-1.mq.amazonaws.com"], problem: 'payments-apm:broker.host must be a host name such as b-1234abcd.mq.us-east-1.amazonaws.com, got "amqps://b-1.mq.amazonaws.com"' },
    { change: ["broker.port", "amqps"], problem: 'payments-apm:broker.port must be a whole number between 1 and 65535, got "amqps"' },
    { change: ["broker.user", ""], problem: 'payments-apm:broker.user must not be empty, got ""' },
    { change: ["broker.tls", "yes"], problem: 'payments-apm:broker.tls must be true or false, got "yes"' },
    { change: ["broker.exchange", "payments events"], problem: "payments-apm:broker.exchange must be letters, digits" },
    { change: ["broker.outboxRetentionHours", 0], problem: "payments-apm:broker.outboxRetentionHours must be a whole number between 1 and 8760, got 0" },
    { change: ["broker.password", "hunter2"], problem: "payments-apm:broker.password is not a known setting" },
    { change: ["services.relay", undefined], problem: "payments-apm:services.relay is required" },
    { change: ["services.postProcessing.image", "repo/post-processing"], problem: "payments-apm:services.postProcessing.image must be pinned by tag or digest" },
    { change: ["monitors.postProcessingLagP95Seconds", 0], problem: "payments-apm:monitors.postProcessingLagP95Seconds must be greater than 0, got 0" },
  ];
  for (const { change, problem } of badConfigs) {
    it(`rejects ${change[0]} = ${JSON.stringify(change[1])}, naming the key`, () => {
      const problems = problemsOf(withValue(rawSettings("prod"), change[0], change[1]));
      assert.ok(
        problems.some((p) => p.startsWith(problem)),
        `expected a problem starting with\n  ${problem}\ngot\n  ${problems.join("\n  ")}`,
      );
    });
  }

  it("counts only sampled rules that can keep a trace against sampling.rateLimit", () => {
    let raw = withValue(rawSettings("prod"), "sampling.rateLimit", 300);
    assert.match(problemsOf(raw).join("\n"), /sampling\.rateLimit must be at least 500 /);
    raw = withValue(withValue(raw, "sampling.tierRates.premium", 0), "sampling.tierRates.enterprise", 0);
    assert.equal(parseStackSettings(raw).sampling.rateLimit, 300, "200 + the base rate's 100");
  });

  it("reports a bad limit as such, not also as a rateLimit too low", () => {
    assert.deepEqual(problemsOf(withValue(rawSettings("prod"), "sampling.sampledRuleMaxPerSecond", "many")), [
      'payments-apm:sampling.sampledRuleMaxPerSecond must be a whole number between 1 and 100000, got "many"',
    ]);
  });

  it("reports every problem at once", () => {
    let raw = rawSettings("prod");
    raw = withValue(raw, "sampling.baseRate", 2);
    raw = withValue(raw, "monitors.notify", ["nobody"]);
    raw = withValue(raw, "clusterName", "x");
    const problems = problemsOf(raw);
    assert.equal(problems.length, 3, problems.join("\n"));
    assert.match(problems.join("\n"), /payments-apm:clusterName is not a known setting/);
  });

  it("requires datadog:apiUrl to match a non-default Datadog site", () => {
    assert.deepEqual(datadogProviderProblems("datadoghq.com", undefined), []);
    assert.deepEqual(datadogProviderProblems("datadoghq.eu", "https://api.datadoghq.eu"), []);
    assert.deepEqual(datadogProviderProblems("datadoghq.eu", "https://api.datadoghq.eu/"), []);
    assert.deepEqual(datadogProviderProblems("datadoghq.eu", undefined), ["datadog:apiUrl is required for site datadoghq.eu: set it to https://api.datadoghq.eu/"]);
    assert.match(datadogProviderProblems("datadoghq.com", "https://api.datadoghq.eu/")[0], /^datadog:apiUrl must be https:\/\/api\.datadoghq\.com\//);
  });
});
