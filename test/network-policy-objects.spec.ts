/**
 * The NetworkPolicies as pure data (components/network-policies.ts): each workload's flows,
 * the objects rendered from them, and the component that places them. No whole-program run:
 * test/network-policies.spec.ts checks the prod stack's flows end to end.
 */
import * as assert from "node:assert/strict";
import * as pulumi from "@pulumi/pulumi";
import {
  agentFlows,
  agentPodSelector,
  CLUSTER_DNS,
  databaseClientWorkload,
  NetworkPolicies,
  networkPolicies,
  paymentPathWorkloads,
  postProcessingWorkloads,
  workloadProblems,
  type NetworkSettings,
  type Workload,
} from "../components/network-policies";
import { runUnderMocks, type ProgramRun } from "../scripts/mock-engine";

const SERVICES = { payment: "payment-service", fraud: "fraud-service", relay: "outbox-relay", postProcessing: "post-processing" };

const settings: NetworkSettings = {
  paymentIngressFrom: [{ namespaceSelector: { team: "edge" } }, { namespaceSelector: { team: "api" }, podSelector: { role: "gateway" } }],
  database: { cidrs: ["10.0.0.0/24"], port: 5432 },
  redis: { cidrs: ["10.0.1.0/24"], port: 6380 },
  broker: { cidrs: ["10.0.3.0/24"], port: 5671 },
  jwksCidrs: ["10.0.4.0/24"],
  nodeCidrs: ["10.0.2.0/24", "10.0.5.0/24"],
};
const viaHostPort: NetworkSettings = { ...settings, agentHostPort: 9126 };
const viaHostPortToOurAgent: NetworkSettings = { ...viaHostPort, agentPods: { namespaceSelector: { "kubernetes.io/metadata.name": "datadog" }, podSelector: { "app.kubernetes.io/name": "datadog-agent" } } };

const DNS_PEER = { pods: { namespaceSelector: { "kubernetes.io/metadata.name": "kube-system" }, podSelector: { "k8s-app": "kube-dns" } } };
const DNS_PORTS = [
  { port: 53, protocol: "UDP" },
  { port: 53, protocol: "TCP" },
];
const purposes = (w: Workload) => ({ ingress: w.ingress.map((f) => f.purpose), egress: w.egress.map((f) => f.purpose) });

