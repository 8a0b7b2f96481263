import * as assert from "node:assert/strict";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { SERVICES } from "../app/src/tracing/conventions";
import { parseStackSettings } from "../components/config";
import { SERVICE_TOKEN_PATH, TracedService, type AgentConnection, type TracedServiceArgs } from "../components/traced-service";
import { runUnderMocks, type ProgramRun, type RecordedResource } from "../scripts/mock-engine";
import { recordRegistrations, type Registration } from "./support/service-registrations";
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
    checksumKey: "rollout-checksum-key-sentinel-0123456789abcdef",
  };
}

type Rendered = ProgramRun & { readonly registrations: Readonly<Record<string, Registration>> };

const COMPONENT_URN = "urn:pulumi:test::payments-apm::pulumi:pulumi:Stack$payments-apm:app:TracedService::fraud-service";
/** A resource the service is declared to wait for (standing in for the Agent or the migrations). */
const DEPENDENCY_URN = "urn:pulumi:test::payments-apm::pulumi:pulumi:Stack$kubernetes:core/v1:ConfigMap::agent-ready";

/** Renders the service alone; `waitFor: true` declares it dependent on DEPENDENCY_URN's resource. */
async function render(a: TracedServiceArgs, waitFor = false): Promise<Rendered> {
  let registrations: Record<string, Registration> = {};
  const run = await runUnderMocks("test", { config: {}, secretKeys: [] }, () => {
    registrations = recordRegistrations();
    const dependsOn = waitFor ? [new k8s.core.v1.ConfigMap("agent-ready", {})] : undefined;
    const service = new TracedService("fraud-service", a, dependsOn && { dependsOn });
    return { url: service.url, serviceName: service.serviceName, deploymentName: service.deploymentName };
  });
  return { ...run, registrations };
}

function only(run: ProgramRun, type: string): RecordedResource {
  const found = run.resources.filter((r) => r.type === type);
  assert.equal(found.length, 1, `expected one ${type}, got ${found.length}`);
  return found[0];
}

