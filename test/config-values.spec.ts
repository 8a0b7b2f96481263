import * as assert from "node:assert/strict";
import { configPerSuite } from "./support/config-per-suite";
import { withValue } from "./support/stack-settings";

// The config module as loaded for this run of the specs (support/config-per-suite.ts).
const { configModule, rawSettings } = configPerSuite();

// What each key of the stack config accepts and refuses, and the exact problem a refused value
// gets: the key, what it must be, and the value as typed. Changes apply to Pulumi.prod.yaml.

type Change = readonly [path: string, value: unknown];

/** Every problem of Pulumi.prod.yaml with `changes` applied ([] when accepted). */
function problemsOf(...changes: Change[]): string[] {
  const raw = changes.reduce((r, [path, value]) => withValue(r, path, value), rawSettings("prod"));
  try {
    configModule().parseStackSettings(raw);
  } catch (e) {
    assert.ok(e instanceof configModule().ConfigError, `expected a ConfigError, got ${e}`);
    return [...e.problems];
  }
  return [];
}

/** The settings of Pulumi.prod.yaml with `changes` applied. */
function settingsWith(...changes: Change[]) {
  return configModule().parseStackSettings(changes.reduce((r, [path, value]) => withValue(r, path, value), rawSettings("prod")));
}

/** Asserts each value at `path` is accepted. */
function assertAccepted(path: string, values: readonly unknown[]): void {
  assert.deepEqual(
    values.map((value) => [value, problemsOf([path, value])]),
    values.map((value) => [value, []]),
  );
}

/** Asserts each value at `path` is refused with exactly the one problem `payments-apm:<path> <why>, got <value as JSON>`. */
function assertRefused(path: string, why: string, values: readonly unknown[]): void {
  assert.deepEqual(
    values.map((value) => problemsOf([path, value])),
    values.map((value) => [`payments-apm:${path} ${why}, got ${JSON.stringify(value)}`]),
  );
}

const DNS_LABEL = "must be a DNS-1123 label (lowercase letters, digits, '-'; at most 63)";
const TAG_VALUE = "must be lowercase letters, digits, '-', '_' or '.', start and end with a letter or digit, at most 63 characters";
const QUANTITY = 'must be a Kubernetes quantity such as "100m" or "256Mi"';
const CIDR = "must be an IPv4 CIDR such as 10.20.64.0/20";
const HOST_PATH = "must be an absolute path on the node such as /var/run/containerd/containerd.sock";
const HANDLE = "must be a Datadog notification handle such as @slack-payments-alerts or @pagerduty-payments";
const PINNED = "must be pinned by tag or digest (e.g. repo/name:1.2.3 or repo/name@sha256:…)";
const DIGEST = "has a digest that is not sha256: followed by 64 lowercase hex digits (repo/name@sha256:…)";
const HEX64 = "0123456789abcdef".repeat(4);