describe("network policy objects (components/network-policies.ts)", () => {
  describe("the flows", () => {
    it("resolves names through CoreDNS: kube-dns pods of kube-system, port 53 over UDP and TCP", () => {
      assert.deepEqual(CLUSTER_DNS, { purpose: "cluster DNS", peer: DNS_PEER, ports: DNS_PORTS });
    });

    it("selects the Agent this program deploys by its namespace's name and its app name", () => {
      assert.deepEqual(agentPodSelector("datadog-system"), {
        namespaceSelector: { "kubernetes.io/metadata.name": "datadog-system" },
        podSelector: { "app.kubernetes.io/name": "datadog-agent" },
      });
    });

    it("opens the Agent's hostPort on the nodes only when the services use it, and its pods only when deployed here", () => {
      assert.deepEqual(agentFlows(settings), []);
      assert.deepEqual(agentFlows(viaHostPort), [{ purpose: "Datadog Agent hostPort on the node", peer: { cidrs: ["10.0.2.0/24", "10.0.5.0/24"] }, ports: [{ port: 9126 }] }]);
      assert.deepEqual(agentFlows(viaHostPortToOurAgent), [
        { purpose: "Datadog Agent hostPort on the node", peer: { cidrs: ["10.0.2.0/24", "10.0.5.0/24"] }, ports: [{ port: 9126 }] },
        { purpose: "Datadog Agent pod (hostPort DNAT target)", peer: { pods: viaHostPortToOurAgent.agentPods }, ports: [{ port: 9126 }] },
      ]);
    });

    it("lets payment-service be called by each gateway and call DNS, the ledger, fraud-service, the JWKS and the Agent", () => {
      const [payment] = paymentPathWorkloads(SERVICES, viaHostPort);
      assert.deepEqual(payment, {
        name: "payment-service",
        ingress: [
          { purpose: "the ingress or API gateway", peer: { pods: { namespaceSelector: { team: "edge" } } }, ports: [{ port: 8080 }] },
          { purpose: "the ingress or API gateway", peer: { pods: { namespaceSelector: { team: "api" }, podSelector: { role: "gateway" } } }, ports: [{ port: 8080 }] },
        ],
        egress: [
          CLUSTER_DNS,
          { purpose: "the ledger database", peer: { cidrs: ["10.0.0.0/24"] }, ports: [{ port: 5432 }] },
          { purpose: "fraud-service", peer: { pods: { podSelector: { "app.kubernetes.io/name": "fraud-service" } } }, ports: [{ port: 8080 }] },
          { purpose: "token signing keys (JWKS) over HTTPS", peer: { cidrs: ["10.0.4.0/24"] }, ports: [{ port: 443 }] },
          { purpose: "Datadog Agent hostPort on the node", peer: { cidrs: ["10.0.2.0/24", "10.0.5.0/24"] }, ports: [{ port: 9126 }] },
        ],
      });
    });

    it("lets fraud-service be called by payment-service only and call DNS, Redis, the JWKS and the Agent", () => {
      const [, fraud] = paymentPathWorkloads(SERVICES, viaHostPort);
      assert.deepEqual(fraud, {
        name: "fraud-service",
        ingress: [{ purpose: "payment-service", peer: { pods: { podSelector: { "app.kubernetes.io/name": "payment-service" } } }, ports: [{ port: 8080 }] }],
        egress: [
          CLUSTER_DNS,
          { purpose: "Redis", peer: { cidrs: ["10.0.1.0/24"] }, ports: [{ port: 6380 }] },
          { purpose: "token signing keys (JWKS) over HTTPS", peer: { cidrs: ["10.0.4.0/24"] }, ports: [{ port: 443 }] },
          { purpose: "Datadog Agent hostPort on the node", peer: { cidrs: ["10.0.2.0/24", "10.0.5.0/24"] }, ports: [{ port: 9126 }] },
        ],
      });
    });

    it("lets the outbox relay reach DNS, the ledger, RabbitMQ and the Agent, and the consumers Redis too; nothing calls them", () => {
      const [relay, consumers] = postProcessingWorkloads(SERVICES, viaHostPort);
      const database = { purpose: "the ledger database", peer: { cidrs: ["10.0.0.0/24"] }, ports: [{ port: 5432 }] };
      const broker = { purpose: "RabbitMQ", peer: { cidrs: ["10.0.3.0/24"] }, ports: [{ port: 5671 }] };
      const agent = { purpose: "Datadog Agent hostPort on the node", peer: { cidrs: ["10.0.2.0/24", "10.0.5.0/24"] }, ports: [{ port: 9126 }] };
      assert.deepEqual(relay, { name: "outbox-relay", ingress: [], egress: [CLUSTER_DNS, database, broker, agent] });
      assert.deepEqual(consumers, {
        name: "post-processing",
        ingress: [],
        egress: [CLUSTER_DNS, database, broker, { purpose: "Redis", peer: { cidrs: ["10.0.1.0/24"] }, ports: [{ port: 6380 }] }, agent],
      });
    });

    it("lets a database client reach DNS, the ledger and the Agent only", () => {
      assert.deepEqual(databaseClientWorkload("ledger-migrations", viaHostPort), {
        name: "ledger-migrations",
        ingress: [],
        egress: [
          CLUSTER_DNS,
          { purpose: "the ledger database", peer: { cidrs: ["10.0.0.0/24"] }, ports: [{ port: 5432 }] },
          { purpose: "Datadog Agent hostPort on the node", peer: { cidrs: ["10.0.2.0/24", "10.0.5.0/24"] }, ports: [{ port: 9126 }] },
        ],
      });
    });

    it("sends every workload's spans over the socket without a network flow to the Agent", () => {
      const all = [...paymentPathWorkloads(SERVICES, settings), ...postProcessingWorkloads(SERVICES, settings), databaseClientWorkload("ledger-migrations", settings)];
      assert.deepEqual(Object.fromEntries(all.map((w) => [w.name, purposes(w)])), {
        "payment-service": { ingress: ["the ingress or API gateway", "the ingress or API gateway"], egress: ["cluster DNS", "the ledger database", "fraud-service", "token signing keys (JWKS) over HTTPS"] },
        "fraud-service": { ingress: ["payment-service"], egress: ["cluster DNS", "Redis", "token signing keys (JWKS) over HTTPS"] },
        "outbox-relay": { ingress: [], egress: ["cluster DNS", "the ledger database", "RabbitMQ"] },
        "post-processing": { ingress: [], egress: ["cluster DNS", "the ledger database", "RabbitMQ", "Redis"] },
        "ledger-migrations": { ingress: [], egress: ["cluster DNS", "the ledger database"] },
      });
    });

    it("reaches the Agent's pods as well as the nodes from every workload when this program deploys the Agent", () => {
      const all = [...paymentPathWorkloads(SERVICES, viaHostPortToOurAgent), ...postProcessingWorkloads(SERVICES, viaHostPortToOurAgent), databaseClientWorkload("ledger-migrations", viaHostPortToOurAgent)];
      for (const w of all) {
        assert.deepEqual(w.egress.slice(-2).map((f) => f.purpose), ["Datadog Agent hostPort on the node", "Datadog Agent pod (hostPort DNAT target)"], w.name);
      }
    });
  });

  describe("the objects", () => {
    const migrationsJob: Workload = {
      name: "ledger-migrations",
      ingress: [{ purpose: "a prober", peer: { pods: { podSelector: { role: "prober" } } }, ports: [{ port: 9000, protocol: "TCP" }] }],
      egress: [CLUSTER_DNS, { purpose: "the ledger database", peer: { cidrs: ["10.0.0.0/24", "10.0.9.0/24"] }, ports: [{ port: 5432 }] }],
    };

    it("denies every ingress and egress of every pod first, with the given labels and no flow annotation", () => {
      const [deny] = networkPolicies("payments", [], { "app.kubernetes.io/part-of": "payments" });
      assert.deepEqual(deny, {
        apiVersion: "networking.k8s.io/v1",
        kind: "NetworkPolicy",
        metadata: { name: "default-deny", namespace: "payments", labels: { "app.kubernetes.io/part-of": "payments" } },
        spec: { podSelector: {}, policyTypes: ["Ingress", "Egress"] },
      });
      assert.deepEqual(networkPolicies("payments", [])[0].metadata.labels, {});
    });

    it("renders a workload's flows as rules of a policy selecting its pods by name, each purpose listed in an annotation", () => {
      const [, policy] = networkPolicies("payments", [migrationsJob], { team: "payments" });
      assert.deepEqual(policy, {
        apiVersion: "networking.k8s.io/v1",
        kind: "NetworkPolicy",
        metadata: {
          name: "ledger-migrations",
          namespace: "payments",
          labels: { team: "payments" },
          annotations: { "payments-apm/flows": "in: a prober; out: cluster DNS; out: the ledger database" },
        },
        spec: {
          podSelector: { matchLabels: { "app.kubernetes.io/name": "ledger-migrations" } },
          policyTypes: ["Ingress", "Egress"],
          ingress: [{ from: [{ podSelector: { matchLabels: { role: "prober" } } }], ports: [{ port: 9000, protocol: "TCP" }] }],
          egress: [
            {
              to: [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "kube-system" } }, podSelector: { matchLabels: { "k8s-app": "kube-dns" } } }],
              ports: [
                { port: 53, protocol: "UDP" },
                { port: 53, protocol: "TCP" },
              ],
            },
            { to: [{ ipBlock: { cidr: "10.0.0.0/24" } }, { ipBlock: { cidr: "10.0.9.0/24" } }], ports: [{ port: 5432, protocol: "TCP" }] },
          ],
        },
      });
    });

    it("lets a namespace selector alone mean every pod of those namespaces", () => {
      const gateway: Workload = { name: "api", ingress: [{ purpose: "the edge", peer: { pods: { namespaceSelector: { team: "edge" } } }, ports: [{ port: 8080 }] }], egress: [] };
      const [, policy] = networkPolicies("payments", [gateway]);
      assert.deepEqual(policy.spec.ingress, [{ from: [{ namespaceSelector: { matchLabels: { team: "edge" } } }], ports: [{ port: 8080, protocol: "TCP" }] }]);
      assert.deepEqual(policy.spec.egress, []);
      assert.deepEqual(policy.metadata.annotations, { "payments-apm/flows": "in: the edge" });
    });

    it("writes no flow annotation on a workload that has no flow", () => {
      const [, policy] = networkPolicies("payments", [{ name: "isolated", ingress: [], egress: [] }]);
      assert.deepEqual(policy.metadata, { name: "isolated", namespace: "payments", labels: {} });
    });

    it("names the workload, the direction and the purpose of each flow with no CIDR, no selector or no port", () => {
      const broken: Workload = {
        name: "broken",
        ingress: [{ purpose: "from nowhere", peer: { pods: {} }, ports: [{ port: 8080 }] }],
        egress: [
          { purpose: "to no address", peer: { cidrs: [] }, ports: [{ port: 443 }] },
          { purpose: "on no port", peer: { pods: { podSelector: { a: "b" } } }, ports: [] },
        ],
      };
      assert.deepEqual(workloadProblems([migrationsJob, broken]), [
        "broken ingress (from nowhere): no selector",
        "broken egress (to no address): no CIDR",
        "broken egress (on no port): no port",
      ]);
      assert.throws(
        () => networkPolicies("payments", [broken]),
        (e: Error) => e.message === "network policies: broken ingress (from nowhere): no selector; broken egress (to no address): no CIDR; broken egress (on no port): no port",
      );
    });

    it("accepts a flow to the pods of selected namespaces, or to selected pods, as having a selector", () => {
      const ok: Workload = {
        name: "ok",
        ingress: [{ purpose: "namespaces", peer: { pods: { namespaceSelector: { a: "b" } } }, ports: [{ port: 1 }] }],
        egress: [{ purpose: "pods", peer: { pods: { podSelector: { a: "b" } } }, ports: [{ port: 1 }] }],
      };
      assert.deepEqual(workloadProblems([ok]), []);
    });
  });

  describe("the component", () => {
    const workloads = databaseClientWorkload("ledger-migrations", settings);

    /** Renders the component under the mocks, collecting pulumi.log.warn's messages and each resource's parent. */
    async function render(clusterEnforces: boolean | undefined): Promise<{ run: ProgramRun; warnings: string[]; parents: Map<string, string | undefined> }> {
      const parents = new Map<string, string | undefined>();
      const warnings: string[] = [];
      const warn = console.warn;
      // Without an engine (the mocks), pulumi.log.warn writes to console.warn, with a prefix.
      console.warn = (...args: unknown[]) => void warnings.push(args.map(String).join(" ").replace(/^warning: \[runtime\] /, ""));
      try {
        const run = await runUnderMocks("test", { config: {}, secretKeys: [] }, () => {
          pulumi.runtime.registerStackTransformation((t) => {
            parents.set(t.name, (t.opts.parent as unknown as { __name?: string } | undefined)?.__name);
            return undefined;
          });
          const c = new NetworkPolicies("np", { namespace: pulumi.output("payments-ns"), namespaceName: "payments", workloads: [workloads], clusterEnforces });
          return { policyNames: c.policyNames };
        });
        return { run, warnings, parents };
      } finally {
        console.warn = warn;
      }
    }

    it("creates each policy under the component's name in the given namespace, labelled part of payments, and exports their names", async function () {
      this.timeout(30_000);
      const { run, parents } = await render(true);
      assert.equal(parents.get("np-default-deny"), "np", "a child of the component");
      assert.equal(parents.get("np-ledger-migrations"), "np", "a child of the component");
      const policies = run.resources.filter((r) => r.type === "kubernetes:networking.k8s.io/v1:NetworkPolicy");
      assert.deepEqual(
        policies.map((r) => [r.name, r.inputs.metadata]),
        [
          ["np-default-deny", { name: "default-deny", namespace: "payments-ns", labels: { "app.kubernetes.io/part-of": "payments" } }],
          [
            "np-ledger-migrations",
            { name: "ledger-migrations", namespace: "payments-ns", labels: { "app.kubernetes.io/part-of": "payments" }, annotations: { "payments-apm/flows": "out: cluster DNS; out: the ledger database" } },
          ],
        ],
      );
      assert.deepEqual(policies[1].inputs.spec.egress[1], { to: [{ ipBlock: { cidr: "10.0.0.0/24" } }], ports: [{ port: 5432, protocol: "TCP" }] });
      assert.deepEqual(run.outputs.policyNames, ["default-deny", "ledger-migrations"]);
      assert.deepEqual(run.componentOutputs["payments-apm:network:NetworkPolicies::np"], ["policyNames"]);
    });

    it("warns that the policies are ignored when the cluster does not enforce them", async function () {
      this.timeout(30_000);
      const { warnings, run } = await render(false);
      assert.deepEqual(warnings, [
        "payments-apm:network.clusterEnforces is false: the NetworkPolicies are created but the cluster ignores them until its network policy support is on " +
          "(EKS: the vpc-cni add-on with enableNetworkPolicy). Every pod can reach the services, the database and Redis.",
      ]);
      assert.equal(run.resources.filter((r) => r.type === "kubernetes:networking.k8s.io/v1:NetworkPolicy").length, 2, "created all the same");
    });

    for (const clusterEnforces of [true, undefined]) {
      it(`does not warn when the cluster enforces them (clusterEnforces ${clusterEnforces}; the default is true)`, async function () {
        this.timeout(30_000);
        const { warnings } = await render(clusterEnforces);
        assert.deepEqual(warnings, []);
      });
    }
  });
});
