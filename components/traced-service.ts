import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import * as path from "node:path";
import { DEFAULT_PORT, ROUTES, type ServiceName } from "../app/src/tracing/conventions";
import { APM_SOCKET_DIR, APM_SOCKET_PATH } from "./datadog-agent";
import type { ResourceSettings } from "./datadog-agent";
import { tracerSamplingEnv, type SamplingPolicy } from "./sampling";
import { createHash } from "node:crypto";
import { canonicalSecretData, secretChecksumAnnotations } from "./secret-checksum";

/** How pods on a node reach the node's trace-agent. Mirrors the Agent's `apm` settings. */
export interface AgentConnection {
  /** The Agent listens on a Unix socket on the node (preferred when both are on). */
  readonly socketEnabled: boolean;
  /** The Agent listens on hostPort `port` of the node. */
  readonly portEnabled: boolean;
  readonly port: number;
  /** The socket's path on the node. Default /var/run/datadog/apm.socket (ours, the chart's and the Operator's). */
  readonly socketPath?: string;
}

/** The Datadog settings that decide where tracers send (`payments-apm:datadog.*`). */
export interface AgentPlacement {
  readonly deployAgent: boolean;
  readonly apm: { readonly socketEnabled: boolean; readonly portEnabled: boolean; readonly port: number };
  readonly existingAgent?: { readonly socketPath?: string; readonly port?: number };
}

/**
 * Where the services reach the node's trace-agent: ours (its `apm` settings), or the one
 * already on the nodes when deployAgent is false (its socket, else its hostPort).
 */
export function agentConnectionOf(datadog: AgentPlacement): AgentConnection {
  if (datadog.deployAgent) return datadog.apm;
  const existing = datadog.existingAgent;
  if (existing?.socketPath === undefined && existing?.port === undefined) {
    throw new Error("datadog.existingAgent needs socketPath or port when deployAgent is false");
  }
  return { socketEnabled: existing.socketPath !== undefined, portEnabled: existing.port !== undefined, port: existing.port ?? 8126, socketPath: existing.socketPath };
}

/**
 * The connection without the socket: for pods under Pod Security `restricted`, which
 * forbids the hostPath volume the socket needs. The Agent must listen on its hostPort.
 */
export function viaHostPort(agent: AgentConnection): AgentConnection {
  if (!agent.portEnabled) throw new Error("the Agent has no hostPort: pods under Pod Security restricted cannot reach it");
  return { ...agent, socketEnabled: false, socketPath: undefined };
}

/** The env that points a tracer at the node's trace-agent: the socket, or the node's IP and hostPort. */
export function agentAddressEnv(agent: AgentConnection): EnvVar[] {
  return agent.socketEnabled
    ? [{ name: "DD_TRACE_AGENT_URL", value: `unix://${agent.socketPath ?? APM_SOCKET_PATH}` }]
    : [
        { name: "DD_AGENT_HOST", valueFrom: { fieldRef: { fieldPath: "status.hostIP" } } },
        { name: "DD_TRACE_AGENT_PORT", value: String(agent.port) },
      ];
}

/** The socket's host directory as a volume and its read-only mount, when the socket is used. */
export function agentSocketVolume(agent: AgentConnection): { volumes: k8s.types.input.core.v1.Volume[]; mounts: k8s.types.input.core.v1.VolumeMount[] } {
  if (!agent.socketEnabled) return { volumes: [], mounts: [] };
  const dir = agent.socketPath === undefined ? APM_SOCKET_DIR : path.posix.dirname(agent.socketPath);
  return {
    volumes: [{ name: "apm-socket", hostPath: { path: dir, type: "DirectoryOrCreate" } }],
    // Connecting to a Unix socket needs no write access to the mount: read-only is enough.
    mounts: [{ name: "apm-socket", mountPath: dir, readOnly: true }],
  };
}

