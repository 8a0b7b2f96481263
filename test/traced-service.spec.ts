import * as assert from "node:assert/strict";
import { SERVICES } from "../app/src/tracing/conventions";
import { parseStackSettings } from "../components/config";
import { TracedService, type AgentConnection, type TracedServiceArgs } from "../components/traced-service";
import { runUnderMocks, type ProgramRun, type RecordedResource } from "../scripts/mock-engine";
import { rawSettings } from "./support/stack-settings";

/** fraud-service as a stack with 4 replicas, 2 kept through disruptions, would declare it. */
function args(agent: AgentConnection, secretEnv?: TracedServiceArgs["secretEnv"]): TracedServiceArgs {
  return {
    namespace: "payments",
    service: SERVICES.fraud,
    image: "repo/fraud-service:2.0.1",
    version: "2.0.1",
    env: "prod",
    globalTags: { cluster: "payments-prod", region: "us-east-1", deployment: "blue" },
    replicas: 4,
    minAvailable: 2,
    resources: { cpuRequest: "300m", memoryRequest: "320Mi", memoryLimit: "640Mi" },
    sampling: parseStackSettings(rawSettings("prod")).sampling,
    agent,
    appEnv: { REDIS_URL: "redis://velocity.internal:6379" },
    secretEnv,
  };
}

async function render(a: TracedServiceArgs): Promise<ProgramRun> {
  return runUnderMocks("test", { config: {}, secretKeys: [] }, () => {
    const service = new TracedService("fraud-service", a);
    return { url: service.url };
  });
}

function only(run: ProgramRun, type: string): RecordedResource {
  const found = run.resources.filter((r) => r.type === type);
  assert.equal(found.length, 1, `expected one ${type}, got ${found.length}`);
  return found[0];
}

const selector = { "app.kubernetes.io/name": "fraud-service", "app.kubernetes.io/part-of": "payments" };
const envOf = (run: ProgramRun) =>
  Object.fromEntries(
    (only(run, "kubernetes:apps/v1:Deployment").inputs.spec.template.spec.containers[0].env as any[]).map((e) => [e.name, e.value ?? e.valueFrom]),
  );

