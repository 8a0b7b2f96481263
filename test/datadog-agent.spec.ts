import * as assert from "node:assert/strict";
import { createHash } from "node:crypto";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import {
  AGENT_HEALTH_PORT,
  APM_SOCKET_DIR,
  APM_SOCKET_PATH,
  CRI_SOCKET_PATH,
  DatadogAgent,
  type DatadogAgentArgs,
  DSD_SOCKET_PATH,
  agentEnv,
  datadogAgentArgsProblems,
  validateDatadogAgentArgs,
} from "../components/datadog-agent";
import { type ProgramRun, type RecordedResource, runUnderMocks } from "../scripts/mock-engine";
import { assertValidKubernetesObjects } from "../scripts/k8s-schema";
import { pathsContaining } from "./support/paths-containing";

const API_KEY_SENTINEL = "dd-api-key-SENTINEL-4f1c9a";

/** Args as index.ts builds them from the prod defaults; the API key is filled in per test. */
function baseArgs(apm: DatadogAgentArgs["apm"], apiKey: pulumi.Input<string> = API_KEY_SENTINEL): DatadogAgentArgs {
  return {
    namespace: "datadog",
    clusterName: "payments-prod",
    site: "datadoghq.eu",
    env: "prod",
    globalTags: { cluster: "payments-prod", region: "eu-west-1", deployment: "blue" },
    image: "gcr.io/datadoghq/agent:7.81.1",
    apiKey,
    apm,
    kubeletTlsVerify: false,
    tolerations: [{ operator: "Exists", effect: "NoSchedule" }, { key: "dedicated", operator: "Equal", value: "payments", effect: "NoExecute" }],
    agentResources: { cpuRequest: "200m", memoryRequest: "256Mi", memoryLimit: "512Mi" },
    traceAgentResources: { cpuRequest: "100m", memoryRequest: "200Mi", memoryLimit: "400Mi" },
    samplers: { targetTracesPerSecond: 12, errorTracesPerSecond: 7.5, rareSamplerEnabled: true },
  };
}

const MODES = {
  "socket only": { socketEnabled: true, portEnabled: false, port: 8126 },
  "port only": { socketEnabled: false, portEnabled: true, port: 8126 },
  "socket and port": { socketEnabled: true, portEnabled: true, port: 8126 },
} as const;
type Mode = keyof typeof MODES;
const modes = Object.keys(MODES) as Mode[];

interface Rendered {
  readonly run: ProgramRun;
  /** `urn::id` of the provider passed in opts, as children record it. */
  readonly providerRef: string;
}

/** Instantiates the component alone under the mocks, with the secret key from stack config. */
async function render(apm: DatadogAgentArgs["apm"]): Promise<Rendered> {
  const run = await runUnderMocks("test", { config: { "datadog:apiKey": API_KEY_SENTINEL }, secretKeys: ["datadog:apiKey"] }, () => {
    const provider = new k8s.Provider("eks-k8s", { kubeconfig: "{}" });
    const apiKey = new pulumi.Config("datadog").requireSecret("apiKey");
    const agent = new DatadogAgent("datadog-agent", baseArgs(apm, apiKey), { provider });
    return {
      providerRef: pulumi.interpolate`${provider.urn}::${provider.id}`,
      namespace: agent.namespace,
      daemonSetName: agent.daemonSetName,
      secretName: agent.secretName,
    };
  });
  return { run, providerRef: String(run.outputs.providerRef) };
}

