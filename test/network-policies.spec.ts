import * as assert from "node:assert/strict";
import { SERVICES } from "../app/src/tracing/conventions";
import { ConfigError, parseStackSettings } from "../components/config";
import { networkPolicies, paymentPathWorkloads, type NetworkPolicyObject, type NetworkSettings } from "../components/network-policies";
import { validateKubernetesObject } from "../scripts/k8s-schema";
import { kubernetesObjects } from "../scripts/manifests";
import { runStack, type ProgramRun } from "../scripts/mock-engine";
import { blockedBy, inCidr, type Endpoint, type FlowCase } from "./support/network-flows";
import { rawSettings, withValue } from "./support/stack-settings";

const NS = "payments";
const pod = (name: string, namespace = NS, labels: Record<string, string> = {}): Endpoint => ({
  pod: { namespace, labels: { "app.kubernetes.io/name": name, ...labels } },
});
const payment = pod(SERVICES.payment);
const fraud = pod(SERVICES.fraud);
const relay = pod(SERVICES.relay);
const postProcessing = pod(SERVICES.postProcessing);
const otherInNamespace = pod("debug-shell");
const otherNamespace = pod("anything", "default");
const dns: Endpoint = { pod: { namespace: "kube-system", labels: { "k8s-app": "kube-dns" } } };

/** Addresses in and out of the prod stack's CIDRs (Pulumi.prod.yaml). */
const DATABASE_IP = { ip: "10.20.64.10" };
const REDIS_IP = { ip: "10.20.96.10" };
const NODE_IP = { ip: "10.20.1.7" };
const JWKS_IP = { ip: "10.20.200.5" };
const BROKER_IP = { ip: "10.20.112.10" };
const INTERNET = { ip: "93.184.215.14" };

function problemsOf(raw: Record<string, unknown>): string[] {
  try {
    parseStackSettings(raw);
    return [];
  } catch (e) {
    if (e instanceof ConfigError) return [...e.problems];
    throw e;
  }
}