describe("TracedService", () => {
  const portOnly = { socketEnabled: false, portEnabled: true, port: 9126 };
  const socketOnly = { socketEnabled: true, portEnabled: false, port: 8126 };
  let byPort: ProgramRun;
  let bySocket: ProgramRun;

  before(async function () {
    this.timeout(60_000);
    byPort = await render(args(portOnly));
    bySocket = await render(args(socketOnly, { API_TOKEN: "token-sentinel" }));
  });

  it("rolls one new pod at a time and never takes a serving pod away first", () => {
    const spec = only(byPort, "kubernetes:apps/v1:Deployment").inputs.spec;
    assert.equal(spec.replicas, 4);
    assert.deepEqual(spec.selector, { matchLabels: selector });
    assert.deepEqual(spec.strategy, { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } });
  });

  it("spreads pods over zones, gives them 30 s to drain, and mounts no ServiceAccount token", () => {
    const pod = only(byPort, "kubernetes:apps/v1:Deployment").inputs.spec.template.spec;
    assert.deepEqual(pod.topologySpreadConstraints, [
      { maxSkew: 1, topologyKey: "topology.kubernetes.io/zone", whenUnsatisfiable: "ScheduleAnyway", labelSelector: { matchLabels: selector } },
    ]);
    assert.equal(pod.terminationGracePeriodSeconds, 30);
    assert.equal(pod.automountServiceAccountToken, false);
    assert.deepEqual(pod.securityContext, { runAsNonRoot: true, runAsUser: 1000, runAsGroup: 1000, fsGroup: 1000, seccompProfile: { type: "RuntimeDefault" } });
  });

  it("gives the read-only container a writable /tmp and nothing else when the Agent listens on a port", () => {
    const pod = only(byPort, "kubernetes:apps/v1:Deployment").inputs.spec.template.spec;
    assert.deepEqual(pod.volumes, [{ name: "tmp", emptyDir: { sizeLimit: "64Mi" } }]);
    assert.deepEqual(pod.containers[0].volumeMounts, [{ name: "tmp", mountPath: "/tmp" }]);
  });

  it("mounts the node's APM socket directory read-only when the Agent listens on the socket", () => {
    const pod = only(bySocket, "kubernetes:apps/v1:Deployment").inputs.spec.template.spec;
    assert.deepEqual(pod.volumes, [
      { name: "tmp", emptyDir: { sizeLimit: "64Mi" } },
      { name: "apm-socket", hostPath: { path: "/var/run/datadog", type: "DirectoryOrCreate" } },
    ]);
    assert.deepEqual(pod.containers[0].volumeMounts, [
      { name: "tmp", mountPath: "/tmp" },
      { name: "apm-socket", mountPath: "/var/run/datadog", readOnly: true },
    ]);
  });

  it("sends traces to datadog.apm.port on the node's IP when the Agent listens on a port", () => {
    const env = envOf(byPort);
    assert.deepEqual(env.DD_AGENT_HOST, { fieldRef: { fieldPath: "status.hostIP" } });
    assert.equal(env.DD_TRACE_AGENT_PORT, "9126");
    assert.equal(env.DD_TRACE_AGENT_URL, undefined);
  });

  it("sends traces to the Unix socket when the Agent listens on it", () => {
    const env = envOf(bySocket);
    assert.equal(env.DD_TRACE_AGENT_URL, "unix:///var/run/datadog/apm.socket");
    assert.equal(env.DD_AGENT_HOST, undefined);
    assert.equal(env.DD_TRACE_AGENT_PORT, undefined);
  });

  it("renders the container: image, port, probes, resources and the app's own env", () => {
    const c = only(byPort, "kubernetes:apps/v1:Deployment").inputs.spec.template.spec.containers[0];
    assert.equal(c.name, "fraud-service");
    assert.equal(c.image, "repo/fraud-service:2.0.1");
    assert.deepEqual(c.ports, [{ name: "http", containerPort: 8080, protocol: "TCP" }]);
    assert.deepEqual(c.readinessProbe, { httpGet: { path: "/readyz", port: "http" }, periodSeconds: 5, timeoutSeconds: 2, failureThreshold: 3 });
    assert.deepEqual(c.livenessProbe, { httpGet: { path: "/healthz", port: "http" }, initialDelaySeconds: 10, periodSeconds: 10, timeoutSeconds: 2, failureThreshold: 3 });
    assert.deepEqual(c.resources, { requests: { cpu: "300m", memory: "320Mi" }, limits: { memory: "640Mi" } });
    const env = envOf(byPort);
    assert.equal(env.DD_TAGS, "cluster:payments-prod,region:us-east-1,deployment:blue");
    assert.deepEqual([env.PORT, env.HOST, env.REDIS_URL], ["8080", "0.0.0.0", "redis://velocity.internal:6379"]);
  });

  it("serves port 80 of a ClusterIP Service on the pods' http port", () => {
    const svc = only(byPort, "kubernetes:core/v1:Service").inputs;
    assert.equal(svc.metadata.name, "fraud-service");
    assert.equal(svc.metadata.namespace, "payments");
    assert.deepEqual(svc.spec, { type: "ClusterIP", selector, ports: [{ name: "http", port: 80, targetPort: "http", protocol: "TCP" }] });
    assert.equal(byPort.outputs.url, "http://fraud-service.payments.svc.cluster.local");
  });

  it("keeps minAvailable of this service's pods, and only those, through voluntary disruptions", () => {
    const pdb = only(byPort, "kubernetes:policy/v1:PodDisruptionBudget").inputs;
    assert.equal(pdb.metadata.name, "fraud-service");
    assert.deepEqual(pdb.spec, { minAvailable: 2, selector: { matchLabels: selector } });
  });

  it("keeps secret env in the service's Secret, referenced by name, and none without any", () => {
    assert.equal(byPort.resources.filter((r) => r.type === "kubernetes:core/v1:Secret").length, 0);
    const secret = only(bySocket, "kubernetes:core/v1:Secret");
    assert.equal(secret.inputs.metadata.name, "fraud-service-secrets");
    assert.deepEqual(secret.inputs.stringData, { API_TOKEN: "token-sentinel" });
    assert.ok(secret.secretPaths.length > 0, "its data is marked secret");
    assert.deepEqual(envOf(bySocket).API_TOKEN, { secretKeyRef: { name: "fraud-service-secrets", key: "API_TOKEN" } });
    assert.equal(only(byPort, "kubernetes:apps/v1:Deployment").inputs.spec.template.metadata.annotations, undefined);
  });
});
