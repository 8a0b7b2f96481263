/**
 * Only the calls the payment flow needs, in the services namespace: a default deny of
 * every ingress and egress, then one policy per workload allowing exactly its flows.
 *
 * NetworkPolicies select pods by labels; `app.kubernetes.io/name` is what TracedService puts
 * on each pod. On EKS they are enforced only when the VPC CNI's network policy support is
 * on (`enableNetworkPolicy` of the vpc-cni add-on, or the Calico/Cilium engines): without
 * it they are stored and ignored, hence the `network.clusterEnforces` flag and its warning.
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { DEFAULT_PORT } from "../app/src/tracing/conventions";
import { AGENT_APP_NAME } from "./datadog-agent";

export type Labels = Readonly<Record<string, string>>;

/** Pods a rule lets in or out: pods by labels (in the policy's namespace unless namespaces are selected too). */
export interface PeerSelector {
  /** Namespaces by their labels, e.g. `{"kubernetes.io/metadata.name": "ingress-nginx"}`. Absent: the policy's own namespace. */
  readonly namespaceSelector?: Labels;
  /** Pods by their labels. Absent with a namespaceSelector: every pod of those namespaces. */
  readonly podSelector?: Labels;
}

/** One destination of an egress rule, or one source of an ingress rule. */
export type Peer =
  | { readonly pods: PeerSelector }
  /** Addresses outside the cluster's pods (the database, Redis, the nodes, an HTTPS endpoint). */
  | { readonly cidrs: readonly string[] };

export interface PortSpec {
  readonly port: number;
  /** Default TCP. */
  readonly protocol?: "TCP" | "UDP";
}

export interface Flow {
  /** Why the flow exists, written as a comment of the rendered rule's policy. */
  readonly purpose: string;
  readonly peer: Peer;
  readonly ports: readonly PortSpec[];
}

/** A workload of the namespace and the flows it needs; every other flow of its pods is denied. */
export interface Workload {
  /** The pods' `app.kubernetes.io/name`, and the policy's name. */
  readonly name: string;
  readonly ingress: readonly Flow[];
  readonly egress: readonly Flow[];
}

/** Where the things the services call are, and who may call payment-service. */
export interface NetworkSettings {
  /** Sources allowed to reach payment-service: the ingress controller or API gateway. At least one; each with a selector. */
  readonly paymentIngressFrom: readonly PeerSelector[];
  /** The ledger database (RDS): CIDRs and port. */
  readonly database: { readonly cidrs: readonly string[]; readonly port: number };
  /** Redis (ElastiCache): CIDRs and port. */
  readonly redis: { readonly cidrs: readonly string[]; readonly port: number };
  /** RabbitMQ (Amazon MQ): CIDRs and port, for the outbox relay and the consumers. */
  readonly broker: { readonly cidrs: readonly string[]; readonly port: number };
  /**
   * HTTPS endpoints the services fetch signing keys from (the identity provider's and the
   * cluster issuer's JWKS). At least one: both services verify tokens on every request.
   */
  readonly jwksCidrs: readonly string[];
  /** The nodes' addresses, for the Agent's hostPort. */
  readonly nodeCidrs: readonly string[];
  /** The Agent's hostPort, when the services use it (not the socket). */
  readonly agentHostPort?: number;
  /** The Agent's pods (after the hostPort's DNAT the packets go to them), when this program deploys it. */
  readonly agentPods?: PeerSelector;
}

const NAME_LABEL = "app.kubernetes.io/name";
const HTTP: PortSpec = { port: DEFAULT_PORT };
const HTTPS: PortSpec = { port: 443 };

/** The cluster DNS (CoreDNS, labelled k8s-app=kube-dns in kube-system on EKS). */
export const CLUSTER_DNS: Flow = {
  purpose: "cluster DNS",
  peer: { pods: { namespaceSelector: { "kubernetes.io/metadata.name": "kube-system" }, podSelector: { "k8s-app": "kube-dns" } } },
  ports: [
    { port: 53, protocol: "UDP" },
    { port: 53, protocol: "TCP" },
  ],
};

/** The pods of the Agent this program deploys (components/datadog-agent.ts labels them so). */
export function agentPodSelector(agentNamespace: string): PeerSelector {
  return { namespaceSelector: { "kubernetes.io/metadata.name": agentNamespace }, podSelector: { [NAME_LABEL]: AGENT_APP_NAME } };
}

