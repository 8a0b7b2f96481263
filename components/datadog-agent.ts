/**
 * The Datadog node Agent with APM, one pod per node: namespace, API-key Secret,
 * ServiceAccount with least-privilege RBAC, and the DaemonSet (`agent` + `trace-agent`).
 *
 * Parity target: what the official Helm chart (DataDog/helm-charts, charts/datadog) renders
 * for the same settings (Agent 7.81). Deliberate differences from the chart:
 * - No Cluster Agent: the node Agent talks to the API server itself (the chart's
 *   `clusterAgent.enabled: false` RBAC), so no DCA token Secret, Service or admission webhook.
 * - No process-agent, system-probe, security-agent, otel-agent or log collection: APM needs
 *   none of them on Agent >= 7.60. Hence no hostPID and none of their host mounts
 *   (/lib/modules, debugfs, /var/log, /etc/os-release and the other release files), and no
 *   install-info / KPI-telemetry ConfigMaps.
 * - Kubernetes event collection is off and leader election uses a Lease only
 *   (DD_LEADER_ELECTION_DEFAULT_RESOURCE=lease), so the ClusterRole grants no ConfigMap access
 *   at all; the chart also grants ConfigMaps for its event token and the ConfigMap lock.
 * - The chart's extra rules for OpenShift SCCs, EKS control-plane metrics
 *   (metrics.eks.amazonaws.com), `/metrics/slis` and an unscoped `get` on leases are left out.
 * - One switch, `apm.socketEnabled`, governs the host directory /var/run/datadog and both
 *   Unix sockets in it (APM and DogStatsD); the chart has a separate `dogstatsd.useSocketVolume`.
 * - The checksum annotation that rolls the DaemonSet when the API key changes is named after
 *   the Secret, `checksum/datadog-agent-api-key` (the chart's is `checksum/api_key`), and
 *   hashes the Secret's data only, not the whole rendered Secret manifest (secret-checksum.ts).
 * - A required node affinity keeps pods off EKS Fargate nodes, which run no DaemonSets: a
 *   catch-all toleration would otherwise leave pods Pending there and stall the rollout.
 * - DD_TAGS is space-separated, the chart's long-standing form (recent chart versions render
 *   a JSON list; the Agent reads both, and tag values here cannot contain spaces).
 * - A priority class always (created here by default, like the chart's
 *   `agents.priorityClassCreate: true`, or an existing one): the Kubernetes provider waits for
 *   the DaemonSet to be ready, so one Agent pod Pending on a full node would fail `pulumi up`.
 *   The chart sets none unless asked.
 * - The trace-agent is told its memory and CPU budget (DD_APM_MAX_MEMORY,
 *   DD_APM_MAX_CPU_PERCENT) from its container's limits (traceAgentBudget); the chart leaves
 *   the Agent's defaults, which do not follow the container's limits.
 * - The image comes from public.ecr.aws/datadog by default (the chart's advice on AWS).
 * - The namespace is created here and labelled for the `privileged` Pod Security level that
 *   hostPath, hostPort and root require.
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import * as path from "node:path";
import { secretChecksumAnnotations } from "./secret-checksum";
import { imagePinned } from "./image-reference";

/** Host directory holding the Agent's Unix sockets; app pods mount it by hostPath. */
export const APM_SOCKET_DIR = "/var/run/datadog";
/** The trace intake socket (`DD_TRACE_AGENT_URL=unix:///var/run/datadog/apm.socket`). */
export const APM_SOCKET_PATH = `${APM_SOCKET_DIR}/apm.socket`;
/** The DogStatsD socket. */
export const DSD_SOCKET_PATH = `${APM_SOCKET_DIR}/dsd.socket`;

/** The Agent's health server (`/live`, `/ready`, `/startup`), as in the chart. */
export const AGENT_HEALTH_PORT = 5555;
export const DOGSTATSD_PORT = 8125;