export interface TracedServiceArgs {
  /** Namespace the service runs in. */
  readonly namespace: pulumi.Input<string>;
  /** DD_SERVICE, the Deployment and Service name. */
  readonly service: ServiceName;
  /** Pinned container image. */
  readonly image: string;
  /** DD_VERSION. */
  readonly version: string;
  /** DD_ENV. */
  readonly env: string;
  /** Global tags (cluster, region, deployment) for DD_TAGS. */
  readonly globalTags: Readonly<Record<string, string>>;
  readonly replicas: number;
  /** PodDisruptionBudget minAvailable. */
  readonly minAvailable: number;
  readonly resources: ResourceSettings;
  readonly sampling: SamplingPolicy;
  readonly agent: AgentConnection;
  /** Plain (non-secret) app settings as env. */
  readonly appEnv: Readonly<Record<string, pulumi.Input<string>>>;
  /**
   * Mount a projected ServiceAccount token for this audience at SERVICE_TOKEN_PATH (lifetime
   * SERVICE_TOKEN_LIFETIME_SECONDS, renewed in place by the kubelet), for calling the
   * service of that name. Default: none.
   */
  readonly serviceTokenAudience?: string;
  /**
   * Secret app settings: stored in a Secret of the service, referenced by secretKeyRef; a
   * checksum of them on the pod template rolls the Deployment when one changes.
   */
  readonly secretEnv?: Readonly<Record<string, pulumi.Input<string>>>;
  /**
   * The process serves HTTP on DEFAULT_PORT: a container port, liveness and readiness
   * probes on its health routes, PORT/HOST env and a ClusterIP Service. False for a worker
   * that serves nothing (the outbox relay, the consumers): none of those, since a probe or a
   * Service would point at a port nobody listens on. Default true.
   */
  readonly listens?: boolean;
  /** Key of the HMAC checksum of `secretEnv` on the pod template (secret-checksum.ts). Required with `secretEnv`. */
  readonly checksumKey?: pulumi.Input<string>;
  /**
   * Non-secret files (a CA bundle): each a ConfigMap `<service>-<name>` mounted read-only as
   * a directory at `mountPath`, one file per key. A SHA-256 of the data on the pod template
   * rolls the pods when it changes (the app reads them at start). Default none.
   */
  readonly configFiles?: readonly ConfigFiles[];
}

export interface ConfigFiles {
  /** Volume name and ConfigMap suffix, e.g. "ledger-ca". */
  readonly name: string;
  /** Directory the files appear in, e.g. /etc/payments/ledger-ca. */
  readonly mountPath: string;
  /** File name → content. */
  readonly data: Readonly<Record<string, string>>;
}

type EnvVar = k8s.types.input.core.v1.EnvVar;

const label = (key: "env" | "service" | "version") => `tags.datadoghq.com/${key}`;

/** Unified service tagging labels, on the Deployment and its pods. */
export function unifiedServiceLabels(args: Pick<TracedServiceArgs, "env" | "service" | "version">): Record<string, string> {
  return { [label("env")]: args.env, [label("service")]: args.service, [label("version")]: args.version };
}

/**
 * DD_TRACE_OBFUSCATION_QUERY_STRING_REGEXP: what dd-trace replaces by `<redacted>` in the
 * query string of a server span's `http.url` (compiled with flags `gi`). Every parameter,
 * name and value: card number, PAN, CVV/CVC, token, password, secret, and a bare value
 * without a name too, which a list of names would miss. The APIs refuse any query string,
 * so nothing of use is lost; the span still shows that one was sent, and how many parts.
 */
export const QUERY_STRING_OBFUSCATION = "[^&]+";
/** Where a projected ServiceAccount token is mounted, and its file. */
export const SERVICE_TOKEN_DIR = "/var/run/secrets/payments/service-token";
export const SERVICE_TOKEN_PATH = `${SERVICE_TOKEN_DIR}/token`;
/** One hour: the most the receiving service accepts; the kubelet renews it at 80 %. */
export const SERVICE_TOKEN_LIFETIME_SECONDS = 3600;

/** The name of the Secret holding a service's secret env. */
export const secretNameFor = (service: string) => `${service}-secrets`;

/**
 * The env of a service's container: the tracing contract first, then the app's settings.
 * DD_ENV/DD_SERVICE/DD_VERSION come from the pod's unified-tagging labels so the two can
 * never disagree; the agent address comes from the node the pod runs on.
 */