const kubernetesObjects = (r: Rendered) => r.run.resources.filter((x) => x.type.startsWith("kubernetes:"));
function only(r: Rendered, type: string): RecordedResource {
  const found = r.run.resources.filter((x) => x.type === type);
  assert.equal(found.length, 1, `expected one ${type}, got ${found.length}`);
  return found[0];
}
const daemonSet = (r: Rendered) => only(r, "kubernetes:apps/v1:DaemonSet").inputs;
const podSpec = (r: Rendered) => daemonSet(r).spec.template.spec;
function container(r: Rendered, name: string): any {
  const c = podSpec(r).containers.find((x: any) => x.name === name);
  assert.ok(c, `no container ${name}`);
  return c;
}
/** name → value, or the valueFrom object for references. */
function envMap(env: readonly any[]): Record<string, any> {
  const names = env.map((e) => e.name);
  assert.equal(new Set(names).size, names.length, `duplicate env names: ${names}`);
  return Object.fromEntries(env.map((e) => [e.name, e.valueFrom ?? e.value]));
}
const mountsOf = (c: any) => Object.fromEntries((c.volumeMounts ?? []).map((m: any) => [m.mountPath, m]));
const volumesOf = (r: Rendered) => Object.fromEntries(podSpec(r).volumes.map((v: any) => [v.name, v]));