/** The egress every traced workload needs to send its spans to the node's Agent. */
export function agentFlows(settings: NetworkSettings): Flow[] {
  if (settings.agentHostPort === undefined) return []; // the Unix socket: no network flow
  const port = [{ port: settings.agentHostPort }];
  return [
    { purpose: "Datadog Agent hostPort on the node", peer: { cidrs: settings.nodeCidrs }, ports: port },
    ...(settings.agentPods ? [{ purpose: "Datadog Agent pod (hostPort DNAT target)", peer: { pods: settings.agentPods }, ports: port }] : []),
  ];
}

/** payment-service and fraud-service, each with exactly the flows of the payment path. */
export function paymentPathWorkloads(services: { payment: string; fraud: string }, settings: NetworkSettings): Workload[] {
  const agent = agentFlows(settings);
  return [
    {
      name: services.payment,
      ingress: settings.paymentIngressFrom.map((from) => ({ purpose: "the ingress or API gateway", peer: { pods: from }, ports: [HTTP] })),
      egress: [
        CLUSTER_DNS,
        { purpose: "the ledger database", peer: { cidrs: settings.database.cidrs }, ports: [{ port: settings.database.port }] },
        { purpose: "fraud-service", peer: { pods: { podSelector: { [NAME_LABEL]: services.fraud } } }, ports: [HTTP] },
        { purpose: "token signing keys (JWKS) over HTTPS", peer: { cidrs: settings.jwksCidrs }, ports: [HTTPS] },
        ...agent,
      ],
    },
    {
      name: services.fraud,
      ingress: [{ purpose: "payment-service", peer: { pods: { podSelector: { [NAME_LABEL]: services.payment } } }, ports: [HTTP] }],
      egress: [
        CLUSTER_DNS,
        { purpose: "Redis", peer: { cidrs: settings.redis.cidrs }, ports: [{ port: settings.redis.port }] },
        { purpose: "token signing keys (JWKS) over HTTPS", peer: { cidrs: settings.jwksCidrs }, ports: [HTTPS] },
        ...agent,
      ],
    },
  ];
}

/**
 * The post-processing workers: the outbox relay (the database, RabbitMQ) and the consumers
 * (the database, RabbitMQ, Redis for the fraud history). No ingress: they serve nothing.
 */
export function postProcessingWorkloads(services: { relay: string; postProcessing: string }, settings: NetworkSettings): Workload[] {
  const database: Flow = { purpose: "the ledger database", peer: { cidrs: settings.database.cidrs }, ports: [{ port: settings.database.port }] };
  const broker: Flow = { purpose: "RabbitMQ", peer: { cidrs: settings.broker.cidrs }, ports: [{ port: settings.broker.port }] };
  return [
    { name: services.relay, ingress: [], egress: [CLUSTER_DNS, database, broker, ...agentFlows(settings)] },
    {
      name: services.postProcessing,
      ingress: [],
      egress: [
        CLUSTER_DNS,
        database,
        broker,
        { purpose: "Redis", peer: { cidrs: settings.redis.cidrs }, ports: [{ port: settings.redis.port }] },
        ...agentFlows(settings),
      ],
    },
  ];
}

/** A workload that only talks to the database (the ledger migrations Job): DNS, the database, the Agent. */
export function databaseClientWorkload(name: string, settings: NetworkSettings): Workload {
  return {
    name,
    ingress: [],
    egress: [
      CLUSTER_DNS,
      { purpose: "the ledger database", peer: { cidrs: settings.database.cidrs }, ports: [{ port: settings.database.port }] },
      ...agentFlows(settings),
    ],
  };
}

/** A NetworkPolicy object, as the Kubernetes API takes it. */
export interface NetworkPolicyObject {
  readonly apiVersion: "networking.k8s.io/v1";
  readonly kind: "NetworkPolicy";
  readonly metadata: { readonly name: string; readonly namespace: string; readonly labels: Labels; readonly annotations?: Labels };
  readonly spec: {
    readonly podSelector: { readonly matchLabels?: Labels };
    readonly policyTypes: readonly ("Ingress" | "Egress")[];
    readonly ingress?: readonly RuleObject[];
    readonly egress?: readonly RuleObject[];
  };
}

interface PeerObject {
  readonly namespaceSelector?: { readonly matchLabels: Labels };
  readonly podSelector?: { readonly matchLabels: Labels };
  readonly ipBlock?: { readonly cidr: string };
}
type RuleObject = { readonly ports: readonly { port: number; protocol: string }[] } & ({ readonly from: readonly PeerObject[] } | { readonly to: readonly PeerObject[] });