export interface AgentSamplers {
  readonly targetTracesPerSecond: number;
  readonly errorTracesPerSecond: number;
  readonly rareSamplerEnabled: boolean;
}
export interface ResourceSettings {
  readonly cpuRequest: string;
  readonly memoryRequest: string;
  readonly memoryLimit: string;
  /** A CPU limit, when set (the trace-agent's CPU budget derives from it). Default: none. */
  readonly cpuLimit?: string;
}
/** The Agent pods' priority class. */
export interface PriorityClassSettings {
  /** Create it (true) or use an existing one (false). */
  readonly create: boolean;
  /** Its name. Default: `<namespace>-datadog-agent` (cluster-scoped, so qualified like the ClusterRole). */
  readonly name?: string;
  /** Its value when created. Default 1000000000, the chart's. */
  readonly value?: number;
}
export interface Toleration {
  readonly key?: string;
  readonly operator: "Exists" | "Equal";
  readonly value?: string;
  readonly effect?: "NoSchedule" | "PreferNoSchedule" | "NoExecute";
}
export interface DatadogAgentArgs {
  /** Namespace created by the component, e.g. "datadog". */
  readonly namespace: string;
  /** DD_CLUSTER_NAME. */
  readonly clusterName: string;
  /** DD_SITE, e.g. "datadoghq.com". */
  readonly site: string;
  /** DD_ENV. */
  readonly env: string;
  /** Global tags (cluster, region, deployment) → DD_TAGS "cluster:x region:y deployment:z". */
  readonly globalTags: Readonly<Record<string, string>>;
  /** Pinned Agent image, e.g. public.ecr.aws/datadog/agent:7.81.1. */
  readonly image: string;
  /** The API key, a secret Output: it only ever goes into the Secret (its hash, into the pod template). */
  readonly apiKey: pulumi.Input<string>;
  /** Key of the HMAC checksum that rolls the pods when the API key changes (secret-checksum.ts). */
  readonly checksumKey: pulumi.Input<string>;
  /** Trace intake: the Unix socket, hostPort `port` on every node, or both. */
  readonly apm: { readonly socketEnabled: boolean; readonly portEnabled: boolean; readonly port: number };
  /** Verify the kubelet's serving certificate (false on EKS: its kubelets serve self-signed ones). */
  readonly kubeletTlsVerify: boolean;
  readonly tolerations: readonly Toleration[];
  readonly agentResources: ResourceSettings;
  readonly traceAgentResources: ResourceSettings;
  readonly samplers: AgentSamplers;
  /** The pods' priority class. Default: create `<namespace>-datadog-agent` with value 1000000000. */
  readonly priorityClass?: PriorityClassSettings;
  /**
   * The container runtime socket on the node. Default /var/run/containerd/containerd.sock
   * (AL2, AL2023); Bottlerocket: /run/dockershim.sock. Its directory is mounted read-only.
   */
  readonly criSocketPath?: string;
  /**
   * Read the hostname from the node's cloud-init instance-id file (the chart's
   * `providers.eks.ec2.useHostnameFromFile`), for nodes whose IMDS hop limit of 1 keeps
   * the Agent from the instance metadata. Default false.
   */
  readonly useHostnameFromFile?: boolean;
}

type EnvVar = k8s.types.input.core.v1.EnvVar;
type VolumeMount = k8s.types.input.core.v1.VolumeMount;

/** Base of the Kubernetes names; the objects live in the component's own namespace. */
export const AGENT_APP_NAME = "datadog-agent";

/** The Kubernetes names of the component's objects. */
export function agentObjectNames(namespace: string) {
  return {
    daemonSet: AGENT_APP_NAME,
    serviceAccount: AGENT_APP_NAME,
    secret: `${AGENT_APP_NAME}-api-key`,
    // Cluster-scoped: qualified by namespace so two installs in one cluster cannot collide
    // (server-side apply upserts: a same-named object would be merged into, not refused).
    clusterRole: `${namespace}-${AGENT_APP_NAME}`,
    leaderLease: `${AGENT_APP_NAME}-leader-election`,
  };
}

/** Key of the API key in the Secret (the chart's key name). */
export const API_KEY_SECRET_KEY = "api-key";

const CONFIG_DIR = "/etc/datadog-agent";
const AUTH_DIR = `${CONFIG_DIR}/auth`;
/** The containerd socket of EKS's AL2 and AL2023 nodes. */
export const DEFAULT_CRI_SOCKET_PATH = "/var/run/containerd/containerd.sock";
/** The containerd socket as seen inside the containers by default (its host directory is mounted under /host). */
export const CRI_SOCKET_PATH = `/host${DEFAULT_CRI_SOCKET_PATH}`;
/** The node's cloud-init instance-id file, the hostname source of `useHostnameFromFile` (as in the chart). */
export const CLOUD_INIT_INSTANCE_ID_PATH = "/var/lib/cloud/data/instance-id";
/** The chart's default priority value for the Agent pods. */
export const DEFAULT_PRIORITY_CLASS_VALUE = 1_000_000_000;

/**
 * The host directory mounted read-only for the runtime socket, and the paths the containers
 * see (under /host, as in the chart). A socket under /var/run or /run gets that whole run
 * directory, as Datadog's CRI and containerd docs mount it; any other path its own directory.
 */
export function criSocketMount(criSocketPath: string = DEFAULT_CRI_SOCKET_PATH) {
  const runDir = ["/var/run", "/run"].find((dir) => criSocketPath.startsWith(`${dir}/`));
  const hostDir = runDir ?? path.posix.dirname(criSocketPath);
  return { hostDir, mountPath: path.posix.join("/host", hostDir), socketInContainer: path.posix.join("/host", criSocketPath) };
}

