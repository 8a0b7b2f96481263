/**
 * `payments-apm:datadog.deployAgent: false`: a cluster that already runs the Datadog Agent
 * (Helm chart or Operator) gets no second one; the services send to the one that is there.
 */
import * as assert from "node:assert/strict";
import { SERVICES } from "../app/src/tracing/conventions";
import { ConfigError, parseStackSettings } from "../components/config";
import { validateKubernetesObject } from "../scripts/k8s-schema";
import { datadogObjects, deploymentEnv, kubernetesObjects } from "../scripts/manifests";
import { runStack, type ProgramRun } from "../scripts/mock-engine";
import { rawSettings, withValue } from "./support/stack-settings";

/** The prod stack with `datadog` replaced, as `pulumi config set --path` would leave it. */
function withDatadog(change: (d: Record<string, any>) => Record<string, any>): Record<string, string> {
  return { "payments-apm:datadog": JSON.stringify(change(structuredClone(rawSettings("prod").datadog))) };
}

const AGENT_TYPES = [
  "kubernetes:apps/v1:DaemonSet",
  "kubernetes:core/v1:ServiceAccount",
  "kubernetes:rbac.authorization.k8s.io/v1:ClusterRole",
  "kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding",
  "kubernetes:scheduling.k8s.io/v1:PriorityClass",
  "payments-apm:datadog:DatadogAgent",
];

const objects = (run: ProgramRun) => kubernetesObjects(run).map((o) => o.object);
/** The Agent's resources of `type` (the services have ServiceAccounts of their own). */
const agentResources = (run: ProgramRun, type: string) => run.resources.filter((r) => r.type === type && r.name.startsWith("datadog-agent"));
const deployment = (run: ProgramRun, name: string) => objects(run).find((o) => o.kind === "Deployment" && o.metadata.name === name)!;
const envOf = (run: ProgramRun, service: string) =>
  Object.fromEntries(deploymentEnv(deployment(run, service))[service].map((e) => [e.name, e.value ?? e.valueFrom]));