const ledgerCa = { name: "ledger-ca", mountPath: "/etc/payments/ledger-ca", data: { "ca.pem": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n" } };
const selector = { "app.kubernetes.io/name": "fraud-service", "app.kubernetes.io/part-of": "payments" };
const podLabels = { ...selector, "tags.datadoghq.com/env": "prod", "tags.datadoghq.com/service": "fraud-service", "tags.datadoghq.com/version": "2.0.1" };
const deployment = (run: ProgramRun) => only(run, "kubernetes:apps/v1:Deployment").inputs;
const envOf = (run: ProgramRun) =>
  Object.fromEntries(
    (only(run, "kubernetes:apps/v1:Deployment").inputs.spec.template.spec.containers[0].env as any[]).map((e) => [e.name, e.value ?? e.valueFrom]),
  );

describe("TracedService", () => {
  const portOnly = { socketEnabled: false, portEnabled: true, port: 9126 };
  const socketOnly = { socketEnabled: true, portEnabled: false, port: 8126 };
  let byPort: Rendered;
  let bySocket: Rendered;
  /** Like payment-service: a secret, a CA bundle, a token for the service it calls, and something to wait for. */
  let full: Rendered;
  /** Like the outbox relay: serves nothing, reads the CA bundle, no secret. */
  let worker: Rendered;

  before(async function () {
    this.timeout(60_000);
    byPort = await render(args(portOnly));
    bySocket = await render(args(socketOnly, { API_TOKEN: "token-sentinel" }));
    full = await render({ ...args(portOnly, { PGPASSWORD: "db-password-sentinel" }), configFiles: [ledgerCa], serviceTokenAudience: "ledger-api" }, true);
    worker = await render({ ...args(portOnly), listens: false, configFiles: [ledgerCa] });
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

  it("refuses secret env without a checksum key, before creating any of its objects", async () => {
    let registrations: Record<string, Registration> = {};
    let refused: unknown;
    await runUnderMocks("test", { config: {}, secretKeys: [] }, () => {
      registrations = recordRegistrations();
      try {
        new TracedService("fraud-service", { ...args(portOnly, { API_TOKEN: "x" }), checksumKey: undefined });
      } catch (e) {
        refused = e;
      }
    });
    assert.ok(refused instanceof pulumi.InputPropertyError, String(refused));
    assert.deepEqual([refused.propertyPath, refused.reason], ["checksumKey", "is required with secretEnv"]);
    const children = Object.entries(registrations).filter(([, r]) => r.parent === COMPONENT_URN);
    assert.ok("fraud-service" in registrations, "the component itself is registered");
    assert.deepEqual(children, [], "no Secret, ServiceAccount or Deployment");
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
    // Known answer: `printf '%s' '{"API_TOKEN":"token-sentinel"}' | openssl dgst -sha256 -hmac rollout-checksum-key-sentinel-0123456789abcdef`.
    assert.deepEqual(deployment(bySocket).spec.template.metadata.annotations, {
      "checksum/fraud-service-secrets": "595fb95c2eca289a4116eddfb47674f67312088d3847a9e243d0b4efdb137638",
    });
    assert.equal(deployment(byPort).spec.template.metadata.annotations, undefined, "nothing to roll on without a secret or a file");
  });

  it("stores the secret env in an Opaque Secret of the service's namespace, its data secret in the outputs too", () => {
    assert.deepEqual(only(full, "kubernetes:core/v1:Secret").inputs, {
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: "fraud-service-secrets", namespace: "payments", labels: selector },
      type: "Opaque",
      stringData: { PGPASSWORD: "db-password-sentinel" },
    });
    assert.deepEqual(full.registrations["fraud-service-secrets"].additionalSecretOutputs, ["data", "stringData"]);
  });

  it("creates every object as a child of the service's component, and registers the component's outputs", () => {
    const children = (run: Rendered) =>
      Object.entries(run.registrations)
        .filter(([, r]) => r.parent === COMPONENT_URN)
        .map(([name]) => name)
        .sort();
    assert.deepEqual(children(full), [
      "fraud-service-deployment",
      "fraud-service-ledger-ca",
      "fraud-service-pdb",
      "fraud-service-secrets",
      "fraud-service-service",
      "fraud-service-service-account",
    ]);
    assert.deepEqual(children(worker), ["fraud-service-deployment", "fraud-service-ledger-ca", "fraud-service-pdb", "fraud-service-service-account"]);
    assert.deepEqual(full.componentOutputs["payments-apm:app:TracedService::fraud-service"], ["deploymentName", "serviceName", "url"]);
    assert.deepEqual([full.outputs.deploymentName, full.outputs.serviceName], ["fraud-service", "fraud-service"]);
  });

  it("starts the pods only once what the service is declared to depend on exists", () => {
    assert.ok(full.registrations["fraud-service-deployment"].dependencies.includes(DEPENDENCY_URN), String(full.registrations["fraud-service-deployment"].dependencies));
    assert.ok(!byPort.registrations["fraud-service-deployment"].dependencies.includes(DEPENDENCY_URN));
  });

  it("labels the Deployment and its pods for unified service tagging, selecting the pods by name alone", () => {
    const d = deployment(byPort);
    assert.deepEqual(d.metadata, { name: "fraud-service", namespace: "payments", labels: podLabels });
    assert.deepEqual(d.spec.template.metadata, { labels: podLabels });
    assert.deepEqual(only(byPort, "kubernetes:core/v1:Service").inputs.metadata.labels, podLabels);
    assert.deepEqual(only(byPort, "kubernetes:policy/v1:PodDisruptionBudget").inputs.metadata, { name: "fraud-service", namespace: "payments", labels: selector });
  });

  it("runs the pods as the service's own ServiceAccount, which mounts no API token", () => {
    assert.deepEqual(only(byPort, "kubernetes:core/v1:ServiceAccount").inputs, {
      apiVersion: "v1",
      kind: "ServiceAccount",
      metadata: { name: "fraud-service", namespace: "payments", labels: selector },
      automountServiceAccountToken: false,
    });
    assert.equal(deployment(byPort).spec.template.spec.serviceAccountName, "fraud-service");
  });

  it("runs the container non-root, read-only, without privilege escalation or capabilities", () => {
    assert.deepEqual(deployment(byPort).spec.template.spec.containers[0].securityContext, {
      runAsNonRoot: true,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      privileged: false,
      capabilities: { drop: ["ALL"] },
    });
  });

  it("mounts each config file set read-only from its own ConfigMap, and rolls the pods when a file changes", () => {
    assert.deepEqual(only(worker, "kubernetes:core/v1:ConfigMap").inputs, {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "fraud-service-ledger-ca", namespace: "payments", labels: selector },
      data: { "ca.pem": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n" },
    });
    const pod = deployment(worker).spec.template;
    assert.deepEqual(pod.spec.volumes, [
      { name: "tmp", emptyDir: { sizeLimit: "64Mi" } },
      { name: "ledger-ca", configMap: { name: "fraud-service-ledger-ca", defaultMode: 0o444 } },
    ]);
    assert.deepEqual(pod.spec.containers[0].volumeMounts, [
      { name: "tmp", mountPath: "/tmp" },
      { name: "ledger-ca", mountPath: "/etc/payments/ledger-ca", readOnly: true },
    ]);
    // A public certificate: a plain SHA-256 of the ConfigMap's data as sorted compact JSON
    // (`printf '%s' '{"ca.pem":"-----BEGIN CERTIFICATE-----\\nMIIB\\n-----END CERTIFICATE-----\\n"}' | sha256sum`).
    assert.deepEqual(pod.metadata.annotations, { "checksum/fraud-service-ledger-ca": "a619834005d00493c5a69cda7d0e5e3d7547f2232268d580a558ccea1b025ae6" });
  });

  it("mounts a token for the service it calls, and rolls on both the secret and the files", () => {
    const pod = deployment(full).spec.template;
    assert.deepEqual(pod.spec.volumes, [
      { name: "tmp", emptyDir: { sizeLimit: "64Mi" } },
      { name: "ledger-ca", configMap: { name: "fraud-service-ledger-ca", defaultMode: 0o444 } },
      { name: "service-token", projected: { sources: [{ serviceAccountToken: { audience: "ledger-api", expirationSeconds: 3600, path: "token" } }] } },
    ]);
    assert.deepEqual(pod.spec.containers[0].volumeMounts, [
      { name: "tmp", mountPath: "/tmp" },
      { name: "ledger-ca", mountPath: "/etc/payments/ledger-ca", readOnly: true },
      { name: "service-token", mountPath: "/var/run/secrets/payments/service-token", readOnly: true },
    ]);
    assert.equal(pod.spec.automountServiceAccountToken, false, "that token only, not the API server's");
    assert.equal(SERVICE_TOKEN_PATH, "/var/run/secrets/payments/service-token/token", "the file the app is told to read (SERVICE_TOKEN_FILE)");
    // Known answer: `printf '%s' '{"PGPASSWORD":"db-password-sentinel"}' | openssl dgst -sha256 -hmac rollout-checksum-key-sentinel-0123456789abcdef`.
    assert.deepEqual(pod.metadata.annotations, {
      "checksum/fraud-service-ledger-ca": "a619834005d00493c5a69cda7d0e5e3d7547f2232268d580a558ccea1b025ae6",
      "checksum/fraud-service-secrets": "fa1b149d016c0a43de684e377b666408e9b1899419208b2777d8b171dafcf44e",
    });
  });

  it("gives a worker no port, probes, PORT/HOST or Service, and keeps its disruption budget", () => {
    const c = deployment(worker).spec.template.spec.containers[0];
    assert.deepEqual(Object.keys(c).sort(), ["env", "image", "name", "resources", "securityContext", "volumeMounts"]);
    assert.equal(envOf(worker).PORT, undefined);
    assert.equal(envOf(worker).HOST, undefined);
    assert.equal(worker.resources.filter((r) => r.type === "kubernetes:core/v1:Service").length, 0);
    assert.deepEqual([worker.outputs.url, worker.outputs.serviceName], [undefined, undefined]);
    assert.deepEqual(only(worker, "kubernetes:policy/v1:PodDisruptionBudget").inputs.spec, { minAvailable: 2, selector: { matchLabels: selector } });
  });
});
