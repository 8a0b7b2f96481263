/**
 * The Agent on real EKS nodes: a priority class so it schedules on a full node, the image
 * from public.ecr.aws, the trace-agent's budget from its limits, the container runtime
 * socket per node OS, and the hostname from cloud-init where IMDS is out of reach.
 */
import * as assert from "node:assert/strict";
import * as k8s from "@pulumi/kubernetes";
import {
  DatadogAgent,
  type DatadogAgentArgs,
  agentEnv,
  criSocketMount,
  datadogAgentArgsProblems,
  parseQuantity,
  traceAgentBudget,
} from "../components/datadog-agent";
import { parseStackSettings } from "../components/config";
import { assertValidKubernetesObjects } from "../scripts/k8s-schema";
import { type ProgramRun, runUnderMocks } from "../scripts/mock-engine";
import { rawSettings } from "./support/stack-settings";

/** The Agent's args as index.ts builds them from the prod stack. */
function prodArgs(overrides: Partial<DatadogAgentArgs> = {}): DatadogAgentArgs {
  const s = parseStackSettings(rawSettings("prod"));
  return {
    namespace: s.datadog.namespace,
    clusterName: s.cluster.name,
    site: s.datadog.site,
    env: s.environment,
    globalTags: { cluster: s.cluster.name, region: s.cluster.region, deployment: s.deployment },
    image: s.datadog.agentImage,
    apiKey: "not-a-real-key",
    apm: s.datadog.apm,
    kubeletTlsVerify: s.datadog.kubeletTlsVerify,
    tolerations: s.datadog.tolerations,
    agentResources: s.datadog.agentResources,
    traceAgentResources: s.datadog.traceAgentResources,
    samplers: s.sampling.agent,
    priorityClass: s.datadog.priorityClass,
    criSocketPath: s.datadog.criSocketPath,
    useHostnameFromFile: s.datadog.useHostnameFromFile,
    ...overrides,
  };
}

function render(args: DatadogAgentArgs): Promise<ProgramRun> {
  return runUnderMocks("test", { config: {}, secretKeys: [] }, () => {
    const provider = new k8s.Provider("eks-k8s", { kubeconfig: "{}" });
    new DatadogAgent("datadog-agent", args, { provider });
  });
}

const ofType = (run: ProgramRun, type: string) => run.resources.filter((r) => r.type === type).map((r) => r.inputs);
const podSpec = (run: ProgramRun) => ofType(run, "kubernetes:apps/v1:DaemonSet")[0].spec.template.spec;
const allContainers = (run: ProgramRun): any[] => [...podSpec(run).containers, ...podSpec(run).initContainers];
const byName = (run: ProgramRun, name: string) => allContainers(run).find((c) => c.name === name);
const envOf = (c: any): Record<string, unknown> => Object.fromEntries((c.env ?? []).map((e: any) => [e.name, e.value ?? e.valueFrom]));
const volumes = (run: ProgramRun): Record<string, any> => Object.fromEntries(podSpec(run).volumes.map((v: any) => [v.name, v]));