describe("datadog.deployAgent", () => {
  let withAgent: ProgramRun;
  let bySocket: ProgramRun;
  let byPort: ProgramRun;

  before(async function () {
    this.timeout(60_000);
    withAgent = await runStack("prod");
    bySocket = await runStack("prod", {
      overrides: withDatadog((d) => ({ ...d, deployAgent: false, existingAgent: { socketPath: "/var/run/datadog-agent/apm.sock" } })),
    });
    byPort = await runStack("prod", { overrides: withDatadog((d) => ({ ...d, deployAgent: "false", existingAgent: { port: 8126 } })) });
  });

  it("deploys the Agent and its priority class by default", () => {
    for (const type of AGENT_TYPES) assert.equal(agentResources(withAgent, type).length, 1, type);
    assert.equal(withAgent.outputs.datadogNamespace, "datadog");
  });

  it("false: creates no Agent object, no datadog namespace and no API-key Secret", () => {
    for (const run of [bySocket, byPort]) {
      for (const type of AGENT_TYPES) assert.deepEqual(agentResources(run, type).map((r) => r.name), [], type);
      assert.deepEqual(
        run.resources.filter((r) => r.type === "kubernetes:core/v1:ServiceAccount").map((r) => r.name).sort(),
        ["fraud-service-service-account", "outbox-relay-service-account", "payment-service-service-account", "post-processing-service-account"],
      );
      assert.deepEqual(objects(run).filter((o) => o.kind === "Namespace").map((o) => o.metadata.name), ["payments"]);
      assert.deepEqual(objects(run).filter((o) => o.metadata.namespace === "datadog"), []);
      assert.deepEqual(objects(run).flatMap((o) => validateKubernetesObject(o)), []);
      assert.equal(run.outputs.datadogNamespace, undefined);
    }
  });

  it("false: points the services at the existing Agent's socket, mounting its directory", () => {
    for (const service of [SERVICES.payment, SERVICES.fraud]) {
      const env = envOf(bySocket, service);
      assert.equal(env.DD_TRACE_AGENT_URL, "unix:///var/run/datadog-agent/apm.sock");
      assert.equal(env.DD_AGENT_HOST, undefined);
      const pod = (deployment(bySocket, service).spec as any).template.spec;
      assert.deepEqual(pod.volumes.find((v: any) => v.name === "apm-socket").hostPath, { path: "/var/run/datadog-agent", type: "DirectoryOrCreate" });
      assert.deepEqual(pod.containers[0].volumeMounts.find((m: any) => m.name === "apm-socket"), { name: "apm-socket", mountPath: "/var/run/datadog-agent", readOnly: true });
    }
  });

  it("false: points the services at the existing Agent's hostPort on the node", () => {
    for (const service of [SERVICES.payment, SERVICES.fraud]) {
      const env = envOf(byPort, service);
      assert.deepEqual(env.DD_AGENT_HOST, { fieldRef: { fieldPath: "status.hostIP" } });
      assert.equal(env.DD_TRACE_AGENT_PORT, "8126");
      assert.equal(env.DD_TRACE_AGENT_URL, undefined);
      const pod = (deployment(byPort, service).spec as any).template.spec;
      assert.equal(pod.volumes.find((v: any) => v.name === "apm-socket"), undefined);
    }
  });

  it("false: leaves the sampling env, monitors, SLOs, dashboard and retention filters as they are", () => {
    const agentAddress = new Set(["DD_TRACE_AGENT_URL", "DD_AGENT_HOST", "DD_TRACE_AGENT_PORT"]);
    for (const service of [SERVICES.payment, SERVICES.fraud]) {
      const strip = (env: Record<string, unknown>) => Object.fromEntries(Object.entries(env).filter(([k]) => !agentAddress.has(k)));
      assert.deepEqual(strip(envOf(bySocket, service)), strip(envOf(withAgent, service)), service);
    }
    assert.ok(datadogObjects(withAgent).length >= 7);
    assert.deepEqual(datadogObjects(bySocket), datadogObjects(withAgent));
    assert.deepEqual(datadogObjects(byPort), datadogObjects(withAgent));
  });

  describe("bad config fails at preview, naming the key", () => {
    const problemsOf = (raw: Record<string, unknown>) => {
      try {
        parseStackSettings(raw);
      } catch (e) {
        assert.ok(e instanceof ConfigError);
        return e.problems.join("\n");
      }
      assert.fail("accepted");
    };
    const prod = () => rawSettings("prod");

    it("deployAgent false without an agent address", async () => {
      assert.match(problemsOf(withValue(prod(), "datadog.deployAgent", false)), /^payments-apm:datadog\.existingAgent is required when deployAgent is false/m);
      assert.match(problemsOf(withValue(withValue(prod(), "datadog.deployAgent", false), "datadog.existingAgent", {})), /payments-apm:datadog\.existingAgent is required when deployAgent is false/);
      const message = await runStack("prod", { overrides: withDatadog((d) => ({ ...d, deployAgent: false })) }).then(
        () => assert.fail("the preview succeeded"),
        (e: Error) => e.message,
      );
      assert.match(message, /payments-apm:datadog\.existingAgent is required when deployAgent is false: set existingAgent\.socketPath/);
    });

    it("an existing agent address while deploying our own", () => {
      assert.match(problemsOf(withValue(prod(), "datadog.existingAgent", { port: 8126 })), /payments-apm:datadog\.existingAgent is only read when deployAgent is false/);
    });

    it("a priority class name that is not a DNS label", () => {
      assert.match(problemsOf(withValue(prod(), "datadog.priorityClass.name", "Datadog_Agent")), /^payments-apm:datadog\.priorityClass\.name must be a DNS-1123 label .*got "Datadog_Agent"/m);
      assert.match(problemsOf(withValue(prod(), "datadog.priorityClass.name", "system-agents")), /payments-apm:datadog\.priorityClass\.name must not start with 'system-'/);
      assert.match(problemsOf(withValue(prod(), "datadog.priorityClass", { create: false })), /payments-apm:datadog\.priorityClass\.name is required when create is false/);
    });

    it("a runtime socket path that is not absolute, and a bad existing socket path", () => {
      assert.match(problemsOf(withValue(prod(), "datadog.criSocketPath", "run/dockershim.sock")), /payments-apm:datadog\.criSocketPath must be an absolute path/);
      const raw = withValue(withValue(prod(), "datadog.deployAgent", false), "datadog.existingAgent", { socketPath: "/var/run/../apm.socket" });
      assert.match(problemsOf(raw), /payments-apm:datadog\.existingAgent\.socketPath must not contain '\.\.'/);
    });

    it("accepts an existing priority class and the Bottlerocket socket", () => {
      let raw = withValue(prod(), "datadog.priorityClass", { create: "false", name: "system-node-critical" });
      raw = withValue(raw, "datadog.criSocketPath", "/run/dockershim.sock");
      const s = parseStackSettings(raw);
      assert.deepEqual(s.datadog.priorityClass, { create: false, name: "system-node-critical", value: 1_000_000_000 });
      assert.equal(s.datadog.criSocketPath, "/run/dockershim.sock");
    });
  });
});