const UNITS: Readonly<Record<string, number>> = { "": 1, m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40 };

/** A Kubernetes quantity ("400Mi", "1", "500m") as a number of base units (bytes, cores). */
export function parseQuantity(quantity: string): number {
  const m = /^(\d+(?:\.\d+)?)(m|Ki|Mi|Gi|Ti|k|M|G|T)?$/.exec(quantity);
  if (!m) throw new Error(`not a Kubernetes quantity: ${JSON.stringify(quantity)}`);
  return Number(m[1]) * UNITS[m[2] ?? ""];
}

/** What the trace-agent is told it may use. */
export interface TraceAgentBudget {
  /** DD_APM_MAX_MEMORY, bytes of Go heap. */
  readonly maxMemoryBytes: number;
  /** DD_APM_MAX_CPU_PERCENT, % of one core; 0 turns the CPU limiter off. */
  readonly maxCpuPercent: number;
}

/**
 * The trace-agent's budget from its container's limits. In a container it sets none of its
 * own that follows the limits: above max_memory its receiver refuses payloads (load shedding,
 * counted in datadog.trace_agent.receiver.ratelimit), and above 1.5 × max_memory its watchdog
 * exits (docs: tracing/troubleshooting/agent_rate_limits). Half the memory limit keeps that
 * exit at 75 % of the limit in heap, leaving room for the Go runtime before the kernel's OOM
 * kill, so a burst is shed instead of killing the container. CPU: the limit in % of a core,
 * so it refuses payloads before the CFS quota throttles it (and its queues grow); without a
 * CPU limit 0, the Agent's way of leaving CPU to the orchestrator.
 */
export function traceAgentBudget(resources: ResourceSettings): TraceAgentBudget {
  return {
    maxMemoryBytes: Math.floor(parseQuantity(resources.memoryLimit) / 2),
    maxCpuPercent: resources.cpuLimit === undefined ? 0 : Math.round(parseQuantity(resources.cpuLimit) * 100),
  };
}