export function serviceEnv(args: Omit<TracedServiceArgs, "namespace" | "image" | "replicas" | "minAvailable" | "resources" | "serviceTokenAudience">): EnvVar[] {
  const listens = args.listens ?? true;
  const fromLabel = (name: string, key: "env" | "service" | "version"): EnvVar => ({
    name,
    valueFrom: { fieldRef: { fieldPath: `metadata.labels['${label(key)}']` } },
  });
  const literal = (env: Readonly<Record<string, pulumi.Input<string>>>): EnvVar[] => Object.entries(env).map(([name, value]) => ({ name, value }));
  const agentAddress = agentAddressEnv(args.agent);
  const secretEnv: EnvVar[] = Object.keys(args.secretEnv ?? {}).map((name) => ({
    name,
    valueFrom: { secretKeyRef: { name: secretNameFor(args.service), key: name } },
  }));
  return [
    fromLabel("DD_ENV", "env"),
    fromLabel("DD_SERVICE", "service"),
    fromLabel("DD_VERSION", "version"),
    ...agentAddress,
    ...literal({
      DD_TAGS: Object.entries(args.globalTags)
        .map(([k, v]) => `${k}:${v}`)
        .join(","),
      ...tracerSamplingEnv(args.sampling, args.service),
      DD_LOGS_INJECTION: "true",
      DD_RUNTIME_METRICS_ENABLED: "true",
      DD_TRACE_PROPAGATION_STYLE: "datadog,tracecontext",
      DD_TRACE_OBFUSCATION_QUERY_STRING_REGEXP: QUERY_STRING_OBFUSCATION,
    }),
    ...literal({ ...(listens ? { PORT: String(DEFAULT_PORT), HOST: "0.0.0.0" } : {}), ...args.appEnv }),
    ...secretEnv,
  ];
}

function checksumKey(args: TracedServiceArgs): pulumi.Input<string> {
  if (args.checksumKey === undefined) throw new pulumi.InputPropertyError({ propertyPath: "checksumKey", reason: "is required with secretEnv" });
  return args.checksumKey;
}

/**
 * One traced service: its ServiceAccount, Deployment (non-root, read-only root filesystem,
 * probes on the app's health endpoints, no API token mounted), Service, PodDisruptionBudget,
 * and a Secret for its secret settings.
 * A worker (`listens: false`) gets no port, probes or Service.
 */
export class TracedService extends pulumi.ComponentResource {
  /** The Service's name; undefined for a worker (`listens: false`), which has none. */
  public readonly serviceName: pulumi.Output<string> | undefined;
  public readonly deploymentName: pulumi.Output<string>;
  /** In-cluster URL of the service, e.g. http://fraud-service.payments.svc.cluster.local; undefined for a worker. */
  public readonly url: pulumi.Output<string> | undefined;