describe("the Agent on EKS nodes", () => {
  describe("priority class", () => {
    it("creates one like the chart's priorityClassCreate and schedules the Agent pods with it", async () => {
      const run = await render(prodArgs());
      assert.deepEqual(
        ofType(run, "kubernetes:scheduling.k8s.io/v1:PriorityClass").map((p) => [p.metadata.name, p.value, p.preemptionPolicy, p.globalDefault]),
        [["datadog-datadog-agent", 1_000_000_000, "PreemptLowerPriority", false]],
      );
      assert.equal(podSpec(run).priorityClassName, "datadog-datadog-agent");
      assertValidKubernetesObjects(run.resources);
    });

    it("creates the configured name and value", async () => {
      const run = await render(prodArgs({ priorityClass: { create: true, name: "agents-critical", value: 900_000 } }));
      assert.deepEqual(
        ofType(run, "kubernetes:scheduling.k8s.io/v1:PriorityClass").map((p) => [p.metadata.name, p.value]),
        [["agents-critical", 900_000]],
      );
      assert.equal(podSpec(run).priorityClassName, "agents-critical");
    });

    it("uses an existing one by name and creates none", async () => {
      const run = await render(prodArgs({ priorityClass: { create: false, name: "system-node-critical" } }));
      assert.deepEqual(ofType(run, "kubernetes:scheduling.k8s.io/v1:PriorityClass"), []);
      assert.equal(podSpec(run).priorityClassName, "system-node-critical");
    });

    it("rejects a name that is not a DNS label, and create: false without a name, by field", () => {
      const paths = (args: DatadogAgentArgs) => datadogAgentArgsProblems("datadog-agent", args).map((p) => p.propertyPath);
      assert.deepEqual(paths(prodArgs({ priorityClass: { create: true, name: "Datadog_Agent" } })), ["priorityClass.name"]);
      assert.deepEqual(paths(prodArgs({ priorityClass: { create: false } })), ["priorityClass.name"]);
      assert.deepEqual(paths(prodArgs({ priorityClass: { create: true, value: 2_000_000_000 } })), ["priorityClass.value"]);
    });
  });

  it("pulls the prod stack's Agent from public.ecr.aws, pinned, in every container", async () => {
    const run = await render(prodArgs());
    for (const c of allContainers(run)) assert.equal(c.image, "public.ecr.aws/datadog/agent:7.81.1", c.name);
  });

  describe("trace-agent budget", () => {
    it("reads Kubernetes quantities", () => {
      assert.equal(parseQuantity("400Mi"), 400 * 2 ** 20);
      assert.equal(parseQuantity("1Gi"), 2 ** 30);
      assert.equal(parseQuantity("500M"), 500e6);
      assert.equal(parseQuantity("500m"), 0.5);
      assert.equal(parseQuantity("2"), 2);
      assert.throws(() => parseQuantity("lots"), /not a Kubernetes quantity/);
    });

    it("is half the memory limit (shedding there, the watchdog's exit at 1.5x still under the limit) and the CPU limit in % of a core", () => {
      assert.deepEqual(traceAgentBudget({ cpuRequest: "100m", memoryRequest: "200Mi", memoryLimit: "400Mi", cpuLimit: "1" }), {
        maxMemoryBytes: 200 * 2 ** 20,
        maxCpuPercent: 100,
      });
      assert.deepEqual(traceAgentBudget({ cpuRequest: "100m", memoryRequest: "200Mi", memoryLimit: "1Gi", cpuLimit: "250m" }), {
        maxMemoryBytes: 2 ** 29,
        maxCpuPercent: 25,
      });
      const noCpuLimit = traceAgentBudget({ cpuRequest: "100m", memoryRequest: "200Mi", memoryLimit: "400Mi" });
      assert.equal(noCpuLimit.maxCpuPercent, 0, "no CPU limit: the Agent's own CPU limiter is off");
      const { maxMemoryBytes } = traceAgentBudget({ cpuRequest: "1", memoryRequest: "1Mi", memoryLimit: "300Mi" });
      assert.ok(maxMemoryBytes * 1.5 < 300 * 2 ** 20, "the watchdog exits before the kernel's OOM kill");
    });

    it("renders the prod limits and their budget on the trace-agent container only", async () => {
      const run = await render(prodArgs());
      const trace = byName(run, "trace-agent");
      assert.deepEqual(trace.resources.limits, { memory: "400Mi", cpu: "1" });
      assert.equal(envOf(trace).DD_APM_MAX_MEMORY, String(200 * 2 ** 20));
      assert.equal(envOf(trace).DD_APM_MAX_CPU_PERCENT, "100");
      assert.equal(envOf(byName(run, "agent")).DD_APM_MAX_MEMORY, undefined);
      assert.deepEqual(byName(run, "agent").resources.limits, { memory: "512Mi" });
    });

    it("rejects a memory limit too small to leave the trace-agent a budget", () => {
      const args = prodArgs({ traceAgentResources: { cpuRequest: "100m", memoryRequest: "32Mi", memoryLimit: "48Mi", cpuLimit: "1" } });
      assert.deepEqual(datadogAgentArgsProblems("datadog-agent", args).map((p) => p.propertyPath), ["traceAgentResources.memoryLimit"]);
    });
  });

  describe("container runtime socket", () => {
    it("mounts the run directory holding the socket and points DD_CRI_SOCKET_PATH into it", () => {
      assert.deepEqual(criSocketMount("/var/run/containerd/containerd.sock"), {
        hostDir: "/var/run",
        mountPath: "/host/var/run",
        socketInContainer: "/host/var/run/containerd/containerd.sock",
      });
      assert.deepEqual(criSocketMount("/run/dockershim.sock"), { hostDir: "/run", mountPath: "/host/run", socketInContainer: "/host/run/dockershim.sock" });
      assert.deepEqual(criSocketMount("/opt/runtime/cri.sock"), { hostDir: "/opt/runtime", mountPath: "/host/opt/runtime", socketInContainer: "/host/opt/runtime/cri.sock" });
    });

    for (const [os, socket, hostDir] of [
      ["AL2/AL2023 (containerd)", "/var/run/containerd/containerd.sock", "/var/run"],
      ["Bottlerocket", "/run/dockershim.sock", "/run"],
    ] as const) {
      it(`renders the ${os} socket read-only into every container that reads it`, async () => {
        const run = await render(prodArgs({ criSocketPath: socket }));
        assert.deepEqual(volumes(run).runtimesocketdir.hostPath, { path: hostDir });
        for (const name of ["agent", "trace-agent", "init-config"]) {
          const c = byName(run, name);
          assert.equal(envOf(c).DD_CRI_SOCKET_PATH, `/host${socket}`, name);
          assert.equal(envOf(c).DD_AUTOCONFIG_INCLUDE_FEATURES, "containerd", name);
          const mount = c.volumeMounts.find((m: any) => m.name === "runtimesocketdir");
          assert.deepEqual([mount.mountPath, mount.readOnly], [`/host${hostDir}`, true], name);
        }
        assertValidKubernetesObjects(run.resources);
      });
    }

    it("rejects a relative socket path", () => {
      const problems = datadogAgentArgsProblems("datadog-agent", prodArgs({ criSocketPath: "containerd.sock" }));
      assert.deepEqual(problems.map((p) => p.propertyPath), ["criSocketPath"]);
    });
  });

  describe("hostname from cloud-init (IMDS hop limit 1)", () => {
    it("mounts the instance-id file and sets DD_HOSTNAME_FILE as the chart's useHostnameFromFile does", async () => {
      const run = await render(prodArgs({ useHostnameFromFile: true }));
      assert.deepEqual(volumes(run)["cloudinit-instance-id-file"].hostPath, { path: "/var/lib/cloud/data/instance-id", type: "File" });
      for (const name of ["agent", "trace-agent", "init-config"]) {
        const c = byName(run, name);
        assert.equal(envOf(c).DD_HOSTNAME_FILE, "/var/lib/cloud/data/instance-id", name);
        const mount = c.volumeMounts.find((m: any) => m.name === "cloudinit-instance-id-file");
        assert.deepEqual([mount?.mountPath, mount?.readOnly], ["/var/lib/cloud/data/instance-id", true], name);
      }
      assert.equal(envOf(byName(run, "init-volume")).DD_HOSTNAME_FILE, undefined);
      assertValidKubernetesObjects(run.resources);
    });

    it("leaves the hostname to IMDS by default", async () => {
      const run = await render(prodArgs());
      assert.equal(volumes(run)["cloudinit-instance-id-file"], undefined);
      const env = agentEnv(prodArgs());
      for (const list of [env.agent, env.traceAgent, env.init]) assert.ok(!list.some((e) => e.name === "DD_HOSTNAME_FILE"));
    });
  });
});