describe("network policies (components/network-policies.ts)", () => {
  let run: ProgramRun;
  let policies: NetworkPolicyObject[];

  before(async function () {
    this.timeout(60_000);
    run = await runStack("prod");
    policies = kubernetesObjects(run)
      .map((o) => o.object)
      .filter((o) => o.kind === "NetworkPolicy") as unknown as NetworkPolicyObject[];
  });

  it("renders a default deny and one policy per workload in the services namespace, schema-valid", () => {
    assert.deepEqual(policies.map((p) => p.metadata.name).sort(), ["default-deny", SERVICES.fraud, "ledger-migrations", SERVICES.payment, SERVICES.relay, SERVICES.postProcessing].sort());
    for (const p of policies) {
      assert.equal(p.metadata.namespace, NS);
      assert.deepEqual(validateKubernetesObject(p as any), [], p.metadata.name);
    }
    const deny = policies.find((p) => p.metadata.name === "default-deny")!;
    assert.deepEqual(deny.spec, { podSelector: {}, policyTypes: ["Ingress", "Egress"] });
  });

  const allowed: Array<[string, FlowCase]> = [
    ["the gateway → payment-service", { from: pod("ingress-nginx", "ingress-nginx"), to: payment, port: 8080 }],
    ["payment-service → fraud-service", { from: payment, to: fraud, port: 8080 }],
    ["payment-service → the ledger database", { from: payment, to: DATABASE_IP, port: 5432 }],
    ["fraud-service → Redis", { from: fraud, to: REDIS_IP, port: 6379 }],
    ["payment-service → cluster DNS (UDP)", { from: payment, to: dns, port: 53, protocol: "UDP" }],
    ["fraud-service → cluster DNS (TCP)", { from: fraud, to: dns, port: 53 }],
    ["payment-service → the Agent's hostPort", { from: payment, to: NODE_IP, port: 8126 }],
    ["fraud-service → the Agent's hostPort", { from: fraud, to: NODE_IP, port: 8126 }],
    ["payment-service → the Agent pod (after DNAT)", { from: payment, to: pod("datadog-agent", "datadog"), port: 8126 }],
    ["payment-service → JWKS over HTTPS", { from: payment, to: JWKS_IP, port: 443 }],
    ["fraud-service → JWKS over HTTPS (the cluster issuer's keys)", { from: fraud, to: JWKS_IP, port: 443 }],
    ["the outbox relay → the ledger database", { from: relay, to: DATABASE_IP, port: 5432 }],
    ["the outbox relay → RabbitMQ (amqps)", { from: relay, to: BROKER_IP, port: 5671 }],
    ["the outbox relay → the Agent's hostPort", { from: relay, to: NODE_IP, port: 8126 }],
    ["post-processing → the ledger database", { from: postProcessing, to: DATABASE_IP, port: 5432 }],
    ["post-processing → RabbitMQ (amqps)", { from: postProcessing, to: BROKER_IP, port: 5671 }],
    ["post-processing → Redis", { from: postProcessing, to: REDIS_IP, port: 6379 }],
    ["post-processing → cluster DNS", { from: postProcessing, to: dns, port: 53, protocol: "UDP" }],
    ["the ledger migrations Job → the ledger database", { from: pod("ledger-migrations"), to: DATABASE_IP, port: 5432 }],
    ["the ledger migrations Job → cluster DNS", { from: pod("ledger-migrations"), to: dns, port: 53, protocol: "UDP" }],
  ];
  const denied: Array<[string, FlowCase]> = [
    ["another pod of the namespace → fraud-service", { from: otherInNamespace, to: fraud, port: 8080 }],
    ["a pod of another namespace → fraud-service", { from: otherNamespace, to: fraud, port: 8080 }],
    ["the gateway → fraud-service", { from: pod("ingress-nginx", "ingress-nginx"), to: fraud, port: 8080 }],
    ["a pod of another namespace → payment-service", { from: otherNamespace, to: payment, port: 8080 }],
    ["a pod of the gateway's namespace that is not the gateway → payment-service", { from: pod("cert-manager", "ingress-nginx"), to: payment, port: 8080 }],
    ["fraud-service → payment-service", { from: fraud, to: payment, port: 8080 }],
    ["payment-service → the internet at large", { from: payment, to: INTERNET, port: 443 }],
    ["fraud-service → the internet at large", { from: fraud, to: INTERNET, port: 443 }],
    ["fraud-service → the ledger database", { from: fraud, to: DATABASE_IP, port: 5432 }],
    ["payment-service → Redis", { from: payment, to: REDIS_IP, port: 6379 }],
    ["payment-service → the database on another port", { from: payment, to: DATABASE_IP, port: 22 }],
    ["payment-service → fraud-service on another port", { from: payment, to: fraud, port: 9229 }],
    ["payment-service → a node on another port (kubelet)", { from: payment, to: NODE_IP, port: 10250 }],
    ["another pod of the namespace → the ledger database", { from: otherInNamespace, to: DATABASE_IP, port: 5432 }],
    ["another pod of the namespace → anywhere", { from: otherInNamespace, to: INTERNET, port: 443 }],
    ["the ledger migrations Job → fraud-service", { from: pod("ledger-migrations"), to: fraud, port: 8080 }],
    ["the ledger migrations Job → the internet at large", { from: pod("ledger-migrations"), to: INTERNET, port: 443 }],
    ["the outbox relay → Redis", { from: relay, to: REDIS_IP, port: 6379 }],
    ["the outbox relay → the internet at large", { from: relay, to: INTERNET, port: 443 }],
    ["post-processing → fraud-service", { from: postProcessing, to: fraud, port: 8080 }],
    ["fraud-service → RabbitMQ", { from: fraud, to: BROKER_IP, port: 5671 }],
    ["payment-service → RabbitMQ", { from: payment, to: BROKER_IP, port: 5671 }],
    ["any pod → the outbox relay", { from: payment, to: relay, port: 8080 }],
    ["any pod → the ledger migrations Job", { from: payment, to: pod("ledger-migrations"), port: 8080 }],
  ];
  for (const [what, flow] of allowed) {
    it(`allows ${what}`, () => assert.equal(blockedBy(policies, flow), undefined));
  }
  for (const [what, flow] of denied) {
    it(`denies ${what}`, () => assert.notEqual(blockedBy(policies, flow), undefined));
  }

  it("checks the flow table's addresses against the stack's CIDRs, so a moved CIDR fails here", () => {
    const network = parseStackSettings(rawSettings("prod")).network;
    assert.ok(network.databaseCidrs.some((c) => inCidr(DATABASE_IP.ip, c)));
    assert.ok(network.redisCidrs.some((c) => inCidr(REDIS_IP.ip, c)));
    assert.ok(network.brokerCidrs.some((c) => inCidr(BROKER_IP.ip, c)));
    assert.ok(network.nodeCidrs.some((c) => inCidr(NODE_IP.ip, c)));
    assert.ok(network.jwksCidrs.some((c) => inCidr(JWKS_IP.ip, c)));
    assert.ok(![...network.databaseCidrs, ...network.redisCidrs].some((c) => inCidr(NODE_IP.ip, c)));
  });

  describe("the pure function", () => {
    const settings: NetworkSettings = {
      paymentIngressFrom: [{ namespaceSelector: { team: "edge" } }],
      database: { cidrs: ["10.0.0.0/24"], port: 5432 },
      redis: { cidrs: ["10.0.1.0/24"], port: 6379 },
      broker: { cidrs: ["10.0.3.0/24"], port: 5671 },
      jwksCidrs: ["10.0.4.0/24"],
      nodeCidrs: ["10.0.2.0/24"],
    };

    it("opens no network flow to the Agent when the services use its socket", () => {
      const out = networkPolicies(NS, paymentPathWorkloads(SERVICES, settings));
      const egressPorts = out.flatMap((p) => (p.spec.egress ?? []).flatMap((r) => r.ports.map((x) => x.port)));
      assert.ok(!egressPorts.includes(8126));
    });

    it("lets both services reach the JWKS over HTTPS, and refuses to render them without a JWKS CIDR", () => {
      const out = networkPolicies(NS, paymentPathWorkloads(SERVICES, settings));
      for (const from of [payment, fraud]) {
        assert.equal(blockedBy(out, { from, to: { ip: "10.0.4.10" }, port: 443 }), undefined);
        assert.equal(blockedBy(out, { from, to: { ip: "10.0.4.10" }, port: 80 }), "egress");
      }
      assert.throws(() => networkPolicies(NS, paymentPathWorkloads(SERVICES, { ...settings, jwksCidrs: [] })), /payment-service egress \(token signing keys \(JWKS\) over HTTPS\): no CIDR/);
    });

    it("fails at preview without network.jwksCidrs, naming the key: authentication needs the keys", () => {
      const raw = rawSettings("prod");
      const without = { ...raw, network: Object.fromEntries(Object.entries(raw.network).filter(([k]) => k !== "jwksCidrs")) };
      assert.throws(() => parseStackSettings(without), /payments-apm:network\.jwksCidrs is required/);
      assert.throws(() => parseStackSettings({ ...raw, network: { ...raw.network, jwksCidrs: [] } }), /payments-apm:network\.jwksCidrs must name at least one CIDR: payment-service and fraud-service fetch the token signing keys/);
    });

    it("takes further workloads, e.g. a job that only reaches the database", () => {
      const workloads = [
        ...paymentPathWorkloads(SERVICES, settings),
        { name: "ledger-migrations", ingress: [], egress: [{ purpose: "the ledger database", peer: { cidrs: ["10.0.0.0/24"] }, ports: [{ port: 5432 }] }] },
      ];
      const out = networkPolicies(NS, workloads);
      const job = pod("ledger-migrations");
      assert.equal(blockedBy(out, { from: job, to: { ip: "10.0.0.5" }, port: 5432 }), undefined);
      assert.equal(blockedBy(out, { from: job, to: fraud, port: 8080 }), "egress");
      assert.equal(blockedBy(out, { from: payment, to: job, port: 8080 }), "egress");
    });

    it("refuses a flow with no selector, no CIDR or no port", () => {
      assert.throws(() => networkPolicies(NS, paymentPathWorkloads(SERVICES, { ...settings, paymentIngressFrom: [{}] })), /payment-service ingress \(the ingress or API gateway\): no selector/);
      assert.throws(() => networkPolicies(NS, paymentPathWorkloads(SERVICES, { ...settings, redis: { cidrs: [], port: 6379 } })), /fraud-service egress \(Redis\): no CIDR/);
    });
  });

  describe("config (payments-apm:network)", () => {
    const prod = () => rawSettings("prod");

    it("refuses an allowed source with no selector, naming the key", () => {
      const problems = problemsOf(withValue(prod(), "network.paymentIngressFrom", [{ namespaceSelector: { team: "edge" } }, {}]));
      assert.ok(problems.some((p) => p.startsWith("payments-apm:network.paymentIngressFrom.1 needs a namespaceSelector or a podSelector")), problems.join("\n"));
      const empty = problemsOf(withValue(prod(), "network.paymentIngressFrom", [{ podSelector: {} }]));
      assert.ok(empty.some((p) => p.startsWith("payments-apm:network.paymentIngressFrom.0 needs a namespaceSelector or a podSelector")), empty.join("\n"));
    });

    it("refuses no allowed source at all, and a CIDR that is not one", () => {
      assert.ok(problemsOf(withValue(prod(), "network.paymentIngressFrom", [])).some((p) => p.startsWith("payments-apm:network.paymentIngressFrom must name at least one source")));
      assert.ok(problemsOf(withValue(prod(), "network.databaseCidrs", ["10.20.64.0"])).some((p) => p.startsWith("payments-apm:network.databaseCidrs.0 must be an IPv4 CIDR")));
      assert.ok(problemsOf(withValue(prod(), "network.redisCidrs", ["0.0.0.0/0"])).some((p) => p.startsWith("payments-apm:network.redisCidrs.0 must not be 0.0.0.0/0")));
    });

    it("warns at preview when the cluster does not enforce NetworkPolicies, and only then", async function () {
      this.timeout(60_000);
      // Without an engine (the mocks), pulumi.log.warn writes to console.warn.
      const warnings: string[] = [];
      const original = console.warn;
      console.warn = (...args: unknown[]) => void warnings.push(args.map(String).join(" "));
      try {
        await runStack("prod", { overrides: { "payments-apm:network": JSON.stringify({ ...prod().network, clusterEnforces: false }) } });
        const whenOff = warnings.splice(0);
        await runStack("prod");
        assert.ok(whenOff.some((w) => /payments-apm:network\.clusterEnforces is false/.test(w)), whenOff.join("\n"));
        assert.ok(!warnings.some((w) => /clusterEnforces/.test(w)), warnings.join("\n"));
      } finally {
        console.warn = original;
      }
    });
  });
});