/** The priority class the pods use, with its defaults applied. */
export function priorityClassOf(args: Pick<DatadogAgentArgs, "namespace" | "priorityClass">): Required<PriorityClassSettings> {
  const p = args.priorityClass ?? { create: true };
  return { create: p.create, name: p.name ?? `${args.namespace}-${AGENT_APP_NAME}`, value: p.value ?? DEFAULT_PRIORITY_CLASS_VALUE };
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const CLUSTER_NAME = /^[a-z0-9]([a-z0-9.-]{0,78}[a-z0-9])?$/;
const LABEL_VALUE = /^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const QUANTITY = /^\d+(\.\d+)?(m|Ki|Mi|Gi|Ti|k|M|G|T)?$/;

/**
 * Every problem with the component's name and args, as property path + reason. Pure, so the
 * checks are unit-tested; the constructor throws them before registering anything.
 */
export function datadogAgentArgsProblems(name: string, args: DatadogAgentArgs): pulumi.InputPropertyErrorDetails[] {
  const problems: pulumi.InputPropertyErrorDetails[] = [];
  const problem = (propertyPath: string, reason: string) => problems.push({ propertyPath, reason });

  if (!LABEL_VALUE.test(name)) {
    problem("name", `must be a valid label value (it is the app.kubernetes.io/instance label): at most 63 letters, digits, '-', '_' or '.', got ${JSON.stringify(name)}`);
  }
  if (!DNS_LABEL.test(args.namespace) || args.namespace.length > 63) {
    problem("namespace", `must be a DNS-1123 label, got ${JSON.stringify(args.namespace)}`);
  }
  if (!CLUSTER_NAME.test(args.clusterName)) {
    problem("clusterName", `must be lowercase letters, digits, '.' or '-', at most 80 characters, got ${JSON.stringify(args.clusterName)}`);
  }
  if (args.site.trim() === "") problem("site", "must not be empty");
  if (args.env.trim() === "") problem("env", "must not be empty");
  for (const [key, value] of Object.entries(args.globalTags)) {
    // DD_TAGS is space-separated: a space or an empty part would split or corrupt a tag.
    if (!/^[^\s:]+$/.test(key) || !/^\S+$/.test(value)) {
      problem(`globalTags.${key}`, `must be a key and value without spaces (DD_TAGS is space-separated), got ${JSON.stringify(`${key}:${value}`)}`);
    }
  }
  if (!imagePinned(args.image)) {
    problem("image", `must be pinned by tag or digest (not latest), got ${JSON.stringify(args.image)}`);
  }
  if (!args.apm.socketEnabled && !args.apm.portEnabled) {
    problem("apm", "needs socketEnabled or portEnabled (or both): with neither, app pods cannot reach the trace intake");
  }
  if (!Number.isInteger(args.apm.port) || args.apm.port < 1 || args.apm.port > 65535) {
    problem("apm.port", `must be a whole number between 1 and 65535, got ${args.apm.port}`);
  } else if (args.apm.port === AGENT_HEALTH_PORT || args.apm.port === DOGSTATSD_PORT) {
    problem("apm.port", `must not be ${args.apm.port}: the Agent already uses it`);
  }
  args.tolerations.forEach((t, i) => {
    if (t.operator === "Exists" && t.value !== undefined && t.value !== "") {
      problem(`tolerations[${i}].value`, "must be empty when operator is Exists");
    }
    if (t.operator === "Equal" && (t.key === undefined || t.key === "")) {
      problem(`tolerations[${i}].key`, "is required when operator is Equal (only Exists may match every taint)");
    }
  });
  for (const field of ["agentResources", "traceAgentResources"] as const) {
    for (const [key, value] of Object.entries(args[field])) {
      if (value !== undefined && !QUANTITY.test(value)) problem(`${field}.${key}`, `must be a Kubernetes quantity such as "100m" or "256Mi", got ${JSON.stringify(value)}`);
    }
  }
  const traceLimits = args.traceAgentResources;
  const quantitiesValid = [traceLimits.memoryLimit, traceLimits.cpuLimit ?? "0"].every((q) => QUANTITY.test(q));
  if (quantitiesValid && traceAgentBudget(traceLimits).maxMemoryBytes < 32 * 2 ** 20) {
    problem("traceAgentResources.memoryLimit", `must be at least 64Mi: half of it is the trace-agent's memory budget, got ${JSON.stringify(args.traceAgentResources.memoryLimit)}`);
  }
  const priority = priorityClassOf(args);
  // The default name derives from the namespace, already checked above.
  const givenName = args.priorityClass?.name;
  if (givenName !== undefined && (!DNS_LABEL.test(givenName) || givenName.length > 63)) {
    problem("priorityClass.name", `must be a DNS-1123 label, got ${JSON.stringify(givenName)}`);
  } else if (givenName === undefined && args.priorityClass?.create === false) {
    problem("priorityClass.name", "is required when create is false: name the existing priority class");
  }
  if (!Number.isInteger(priority.value) || priority.value < 1 || priority.value > DEFAULT_PRIORITY_CLASS_VALUE) {
    problem("priorityClass.value", `must be a whole number between 1 and ${DEFAULT_PRIORITY_CLASS_VALUE}, got ${priority.value}`);
  }
  const cri = args.criSocketPath ?? DEFAULT_CRI_SOCKET_PATH;
  if (!path.posix.isAbsolute(cri) || cri.split("/").includes("..") || path.posix.dirname(cri) === "/") {
    problem("criSocketPath", `must be an absolute path to a socket below a directory, got ${JSON.stringify(cri)}`);
  }
  const s = args.samplers;
  if (!(s.targetTracesPerSecond > 0) || !Number.isFinite(s.targetTracesPerSecond)) {
    problem("samplers.targetTracesPerSecond", `must be a number greater than 0, got ${s.targetTracesPerSecond}`);
  }
  if (!(s.errorTracesPerSecond > 0) || !Number.isFinite(s.errorTracesPerSecond)) {
    problem("samplers.errorTracesPerSecond", `must be a number greater than 0, got ${s.errorTracesPerSecond}`);
  }
  return problems;
}

/** Throws the problems of {@link datadogAgentArgsProblems}, if any, as the engine prints them best. */
export function validateDatadogAgentArgs(name: string, args: DatadogAgentArgs): void {
  const problems = datadogAgentArgsProblems(name, args);
  if (problems.length === 0) return;
  if (problems.length === 1) throw new pulumi.InputPropertyError(problems[0]);
  throw new pulumi.InputPropertiesError({ message: `Invalid DatadogAgent ${JSON.stringify(name)} arguments`, errors: problems });
}

/** The env of each container of the Agent pod. */
export interface AgentContainersEnv {
  /** The `agent` container (core Agent: checks, DogStatsD, health server, leader election). */
  readonly agent: EnvVar[];
  /** The `trace-agent` container (trace intake and samplers). */
  readonly traceAgent: EnvVar[];
  /** The `init-config` init container (the image's setup scripts). */
  readonly init: EnvVar[];
}

/**
 * The env of the Agent's containers, grouped as the chart groups it: settings every container
 * needs, then the core Agent's own, then APM (both containers, as in the chart). The API key
 * only ever appears as a reference to the Secret.
 */
export function agentEnv(args: DatadogAgentArgs): AgentContainersEnv {
  const names = agentObjectNames(args.namespace);
  const literal = (env: Readonly<Record<string, string>>): EnvVar[] => Object.entries(env).map(([n, value]) => ({ name: n, value }));

  const shared: EnvVar[] = [
    { name: "DD_API_KEY", valueFrom: { secretKeyRef: { name: names.secret, key: API_KEY_SECRET_KEY } } },
    ...literal({
      DD_SITE: args.site,
      DD_CLUSTER_NAME: args.clusterName,
      DD_ENV: args.env,
      DD_TAGS: Object.entries(args.globalTags)
        .map(([k, v]) => `${k}:${v}`)
        .join(" "),
      KUBERNETES: "yes",
      // The core Agent writes the IPC token here; the trace-agent reads it (shared emptyDir).
      DD_AUTH_TOKEN_FILE_PATH: `${AUTH_DIR}/token`,
    }),
    { name: "DD_KUBERNETES_KUBELET_HOST", valueFrom: { fieldRef: { fieldPath: "status.hostIP" } } },
    ...literal({
      DD_KUBELET_TLS_VERIFY: String(args.kubeletTlsVerify),
      // The runtime socket, under its host directory mounted read-only at /host/<dir>.
      DD_CRI_SOCKET_PATH: criSocketMount(args.criSocketPath).socketInContainer,
      // EKS nodes run containerd on every AMI; on Bottlerocket its socket has another name
      // (/run/dockershim.sock), so the Agent cannot detect it from the path alone.
      DD_AUTOCONFIG_INCLUDE_FEATURES: "containerd",
      ...(args.useHostnameFromFile ? { DD_HOSTNAME_FILE: CLOUD_INIT_INSTANCE_ID_PATH } : {}),
    }),
  ];

  const dogstatsdSocket: Record<string, string> = args.apm.socketEnabled ? { DD_DOGSTATSD_SOCKET: DSD_SOCKET_PATH } : {};
  const coreAgent: EnvVar[] = literal({
    DD_LOG_LEVEL: "INFO",
    DD_HEALTH_PORT: String(AGENT_HEALTH_PORT),
    DD_DOGSTATSD_PORT: String(DOGSTATSD_PORT),
    DD_DOGSTATSD_NON_LOCAL_TRAFFIC: "true",
    ...dogstatsdSocket,
    DD_LEADER_ELECTION: "true",
    DD_LEADER_ELECTION_DEFAULT_RESOURCE: "lease",
    DD_LEADER_LEASE_NAME: names.leaderLease,
    DD_COLLECT_KUBERNETES_EVENTS: "false",
    DD_KUBERNETES_USE_ENDPOINT_SLICES: "true",
  });

  const apm: EnvVar[] = literal({
    DD_APM_ENABLED: "true",
    // Always on, as in the chart: the kubelet's TCP liveness probe and the hostPort both
    // reach the receiver on the pod IP, and without this it binds to localhost only.
    DD_APM_NON_LOCAL_TRAFFIC: "true",
    DD_APM_RECEIVER_PORT: String(args.apm.port),
    ...(args.apm.socketEnabled ? { DD_APM_RECEIVER_SOCKET: APM_SOCKET_PATH } : {}),
    DD_APM_TARGET_TPS: String(args.samplers.targetTracesPerSecond),
    DD_APM_ERROR_TPS: String(args.samplers.errorTracesPerSecond),
    DD_APM_ENABLE_RARE_SAMPLER: String(args.samplers.rareSamplerEnabled),
    // Our services set tracer sampling rules (DD_TRACE_SAMPLING_RULES); for such services the
    // Agent ignores its error and rare samplers unless this feature is on
    // (docs.datadoghq.com/tracing/trace_pipeline/ingestion_mechanisms, "Error and rare traces").
    DD_APM_FEATURES: "error_rare_sample_tracer_drop",
    // dd-trace's ioredis spans carry the whole command with its values in redis.raw_command
    // and the tracer has no option to drop them: the Agent obfuscates them before intake.
    DD_APM_OBFUSCATION_REDIS_ENABLED: "true",
    DD_APM_OBFUSCATION_REDIS_REMOVE_ALL_ARGS: "true",
    // A second line behind the tracers' own redaction, for any tracer on the node: card
    // numbers in any tag (Luhn not required, so a mistyped number is hidden too), the
    // query string and digit-bearing path segments of http.url.
    DD_APM_OBFUSCATION_CREDIT_CARDS_ENABLED: "true",
    DD_APM_OBFUSCATION_CREDIT_CARDS_LUHN: "false",
    DD_APM_OBFUSCATION_HTTP_REMOVE_QUERY_STRING: "true",
    DD_APM_OBFUSCATION_HTTP_REMOVE_PATHS_WITH_DIGITS: "true",
  });
  const budget = traceAgentBudget(args.traceAgentResources);
  const traceAgentBudgetEnv = literal({
    DD_APM_MAX_MEMORY: String(budget.maxMemoryBytes),
    DD_APM_MAX_CPU_PERCENT: String(budget.maxCpuPercent),
  });

  return {
    agent: [...shared, ...coreAgent, ...apm],
    // The trace-agent's DogStatsD proxy (used by the tracers) forwards to the socket when set.
    traceAgent: [...shared, ...literal({ DD_LOG_LEVEL: "INFO" }), ...apm, ...traceAgentBudgetEnv, ...literal(dogstatsdSocket)],
    init: [...shared, ...literal({ DD_LEADER_ELECTION: "true", DD_LEADER_ELECTION_DEFAULT_RESOURCE: "lease" })],
  };
}

/**
 * The node Agent's ClusterRole rules without a Cluster Agent: read what it tags and
 * discovers, reach the kubelet through the API server's node subresources, hold its own
 * leader-election Lease. No wildcard, no Secrets.
 */
export function agentClusterRoleRules(leaseName: string): k8s.types.input.rbac.v1.PolicyRule[] {
  return [
    {
      apiGroups: [""],
      resources: ["services", "events", "endpoints", "pods", "nodes", "namespaces", "componentstatuses"],
      verbs: ["get", "list", "watch"],
    },
    { apiGroups: ["discovery.k8s.io"], resources: ["endpointslices"], verbs: ["get", "list", "watch"] },
    { apiGroups: [""], resources: ["nodes/metrics", "nodes/spec", "nodes/proxy", "nodes/stats"], verbs: ["get"] },
    // Leader election: only the Agent's own Lease; `create` cannot be limited by name in RBAC.
    { apiGroups: ["coordination.k8s.io"], resources: ["leases"], resourceNames: [leaseName], verbs: ["get", "update"] },
    { apiGroups: ["coordination.k8s.io"], resources: ["leases"], verbs: ["create"] },
    { nonResourceURLs: ["/version", "/healthz", "/metrics"], verbs: ["get"] },
  ];
}

/**
 * The image's tag, when it can serve as the `app.kubernetes.io/version` label. An image
 * pinned by digest has none: what follows its first ':' is either `<tag>@sha256` or the
 * 64-hex digest, and neither is a label value ('@'; more than 63 characters).
 */
export function imageVersionLabel(image: string): string | undefined {
  // A pinned image always has a ':' after its last '/', before the tag or in `sha256:`.
  const tag = image.split("/").pop()!.split(":")[1];
  return LABEL_VALUE.test(tag) ? tag : undefined;
}

/** The Datadog node Agent with APM on every node of the cluster. */
export class DatadogAgent extends pulumi.ComponentResource {
  public readonly namespace: pulumi.Output<string>;
  public readonly daemonSetName: pulumi.Output<string>;
  public readonly secretName: pulumi.Output<string>;
  /** The priority class of the Agent pods (created here or existing). */
  public readonly priorityClassName: pulumi.Output<string>;

  constructor(name: string, args: DatadogAgentArgs, opts?: pulumi.ComponentResourceOptions) {
    validateDatadogAgentArgs(name, args);
    super("payments-apm:datadog:DatadogAgent", name, {}, opts);

    const names = agentObjectNames(args.namespace);
    const selectorLabels = { "app.kubernetes.io/name": AGENT_APP_NAME, "app.kubernetes.io/instance": name };
    const version = imageVersionLabel(args.image);
    const labels = {
      ...selectorLabels,
      "app.kubernetes.io/component": "agent",
      "app.kubernetes.io/part-of": "payments-apm",
      "app.kubernetes.io/managed-by": "pulumi",
      ...(version ? { "app.kubernetes.io/version": version } : {}),
    };

    const ns = new k8s.core.v1.Namespace(
      `${name}-namespace`,
      {
        metadata: {
          name: args.namespace,
          labels: { ...labels, "pod-security.kubernetes.io/enforce": "privileged" },
        },
      },
      { parent: this },
    );
    const namespace = ns.metadata.name;

    const secretData = { [API_KEY_SECRET_KEY]: args.apiKey };
    const secret = new k8s.core.v1.Secret(
      `${name}-api-key`,
      {
        metadata: { name: names.secret, namespace, labels },
        type: "Opaque",
        // Secret whatever the caller passes, in the state's inputs and so in its outputs. The
        // SDK marks a Secret's data so too; stated here so the key's secrecy does not hinge on that.
        stringData: pulumi.secret(secretData),
      },
      { parent: this },
    );

    const serviceAccount = new k8s.core.v1.ServiceAccount(
      `${name}-service-account`,
      { metadata: { name: names.serviceAccount, namespace, labels }, automountServiceAccountToken: true },
      { parent: this },
    );

    const clusterRole = new k8s.rbac.v1.ClusterRole(
      `${name}-cluster-role`,
      { metadata: { name: names.clusterRole, labels }, rules: agentClusterRoleRules(names.leaderLease) },
      { parent: this },
    );

    const clusterRoleBinding = new k8s.rbac.v1.ClusterRoleBinding(
      `${name}-cluster-role-binding`,
      {
        metadata: { name: names.clusterRole, labels },
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: clusterRole.metadata.name },
        subjects: [{ kind: "ServiceAccount", name: serviceAccount.metadata.name, namespace }],
      },
      { parent: this },
    );

    const priority = priorityClassOf(args);
    const priorityClass = priority.create
      ? new k8s.scheduling.v1.PriorityClass(
          `${name}-priority-class`,
          {
            metadata: { name: priority.name, labels },
            value: priority.value,
            preemptionPolicy: "PreemptLowerPriority",
            globalDefault: false,
            description: "Datadog Agent pods: scheduled ahead of ordinary pods, preempting them on a full node, so every node keeps its Agent.",
          },
          { parent: this },
        )
      : undefined;

    const env = agentEnv(args);
    const socketDir: VolumeMount[] = args.apm.socketEnabled ? [{ name: "socket-dir", mountPath: APM_SOCKET_DIR, readOnly: false }] : [];
    const hostMount = (volume: string, mountPath: string): VolumeMount => ({ name: volume, mountPath, mountPropagation: "None", readOnly: true });
    const resources = (r: ResourceSettings) => ({
      requests: { cpu: r.cpuRequest, memory: r.memoryRequest },
      limits: { memory: r.memoryLimit, ...(r.cpuLimit !== undefined ? { cpu: r.cpuLimit } : {}) },
    });
    const cri = criSocketMount(args.criSocketPath);
    const runtimeSocketMount = hostMount("runtimesocketdir", cri.mountPath);
    const instanceIdMount: VolumeMount[] = args.useHostnameFromFile
      ? [{ name: "cloudinit-instance-id-file", mountPath: CLOUD_INIT_INSTANCE_ID_PATH, readOnly: true }]
      : [];
    const probe = (path: string) => ({
      httpGet: { path, port: AGENT_HEALTH_PORT, scheme: "HTTP" },
      initialDelaySeconds: 15,
      periodSeconds: 15,
      timeoutSeconds: 5,
      successThreshold: 1,
      failureThreshold: 6,
    });
    // As in the chart, agent and trace-agent run with a read-only root filesystem: config,
    // logs, /tmp and the run directory are emptyDirs, the config seeded by the init containers.
    const readOnlyRoot = { readOnlyRootFilesystem: true };

    const daemonSet = new k8s.apps.v1.DaemonSet(
      `${name}-daemonset`,
      {
        metadata: { name: names.daemonSet, namespace, labels },
        spec: {
          selector: { matchLabels: selectorLabels },
          updateStrategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: "10%" } },
          template: {
            metadata: {
              labels: {
                ...labels,
                // The Agent must not be mutated by Datadog's own admission controller.
                "admission.datadoghq.com/enabled": "false",
                "agent.datadoghq.com/component": "agent",
              },
              // A new API key changes the template and rolls the pods (env is read at start).
              annotations: secretChecksumAnnotations(names.secret, secretData, args.checksumKey),
            },
            spec: {
              serviceAccountName: names.serviceAccount,
              priorityClassName: priority.name,
              automountServiceAccountToken: true,
              // Root, as in the chart: a non-root Agent cannot create its sockets in the host
              // directory /var/run/datadog (datadog-agent#17713), and it reads host /proc.
              securityContext: { runAsUser: 0 },
              nodeSelector: { "kubernetes.io/os": "linux" },
              affinity: {
                nodeAffinity: {
                  requiredDuringSchedulingIgnoredDuringExecution: {
                    nodeSelectorTerms: [{ matchExpressions: [{ key: "eks.amazonaws.com/compute-type", operator: "NotIn", values: ["fargate"] }] }],
                  },
                },
              },
              // The fields a toleration has (unset ones are not sent).
              tolerations: args.tolerations.map((t) => ({ operator: t.operator, key: t.key, value: t.value, effect: t.effect })),
              initContainers: [
                {
                  name: "init-volume",
                  image: args.image,
                  imagePullPolicy: "IfNotPresent",
                  command: ["bash", "-c"],
                  args: [`cp -r ${CONFIG_DIR} /opt && mkdir -p /opt/datadog-agent/auth`],
                  resources: resources(args.agentResources),
                  volumeMounts: [{ name: "config", mountPath: "/opt/datadog-agent", readOnly: false }],
                },
                {
                  name: "init-config",
                  image: args.image,
                  imagePullPolicy: "IfNotPresent",
                  command: ["bash", "-c"],
                  args: ["for script in $(find /etc/cont-init.d/ -type f -name '*.sh' | sort) ; do bash $script ; done"],
                  env: env.init,
                  resources: resources(args.agentResources),
                  volumeMounts: [
                    { name: "config", mountPath: CONFIG_DIR, readOnly: false },
                    { name: "logdatadog", mountPath: "/var/log/datadog", readOnly: false },
                    hostMount("procdir", "/host/proc"),
                    runtimeSocketMount,
                    ...instanceIdMount,
                  ],
                },
              ],
              containers: [
                {
                  name: "agent",
                  image: args.image,
                  imagePullPolicy: "IfNotPresent",
                  command: ["agent", "run"],
                  env: env.agent,
                  ports: [{ name: "dogstatsdport", containerPort: DOGSTATSD_PORT, protocol: "UDP" }],
                  resources: resources(args.agentResources),
                  securityContext: readOnlyRoot,
                  livenessProbe: probe("/live"),
                  readinessProbe: probe("/ready"),
                  startupProbe: probe("/startup"),
                  volumeMounts: [
                    { name: "config", mountPath: CONFIG_DIR, readOnly: false },
                    { name: "auth-token", mountPath: AUTH_DIR, readOnly: false },
                    { name: "logdatadog", mountPath: "/var/log/datadog", readOnly: false },
                    { name: "tmpdir", mountPath: "/tmp", readOnly: false },
                    { name: "datadogrun", mountPath: "/opt/datadog-agent/run", readOnly: false },
                    ...socketDir,
                    runtimeSocketMount,
                    hostMount("procdir", "/host/proc"),
                    hostMount("cgroups", "/host/sys/fs/cgroup"),
                    ...instanceIdMount,
                    { name: "passwd", mountPath: "/etc/passwd", readOnly: true },
                  ],
                },
                {
                  name: "trace-agent",
                  image: args.image,
                  imagePullPolicy: "IfNotPresent",
                  command: ["trace-agent", `-config=${CONFIG_DIR}/datadog.yaml`],
                  env: env.traceAgent,
                  ports: [
                    {
                      name: "traceport",
                      containerPort: args.apm.port,
                      protocol: "TCP",
                      ...(args.apm.portEnabled ? { hostPort: args.apm.port } : {}),
                    },
                  ],
                  resources: resources(args.traceAgentResources),
                  securityContext: readOnlyRoot,
                  livenessProbe: { tcpSocket: { port: args.apm.port }, initialDelaySeconds: 15, periodSeconds: 15, timeoutSeconds: 5 },
                  volumeMounts: [
                    { name: "config", mountPath: CONFIG_DIR, readOnly: true },
                    { name: "auth-token", mountPath: AUTH_DIR, readOnly: true },
                    { name: "logdatadog", mountPath: "/var/log/datadog", readOnly: false },
                    { name: "tmpdir", mountPath: "/tmp", readOnly: false },
                    ...socketDir,
                    runtimeSocketMount,
                    hostMount("procdir", "/host/proc"),
                    hostMount("cgroups", "/host/sys/fs/cgroup"),
                    ...instanceIdMount,
                  ],
                },
              ],
              volumes: [
                { name: "config", emptyDir: {} },
                { name: "auth-token", emptyDir: {} },
                { name: "logdatadog", emptyDir: {} },
                { name: "tmpdir", emptyDir: {} },
                { name: "datadogrun", emptyDir: {} },
                ...(args.apm.socketEnabled ? [{ name: "socket-dir", hostPath: { path: APM_SOCKET_DIR, type: "DirectoryOrCreate" } }] : []),
                { name: "procdir", hostPath: { path: "/proc" } },
                { name: "cgroups", hostPath: { path: "/sys/fs/cgroup" } },
                { name: "runtimesocketdir", hostPath: { path: cri.hostDir } },
                ...(args.useHostnameFromFile
                  ? [{ name: "cloudinit-instance-id-file", hostPath: { path: CLOUD_INIT_INSTANCE_ID_PATH, type: "File" } }]
                  : []),
                { name: "passwd", hostPath: { path: "/etc/passwd" } },
              ],
            },
          },
        },
      },
      { parent: this, dependsOn: [secret, clusterRoleBinding, ...(priorityClass ? [priorityClass] : [])] },
    );

    this.namespace = namespace;
    this.daemonSetName = daemonSet.metadata.name;
    this.secretName = secret.metadata.name;
    this.priorityClassName = pulumi.output(priority.name);
    this.registerOutputs({ namespace: this.namespace, daemonSetName: this.daemonSetName, secretName: this.secretName, priorityClassName: this.priorityClassName });
  }
}