describe("DatadogAgent", () => {
  describe("agentEnv", () => {
    const args = baseArgs(MODES["socket and port"]);

    it("references the API key through the Secret and never carries its value", () => {
      const env = agentEnv(args);
      for (const list of [env.agent, env.traceAgent, env.init]) {
        assert.deepEqual(envMap(list).DD_API_KEY, { secretKeyRef: { name: "datadog-agent-api-key", key: "api-key" } });
      }
      assert.deepEqual(pathsContaining(env, API_KEY_SENTINEL), []);
    });

    it("sets site, cluster name, env and the global tags space-separated in every container", () => {
      const env = agentEnv(args);
      for (const list of [env.agent, env.traceAgent, env.init]) {
        const e = envMap(list);
        assert.equal(e.DD_SITE, "datadoghq.eu");
        assert.equal(e.DD_CLUSTER_NAME, "payments-prod");
        assert.equal(e.DD_ENV, "prod");
        assert.equal(e.DD_TAGS, "cluster:payments-prod region:eu-west-1 deployment:blue");
        assert.deepEqual(e.DD_KUBERNETES_KUBELET_HOST, { fieldRef: { fieldPath: "status.hostIP" } });
        assert.equal(e.DD_KUBELET_TLS_VERIFY, "false");
        assert.equal(e.DD_CRI_SOCKET_PATH, "/host/var/run/containerd/containerd.sock");
        assert.equal(e.DD_AUTH_TOKEN_FILE_PATH, "/etc/datadog-agent/auth/token");
      }
      assert.equal(envMap(agentEnv({ ...args, kubeletTlsVerify: true }).agent).DD_KUBELET_TLS_VERIFY, "true");
    });

    it("passes the samplers to the trace-agent and keeps error and rare sampling for rule-sampled services", () => {
      const e = envMap(agentEnv(args).traceAgent);
      assert.equal(e.DD_APM_ENABLED, "true");
      assert.equal(e.DD_APM_TARGET_TPS, "12");
      assert.equal(e.DD_APM_ERROR_TPS, "7.5");
      assert.equal(e.DD_APM_ENABLE_RARE_SAMPLER, "true");
      assert.equal(e.DD_APM_FEATURES, "error_rare_sample_tracer_drop");
      const off = envMap(agentEnv({ ...args, samplers: { ...args.samplers, rareSamplerEnabled: false } }).traceAgent);
      assert.equal(off.DD_APM_ENABLE_RARE_SAMPLER, "false");
    });

    it("strips Redis command arguments from spans before they leave the node", () => {
      const e = envMap(agentEnv(args).traceAgent);
      assert.equal(e.DD_APM_OBFUSCATION_REDIS_ENABLED, "true");
      assert.equal(e.DD_APM_OBFUSCATION_REDIS_REMOVE_ALL_ARGS, "true");
    });

    it("opens the receiver socket only when socketEnabled, and the TCP receiver to the pod IP always", () => {
      for (const mode of modes) {
        const apm = MODES[mode];
        const env = agentEnv({ ...args, apm });
        for (const e of [envMap(env.agent), envMap(env.traceAgent)]) {
          assert.equal(e.DD_APM_RECEIVER_PORT, "8126", mode);
          // The kubelet's TCP probe and the hostPort both reach the pod IP, not localhost.
          assert.equal(e.DD_APM_NON_LOCAL_TRAFFIC, "true", mode);
          assert.equal(e.DD_APM_RECEIVER_SOCKET, apm.socketEnabled ? APM_SOCKET_PATH : undefined, mode);
          assert.equal(e.DD_DOGSTATSD_SOCKET, apm.socketEnabled ? DSD_SOCKET_PATH : undefined, mode);
        }
      }
      assert.equal(envMap(agentEnv({ ...args, apm: { ...args.apm, port: 9126 } }).traceAgent).DD_APM_RECEIVER_PORT, "9126");
    });

    it("keeps the health port, DogStatsD and leader election in the core agent only", () => {
      const env = agentEnv(args);
      const agent = envMap(env.agent);
      assert.equal(agent.DD_HEALTH_PORT, "5555");
      assert.equal(agent.DD_DOGSTATSD_NON_LOCAL_TRAFFIC, "true");
      assert.equal(agent.DD_LEADER_ELECTION, "true");
      assert.equal(agent.DD_LEADER_ELECTION_DEFAULT_RESOURCE, "lease");
      assert.equal(agent.DD_LEADER_LEASE_NAME, "datadog-agent-leader-election");
      assert.equal(agent.DD_LOG_LEVEL, "INFO");
      const trace = envMap(env.traceAgent);
      // Two listeners on 5555 in one pod network namespace would collide.
      for (const name of ["DD_HEALTH_PORT", "DD_LEADER_ELECTION", "DD_DOGSTATSD_NON_LOCAL_TRAFFIC"]) assert.equal(trace[name], undefined, name);
    });
  });

  describe("argument validation", () => {
    it("rejects APM with neither socket nor port, naming the apm field", () => {
      const args = baseArgs({ socketEnabled: false, portEnabled: false, port: 8126 });
      assert.deepEqual(
        datadogAgentArgsProblems("datadog-agent", args).map((p) => p.propertyPath),
        ["apm"],
      );
      assert.throws(
        () => validateDatadogAgentArgs("datadog-agent", args),
        (e: unknown) => pulumi.InputPropertyError.isInstance(e) && e.propertyPath === "apm" && /socketEnabled or portEnabled/.test(e.reason),
      );
    });

    it("accepts an image pinned by tag or sha256 digest and refuses any other digest", () => {
      const digest = "sha256:" + "0123456789abcdef".repeat(4);
      const problems = (image: string) => datadogAgentArgsProblems("datadog-agent", { ...baseArgs(MODES["socket only"]), image }).map((p) => p.propertyPath);
      for (const image of ["gcr.io/datadoghq/agent:7.81.1", `gcr.io/datadoghq/agent@${digest}`, `gcr.io/datadoghq/agent:7.81.1@${digest}`, "registry.internal:5000/datadog/agent:7.81.1"]) {
        assert.deepEqual(problems(image), [], image);
      }
      for (const image of [
        "gcr.io/datadoghq/agent@sha256:abc",
        "gcr.io/datadoghq/agent@sha256:" + "g".repeat(64),
        "gcr.io/datadoghq/agent@md5:" + "a".repeat(64),
        "registry.internal:5000/datadog/agent",
        "gcr.io/datadoghq/agent",
        "gcr.io/datadoghq/agent:latest",
        "",
      ]) {
        assert.deepEqual(problems(image), ["image"], image);
      }
    });

    it("accepts every supported APM mode", () => {
      for (const mode of modes) assert.deepEqual(datadogAgentArgsProblems("datadog-agent", baseArgs(MODES[mode])), [], mode);
    });

    it("reports every bad field at once, each by its path", () => {
      const args: DatadogAgentArgs = {
        ...baseArgs({ socketEnabled: true, portEnabled: false, port: 5555 }),
        namespace: "Datadog",
        image: "gcr.io/datadoghq/agent:latest",
        globalTags: { cluster: "payments prod" },
        tolerations: [{ operator: "Exists", value: "x" }, { operator: "Equal", value: "y" }],
        agentResources: { cpuRequest: "200 m", memoryRequest: "256Mi", memoryLimit: "512Mi" },
        samplers: { targetTracesPerSecond: 0, errorTracesPerSecond: Number.NaN, rareSamplerEnabled: false },
      };
      assert.deepEqual(
        datadogAgentArgsProblems("datadog agent", args).map((p) => p.propertyPath),
        [
          "name",
          "namespace",
          "globalTags.cluster",
          "image",
          "apm.port",
          "tolerations[0].value",
          "tolerations[1].key",
          "agentResources.cpuRequest",
          "samplers.targetTracesPerSecond",
          "samplers.errorTracesPerSecond",
        ],
      );
      assert.throws(() => validateDatadogAgentArgs("datadog agent", args), (e: unknown) => pulumi.InputPropertiesError.isInstance(e) && e.errors.length === 10);
    });
  });

  describe("rendered under Pulumi mocks", () => {
    const rendered = {} as Record<Mode, Rendered>;
    before(async () => {
      for (const mode of modes) rendered[mode] = await render(MODES[mode]);
    });

    it("renders objects that pass the Kubernetes schemas in every APM mode", () => {
      for (const mode of modes) assert.equal(assertValidKubernetesObjects(rendered[mode].run.resources), 7, mode);
    });

    it("creates every Kubernetes object with the provider passed in opts", () => {
      for (const mode of modes) {
        const r = rendered[mode];
        assert.match(r.providerRef, /pulumi:providers:kubernetes::eks-k8s::/);
        for (const o of kubernetesObjects(r)) assert.equal(o.provider, r.providerRef, `${mode}: ${o.type} ${o.name}`);
      }
    });

    it("puts the API key only in the Secret's stringData, marked secret", () => {
      for (const mode of modes) {
        const r = rendered[mode];
        const leaks = r.run.resources.flatMap((x) => pathsContaining(x.inputs, API_KEY_SENTINEL).map((p) => `${x.type} ${x.name}: ${p}`));
        assert.deepEqual(leaks, ["kubernetes:core/v1:Secret datadog-agent-api-key: stringData.api-key"], mode);
        const secret = only(r, "kubernetes:core/v1:Secret");
        assert.ok(
          secret.secretPaths.some((p) => p === "stringData" || p === "stringData.api-key"),
          `${mode}: stringData not secret (${secret.secretPaths})`,
        );
        assert.equal(secret.inputs.type, "Opaque");
        assert.deepEqual(Object.keys(secret.inputs.stringData), ["api-key"]);
        assert.deepEqual(pathsContaining(r.run.outputs, API_KEY_SENTINEL), [], mode);
      }
    });

    it("annotates the pod template with the SHA-256 of the Secret's data, marked secret, so a new key rolls the pods", () => {
      const expected = createHash("sha256").update(`{"api-key":"${API_KEY_SENTINEL}"}`, "utf8").digest("hex");
      const annotation = "spec.template.metadata.annotations.checksum/datadog-agent-api-key";
      for (const mode of modes) {
        const ds = only(rendered[mode], "kubernetes:apps/v1:DaemonSet");
        assert.deepEqual(ds.inputs.spec.template.metadata.annotations, { "checksum/datadog-agent-api-key": expected }, mode);
        assert.ok(ds.secretPaths.some((p) => annotation === p || annotation.startsWith(`${p}.`)), `${mode}: checksum not secret (${ds.secretPaths})`);
        assert.equal(only(rendered[mode], "kubernetes:core/v1:Secret").inputs.metadata.annotations, undefined, `${mode}: the Secret itself carries no checksum`);
      }
    });

    it("marks the checksum secret even when the API key is passed as plain text", async () => {
      const run = await runUnderMocks("test", { config: {}, secretKeys: [] }, () => {
        const provider = new k8s.Provider("eks-k8s", { kubeconfig: "{}" });
        new DatadogAgent("datadog-agent", baseArgs(MODES["socket only"], API_KEY_SENTINEL), { provider });
      });
      const ds = run.resources.find((x) => x.type === "kubernetes:apps/v1:DaemonSet")!;
      const annotation = "spec.template.metadata.annotations.checksum/datadog-agent-api-key";
      assert.match(ds.inputs.spec.template.metadata.annotations["checksum/datadog-agent-api-key"], /^[0-9a-f]{64}$/);
      assert.ok(ds.secretPaths.some((p) => annotation === p || annotation.startsWith(`${p}.`)), `checksum not secret (${ds.secretPaths})`);
    });

    it("names every object explicitly, in the datadog namespace it creates", () => {
      const r = rendered["socket only"];
      const names = Object.fromEntries(kubernetesObjects(r).map((o) => [o.type.split(":").pop(), [o.inputs.metadata.name, o.inputs.metadata.namespace]]));
      assert.deepEqual(names, {
        Namespace: ["datadog", undefined],
        Secret: ["datadog-agent-api-key", "datadog"],
        ServiceAccount: ["datadog-agent", "datadog"],
        ClusterRole: ["datadog-datadog-agent", undefined],
        ClusterRoleBinding: ["datadog-datadog-agent", undefined],
        PriorityClass: ["datadog-datadog-agent", undefined],
        DaemonSet: ["datadog-agent", "datadog"],
      });
      assert.deepEqual(kubernetesObjects(r).map((o) => o.name).sort(), [
        "datadog-agent-api-key",
        "datadog-agent-cluster-role",
        "datadog-agent-cluster-role-binding",
        "datadog-agent-daemonset",
        "datadog-agent-namespace",
        "datadog-agent-priority-class",
        "datadog-agent-service-account",
      ]);
      assert.equal(only(r, "kubernetes:core/v1:Namespace").inputs.metadata.labels["pod-security.kubernetes.io/enforce"], "privileged");
      assert.deepEqual(
        { namespace: r.run.outputs.namespace, daemonSetName: r.run.outputs.daemonSetName, secretName: r.run.outputs.secretName },
        { namespace: "datadog", daemonSetName: "datadog-agent", secretName: "datadog-agent-api-key" },
      );
    });

    it("grants the node agent exactly the read, kubelet and own-Lease access it needs, and no Secrets", () => {
      const r = rendered["socket and port"];
      const rules = only(r, "kubernetes:rbac.authorization.k8s.io/v1:ClusterRole").inputs.rules;
      assert.deepEqual(rules, [
        { apiGroups: [""], resources: ["services", "events", "endpoints", "pods", "nodes", "namespaces", "componentstatuses"], verbs: ["get", "list", "watch"] },
        { apiGroups: ["discovery.k8s.io"], resources: ["endpointslices"], verbs: ["get", "list", "watch"] },
        { apiGroups: [""], resources: ["nodes/metrics", "nodes/spec", "nodes/proxy", "nodes/stats"], verbs: ["get"] },
        { apiGroups: ["coordination.k8s.io"], resources: ["leases"], resourceNames: ["datadog-agent-leader-election"], verbs: ["get", "update"] },
        { apiGroups: ["coordination.k8s.io"], resources: ["leases"], verbs: ["create"] },
        { nonResourceURLs: ["/version", "/healthz", "/metrics"], verbs: ["get"] },
      ]);
      const everything = JSON.stringify(rules);
      assert.doesNotMatch(everything, /"\*"/);
      assert.doesNotMatch(everything, /secrets/);
      assert.equal(envMap(container(r, "agent").env).DD_LEADER_LEASE_NAME, "datadog-agent-leader-election", "the Lease the role names");

      const binding = only(r, "kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding").inputs;
      assert.deepEqual(binding.roleRef, { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "datadog-datadog-agent" });
      assert.deepEqual(binding.subjects, [{ kind: "ServiceAccount", name: "datadog-agent", namespace: "datadog" }]);
      assert.equal(only(r, "kubernetes:core/v1:ServiceAccount").inputs.automountServiceAccountToken, true);
    });

    it("runs agent and trace-agent from the pinned image with the chart's commands, labels and rollout", () => {
      const r = rendered["socket only"];
      const ds = daemonSet(r);
      assert.deepEqual(ds.spec.updateStrategy, { type: "RollingUpdate", rollingUpdate: { maxUnavailable: "10%" } });
      const podLabels = ds.spec.template.metadata.labels;
      assert.equal(podLabels["admission.datadoghq.com/enabled"], "false");
      assert.equal(podLabels["app.kubernetes.io/name"], "datadog-agent");
      assert.equal(podLabels["app.kubernetes.io/instance"], "datadog-agent");
      assert.equal(podLabels["app.kubernetes.io/version"], "7.81.1");
      for (const [k, v] of Object.entries(ds.spec.selector.matchLabels)) assert.equal(podLabels[k], v, `selector label ${k}`);
      assert.equal(ds.spec.selector.matchLabels["app.kubernetes.io/version"], undefined, "an immutable selector must not carry the version");

      const pod = podSpec(r);
      assert.equal(pod.serviceAccountName, "datadog-agent");
      assert.equal(pod.automountServiceAccountToken, true);
      assert.deepEqual(pod.securityContext, { runAsUser: 0 });
      assert.deepEqual(pod.containers.map((c: any) => c.name), ["agent", "trace-agent"]);
      assert.deepEqual(pod.initContainers.map((c: any) => c.name), ["init-volume", "init-config"]);
      for (const c of [...pod.containers, ...pod.initContainers]) assert.equal(c.image, "gcr.io/datadoghq/agent:7.81.1", c.name);
      for (const c of pod.containers) assert.deepEqual(c.securityContext, { readOnlyRootFilesystem: true }, c.name);
      assert.deepEqual(container(r, "agent").command, ["agent", "run"]);
      assert.deepEqual(container(r, "trace-agent").command, ["trace-agent", "-config=/etc/datadog-agent/datadog.yaml"]);
      assert.equal(pod.priorityClassName, "datadog-datadog-agent");
      assert.equal(pod.hostNetwork, undefined);
      assert.equal(pod.hostPID, undefined);
    });

    it("shares the auth token through an emptyDir the trace-agent only reads", () => {
      const r = rendered["port only"];
      assert.deepEqual(volumesOf(r)["auth-token"], { name: "auth-token", emptyDir: {} });
      for (const [name, readOnly] of [["agent", false], ["trace-agent", true]] as const) {
        const c = container(r, name);
        assert.deepEqual(mountsOf(c)["/etc/datadog-agent/auth"], { name: "auth-token", mountPath: "/etc/datadog-agent/auth", readOnly }, name);
        assert.equal(envMap(c.env).DD_AUTH_TOKEN_FILE_PATH, "/etc/datadog-agent/auth/token", name);
      }
    });

    it("opens hostPort on the trace-agent's traceport only when portEnabled", () => {
      for (const mode of modes) {
        const r = rendered[mode];
        const tracePorts = container(r, "trace-agent").ports;
        const expected = { name: "traceport", containerPort: 8126, protocol: "TCP", ...(MODES[mode].portEnabled ? { hostPort: 8126 } : {}) };
        assert.deepEqual(tracePorts, [expected], mode);
        assert.deepEqual(container(r, "agent").ports, [{ name: "dogstatsdport", containerPort: 8125, protocol: "UDP" }], mode);
        const hostPorts = podSpec(r).containers.flatMap((c: any) => (c.ports ?? []).filter((p: any) => p.hostPort !== undefined));
        assert.equal(hostPorts.length, MODES[mode].portEnabled ? 1 : 0, mode);
      }
    });

    it("mounts the host socket directory into both containers only when socketEnabled", () => {
      for (const mode of modes) {
        const r = rendered[mode];
        const volume = volumesOf(r)["socket-dir"];
        if (MODES[mode].socketEnabled) {
          assert.deepEqual(volume, { name: "socket-dir", hostPath: { path: APM_SOCKET_DIR, type: "DirectoryOrCreate" } }, mode);
          for (const name of ["agent", "trace-agent"]) {
            assert.deepEqual(mountsOf(container(r, name))[APM_SOCKET_DIR], { name: "socket-dir", mountPath: "/var/run/datadog", readOnly: false }, `${mode} ${name}`);
          }
          assert.equal(envMap(container(r, "trace-agent").env).DD_APM_RECEIVER_SOCKET, "/var/run/datadog/apm.socket", mode);
        } else {
          assert.equal(volume, undefined, mode);
          for (const c of podSpec(r).containers) assert.equal(mountsOf(c)[APM_SOCKET_DIR], undefined, `${mode} ${c.name}`);
          assert.equal(envMap(container(r, "trace-agent").env).DD_APM_RECEIVER_SOCKET, undefined, mode);
        }
      }
    });

    it("mounts /proc, the cgroup tree, host /var/run and /etc/passwd read-only, and no docker socket", () => {
      const r = rendered["socket and port"];
      const volumes = volumesOf(r);
      assert.deepEqual(volumes.procdir.hostPath, { path: "/proc" });
      assert.deepEqual(volumes.cgroups.hostPath, { path: "/sys/fs/cgroup" });
      assert.deepEqual(volumes.runtimesocketdir.hostPath, { path: "/var/run" });
      assert.deepEqual(volumes.passwd.hostPath, { path: "/etc/passwd" });
      const hostPathVolumes = Object.values(volumes).filter((v: any) => v.hostPath).map((v: any) => v.hostPath.path).sort();
      assert.deepEqual(hostPathVolumes, ["/etc/passwd", "/proc", "/sys/fs/cgroup", "/var/run", "/var/run/datadog"]);

      const agentMounts = mountsOf(container(r, "agent"));
      for (const [path, volume] of [["/host/proc", "procdir"], ["/host/sys/fs/cgroup", "cgroups"], ["/host/var/run", "runtimesocketdir"], ["/etc/passwd", "passwd"]]) {
        assert.equal(agentMounts[path]?.name, volume, path);
        assert.equal(agentMounts[path].readOnly, true, path);
      }
      // Every container that sees host /var/run sees it read-only, and the CRI socket is under it.
      for (const c of [...podSpec(r).containers, ...podSpec(r).initContainers]) {
        const m = mountsOf(c)["/host/var/run"];
        if (m) assert.equal(m.readOnly, true, c.name);
      }
      assert.ok(CRI_SOCKET_PATH.startsWith("/host/var/run/"));
      assert.deepEqual(pathsContaining(daemonSet(r), "docker.sock"), []);
    });

    it("probes the agent's health port and the trace-agent's receiver as the chart does", () => {
      const r = rendered["socket only"];
      const agent = container(r, "agent");
      for (const [probe, path] of [["livenessProbe", "/live"], ["readinessProbe", "/ready"], ["startupProbe", "/startup"]]) {
        assert.deepEqual(agent[probe].httpGet, { path, port: AGENT_HEALTH_PORT, scheme: "HTTP" }, probe);
        assert.equal(agent[probe].periodSeconds, 15, probe);
        assert.equal(agent[probe].failureThreshold, 6, probe);
      }
      const trace = container(r, "trace-agent");
      assert.deepEqual(trace.livenessProbe.tcpSocket, { port: 8126 });
      assert.equal(envMap(trace.env).DD_APM_NON_LOCAL_TRAFFIC, "true", "the TCP probe reaches the pod IP");
    });

    it("sets requests and a memory limit per container from the args", () => {
      const r = rendered["socket only"];
      assert.deepEqual(container(r, "agent").resources, { requests: { cpu: "200m", memory: "256Mi" }, limits: { memory: "512Mi" } });
      assert.deepEqual(container(r, "trace-agent").resources, { requests: { cpu: "100m", memory: "200Mi" }, limits: { memory: "400Mi" } });
    });

    it("passes the tolerations through and keeps pods off Fargate nodes", () => {
      const pod = podSpec(rendered["socket only"]);
      assert.deepEqual(pod.tolerations, [
        { operator: "Exists", effect: "NoSchedule" },
        { operator: "Equal", key: "dedicated", value: "payments", effect: "NoExecute" },
      ]);
      assert.deepEqual(pod.nodeSelector, { "kubernetes.io/os": "linux" });
      assert.deepEqual(pod.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms, [
        { matchExpressions: [{ key: "eks.amazonaws.com/compute-type", operator: "NotIn", values: ["fargate"] }] },
      ]);
    });

    it("renders each container's env: shared settings, the core Agent's own, APM in both", () => {
      const r = rendered["socket and port"];
      const shared = {
        DD_API_KEY: { secretKeyRef: { name: "datadog-agent-api-key", key: "api-key" } },
        DD_SITE: "datadoghq.eu",
        DD_CLUSTER_NAME: "payments-prod",
        DD_ENV: "prod",
        DD_TAGS: "cluster:payments-prod region:eu-west-1 deployment:blue",
        KUBERNETES: "yes",
        DD_AUTH_TOKEN_FILE_PATH: "/etc/datadog-agent/auth/token",
        DD_KUBERNETES_KUBELET_HOST: { fieldRef: { fieldPath: "status.hostIP" } },
        DD_KUBELET_TLS_VERIFY: "false",
        DD_CRI_SOCKET_PATH: "/host/var/run/containerd/containerd.sock",
        DD_AUTOCONFIG_INCLUDE_FEATURES: "containerd",
      };
      const apm = {
        DD_APM_ENABLED: "true",
        DD_APM_NON_LOCAL_TRAFFIC: "true",
        DD_APM_RECEIVER_PORT: "8126",
        DD_APM_RECEIVER_SOCKET: "/var/run/datadog/apm.socket",
        DD_APM_TARGET_TPS: "12",
        DD_APM_ERROR_TPS: "7.5",
        DD_APM_ENABLE_RARE_SAMPLER: "true",
        DD_APM_FEATURES: "error_rare_sample_tracer_drop",
        DD_APM_OBFUSCATION_REDIS_ENABLED: "true",
        DD_APM_OBFUSCATION_REDIS_REMOVE_ALL_ARGS: "true",
      };
      assert.deepEqual(envMap(container(r, "agent").env), {
        ...shared,
        DD_LOG_LEVEL: "INFO",
        DD_HEALTH_PORT: "5555",
        DD_DOGSTATSD_PORT: "8125",
        DD_DOGSTATSD_NON_LOCAL_TRAFFIC: "true",
        DD_DOGSTATSD_SOCKET: "/var/run/datadog/dsd.socket",
        DD_LEADER_ELECTION: "true",
        DD_LEADER_ELECTION_DEFAULT_RESOURCE: "lease",
        DD_LEADER_LEASE_NAME: "datadog-agent-leader-election",
        DD_COLLECT_KUBERNETES_EVENTS: "false",
        DD_KUBERNETES_USE_ENDPOINT_SLICES: "true",
        ...apm,
      });
      assert.deepEqual(envMap(container(r, "trace-agent").env), {
        ...shared,
        DD_LOG_LEVEL: "INFO",
        ...apm,
        // Half the 400Mi memory limit; no CPU limit in these args, so no CPU limiter.
        DD_APM_MAX_MEMORY: "209715200",
        DD_APM_MAX_CPU_PERCENT: "0",
        DD_DOGSTATSD_SOCKET: "/var/run/datadog/dsd.socket",
      });
      assert.deepEqual(envMap(podSpec(r).initContainers[1].env), { ...shared, DD_LEADER_ELECTION: "true", DD_LEADER_ELECTION_DEFAULT_RESOURCE: "lease" });
    });

    it("fails before registering anything when APM has neither socket nor port", async () => {
      let caught: unknown;
      const run = await runUnderMocks("test", { config: { "datadog:apiKey": API_KEY_SENTINEL }, secretKeys: ["datadog:apiKey"] }, () => {
        const provider = new k8s.Provider("eks-k8s", { kubeconfig: "{}" });
        try {
          new DatadogAgent("datadog-agent", baseArgs({ socketEnabled: false, portEnabled: false, port: 8126 }), { provider });
        } catch (e) {
          caught = e;
        }
      });
      assert.ok(pulumi.InputPropertyError.isInstance(caught), String(caught));
      assert.equal(caught.propertyPath, "apm");
      assert.deepEqual(
        run.resources.filter((x) => x.type === "payments-apm:datadog:DatadogAgent" || x.type.startsWith("kubernetes:")),
        [],
      );
    });
  });
});