function peerObjects(peer: Peer): PeerObject[] {
  if ("cidrs" in peer) return peer.cidrs.map((cidr) => ({ ipBlock: { cidr } }));
  const { namespaceSelector, podSelector } = peer.pods;
  return [
    {
      ...(namespaceSelector ? { namespaceSelector: { matchLabels: namespaceSelector } } : {}),
      // No namespaceSelector and no podSelector would mean every pod of the namespace: never meant here.
      ...(podSelector || !namespaceSelector ? { podSelector: { matchLabels: podSelector ?? {} } } : {}),
    },
  ];
}

const portObjects = (ports: readonly PortSpec[]) => ports.map((p) => ({ port: p.port, protocol: p.protocol ?? "TCP" }));

/** Problems of the flows a workload declares, each naming the workload and the flow. */
export function workloadProblems(workloads: readonly Workload[]): string[] {
  const problems: string[] = [];
  for (const w of workloads) {
    for (const [direction, flows] of [["ingress", w.ingress], ["egress", w.egress]] as const) {
      for (const f of flows) {
        const where = `${w.name} ${direction} (${f.purpose})`;
        if ("cidrs" in f.peer && f.peer.cidrs.length === 0) problems.push(`${where}: no CIDR`);
        if ("pods" in f.peer && !f.peer.pods.namespaceSelector && !f.peer.pods.podSelector) problems.push(`${where}: no selector`);
        if (f.ports.length === 0) problems.push(`${where}: no port`);
      }
    }
  }
  return problems;
}

/**
 * The policies of the namespace: `default-deny` (every pod, no ingress, no egress), then one
 * per workload selecting its pods by `app.kubernetes.io/name` and allowing its flows. Pure:
 * the component only creates them.
 */
export function networkPolicies(namespace: string, workloads: readonly Workload[], labels: Labels = {}): NetworkPolicyObject[] {
  const problems = workloadProblems(workloads);
  if (problems.length) throw new Error(`network policies: ${problems.join("; ")}`);
  const policy = (name: string, spec: NetworkPolicyObject["spec"], purposes?: string): NetworkPolicyObject => ({
    apiVersion: "networking.k8s.io/v1",
    kind: "NetworkPolicy",
    metadata: { name, namespace, labels, ...(purposes ? { annotations: { "payments-apm/flows": purposes } } : {}) },
    spec,
  });
  return [
    policy("default-deny", { podSelector: {}, policyTypes: ["Ingress", "Egress"] }),
    ...workloads.map((w) =>
      policy(
        w.name,
        {
          podSelector: { matchLabels: { [NAME_LABEL]: w.name } },
          policyTypes: ["Ingress", "Egress"],
          ingress: w.ingress.map((f) => ({ from: peerObjects(f.peer), ports: portObjects(f.ports) })),
          egress: w.egress.map((f) => ({ to: peerObjects(f.peer), ports: portObjects(f.ports) })),
        },
        [...w.ingress.map((f) => `in: ${f.purpose}`), ...w.egress.map((f) => `out: ${f.purpose}`)].join("; "),
      ),
    ),
  ];
}

export interface NetworkPoliciesArgs {
  /** The services namespace. */
  readonly namespace: pulumi.Input<string>;
  /** Its name as configured (the objects' metadata needs a plain string to be computed purely). */
  readonly namespaceName: string;
  readonly workloads: readonly Workload[];
  /** The cluster enforces NetworkPolicies (EKS: the VPC CNI's network policy support). Default true; false only warns. */
  readonly clusterEnforces?: boolean;
}

/** Places the policies of {@link networkPolicies} in the services namespace. */
export class NetworkPolicies extends pulumi.ComponentResource {
  public readonly policyNames: string[];

  constructor(name: string, args: NetworkPoliciesArgs, opts?: pulumi.ComponentResourceOptions) {
    super("payments-apm:network:NetworkPolicies", name, {}, opts);
    if (!(args.clusterEnforces ?? true)) {
      pulumi.log.warn(
        "payments-apm:network.clusterEnforces is false: the NetworkPolicies are created but the cluster ignores them until " +
          "its network policy support is on (EKS: the vpc-cni add-on with enableNetworkPolicy). Every pod can reach the services, the database and Redis.",
        this,
      );
    }
    const objects = networkPolicies(args.namespaceName, args.workloads, { "app.kubernetes.io/part-of": "payments" });
    for (const o of objects) {
      new k8s.networking.v1.NetworkPolicy(
        `${name}-${o.metadata.name}`,
        { metadata: { ...o.metadata, namespace: args.namespace }, spec: o.spec as k8s.types.input.networking.v1.NetworkPolicySpec },
        { parent: this },
      );
    }
    this.policyNames = objects.map((o) => o.metadata.name);
    this.registerOutputs({ policyNames: this.policyNames });
  }
}