describe("stack config values", () => {
  it("names the key and what it must be when a value has the wrong type", () => {
    const cases: [string, unknown, string][] = [
      ["environment", 5, "must be a string"],
      ["cluster.name", 5, "must be a string"],
      ["cluster.region", 5, "must be a string"],
      ["services.namespace", 5, "must be a string"],
      ["services.payment.image", 5, "must be a string"],
      ["services.payment.replicas", "three", "must be a whole number between 1 and 100"],
      ["auth.issuer", 5, "must be a string"],
      ["auth.audience", 5, "must be a string"],
      ["datadog.criSocketPath", 5, "must be a string"],
      ["datadog.agentResources.cpuRequest", 250, 'must be a Kubernetes quantity string such as "100m" or "256Mi"'],
      ["database.caBundle", 5, "must be a string holding PEM certificates"],
      ["database.host", 5, "must be a string"],
      ["database.name", 5, "must be a string"],
      ["database.user", 5, "must be a string"],
      ["database.migrationUser", 5, "must be a string"],
      ["database.workerUser", 5, "must be a string"],
      ["redis.host", 5, "must be a string"],
      ["broker.host", 5, "must be a string"],
      ["broker.vhost", 5, "must be a string"],
      ["broker.user", 5, "must be a string"],
      ["broker.exchange", 5, "must be a string"],
      ["monitors.paymentLatencyP95Seconds", "slow", "must be a number"],
      ["slos.latencyThresholdSeconds", "slow", "must be a number of seconds"],
      ["slos.availabilityTarget", "most", "must be a percentage strictly between 0 and 100"],
      ["datadog.deployAgent", "no", "must be true or false"],
      // Kinds without a message of their own are named as the schema names them.
      ["sampling.alwaysKeep.0", 5, "must be string"],
      ["datadog.tolerations.0.key", 5, "must be string"],
      ["datadog.apm", "on", "must be object"],
      ["sampling", null, "must be object"],
    ];
    assert.deepEqual(
      cases.map(([path, value]) => problemsOf([path, value])),
      cases.map(([path, value, why]) => [`payments-apm:${path} ${why}, got ${JSON.stringify(value)}`]),
    );
  });

  it("refuses empty text where a name is needed", () => {
    for (const path of ["database.host", "database.name", "database.user", "database.migrationUser", "database.workerUser", "redis.host", "broker.vhost", "broker.user"]) {
      assertRefused(path, "must not be empty", [""]);
    }
  });

  it("refuses an element of the wrong type inside a list or a label map, naming its index or label", () => {
    assert.deepEqual(problemsOf(["network.databaseCidrs", ["10.20.64.0/20", 10]]), ["payments-apm:network.databaseCidrs.1 must be a string, got 10"]);
    assert.deepEqual(problemsOf(["monitors.notify", [5]]), ["payments-apm:monitors.notify.0 must be a string, got 5"]);
    assert.deepEqual(problemsOf(["network.paymentIngressFrom", [{ podSelector: { app: 1 } }]]), ["payments-apm:network.paymentIngressFrom.0.podSelector.app must be a string, got 1"]);
  });

  it("names any unknown top-level key, however short", () => {
    for (const key of ["y", "x", "ab"]) {
      const problems = problemsOf([key, 1]);
      assert.equal(problems.length, 1, problems.join("\n"));
      assert.match(problems[0], new RegExp(`^payments-apm:${key} is not a known setting \\(known: environment, `));
    }
  });

  it("takes 'false' typed as a string as false", () => {
    const s = settingsWith(["datadog.kubeletTlsVerify", "false"], ["sampling.agent.rareSamplerEnabled", "false"]);
    assert.equal(s.datadog.kubeletTlsVerify, false);
    assert.equal(s.sampling.agent.rareSamplerEnabled, false);
    assert.equal(settingsWith(["datadog.kubeletTlsVerify", "true"]).datadog.kubeletTlsVerify, true);
  });

  it("reads numbers typed as strings, blanks around them included, and refuses Infinity", () => {
    assert.equal(settingsWith(["sampling.rateLimit", " 600 "]).sampling.rateLimit, 600);
    assert.equal(settingsWith(["monitors.paymentLatencyP95Seconds", "1.5"]).monitors.paymentLatencyP95Seconds, 1.5);
    assert.deepEqual(problemsOf(["monitors.paymentLatencyP95Seconds", Infinity]), ["payments-apm:monitors.paymentLatencyP95Seconds must be a number, got null"]);
  });

  describe("names", () => {
    it("accepts DNS-1123 labels of 1 to 63 characters as namespaces", () => {
      assertAccepted("services.namespace", ["a", "7", "payments-2", "a".repeat(63)]);
      assertAccepted("datadog.namespace", ["datadog-agent"]);
    });

    it("refuses namespaces that are not DNS-1123 labels", () => {
      assertRefused("services.namespace", DNS_LABEL, ["a".repeat(64), "-payments", "payments-", "pay_ments", "pay.ments", "", " payments", "payments "]);
      assertRefused("datadog.namespace", DNS_LABEL, ["Datadog"]);
    });

    it("accepts tag values of 1 to 63 characters with '-', '_' and '.' inside", () => {
      assertAccepted("environment", ["a", "7", "prod-eu_1.b", "a".repeat(63)]);
      assertAccepted("services.payment.version", ["1.4.2", "v1_4-rc.2"]);
    });

    it("refuses tag values that break DD_TAGS or Kubernetes labels", () => {
      assertRefused("environment", TAG_VALUE, ["a".repeat(64), "-prod", "prod-", "_prod", "prod.", "Prod", "", "prod eu", "prod,eu"]);
      assertRefused("deployment", TAG_VALUE, ["payments prod"]);
    });

    it("accepts cluster names of 1 to 80 characters with '.' and '-' inside", () => {
      assertAccepted("cluster.name", ["a", "payments.prod-2", "a".repeat(80)]);
    });

    it("refuses cluster names Datadog does not take", () => {
      const why = "must be lowercase letters, digits, '.' or '-', at most 80 characters (Datadog cluster name rules)";
      assertRefused("cluster.name", why, ["a".repeat(81), "-payments", "payments-", "payments_prod", "", "Payments"]);
    });

    it("accepts AWS regions, GovCloud included, and refuses anything else", () => {
      assertAccepted("cluster.region", ["eu-west-1", "ap-southeast-2", "us-gov-west-1"]);
      assertRefused("cluster.region", "must be an AWS region such as us-east-1", ["us-east-12", "us-east-", "u-east-1", "use-east-1", "us--1", "US-east-1", "us-east-1 "]);
    });

    it("accepts broker host names up to 253 characters and refuses others", () => {
      assertAccepted("broker.host", ["a", "localhost", "b-1.mq.us-east-1.amazonaws.com", "B1", "a".repeat(253)]);
      assertRefused("broker.host", "must be a host name such as b-1234abcd.mq.us-east-1.amazonaws.com", ["a".repeat(254), "-b1", "b1-", "b_1.example.com", "", "b1 "]);
    });

    it("accepts exchange names of 1 to 200 letters, digits, '_', '.', ':' or '-'", () => {
      assertAccepted("broker.exchange", ["x", "payments.events:v1_a-b", "a".repeat(200)]);
      assertRefused("broker.exchange", "must be letters, digits, '_', '.', ':' or '-'", ["", "a".repeat(201), "payments/events", " payments"]);
    });

    it("accepts span names with at least one '.' as always-kept operations", () => {
      assert.deepEqual(settingsWith(["sampling.alwaysKeep", ["a.b", "payment_2.step_3.x"]]).sampling.alwaysKeep, ["a.b", "payment_2.step_3.x"]);
      const why = "must be a span name such as payment.process_payment";
      assert.deepEqual(
        ["payment", "1payment.process", "payment.", ".payment", "payment..x", "payment.Process", "payment.process "].map((name) => problemsOf(["sampling.alwaysKeep", [name]])),
        ["payment", "1payment.process", "payment.", ".payment", "payment..x", "payment.Process", "payment.process "].map((name) => [`payments-apm:sampling.alwaysKeep.0 ${why}, got ${JSON.stringify(name)}`]),
      );
    });
  });

  describe("images", () => {
    it("accepts tags of up to 128 characters after the last '/'", () => {
      assertAccepted("services.payment.image", ["payment-service:1", "repo/x:v1.4.2_rc.1-b", `repo/x:${"a".repeat(128)}`, "repo/latest:1.0", "repo/x:1.0-latest", "registry.internal:5000/latest/x:1.0"]);
    });

    it("refuses an image without a usable tag", () => {
      assertRefused("services.payment.image", PINNED, [`repo/x:${"a".repeat(129)}`, "repo/x:.1", "repo/x:-1", "repo/:1.0", "repo/x:1 0", "repo/x:", "repo x:1.0", "re po/x:1.0", "registry.internal /payments/x:1.0", "registry:5000/x", ":1.0"]);
    });

    it("accepts a sha256 digest of 64 lowercase hex digits, with or without a tag", () => {
      assertAccepted("services.payment.image", [`x@sha256:${HEX64}`, `repo/x:1.0@sha256:${HEX64}`, `repo/x:latest@sha256:${HEX64}`]);
    });

    it("refuses any other digest", () => {
      assertRefused("services.payment.image", DIGEST, [
        `@sha256:${HEX64}`,
        `repo x@sha256:${HEX64}`,
        `repo/x@sha256:${HEX64.toUpperCase()}`,
        `repo/x@sha256:${HEX64.slice(1)}`,
        `repo/x@sha256:${HEX64}@sha256:${HEX64}`,
        `repo/x@sha256:${HEX64} `,
        `repo/x@sha256${HEX64}`,
      ]);
    });

    it("refuses the tag latest and its variants without a digest", () => {
      assertRefused("services.payment.image", "must not use the mutable tag 'latest' or a variant of it (latest-jmx)", ["repo/x:latest", "repo/x:latest-jmx", "registry:5000/x:latest.1"]);
      assertRefused("datadog.agentImage", "must not use the mutable tag 'latest' or a variant of it (latest-jmx)", ["public.ecr.aws/datadog/agent:latest-full"]);
      // With a digest, the digest is what is wrong: one problem.
      assert.deepEqual(problemsOf(["services.payment.image", `repo/x@sha256:${HEX64}:latest`]), [
        `payments-apm:services.payment.image ${DIGEST}, got "repo/x@sha256:${HEX64}:latest"`,
      ]);
    });
  });

  describe("resources, paths and URLs", () => {
    it("accepts Kubernetes quantities with every suffix the Agent and services use", () => {
      assertAccepted("datadog.agentResources.cpuRequest", ["1", "250", "0.5", "1.25", "100m", "1k", "1M", "1G", "1T", "64Ki", "256Mi", "2Gi", "1Ti"]);
    });

    it("refuses anything else as a quantity", () => {
      assertRefused("datadog.agentResources.cpuRequest", QUANTITY, ["", "m", "1.", ".5", "1mi", "1Pi", "1 Mi", " 1Mi", "1Mi ", "1..5", "-1"]);
    });

    it("accepts absolute node paths and refuses relative ones, a trailing '/' and '..'", () => {
      assertAccepted("datadog.criSocketPath", ["/run/dockershim.sock", "/a", "/var/..x/y.sock", "/var/run/k3s_containerd-2.sock"]);
      assertRefused("datadog.criSocketPath", HOST_PATH, ["run/containerd.sock", "/", "/var/run/", "/var/run/x y.sock", ""]);
      assertRefused("datadog.criSocketPath", "must not contain '..'", ["/var/../etc/x.sock", "/..", "/var/run/.."]);
    });

    it("accepts only https:// URLs for the issuer and the key set", () => {
      assertAccepted("auth.issuer", ["https://id.example.com", "https://id.example.com/tenant/"]);
      assertRefused("auth.issuer", "must be an https:// URL", ["http://id.example.com/", "ftp://id.example.com/", "id.example.com", "https//id.example.com", ""]);
      assertRefused("auth.jwksUrl", "must be an https:// URL", ["http://id.example.com/jwks"]);
    });

    it("accepts a bundle of PEM certificates and nothing else", () => {
      const cert = rawSettings("prod").database.caBundle as string;
      assertAccepted("database.caBundle", [cert + cert, `\n${cert.trim()}`]);
      const why = "must be a PEM bundle: one or more -----BEGIN CERTIFICATE----- blocks and nothing else";
      assertRefused("database.caBundle", why, [
        "",
        "not a certificate",
        `${cert}trailing text`,
        `# the RDS bundle\n${cert}`,
        cert.replace("-----END CERTIFICATE-----", ""),
        "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----",
        "-----BEGIN CERTIFICATE-----\nMIIB!\n-----END CERTIFICATE-----",
        cert.replace("-----BEGIN CERTIFICATE-----\n", "-----BEGIN CERTIFICATE-----"),
      ]);
    });
  });

  describe("network", () => {
    it("accepts IPv4 CIDRs of /1 to /32 with octets up to 255", () => {
      assertAccepted("network.databaseCidrs", [["10.0.0.0/8"], ["255.255.255.255/32"], ["10.20.64.0/20", "10.0.0.0/1"], ["1.2.3.4/9"], ["10.0.0.0/29"], ["10.0.0.0/30"]]);
    });

    it("refuses what is not an IPv4 CIDR, naming the entry once", () => {
      assert.deepEqual(
        ["256.0.0.0/8", "300.0.0.0/0", "10.0.0.300/24", "1000.0.0.0/8", "10.0.0/8", "10.0.0.0", "10.0.0.0/33", "10.0.0.0/40", "10.0.0.0/8 ", " 10.0.0.0/8", "a.b.c.d/8", "10.0.0.0.0/8"].map((c) =>
          problemsOf(["network.databaseCidrs", [c]]),
        ),
        ["256.0.0.0/8", "300.0.0.0/0", "10.0.0.300/24", "1000.0.0.0/8", "10.0.0/8", "10.0.0.0", "10.0.0.0/33", "10.0.0.0/40", "10.0.0.0/8 ", " 10.0.0.0/8", "a.b.c.d/8", "10.0.0.0.0/8"].map((c) => [
          `payments-apm:network.databaseCidrs.0 ${CIDR}, got ${JSON.stringify(c)}`,
        ]),
      );
    });

    it("refuses the internet at large as an endpoint's range", () => {
      const why = "must not be 0.0.0.0/0 (the internet at large): name the range the endpoint is in";
      assert.deepEqual(problemsOf(["network.redisCidrs", ["0.0.0.0/0"]]), [`payments-apm:network.redisCidrs.0 ${why}, got "0.0.0.0/0"`]);
      assert.deepEqual(problemsOf(["network.nodeCidrs", ["10.0.0.0/0"]]), [`payments-apm:network.nodeCidrs.0 ${why}, got "10.0.0.0/0"`]);
    });

    it("needs at least one CIDR for every endpoint", () => {
      for (const key of ["databaseCidrs", "redisCidrs", "brokerCidrs", "nodeCidrs"]) {
        assert.deepEqual(problemsOf([`network.${key}`, []]), [`payments-apm:network.${key} must name at least one CIDR, got []`]);
      }
      assert.deepEqual(problemsOf(["network.jwksCidrs", []]), [
        "payments-apm:network.jwksCidrs must name at least one CIDR: payment-service and fraud-service fetch the token signing keys (auth.jwksUrl, the cluster issuer's keys) over HTTPS, and authentication is mandatory, got []",
      ]);
    });

    it("needs a source with at least one label for payment-service's ingress", () => {
      const why = "needs a namespaceSelector or a podSelector with at least one label (an empty selector lets every pod in)";
      for (const peer of [{}, { namespaceSelector: {} }, { podSelector: {} }, { namespaceSelector: {}, podSelector: {} }]) {
        assert.deepEqual(problemsOf(["network.paymentIngressFrom", [peer]]), [`payments-apm:network.paymentIngressFrom.0 ${why}, got ${JSON.stringify(peer)}`]);
      }
      assertAccepted("network.paymentIngressFrom", [[{ podSelector: { app: "gateway" } }], [{ namespaceSelector: { team: "edge" } }]]);
      assert.deepEqual(problemsOf(["network.paymentIngressFrom", []]), ["payments-apm:network.paymentIngressFrom must name at least one source (the ingress controller or API gateway), got []"]);
    });

    it("leaves NetworkPolicy enforcement to the cluster unless told otherwise", () => {
      assert.equal(settingsWith(["network.clusterEnforces", undefined]).network.clusterEnforces, true);
      assert.equal(settingsWith(["network.clusterEnforces", false]).network.clusterEnforces, false);
    });
  });

  describe("monitors and SLOs", () => {
    it("accepts notification handles, e-mail addresses included", () => {
      assertAccepted("monitors.notify", [["@slack-payments"], ["@oncall@example.com"], ["@pagerduty-Payments_1", "@team.a+b"], ["@a"]]);
    });

    it("refuses what Datadog would not notify", () => {
      assert.deepEqual(
        ["@", "@@example.com", "@a@", "@a@b c", "x@a", "@a b", "@a@b@c"].map((h) => problemsOf(["monitors.notify", [h]])),
        ["@", "@@example.com", "@a@", "@a@b c", "x@a", "@a b", "@a@b@c"].map((h) => [`payments-apm:monitors.notify.0 ${HANDLE}, got ${JSON.stringify(h)}`]),
      );
    });

    it("takes SLO targets strictly between 0 and 100 % and the three Datadog timeframes", () => {
      const s = settingsWith(["slos", { timeframe: "7d", availabilityTarget: 99.99, latencyTarget: "0.5", latencyThresholdSeconds: "1.5" }]).slos;
      assert.deepEqual(s, { timeframe: "7d", availabilityTarget: 99.99, latencyTarget: 0.5, latencyThresholdSeconds: 1.5 });
      assert.equal(settingsWith(["slos", { timeframe: "90d" }]).slos.timeframe, "90d");
      assert.equal(settingsWith(["slos", { timeframe: "30d" }]).slos.timeframe, "30d");
      assertRefused("slos.availabilityTarget", "must be a percentage strictly between 0 and 100", [100, 0, -1, 100.5]);
      assertRefused("slos.latencyTarget", "must be a percentage strictly between 0 and 100", [100]);
      assertRefused("slos.timeframe", "must be 7d, 30d or 90d", ["1y", "30"]);
      assertRefused("slos.latencyThresholdSeconds", "must be greater than 0", [0, -2]);
    });

    it("refuses a payment latency threshold of 0 or less, naming it", () => {
      assertRefused("monitors.paymentLatencyP95Seconds", "must be greater than 0", [0, -1]);
      assertRefused("monitors.databaseLatencyP95Seconds", "must be greater than 0", [0]);
      assertRefused("sampling.agent.targetTracesPerSecond", "must be greater than 0", [0]);
    });
  });

  describe("the Agent", () => {
    it("accepts every Datadog site", () => {
      assertAccepted("datadog.site", ["datadoghq.com", "us3.datadoghq.com", "us5.datadoghq.com", "datadoghq.eu", "ap1.datadoghq.com", "ap2.datadoghq.com", "ddog-gov.com"]);
    });

    it("defaults a toleration's operator to Equal and checks its effect", () => {
      const t = settingsWith(["datadog.tolerations", [{ key: "dedicated", value: "payments", effect: "NoExecute" }, { operator: "Exists" }]]).datadog.tolerations;
      assert.deepEqual(t, [{ key: "dedicated", value: "payments", effect: "NoExecute", operator: "Equal" }, { operator: "Exists" }]);
      assertAccepted("datadog.tolerations.0.effect", ["NoSchedule", "PreferNoSchedule", "NoExecute"]);
      assertRefused("datadog.tolerations.0.effect", "must be NoSchedule, PreferNoSchedule or NoExecute", ["Never"]);
      assert.deepEqual(problemsOf(["datadog.tolerations.0.tolerationSeconds", 30]), ["payments-apm:datadog.tolerations.0.tolerationSeconds is not a known setting"]);
    });

    it("creates its priority class by default and needs a name for an existing one", () => {
      assert.deepEqual(settingsWith(["datadog.priorityClass", { create: false, name: "system-node-critical" }]).datadog.priorityClass, {
        create: false,
        name: "system-node-critical",
        value: 1_000_000_000,
      });
      assert.deepEqual(problemsOf(["datadog.priorityClass", { create: false }]), [
        "payments-apm:datadog.priorityClass.name is required when create is false: name the existing priority class",
      ]);
      assert.deepEqual(problemsOf(["datadog.priorityClass", { name: "system-cluster-critical" }]), [
        `payments-apm:datadog.priorityClass.name must not start with 'system-' (reserved by Kubernetes), got "system-cluster-critical"`,
      ]);
      assert.deepEqual(settingsWith(["datadog.priorityClass", { name: "datadog-agent", value: 1 }]).datadog.priorityClass, { create: true, name: "datadog-agent", value: 1 });
      assertRefused("datadog.priorityClass.value", "must be a whole number between 1 and 1000000000", [0, 1_000_000_001]);
    });

    it("needs where the existing Agent listens when it deploys none, and only then", () => {
      assert.deepEqual(problemsOf(["datadog.deployAgent", false]), [
        "payments-apm:datadog.existingAgent is required when deployAgent is false: set existingAgent.socketPath (e.g. /var/run/datadog/apm.socket) or existingAgent.port (e.g. 8126) of the Agent already on the nodes",
      ]);
      assert.deepEqual(problemsOf(["datadog.existingAgent", { port: 8126 }]), [
        'payments-apm:datadog.existingAgent is only read when deployAgent is false: remove it, or set deployAgent to false, got {"port":8126}',
      ]);
      assert.deepEqual(settingsWith(["datadog.deployAgent", false], ["datadog.existingAgent", { port: 8126 }]).datadog.existingAgent, { port: 8126 });
      // Without Pod Security restricted the services may use the existing Agent's socket alone.
      const socketOnly = settingsWith(["datadog.deployAgent", false], ["datadog.existingAgent", { socketPath: "/var/run/datadog/apm.socket" }], ["services.enforceRestricted", false]);
      assert.deepEqual(socketOnly.datadog.existingAgent, { socketPath: "/var/run/datadog/apm.socket" });
      assert.deepEqual(problemsOf(["datadog.deployAgent", false], ["datadog.existingAgent", { socketPath: "apm.socket", port: 8126 }]), [
        `payments-apm:datadog.existingAgent.socketPath ${HOST_PATH}, got "apm.socket"`,
      ]);
    });

    it("lets the services use the Agent's socket alone only without Pod Security restricted", () => {
      const s = settingsWith(["datadog.apm.portEnabled", false], ["services.enforceRestricted", false]);
      assert.deepEqual(s.datadog.apm, { socketEnabled: true, portEnabled: false, port: 8126 });
      assert.deepEqual(problemsOf(["datadog.apm.portEnabled", false]), [
        "payments-apm:datadog.apm.portEnabled must be true while payments-apm:services.enforceRestricted is true: Pod Security restricted forbids the hostPath mount of the Agent's socket, so the services reach the Agent by its hostPort, got false",
      ]);
      assert.deepEqual(problemsOf(["datadog.apm", { socketEnabled: false, portEnabled: false }]), [
        'payments-apm:datadog.apm needs socketEnabled or portEnabled (or both) so app pods can reach the trace intake, got {"socketEnabled":false,"portEnabled":false}',
      ]);
    });
  });

  describe("database roles", () => {
    it("names a role left at its default when it clashes with one that is set", () => {
      assert.deepEqual(problemsOf(["database.user", "payments_migrations"], ["database.migrationUser", undefined]), [
        'payments-apm:database.migrationUser must differ from database.user ("payments_migrations"): the services must not own the ledger\'s tables',
      ]);
      assert.deepEqual(problemsOf(["database.user", "payments_worker"], ["database.workerUser", undefined]), [
        'payments-apm:database.workerUser must differ from database.user ("payments_worker"): the outbox relay and the consumers get a role of their own, granted only outbox and receipts',
      ]);
    });

    it("refuses one role for the services and the migrations", () => {
      assert.deepEqual(problemsOf(["database.migrationUser", "payment_service"]), [
        'payments-apm:database.migrationUser must differ from database.user ("payment_service"): the services must not own the ledger\'s tables, got "payment_service"',
      ]);
    });

    it("refuses the workers' role shared with the services or the migrations", () => {
      const why = "the outbox relay and the consumers get a role of their own, granted only outbox and receipts";
      assert.deepEqual(problemsOf(["database.workerUser", "payment_service"]), [
        `payments-apm:database.workerUser must differ from database.user ("payment_service"): ${why}, got "payment_service"`,
      ]);
      assert.deepEqual(problemsOf(["database.workerUser", "payments_migrations"]), [
        `payments-apm:database.workerUser must differ from database.migrationUser ("payments_migrations"): ${why}, got "payments_migrations"`,
      ]);
    });

    it("checks the migration Job's retries and deadline", () => {
      assert.deepEqual(settingsWith(["database.migrations", { backoffLimit: 0, activeDeadlineSeconds: 30 }]).database.migrations, { backoffLimit: 0, activeDeadlineSeconds: 30 });
      assertRefused("database.migrations.backoffLimit", "must be a whole number between 0 and 10", [11]);
      assertRefused("database.migrations.activeDeadlineSeconds", "must be a whole number between 30 and 3600", [29, 3601]);
    });
  });

  describe("sampling budget", () => {
    it("needs only the always-kept peak when no sampled rule can keep a trace", () => {
      const none: Change[] = [
        ["sampling.baseRate", 0],
        ["sampling.tierRates", { premium: 0, enterprise: 0 }],
      ];
      assert.equal(settingsWith(...none, ["sampling.rateLimit", 200]).sampling.rateLimit, 200);
      assert.deepEqual(problemsOf(...none, ["sampling.rateLimit", 199]), [
        "payments-apm:sampling.rateLimit must be at least 200 (traces/s per service instance): dd-trace counts always-kept traces against it too, " +
          "so it must cover alwaysKeepPeakPerSecond (200) plus sampledRuleMaxPerSecond (100) for each sampled rule (none), got 199",
      ]);
    });

    it("names sampling.rateLimit left at its default 500 when the other limits outgrow it", () => {
      assert.deepEqual(problemsOf(["sampling.rateLimit", undefined], ["sampling.alwaysKeepPeakPerSecond", 201]), [
        "payments-apm:sampling.rateLimit must be at least 501 (traces/s per service instance): dd-trace counts always-kept traces against it too, " +
          "so it must cover alwaysKeepPeakPerSecond (201) plus sampledRuleMaxPerSecond (100) for each sampled rule (base rate, premium, enterprise)",
      ]);
    });

    it("reports a limit out of range as such, not also as a rateLimit too low", () => {
      assert.deepEqual(problemsOf(["sampling.sampledRuleMaxPerSecond", 100001]), ["payments-apm:sampling.sampledRuleMaxPerSecond must be a whole number between 1 and 100000, got 100001"]);
      assert.deepEqual(problemsOf(["sampling.alwaysKeepPeakPerSecond", 100001]), ["payments-apm:sampling.alwaysKeepPeakPerSecond must be a whole number between 0 and 100000, got 100001"]);
    });

    it("counts each tier with a rate above 0 as a sampled rule", () => {
      assert.deepEqual(problemsOf(["sampling.baseRate", 0], ["sampling.tierRates.premium", 0], ["sampling.rateLimit", 299]), [
        "payments-apm:sampling.rateLimit must be at least 300 (traces/s per service instance): dd-trace counts always-kept traces against it too, " +
          "so it must cover alwaysKeepPeakPerSecond (200) plus sampledRuleMaxPerSecond (100) for each sampled rule (enterprise), got 299",
      ]);
      assert.equal(settingsWith(["sampling.rateLimit", 500]).sampling.rateLimit, 500, "exactly 200 + 3 × 100 is enough");
    });
  });

  describe("services", () => {
    it("allows a disruption budget of 0 up to one less than the replicas", () => {
      const s = settingsWith(["services.fraud", { image: "repo/fraud-service:1.0.0", version: "1.0.0", replicas: 5, minAvailable: 4 }]).services.fraud;
      assert.deepEqual([s.replicas, s.minAvailable], [5, 4]);
      assert.equal(settingsWith(["services.fraud.minAvailable", 0]).services.fraud.minAvailable, 0);
      assert.deepEqual(problemsOf(["services.fraud.minAvailable", 2]), ["payments-apm:services.fraud.minAvailable must be less than replicas, got 2"]);
    });

    it("defaults each service's replicas: payment 3, the others 2", () => {
      const without = (service: string): Change => [`services.${service}.replicas`, undefined];
      const s = settingsWith(without("payment"), without("fraud"), without("relay"), without("postProcessing"));
      assert.deepEqual([s.services.payment.replicas, s.services.fraud.replicas, s.services.relay.replicas, s.services.postProcessing.replicas], [3, 2, 2, 2]);
    });
  });
});
