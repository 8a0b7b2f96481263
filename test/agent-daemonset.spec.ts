/**
 * The Agent's objects written out in full: what a change to the component would change on
 * every node, field by field (env, volumes, mounts, probes, tolerations, priority class,
 * resources, securityContext, RBAC), and every problem the argument checks report, word
 * for word, at the edges of what they accept.
 */
import * as assert from "node:assert/strict";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import {
  DatadogAgent,
  type DatadogAgentArgs,
  agentEnv,
  agentObjectNames,
  datadogAgentArgsProblems,
  imageVersionLabel,
  parseQuantity,
  priorityClassOf,
  traceAgentBudget,
  validateDatadogAgentArgs,
} from "../components/datadog-agent";
import { type ProgramRun, runUnderMocks } from "../scripts/mock-engine";
import { recordRegistrations, type Registration } from "./support/service-registrations";

const DIGEST = "sha256:" + "0123456789abcdef".repeat(4);

/**
 * An install unlike the defaults in every setting that shows in the objects: its own
 * namespace and instance name, receiver port 9126, the Bottlerocket runtime socket, the
 * hostname from cloud-init, a CPU limit on the trace-agent.
 */
function args(overrides: Partial<DatadogAgentArgs> = {}): DatadogAgentArgs {
  return {
    namespace: "monitoring",
    clusterName: "payments-staging",
    site: "datadoghq.eu",
    env: "staging",
    globalTags: { cluster: "payments-staging", region: "eu-central-1" },
    image: "public.ecr.aws/datadog/agent:7.81.1",
    apiKey: "not-a-real-key",
    checksumKey: "not-a-real-checksum-key-0123456789abcdef",
    apm: { socketEnabled: true, portEnabled: true, port: 9126 },
    kubeletTlsVerify: true,
    tolerations: [{ key: "dedicated", operator: "Equal", value: "payments", effect: "NoSchedule" }, { operator: "Exists" }],
    agentResources: { cpuRequest: "150m", memoryRequest: "300Mi", memoryLimit: "600Mi" },
    traceAgentResources: { cpuRequest: "50m", memoryRequest: "100Mi", memoryLimit: "300Mi", cpuLimit: "500m" },
    samplers: { targetTracesPerSecond: 20, errorTracesPerSecond: 5, rareSamplerEnabled: false },
    criSocketPath: "/run/dockershim.sock",
    useHostnameFromFile: true,
    ...overrides,
  };
}

const problemsOf = (a: DatadogAgentArgs, name = "dd") => datadogAgentArgsProblems(name, a).map((p) => `${p.propertyPath}: ${p.reason}`);

// The env each container gets from args(), in the order rendered.
const SHARED_ENV = [
  { name: "DD_API_KEY", valueFrom: { secretKeyRef: { name: "datadog-agent-api-key", key: "api-key" } } },
  { name: "DD_SITE", value: "datadoghq.eu" },
  { name: "DD_CLUSTER_NAME", value: "payments-staging" },
  { name: "DD_ENV", value: "staging" },
  { name: "DD_TAGS", value: "cluster:payments-staging region:eu-central-1" },
  { name: "KUBERNETES", value: "yes" },
  { name: "DD_AUTH_TOKEN_FILE_PATH", value: "/etc/datadog-agent/auth/token" },
  { name: "DD_KUBERNETES_KUBELET_HOST", valueFrom: { fieldRef: { fieldPath: "status.hostIP" } } },
  { name: "DD_KUBELET_TLS_VERIFY", value: "true" },
  { name: "DD_CRI_SOCKET_PATH", value: "/host/run/dockershim.sock" },
  { name: "DD_AUTOCONFIG_INCLUDE_FEATURES", value: "containerd" },
  { name: "DD_HOSTNAME_FILE", value: "/var/lib/cloud/data/instance-id" },
];
const APM_ENV = [
  { name: "DD_APM_ENABLED", value: "true" },
  { name: "DD_APM_NON_LOCAL_TRAFFIC", value: "true" },
  { name: "DD_APM_RECEIVER_PORT", value: "9126" },
  { name: "DD_APM_RECEIVER_SOCKET", value: "/var/run/datadog/apm.socket" },
  { name: "DD_APM_TARGET_TPS", value: "20" },
  { name: "DD_APM_ERROR_TPS", value: "5" },
  { name: "DD_APM_ENABLE_RARE_SAMPLER", value: "false" },
  { name: "DD_APM_FEATURES", value: "error_rare_sample_tracer_drop" },
  { name: "DD_APM_OBFUSCATION_REDIS_ENABLED", value: "true" },
  { name: "DD_APM_OBFUSCATION_REDIS_REMOVE_ALL_ARGS", value: "true" },
  { name: "DD_APM_OBFUSCATION_CREDIT_CARDS_ENABLED", value: "true" },
  { name: "DD_APM_OBFUSCATION_CREDIT_CARDS_LUHN", value: "false" },
  { name: "DD_APM_OBFUSCATION_HTTP_REMOVE_QUERY_STRING", value: "true" },
  { name: "DD_APM_OBFUSCATION_HTTP_REMOVE_PATHS_WITH_DIGITS", value: "true" },
];
const AGENT_ENV = [
  ...SHARED_ENV,
  { name: "DD_LOG_LEVEL", value: "INFO" },
  { name: "DD_HEALTH_PORT", value: "5555" },
  { name: "DD_DOGSTATSD_PORT", value: "8125" },
  { name: "DD_DOGSTATSD_NON_LOCAL_TRAFFIC", value: "true" },
  { name: "DD_DOGSTATSD_SOCKET", value: "/var/run/datadog/dsd.socket" },
  { name: "DD_LEADER_ELECTION", value: "true" },
  { name: "DD_LEADER_ELECTION_DEFAULT_RESOURCE", value: "lease" },
  { name: "DD_LEADER_LEASE_NAME", value: "datadog-agent-leader-election" },
  { name: "DD_COLLECT_KUBERNETES_EVENTS", value: "false" },
  { name: "DD_KUBERNETES_USE_ENDPOINT_SLICES", value: "true" },
  ...APM_ENV,
];
const TRACE_AGENT_ENV = [
  ...SHARED_ENV,
  { name: "DD_LOG_LEVEL", value: "INFO" },
  ...APM_ENV,
  // Half the 300Mi limit; the 500m CPU limit is 50 % of a core.
  { name: "DD_APM_MAX_MEMORY", value: "157286400" },
  { name: "DD_APM_MAX_CPU_PERCENT", value: "50" },
  { name: "DD_DOGSTATSD_SOCKET", value: "/var/run/datadog/dsd.socket" },
];
const INIT_ENV = [...SHARED_ENV, { name: "DD_LEADER_ELECTION", value: "true" }, { name: "DD_LEADER_ELECTION_DEFAULT_RESOURCE", value: "lease" }];