  constructor(name: string, args: TracedServiceArgs, opts?: pulumi.ComponentResourceOptions) {
    super("payments-apm:app:TracedService", name, {}, opts);
    const labels = { "app.kubernetes.io/name": args.service, "app.kubernetes.io/part-of": "payments" };
    const podLabels = { ...labels, ...unifiedServiceLabels(args) };
    const env = serviceEnv(args);
    const listens = args.listens ?? true;

    const secretEnv = args.secretEnv ?? {};
    const readsSecret = Object.keys(secretEnv).length > 0;
    // Validated before any child exists.
    const secretChecksum = readsSecret ? secretChecksumAnnotations(secretNameFor(args.service), secretEnv, checksumKey(args)) : {};
    if (readsSecret) {
      new k8s.core.v1.Secret(
        `${name}-secrets`,
        {
          metadata: { name: secretNameFor(args.service), namespace: args.namespace, labels },
          type: "Opaque",
          stringData: secretEnv,
        },
        // @pulumi/kubernetes marks a Secret's data and stringData outputs secret itself.
        { parent: this },
      );
    }

    const socket = agentSocketVolume(args.agent);
    const volumes: k8s.types.input.core.v1.Volume[] = [{ name: "tmp", emptyDir: { sizeLimit: "64Mi" } }, ...socket.volumes];
    const mounts: k8s.types.input.core.v1.VolumeMount[] = [{ name: "tmp", mountPath: "/tmp" }, ...socket.mounts];
    const fileChecksums: Record<string, string> = {};
    for (const files of args.configFiles ?? []) {
      const configMapName = `${args.service}-${files.name}`;
      new k8s.core.v1.ConfigMap(`${name}-${files.name}`, { metadata: { name: configMapName, namespace: args.namespace, labels }, data: { ...files.data } }, { parent: this });
      volumes.push({ name: files.name, configMap: { name: configMapName, defaultMode: 0o444 } });
      mounts.push({ name: files.name, mountPath: files.mountPath, readOnly: true });
      fileChecksums[`checksum/${configMapName}`] = createHash("sha256").update(canonicalSecretData(files.data)).digest("hex");
    }
    if (args.serviceTokenAudience !== undefined) {
      // Only this token, for this audience: the API server token stays unmounted
      // (automountServiceAccountToken: false), so the pod cannot call the Kubernetes API.
      volumes.push({
        name: "service-token",
        projected: {
          sources: [
            { serviceAccountToken: { audience: args.serviceTokenAudience, expirationSeconds: SERVICE_TOKEN_LIFETIME_SECONDS, path: "token" } },
          ],
        },
      });
      mounts.push({ name: "service-token", mountPath: SERVICE_TOKEN_DIR, readOnly: true });
    }

    // Its own identity: fraud-service tells payment-service from any other pod by it.
    const account = new k8s.core.v1.ServiceAccount(
      `${name}-service-account`,
      { metadata: { name: args.service, namespace: args.namespace, labels }, automountServiceAccountToken: false },
      { parent: this },
    );

    const httpGet = (path: string) => ({ httpGet: { path, port: "http" } });
    const deployment = new k8s.apps.v1.Deployment(
      `${name}-deployment`,
      {
        metadata: { name: args.service, namespace: args.namespace, labels: podLabels },
        spec: {
          replicas: args.replicas,
          selector: { matchLabels: labels },
          strategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
          template: {
            metadata: {
              labels: podLabels,
              // A new secret value or file changes the template and rolls the pods (both are read at start).
              ...(readsSecret || Object.keys(fileChecksums).length
                ? { annotations: { ...fileChecksums, ...secretChecksum } }
                : {}),
            },
            spec: {
              serviceAccountName: account.metadata.name,
              automountServiceAccountToken: false,
              terminationGracePeriodSeconds: 30,
              securityContext: { runAsNonRoot: true, runAsUser: 1000, runAsGroup: 1000, fsGroup: 1000, seccompProfile: { type: "RuntimeDefault" } },
              topologySpreadConstraints: [
                { maxSkew: 1, topologyKey: "topology.kubernetes.io/zone", whenUnsatisfiable: "ScheduleAnyway", labelSelector: { matchLabels: labels } },
              ],
              containers: [
                {
                  name: args.service,
                  image: args.image,
                  ...(listens
                    ? {
                        ports: [{ name: "http", containerPort: DEFAULT_PORT, protocol: "TCP" }],
                        readinessProbe: { ...httpGet(ROUTES.readiness), periodSeconds: 5, timeoutSeconds: 2, failureThreshold: 3 },
                        livenessProbe: { ...httpGet(ROUTES.liveness), initialDelaySeconds: 10, periodSeconds: 10, timeoutSeconds: 2, failureThreshold: 3 },
                      }
                    : {}),
                  env,
                  resources: {
                    requests: { cpu: args.resources.cpuRequest, memory: args.resources.memoryRequest },
                    limits: { memory: args.resources.memoryLimit },
                  },
                  securityContext: {
                    runAsNonRoot: true,
                    readOnlyRootFilesystem: true,
                    allowPrivilegeEscalation: false,
                    privileged: false,
                    capabilities: { drop: ["ALL"] },
                  },
                  volumeMounts: mounts,
                },
              ],
              volumes,
            },
          },
        },
      },
      // The component's dependencies (the Agent, the migrations) stated on the Deployment
      // itself: the pods wait for them without relying on how a component's dependsOn
      // reaches its children.
      { parent: this, dependsOn: opts?.dependsOn },
    );

    const service = listens
      ? new k8s.core.v1.Service(
          `${name}-service`,
          {
            metadata: { name: args.service, namespace: args.namespace, labels: podLabels },
            spec: { type: "ClusterIP", selector: labels, ports: [{ name: "http", port: 80, targetPort: "http", protocol: "TCP" }] },
          },
          { parent: this },
        )
      : undefined;

    new k8s.policy.v1.PodDisruptionBudget(
      `${name}-pdb`,
      {
        metadata: { name: args.service, namespace: args.namespace, labels },
        spec: { minAvailable: args.minAvailable, selector: { matchLabels: labels } },
      },
      { parent: this },
    );

    this.deploymentName = deployment.metadata.name;
    this.serviceName = service?.metadata.name;
    this.url = service && pulumi.interpolate`http://${service.metadata.name}.${service.metadata.namespace}.svc.cluster.local`;
    this.registerOutputs({ deploymentName: this.deploymentName, serviceName: this.serviceName, url: this.url });
  }
}