const LABELS = {
  "app.kubernetes.io/name": "datadog-agent",
  "app.kubernetes.io/instance": "dd",
  "app.kubernetes.io/component": "agent",
  "app.kubernetes.io/part-of": "payments-apm",
  "app.kubernetes.io/managed-by": "pulumi",
  "app.kubernetes.io/version": "7.81.1",
};
const hostMount = (name: string, mountPath: string) => ({ name, mountPath, mountPropagation: "None", readOnly: true });
const probe = (path: string) => ({
  httpGet: { path, port: 5555, scheme: "HTTP" },
  initialDelaySeconds: 15,
  periodSeconds: 15,
  timeoutSeconds: 5,
  successThreshold: 1,
  failureThreshold: 6,
});

const childUrn = (type: string, name: string) => `urn:pulumi:test::payments-apm::payments-apm:datadog:DatadogAgent$${type}::${name}`;

describe("the Agent's objects in full", () => {
  describe("argument checks, word for word", () => {
    it("accepts the install above", () => {
      assert.deepEqual(problemsOf(args()), []);
      assert.doesNotThrow(() => validateDatadogAgentArgs("dd", args()));
    });

    it("reports each problem with its field and reason, and throws them together", () => {
      const bad = args({
        namespace: "Monitoring",
        clusterName: "Payments",
        site: " ",
        env: "\t",
        globalTags: { cluster: "payments staging", "re:gion": "eu", deployment: "" },
        image: "public.ecr.aws/datadog/agent:latest",
        apm: { socketEnabled: false, portEnabled: false, port: 0 },
        tolerations: [{ operator: "Exists", value: "x" }, { operator: "Equal", key: "" }],
        agentResources: { cpuRequest: "150 m", memoryRequest: "300Mi", memoryLimit: "600Mi" },
        traceAgentResources: { cpuRequest: "50m", memoryRequest: "32Mi", memoryLimit: "48Mi" },
        priorityClass: { create: true, name: "Agents", value: 0 },
        criSocketPath: "dockershim.sock",
        samplers: { targetTracesPerSecond: 0, errorTracesPerSecond: Number.NaN, rareSamplerEnabled: true },
      });
      const expected = [
        `name: must be a valid label value (it is the app.kubernetes.io/instance label): at most 63 letters, digits, '-', '_' or '.', got "datadog agent"`,
        `namespace: must be a DNS-1123 label, got "Monitoring"`,
        `clusterName: must be lowercase letters, digits, '.' or '-', at most 80 characters, got "Payments"`,
        "site: must not be empty",
        "env: must not be empty",
        `globalTags.cluster: must be a key and value without spaces (DD_TAGS is space-separated), got "cluster:payments staging"`,
        `globalTags.re:gion: must be a key and value without spaces (DD_TAGS is space-separated), got "re:gion:eu"`,
        `globalTags.deployment: must be a key and value without spaces (DD_TAGS is space-separated), got "deployment:"`,
        `image: must be pinned by tag or digest (not latest), got "public.ecr.aws/datadog/agent:latest"`,
        "apm: needs socketEnabled or portEnabled (or both): with neither, app pods cannot reach the trace intake",
        "apm.port: must be a whole number between 1 and 65535, got 0",
        "tolerations[0].value: must be empty when operator is Exists",
        "tolerations[1].key: is required when operator is Equal (only Exists may match every taint)",
        `agentResources.cpuRequest: must be a Kubernetes quantity such as "100m" or "256Mi", got "150 m"`,
        `traceAgentResources.memoryLimit: must be at least 64Mi: half of it is the trace-agent's memory budget, got "48Mi"`,
        `priorityClass.name: must be a DNS-1123 label, got "Agents"`,
        "priorityClass.value: must be a whole number between 1 and 1000000000, got 0",
        `criSocketPath: must be an absolute path to a socket below a directory, got "dockershim.sock"`,
        "samplers.targetTracesPerSecond: must be a number greater than 0, got 0",
        "samplers.errorTracesPerSecond: must be a number greater than 0, got NaN",
      ];
      assert.deepEqual(problemsOf(bad, "datadog agent"), expected);
      assert.throws(
        () => validateDatadogAgentArgs("datadog agent", bad),
        (e: unknown) =>
          pulumi.InputPropertiesError.isInstance(e) &&
          e.message === 'Invalid DatadogAgent "datadog agent" arguments' &&
          JSON.stringify(e.errors.map((p) => `${p.propertyPath}: ${p.reason}`)) === JSON.stringify(expected),
      );
    });

    it("throws a single problem as the engine prints one field", () => {
      assert.throws(
        () => validateDatadogAgentArgs("dd", args({ site: "" })),
        (e: unknown) => pulumi.InputPropertyError.isInstance(e) && e.propertyPath === "site" && e.reason === "must not be empty",
      );
    });

    it("takes the instance name as a label value: up to 63 characters, starting and ending with a letter or digit", () => {
      for (const name of ["d", "Datadog-Agent_2.prod", "a".repeat(63)]) assert.deepEqual(problemsOf(args(), name), [], name);
      for (const name of ["a".repeat(64), "-dd", "dd-", "_dd", "dd.", "", "dd agent"]) {
        assert.deepEqual(problemsOf(args(), name).map((p) => p.split(":")[0]), ["name"], name);
      }
    });

    it("takes the namespace and a priority class name as DNS labels of at most 63 characters", () => {
      for (const value of ["m", "ab", "datadog-agents-2", "a".repeat(63)]) {
        assert.deepEqual(problemsOf(args({ namespace: value })), [], value);
        assert.deepEqual(problemsOf(args({ priorityClass: { create: true, name: value } })), [], value);
      }
      for (const value of ["a".repeat(64), "-monitoring", "monitoring-", "moni_toring", "monitoring.x", ""]) {
        assert.deepEqual(problemsOf(args({ namespace: value })), [`namespace: must be a DNS-1123 label, got ${JSON.stringify(value)}`], value);
        assert.deepEqual(problemsOf(args({ priorityClass: { create: true, name: value } })), [`priorityClass.name: must be a DNS-1123 label, got ${JSON.stringify(value)}`], value);
      }
    });

    it("takes a cluster name of up to 80 lowercase letters, digits, '.' and '-', starting and ending with a letter or digit", () => {
      for (const value of ["p", "payments.prod-1", "a".repeat(80)]) assert.deepEqual(problemsOf(args({ clusterName: value })), [], value);
      for (const value of ["a".repeat(81), "-payments", "payments-", "payments.", "payments_prod", "Payments", ""]) {
        assert.deepEqual(problemsOf(args({ clusterName: value })).map((p) => p.split(":")[0]), ["clusterName"], value);
      }
    });

    it("takes global tags whose key has no space or ':' and whose value has no space", () => {
      assert.deepEqual(problemsOf(args({ globalTags: { team: "payments:core", "k8s.cluster": "eu-1" } })), []);
      for (const [key, value] of [["", "x"], ["te am", "x"], ["team", "pay ments"], ["team", " payments"], ["team", "payments "], ["team", "pay\tments"]]) {
        assert.deepEqual(problemsOf(args({ globalTags: { [key]: value } })).map((p) => p.split(": ")[0]), [`globalTags.${key}`], `${key}=${value}`);
      }
    });

    it("takes an image pinned by a tag of up to 128 characters or by a sha256 digest of 64 hex digits, and nothing else", () => {
      for (const image of [
        "agent:7.81.1",
        "public.ecr.aws/datadog/agent:7.81.1-jmx",
        `public.ecr.aws/datadog/agent@${DIGEST}`,
        `public.ecr.aws/datadog/agent:7.81.1@${DIGEST}`,
        "registry.internal:5000/datadog/agent:7_81",
        `agent:${"7".repeat(128)}`,
      ]) {
        assert.deepEqual(problemsOf(args({ image })), [], image);
      }
      for (const image of [
        `agent:${"7".repeat(129)}`,
        "agent:.7",
        "agent:-7",
        "agent:7.81.1!",
        "public.ecr.aws/datadog/:7.81.1",
        "public.ecr.aws/datadog/my agent:7.81.1",
        " agent:7.81.1",
        "agent",
        "registry.internal:5000/datadog/agent",
        "agent:latest",
        "public.ecr.aws/datadog/agent:latest-jmx",
        "public.ecr.aws/datadog/agent:latest-full",
        `agent@${DIGEST.slice(0, -1)}`,
        `agent@${DIGEST}0`,
        `agent@${DIGEST.toUpperCase().replace("SHA256", "sha256")}`,
        `my agent@${DIGEST}`,
        `@${DIGEST}`,
        `agent@sha512:${"0".repeat(64)}`,
      ]) {
        assert.deepEqual(problemsOf(args({ image })), [`image: must be pinned by tag or digest (not latest), got ${JSON.stringify(image)}`], image);
      }
    });

    it("takes a receiver port from 1 to 65535 other than the Agent's health and DogStatsD ports", () => {
      const portProblems = (port: number) => problemsOf(args({ apm: { socketEnabled: true, portEnabled: true, port } }));
      for (const port of [1, 8126, 65535]) assert.deepEqual(portProblems(port), [], String(port));
      for (const port of [0, -1, 65536, 8126.5]) assert.deepEqual(portProblems(port), [`apm.port: must be a whole number between 1 and 65535, got ${port}`], String(port));
      assert.deepEqual(portProblems(5555), ["apm.port: must not be 5555: the Agent already uses it"]);
      assert.deepEqual(portProblems(8125), ["apm.port: must not be 8125: the Agent already uses it"]);
      for (const apm of [
        { socketEnabled: true, portEnabled: false, port: 8126 },
        { socketEnabled: false, portEnabled: true, port: 8126 },
      ]) {
        assert.deepEqual(problemsOf(args({ apm })), [], JSON.stringify(apm));
      }
    });

    it("takes tolerations as Kubernetes does: Exists with no value, Equal with a key", () => {
      assert.deepEqual(problemsOf(args({ tolerations: [{ operator: "Exists", value: "" }, { operator: "Exists", key: "dedicated" }, { operator: "Equal", key: "dedicated" }] })), []);
      assert.deepEqual(problemsOf(args({ tolerations: [{ operator: "Equal", value: "payments" }] })), [
        "tolerations[0].key: is required when operator is Equal (only Exists may match every taint)",
      ]);
    });

    it("takes resources as Kubernetes quantities, whole or decimal, with or without a unit", () => {
      const ok = { cpuRequest: "0.125", memoryRequest: "1.25Gi", memoryLimit: "2Gi", cpuLimit: "2" };
      assert.deepEqual(problemsOf(args({ agentResources: ok, traceAgentResources: ok })), []);
      // A limit left undefined, as a parsed config may leave it, is no limit rather than a bad one.
      assert.deepEqual(problemsOf(args({ agentResources: { ...ok, cpuLimit: undefined } })), []);
      for (const q of ["x100m", "100mx", "1e3", "Mi", ".5", "5.", "-1", "1,5"]) {
        assert.deepEqual(problemsOf(args({ agentResources: { ...ok, memoryRequest: q } })), [
          `agentResources.memoryRequest: must be a Kubernetes quantity such as "100m" or "256Mi", got ${JSON.stringify(q)}`,
        ], q);
      }
    });

    it("asks the trace-agent for a memory limit of at least 64Mi, with or without a CPU limit, and reads no bad quantity", () => {
      const trace = (memoryLimit: string, cpuLimit?: string) => args({ traceAgentResources: { cpuRequest: "50m", memoryRequest: "32Mi", memoryLimit, ...(cpuLimit ? { cpuLimit } : {}) } });
      const tooSmall = (limit: string) => `traceAgentResources.memoryLimit: must be at least 64Mi: half of it is the trace-agent's memory budget, got "${limit}"`;
      assert.deepEqual(problemsOf(trace("64Mi")), []);
      assert.deepEqual(problemsOf(trace("64Mi", "1")), []);
      assert.deepEqual(problemsOf(trace("63Mi")), [tooSmall("63Mi")]);
      assert.deepEqual(problemsOf(trace("48Mi", "1")), [tooSmall("48Mi")]);
      // A quantity it cannot read is reported as such, not as a budget.
      assert.deepEqual(problemsOf(trace("lots")), [`traceAgentResources.memoryLimit: must be a Kubernetes quantity such as "100m" or "256Mi", got "lots"`]);
      assert.deepEqual(problemsOf(trace("48Mi", "one")), [`traceAgentResources.cpuLimit: must be a Kubernetes quantity such as "100m" or "256Mi", got "one"`]);
    });

    it("takes a priority value from 1 to 1000000000, and an existing class only by name", () => {
      for (const value of [1, 1_000_000_000]) assert.deepEqual(problemsOf(args({ priorityClass: { create: true, value } })), [], String(value));
      for (const value of [0, 1_000_000_001, 1.5]) {
        assert.deepEqual(problemsOf(args({ priorityClass: { create: true, value } })), [`priorityClass.value: must be a whole number between 1 and 1000000000, got ${value}`], String(value));
      }
      assert.deepEqual(problemsOf(args({ priorityClass: { create: false } })), ["priorityClass.name: is required when create is false: name the existing priority class"]);
      assert.deepEqual(problemsOf(args({ priorityClass: { create: false, name: "system-node-critical" } })), []);
    });

    it("takes a runtime socket by absolute path, below a directory, without '..'", () => {
      for (const criSocketPath of ["/run/dockershim.sock", "/var/run/containerd/containerd.sock", "/opt/cri.sock"]) assert.deepEqual(problemsOf(args({ criSocketPath })), [], criSocketPath);
      for (const criSocketPath of ["run/dockershim.sock", "/var/run/../cri.sock", "/cri.sock"]) {
        assert.deepEqual(problemsOf(args({ criSocketPath })), [`criSocketPath: must be an absolute path to a socket below a directory, got ${JSON.stringify(criSocketPath)}`], criSocketPath);
      }
    });

    it("takes sampler rates that are finite numbers above 0", () => {
      assert.deepEqual(problemsOf(args({ samplers: { targetTracesPerSecond: 0.5, errorTracesPerSecond: 0.1, rareSamplerEnabled: true } })), []);
      for (const rate of [0, -1, Number.POSITIVE_INFINITY]) {
        assert.deepEqual(problemsOf(args({ samplers: { targetTracesPerSecond: rate, errorTracesPerSecond: rate, rareSamplerEnabled: true } })), [
          `samplers.targetTracesPerSecond: must be a number greater than 0, got ${rate}`,
          `samplers.errorTracesPerSecond: must be a number greater than 0, got ${rate}`,
        ], String(rate));
      }
    });
  });

  describe("pure parts", () => {
    it("reads every Kubernetes quantity unit", () => {
      const cases: [string, number][] = [
        ["3", 3],
        ["1.5", 1.5],
        ["0.125", 0.125],
        ["1.25Gi", 1.25 * 2 ** 30],
        ["250m", 0.25],
        ["2k", 2000],
        ["2M", 2_000_000],
        ["2G", 2_000_000_000],
        ["2T", 2_000_000_000_000],
        ["2Ki", 2048],
        ["2Mi", 2_097_152],
        ["2Gi", 2_147_483_648],
        ["2Ti", 2_199_023_255_552],
      ];
      for (const [q, n] of cases) assert.equal(parseQuantity(q), n, q);
      for (const q of ["x2Mi", "2Mix", "2 Mi", "Mi", "2.Mi"]) assert.throws(() => parseQuantity(q), { message: `not a Kubernetes quantity: ${JSON.stringify(q)}` }, q);
    });

    it("rounds the trace-agent's memory budget down to a whole byte and its CPU to a whole percent", () => {
      assert.deepEqual(traceAgentBudget({ cpuRequest: "1", memoryRequest: "1", memoryLimit: "301", cpuLimit: "333m" }), { maxMemoryBytes: 150, maxCpuPercent: 33 });
      assert.deepEqual(traceAgentBudget({ cpuRequest: "1", memoryRequest: "1", memoryLimit: "301", cpuLimit: "336m" }), { maxMemoryBytes: 150, maxCpuPercent: 34 });
    });

    it("names the objects after the namespace where they are cluster-scoped", () => {
      assert.deepEqual(agentObjectNames("monitoring"), {
        daemonSet: "datadog-agent",
        serviceAccount: "datadog-agent",
        secret: "datadog-agent-api-key",
        clusterRole: "monitoring-datadog-agent",
        leaderLease: "datadog-agent-leader-election",
      });
    });

    it("creates the priority class <namespace>-datadog-agent with the chart's value unless told otherwise", () => {
      assert.deepEqual(priorityClassOf({ namespace: "monitoring" }), { create: true, name: "monitoring-datadog-agent", value: 1_000_000_000 });
      assert.deepEqual(priorityClassOf({ namespace: "monitoring", priorityClass: { create: false, name: "system-node-critical" } }), {
        create: false,
        name: "system-node-critical",
        value: 1_000_000_000,
      });
      assert.deepEqual(priorityClassOf({ namespace: "monitoring", priorityClass: { create: true, value: 5 } }), { create: true, name: "monitoring-datadog-agent", value: 5 });
    });

    it("labels the version with the image's tag, and with nothing when the image is pinned by digest or the tag is no label value", () => {
      assert.equal(imageVersionLabel("public.ecr.aws/datadog/agent:7.81.1"), "7.81.1");
      assert.equal(imageVersionLabel("registry.internal:5000/datadog/agent:7.81.1-jmx"), "7.81.1-jmx");
      assert.equal(imageVersionLabel("agent:7"), "7");
      assert.equal(imageVersionLabel(`public.ecr.aws/datadog/agent@${DIGEST}`), undefined);
      assert.equal(imageVersionLabel(`public.ecr.aws/datadog/agent:7.81.1@${DIGEST}`), undefined);
      assert.equal(imageVersionLabel(`agent:${"7".repeat(64)}`), undefined);
      assert.equal(imageVersionLabel("agent:7.81.1_"), undefined);
    });

    it("gives each container its env in the chart's order: shared, then the core Agent's or the trace-agent's own", () => {
      assert.deepEqual(agentEnv(args()), { agent: AGENT_ENV, traceAgent: TRACE_AGENT_ENV, init: INIT_ENV });
    });

    it("leaves the socket settings out without the socket, and the hostname file out by default", () => {
      const env = agentEnv(args({ apm: { socketEnabled: false, portEnabled: true, port: 9126 }, useHostnameFromFile: undefined }));
      const names = (list: readonly { name: unknown }[]) => list.map((e) => e.name);
      const without = (list: readonly { name: unknown }[], ...drop: string[]) => names(list).filter((n) => !drop.includes(n as string));
      assert.deepEqual(names(env.agent), without(AGENT_ENV, "DD_HOSTNAME_FILE", "DD_DOGSTATSD_SOCKET", "DD_APM_RECEIVER_SOCKET"));
      assert.deepEqual(names(env.traceAgent), without(TRACE_AGENT_ENV, "DD_HOSTNAME_FILE", "DD_DOGSTATSD_SOCKET", "DD_APM_RECEIVER_SOCKET"));
      assert.deepEqual(names(env.init), without(INIT_ENV, "DD_HOSTNAME_FILE"));
      assert.equal(env.agent.find((e) => e.name === "DD_CRI_SOCKET_PATH")?.value, "/host/run/dockershim.sock");
    });
  });

  describe("rendered under Pulumi mocks", () => {
    let full: ProgramRun;
    let minimal: ProgramRun;
    const fullDependencies: Record<string, string[]> = {};
    const minimalDependencies: Record<string, string[]> = {};
    before(async () => {
      // Notes, by logical name, the URNs each resource waits for (its dependsOn and the
      // resources whose outputs its inputs use), as the engine receives them.
      const render = async (a: DatadogAgentArgs, dependencies: Record<string, string[]>) => {
        let registrations: Record<string, Registration> = {};
        const run = await runUnderMocks("test", { config: {}, secretKeys: [] }, () => {
          registrations = recordRegistrations();
          const provider = new k8s.Provider("eks-k8s", { kubeconfig: "{}" });
          const agent = new DatadogAgent("dd", a, { provider });
          return { namespace: agent.namespace, daemonSetName: agent.daemonSetName, secretName: agent.secretName, priorityClassName: agent.priorityClassName };
        });
        for (const [name, r] of Object.entries(registrations)) dependencies[name] = [...r.dependencies].sort();
        return run;
      };
      full = await render(args(), fullDependencies);
      // Port only, pinned by digest, an existing priority class, default runtime socket and hostname.
      minimal = await render(
        args({
          image: `public.ecr.aws/datadog/agent@${DIGEST}`,
          apm: { socketEnabled: false, portEnabled: true, port: 9126 },
          priorityClass: { create: false, name: "system-node-critical" },
          criSocketPath: undefined,
          useHostnameFromFile: undefined,
          traceAgentResources: { cpuRequest: "50m", memoryRequest: "100Mi", memoryLimit: "300Mi" },
        }),
        minimalDependencies,
      );
    });
    const inputs = (run: ProgramRun, type: string) => {
      const found = run.resources.filter((r) => r.type === type);
      assert.equal(found.length, 1, type);
      return found[0].inputs;
    };

    it("exposes the namespace, the DaemonSet, the Secret and the priority class by name", () => {
      assert.deepEqual(full.outputs, { namespace: "monitoring", daemonSetName: "datadog-agent", secretName: "datadog-agent-api-key", priorityClassName: "monitoring-datadog-agent" });
      assert.equal(minimal.outputs.priorityClassName, "system-node-critical");
      assert.deepEqual(full.componentOutputs["payments-apm:datadog:DatadogAgent::dd"], ["daemonSetName", "namespace", "priorityClassName", "secretName"]);
    });

    it("registers the component and its objects under logical names derived from the instance name", () => {
      assert.deepEqual(
        full.resources.filter((r) => r.type !== "pulumi:pulumi:Stack" && r.type !== "pulumi:providers:kubernetes").map((r) => `${r.type} ${r.name}`).sort(),
        [
          "kubernetes:apps/v1:DaemonSet dd-daemonset",
          "kubernetes:core/v1:Namespace dd-namespace",
          "kubernetes:core/v1:Secret dd-api-key",
          "kubernetes:core/v1:ServiceAccount dd-service-account",
          "kubernetes:rbac.authorization.k8s.io/v1:ClusterRole dd-cluster-role",
          "kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding dd-cluster-role-binding",
          "kubernetes:scheduling.k8s.io/v1:PriorityClass dd-priority-class",
          "payments-apm:datadog:DatadogAgent dd",
        ],
      );
    });

    it("creates the namespace for Pod Security privileged, the Secret, the ServiceAccount and the RBAC, all labelled", () => {
      assert.deepEqual(inputs(full, "kubernetes:core/v1:Namespace"), {
        apiVersion: "v1",
        kind: "Namespace",
        metadata: { name: "monitoring", labels: { ...LABELS, "pod-security.kubernetes.io/enforce": "privileged" } },
      });
      // The key is passed as plain text here: the Secret marks it secret all the same.
      assert.deepEqual(full.resources.find((r) => r.type === "kubernetes:core/v1:Secret")!.secretPaths, ["stringData"]);
      assert.deepEqual(inputs(full, "kubernetes:core/v1:Secret"), {
        apiVersion: "v1",
        kind: "Secret",
        metadata: { name: "datadog-agent-api-key", namespace: "monitoring", labels: LABELS },
        type: "Opaque",
        stringData: { "api-key": "not-a-real-key" },
      });
      assert.deepEqual(inputs(full, "kubernetes:core/v1:ServiceAccount"), {
        apiVersion: "v1",
        kind: "ServiceAccount",
        metadata: { name: "datadog-agent", namespace: "monitoring", labels: LABELS },
        automountServiceAccountToken: true,
      });
      assert.deepEqual(inputs(full, "kubernetes:rbac.authorization.k8s.io/v1:ClusterRole").metadata, { name: "monitoring-datadog-agent", labels: LABELS });
      assert.deepEqual(inputs(full, "kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding"), {
        apiVersion: "rbac.authorization.k8s.io/v1",
        kind: "ClusterRoleBinding",
        metadata: { name: "monitoring-datadog-agent", labels: LABELS },
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "monitoring-datadog-agent" },
        subjects: [{ kind: "ServiceAccount", name: "datadog-agent", namespace: "monitoring" }],
      });
    });

    it("creates the priority class that lets an Agent pod preempt ordinary pods, and none when an existing one is named", () => {
      assert.deepEqual(inputs(full, "kubernetes:scheduling.k8s.io/v1:PriorityClass"), {
        apiVersion: "scheduling.k8s.io/v1",
        kind: "PriorityClass",
        metadata: { name: "monitoring-datadog-agent", labels: LABELS },
        value: 1_000_000_000,
        preemptionPolicy: "PreemptLowerPriority",
        globalDefault: false,
        description: "Datadog Agent pods: scheduled ahead of ordinary pods, preempting them on a full node, so every node keeps its Agent.",
      });
      assert.deepEqual(minimal.resources.filter((r) => r.type === "kubernetes:scheduling.k8s.io/v1:PriorityClass"), []);
      assert.equal(inputs(minimal, "kubernetes:apps/v1:DaemonSet").spec.template.spec.priorityClassName, "system-node-critical");
    });

    it("creates the DaemonSet after the API-key Secret, the RBAC binding and the priority class its pods need", () => {
      assert.deepEqual(fullDependencies["dd-daemonset"], [
        childUrn("kubernetes:core/v1:Namespace", "dd-namespace"),
        childUrn("kubernetes:core/v1:Secret", "dd-api-key"),
        childUrn("kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding", "dd-cluster-role-binding"),
        childUrn("kubernetes:scheduling.k8s.io/v1:PriorityClass", "dd-priority-class"),
      ]);
      assert.deepEqual(minimalDependencies["dd-daemonset"], [
        childUrn("kubernetes:core/v1:Namespace", "dd-namespace"),
        childUrn("kubernetes:core/v1:Secret", "dd-api-key"),
        childUrn("kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding", "dd-cluster-role-binding"),
      ]);
    });

    it("renders the whole DaemonSet: rollout, pod labels, scheduling, init containers, both containers and their volumes", () => {
      const ds = inputs(full, "kubernetes:apps/v1:DaemonSet");
      const checksum = ds.spec.template.metadata.annotations["checksum/datadog-agent-api-key"];
      assert.match(checksum, /^[0-9a-f]{64}$/);
      const agentResources = { requests: { cpu: "150m", memory: "300Mi" }, limits: { memory: "600Mi" } };
      assert.deepEqual(ds, {
        apiVersion: "apps/v1",
        kind: "DaemonSet",
        metadata: { name: "datadog-agent", namespace: "monitoring", labels: LABELS },
        spec: {
          selector: { matchLabels: { "app.kubernetes.io/name": "datadog-agent", "app.kubernetes.io/instance": "dd" } },
          updateStrategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: "10%" } },
          template: {
            metadata: {
              labels: { ...LABELS, "admission.datadoghq.com/enabled": "false", "agent.datadoghq.com/component": "agent" },
              annotations: { "checksum/datadog-agent-api-key": checksum },
            },
            spec: {
              serviceAccountName: "datadog-agent",
              priorityClassName: "monitoring-datadog-agent",
              automountServiceAccountToken: true,
              securityContext: { runAsUser: 0 },
              nodeSelector: { "kubernetes.io/os": "linux" },
              affinity: {
                nodeAffinity: {
                  requiredDuringSchedulingIgnoredDuringExecution: {
                    nodeSelectorTerms: [{ matchExpressions: [{ key: "eks.amazonaws.com/compute-type", operator: "NotIn", values: ["fargate"] }] }],
                  },
                },
              },
              tolerations: [{ key: "dedicated", operator: "Equal", value: "payments", effect: "NoSchedule" }, { operator: "Exists" }],
              initContainers: [
                {
                  name: "init-volume",
                  image: "public.ecr.aws/datadog/agent:7.81.1",
                  imagePullPolicy: "IfNotPresent",
                  command: ["bash", "-c"],
                  args: ["cp -r /etc/datadog-agent /opt && mkdir -p /opt/datadog-agent/auth"],
                  resources: agentResources,
                  volumeMounts: [{ name: "config", mountPath: "/opt/datadog-agent", readOnly: false }],
                },
                {
                  name: "init-config",
                  image: "public.ecr.aws/datadog/agent:7.81.1",
                  imagePullPolicy: "IfNotPresent",
                  command: ["bash", "-c"],
                  args: ["for script in $(find /etc/cont-init.d/ -type f -name '*.sh' | sort) ; do bash $script ; done"],
                  env: INIT_ENV,
                  resources: agentResources,
                  volumeMounts: [
                    { name: "config", mountPath: "/etc/datadog-agent", readOnly: false },
                    { name: "logdatadog", mountPath: "/var/log/datadog", readOnly: false },
                    hostMount("procdir", "/host/proc"),
                    hostMount("runtimesocketdir", "/host/run"),
                    { name: "cloudinit-instance-id-file", mountPath: "/var/lib/cloud/data/instance-id", readOnly: true },
                  ],
                },
              ],
              containers: [
                {
                  name: "agent",
                  image: "public.ecr.aws/datadog/agent:7.81.1",
                  imagePullPolicy: "IfNotPresent",
                  command: ["agent", "run"],
                  env: AGENT_ENV,
                  ports: [{ name: "dogstatsdport", containerPort: 8125, protocol: "UDP" }],
                  resources: agentResources,
                  securityContext: { readOnlyRootFilesystem: true },
                  livenessProbe: probe("/live"),
                  readinessProbe: probe("/ready"),
                  startupProbe: probe("/startup"),
                  volumeMounts: [
                    { name: "config", mountPath: "/etc/datadog-agent", readOnly: false },
                    { name: "auth-token", mountPath: "/etc/datadog-agent/auth", readOnly: false },
                    { name: "logdatadog", mountPath: "/var/log/datadog", readOnly: false },
                    { name: "tmpdir", mountPath: "/tmp", readOnly: false },
                    { name: "datadogrun", mountPath: "/opt/datadog-agent/run", readOnly: false },
                    { name: "socket-dir", mountPath: "/var/run/datadog", readOnly: false },
                    hostMount("runtimesocketdir", "/host/run"),
                    hostMount("procdir", "/host/proc"),
                    hostMount("cgroups", "/host/sys/fs/cgroup"),
                    { name: "cloudinit-instance-id-file", mountPath: "/var/lib/cloud/data/instance-id", readOnly: true },
                    { name: "passwd", mountPath: "/etc/passwd", readOnly: true },
                  ],
                },
                {
                  name: "trace-agent",
                  image: "public.ecr.aws/datadog/agent:7.81.1",
                  imagePullPolicy: "IfNotPresent",
                  command: ["trace-agent", "-config=/etc/datadog-agent/datadog.yaml"],
                  env: TRACE_AGENT_ENV,
                  ports: [{ name: "traceport", containerPort: 9126, protocol: "TCP", hostPort: 9126 }],
                  resources: { requests: { cpu: "50m", memory: "100Mi" }, limits: { memory: "300Mi", cpu: "500m" } },
                  securityContext: { readOnlyRootFilesystem: true },
                  livenessProbe: { tcpSocket: { port: 9126 }, initialDelaySeconds: 15, periodSeconds: 15, timeoutSeconds: 5 },
                  volumeMounts: [
                    { name: "config", mountPath: "/etc/datadog-agent", readOnly: true },
                    { name: "auth-token", mountPath: "/etc/datadog-agent/auth", readOnly: true },
                    { name: "logdatadog", mountPath: "/var/log/datadog", readOnly: false },
                    { name: "tmpdir", mountPath: "/tmp", readOnly: false },
                    { name: "socket-dir", mountPath: "/var/run/datadog", readOnly: false },
                    hostMount("runtimesocketdir", "/host/run"),
                    hostMount("procdir", "/host/proc"),
                    hostMount("cgroups", "/host/sys/fs/cgroup"),
                    { name: "cloudinit-instance-id-file", mountPath: "/var/lib/cloud/data/instance-id", readOnly: true },
                  ],
                },
              ],
              volumes: [
                { name: "config", emptyDir: {} },
                { name: "auth-token", emptyDir: {} },
                { name: "logdatadog", emptyDir: {} },
                { name: "tmpdir", emptyDir: {} },
                { name: "datadogrun", emptyDir: {} },
                { name: "socket-dir", hostPath: { path: "/var/run/datadog", type: "DirectoryOrCreate" } },
                { name: "procdir", hostPath: { path: "/proc" } },
                { name: "cgroups", hostPath: { path: "/sys/fs/cgroup" } },
                { name: "runtimesocketdir", hostPath: { path: "/run" } },
                { name: "cloudinit-instance-id-file", hostPath: { path: "/var/lib/cloud/data/instance-id", type: "File" } },
                { name: "passwd", hostPath: { path: "/etc/passwd" } },
              ],
            },
          },
        },
      });
    });

    it("without the socket or the hostname file: neither volume, no mount of them, no version label for a digest", () => {
      const ds = inputs(minimal, "kubernetes:apps/v1:DaemonSet");
      const { "app.kubernetes.io/version": _version, ...unversioned } = LABELS;
      assert.deepEqual(ds.metadata.labels, unversioned);
      const pod = ds.spec.template.spec;
      const mounts = (c: any) => c.volumeMounts.map((m: any) => `${m.name} ${m.mountPath}`);
      assert.deepEqual(pod.volumes.map((v: any) => v.name), ["config", "auth-token", "logdatadog", "tmpdir", "datadogrun", "procdir", "cgroups", "runtimesocketdir", "passwd"]);
      assert.deepEqual(pod.volumes.find((v: any) => v.name === "runtimesocketdir"), { name: "runtimesocketdir", hostPath: { path: "/var/run" } });
      assert.deepEqual(mounts(pod.initContainers[1]), ["config /etc/datadog-agent", "logdatadog /var/log/datadog", "procdir /host/proc", "runtimesocketdir /host/var/run"]);
      assert.deepEqual(mounts(pod.containers[0]), [
        "config /etc/datadog-agent",
        "auth-token /etc/datadog-agent/auth",
        "logdatadog /var/log/datadog",
        "tmpdir /tmp",
        "datadogrun /opt/datadog-agent/run",
        "runtimesocketdir /host/var/run",
        "procdir /host/proc",
        "cgroups /host/sys/fs/cgroup",
        "passwd /etc/passwd",
      ]);
      assert.deepEqual(mounts(pod.containers[1]), [
        "config /etc/datadog-agent",
        "auth-token /etc/datadog-agent/auth",
        "logdatadog /var/log/datadog",
        "tmpdir /tmp",
        "runtimesocketdir /host/var/run",
        "procdir /host/proc",
        "cgroups /host/sys/fs/cgroup",
      ]);
      assert.deepEqual(pod.containers[1].ports, [{ name: "traceport", containerPort: 9126, protocol: "TCP", hostPort: 9126 }]);
      assert.deepEqual(pod.containers[1].resources, { requests: { cpu: "50m", memory: "100Mi" }, limits: { memory: "300Mi" } });
      assert.equal(pod.containers[0].image, `public.ecr.aws/datadog/agent@${DIGEST}`);
    });
  });
});
