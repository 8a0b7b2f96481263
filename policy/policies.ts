/**
 * The payments-apm policies, as a plain array: `policy/index.ts` builds the pack from it
 * (building a PolicyPack starts a gRPC server, so the tests import this module instead).
 *
 * Every policy is mandatory and every message names the object and field at fault and says
 * how to fix it. Messages never repeat a value that looks like a key.
 */
import * as datadog from "@pulumi/datadog";
import * as k8s from "@pulumi/kubernetes";
import {
  validateResourceOfType,
  type PolicyConfigSchema,
  type ReportViolation,
  type ResourceValidation,
  type ResourceValidationArgs,
  type ResourceValidationPolicy,
  type StackValidationPolicy,
} from "@pulumi/policy";
import type * as pulumi from "@pulumi/pulumi";

type PodSpec = pulumi.Unwrap<k8s.types.input.core.v1.PodSpec>;
type Container = pulumi.Unwrap<k8s.types.input.core.v1.Container>;
type EnvVar = pulumi.Unwrap<k8s.types.input.core.v1.EnvVar>;
type ObjectMeta = pulumi.Unwrap<k8s.types.input.meta.v1.ObjectMeta>;

// ---------------------------------------------------------------------------------------
// Datadog key detection
// ---------------------------------------------------------------------------------------

/** Datadog API keys are 32 hex characters, application keys 40. */
const API_KEY_SHAPE = /^[a-f0-9]{32}$/i;
const APP_KEY_SHAPE = /^[a-f0-9]{40}$/i;
const EMBEDDED_KEY_SHAPE = /(?<![a-f0-9])(?:[a-f0-9]{40}|[a-f0-9]{32})(?![a-f0-9])/i;
/** Names such as DD_API_KEY, DATADOG_APP_KEY, api_key, apiKey, DD_APPLICATION_KEY. */
const KEY_NAME = /(?:api|app|application)[_-]?key/i;
/** `api_key: abc…` / `app_key=abc…` in a config file, unless the value is a reference (`${…}`, `$VAR`, `ENC[…]`). */
const KEY_ASSIGNMENT = /(?:api|app|application)[_-]?key["']?[ \t]*[:=][ \t]*["']?(?!\$|ENC\[)[^\s"'#,}]+/i;

/** Whether a whole value is shaped like a Datadog API (32 hex) or application (40 hex) key. */
export function looksLikeDatadogKey(value: string): boolean {
  const v = value.trim();
  return API_KEY_SHAPE.test(v) || APP_KEY_SHAPE.test(v);
}

/** Why a piece of text (a ConfigMap entry) seems to carry a Datadog key, or undefined. */
export function datadogKeyIn(name: string, text: string): string | undefined {
  if (KEY_NAME.test(name) && text.trim() !== "") return `its name "${name}" is a Datadog key name`;
  if (EMBEDDED_KEY_SHAPE.test(text)) return "it contains a 32- or 40-character hex string (the shape of a Datadog API or application key)";
  if (KEY_ASSIGNMENT.test(text)) return "it assigns an api_key/app_key";
  return undefined;
}

const KEY_FIX =
  "Keep Datadog keys in a Kubernetes Secret and reference it (env valueFrom.secretKeyRef); " +
  "set the key as stack config with `pulumi config set --secret datadog:apiKey` (or datadog:appKey)";

// ---------------------------------------------------------------------------------------
// Helpers shared by the Kubernetes policies
// ---------------------------------------------------------------------------------------

/**
 * `Kind namespace/name` of a Kubernetes object, or the Pulumi resource name when the
 * metadata is not known yet (during a preview a computed field throws when read).
 */
function describeObject(kind: string, metadata: ObjectMeta | undefined, args: ResourceValidationArgs): string {
  try {
    const name = metadata?.name;
    const namespace = metadata?.namespace;
    if (name) return `${kind} ${namespace ? `${namespace}/` : ""}${name}`;
  } catch {
    // unknown during preview: fall back to the resource name
  }
  return `${kind} ${args.name}`;
}

/** A pod spec and what owns it, for the checks that apply to every workload kind. */
interface Workload {
  readonly kind: string;
  /** `Deployment payments/payment-service` */
  readonly id: string;
  readonly metadata: ObjectMeta | undefined;
  readonly podLabels: Record<string, string> | undefined;
  readonly pod: PodSpec;
}

type WorkloadCheck = (workload: Workload, report: ReportViolation, args: ResourceValidationArgs) => void;

function workload(kind: string, metadata: ObjectMeta | undefined, template: { metadata?: ObjectMeta; spec?: PodSpec } | undefined, args: ResourceValidationArgs): Workload | undefined {
  if (!template?.spec) return undefined;
  return { kind, id: describeObject(kind, metadata, args), metadata, podLabels: template.metadata?.labels, pod: template.spec };
}

/** One validation per Kubernetes kind that carries a pod template. */
function onWorkloads(kinds: readonly WorkloadKind[], check: WorkloadCheck): ResourceValidation[] {
  const run = (w: Workload | undefined, report: ReportViolation, args: ResourceValidationArgs) => {
    if (w) check(w, report, args);
  };
  const all: Record<WorkloadKind, ResourceValidation> = {
    Deployment: validateResourceOfType(k8s.apps.v1.Deployment, (d, args, report) => run(workload("Deployment", d.metadata, d.spec?.template, args), report, args)),
    StatefulSet: validateResourceOfType(k8s.apps.v1.StatefulSet, (s, args, report) => run(workload("StatefulSet", s.metadata, s.spec?.template, args), report, args)),
    DaemonSet: validateResourceOfType(k8s.apps.v1.DaemonSet, (d, args, report) => run(workload("DaemonSet", d.metadata, d.spec?.template, args), report, args)),
    ReplicaSet: validateResourceOfType(k8s.apps.v1.ReplicaSet, (r, args, report) => run(workload("ReplicaSet", r.metadata, r.spec?.template, args), report, args)),
    Job: validateResourceOfType(k8s.batch.v1.Job, (j, args, report) => run(workload("Job", j.metadata, j.spec?.template, args), report, args)),
    CronJob: validateResourceOfType(k8s.batch.v1.CronJob, (c, args, report) => run(workload("CronJob", c.metadata, c.spec?.jobTemplate?.spec?.template, args), report, args)),
    Pod: validateResourceOfType(k8s.core.v1.Pod, (p, args, report) => run(workload("Pod", p.metadata, { metadata: p.metadata, spec: p.spec }, args), report, args)),
  };
  return kinds.map((k) => all[k]);
}

type WorkloadKind = "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job" | "CronJob" | "Pod";
const ALL_WORKLOADS: readonly WorkloadKind[] = ["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "Pod"];

const containersOf = (pod: PodSpec): Container[] => [...(pod.containers ?? [])];
const allContainersOf = (pod: PodSpec): { container: Container; field: string }[] => [
  ...(pod.initContainers ?? []).map((container) => ({ container, field: "initContainers" })),
  ...(pod.containers ?? []).map((container) => ({ container, field: "containers" })),
];
const envOf = (c: Container): EnvVar[] => [...(c.env ?? [])];
const envNamed = (c: Container, name: string): EnvVar | undefined => envOf(c).find((e) => e.name === name);
const hasValue = (e: EnvVar | undefined): boolean => !!e && ((e.value !== undefined && e.value !== "") || e.valueFrom !== undefined);

// ---------------------------------------------------------------------------------------
// Policies
// ---------------------------------------------------------------------------------------

export const datadogKeysNotInConfigMaps: ResourceValidationPolicy = {
  name: "datadog-keys-not-in-configmaps",
  description: "No Datadog API or application key in a ConfigMap (ConfigMaps are not secret: anyone who can read the namespace reads them).",
  enforcementLevel: "mandatory",
  validateResource: validateResourceOfType(k8s.core.v1.ConfigMap, (cm, args, report) => {
    const id = describeObject("ConfigMap", cm.metadata, args);
    const entries: [string, string, string][] = [
      ...Object.entries(cm.data ?? {}).map(([k, v]): [string, string, string] => ["data", k, String(v)]),
      ...Object.entries(cm.binaryData ?? {}).map(([k, v]): [string, string, string] => ["binaryData", k, Buffer.from(String(v), "base64").toString("utf8")]),
    ];
    for (const [field, key, text] of entries) {
      const why = datadogKeyIn(key, text);
      if (why) report(`${id}: ${field}["${key}"] looks like a Datadog key (${why}). ${KEY_FIX}; then remove the entry from the ConfigMap.`);
    }
  }),
};

export const datadogKeysNotInEnvLiterals: ResourceValidationPolicy = {
  name: "datadog-keys-not-in-env-literals",
  description: "No Datadog API or application key as a literal container env value.",
  enforcementLevel: "mandatory",
  validateResource: onWorkloads(ALL_WORKLOADS, (w, report) => {
    for (const { container, field } of allContainersOf(w.pod)) {
      for (const e of envOf(container)) {
        if (e.value === undefined || e.value === "") continue;
        const where = `${w.id}: ${field} "${container.name}" env ${e.name}`;
        if (KEY_NAME.test(e.name)) {
          report(`${where} is a literal value. ${KEY_FIX}: replace \`value\` with valueFrom.secretKeyRef {name: <Secret>, key: <key>}.`);
        } else if (looksLikeDatadogKey(e.value)) {
          report(`${where} holds a 32- or 40-character hex literal, the shape of a Datadog API or application key. ${KEY_FIX}.`);
        }
      }
    }
  }),
};

/** Output paths ending in id/ids hold Datadog object ids (SLO ids are 32 hex characters too). */
const ID_KEY = /ids?$/i;

/** Output paths (`a.b[0]`) whose value is shaped like a Datadog key. */
export function keyShapedOutputs(value: unknown, at = ""): string[] {
  if (typeof value === "string") return looksLikeDatadogKey(value) ? [at] : [];
  if (Array.isArray(value)) return value.flatMap((v, i) => keyShapedOutputs(v, `${at}[${i}]`));
  if (value && typeof value === "object") {
    return Object.entries(value).flatMap(([k, v]) => (ID_KEY.test(k) ? [] : keyShapedOutputs(v, at ? `${at}.${k}` : k)));
  }
  return [];
}

export const datadogKeysNotInStackOutputs: StackValidationPolicy = {
  name: "datadog-keys-not-in-stack-outputs",
  description: "No Datadog API or application key among the stack outputs (they are shown by `pulumi stack output` and in the console).",
  enforcementLevel: "mandatory",
  validateStack: (args, report) => {
    for (const stack of args.resources.filter((r) => r.type === "pulumi:pulumi:Stack")) {
      for (const path of keyShapedOutputs(stack.props)) {
        report(`Stack output "${path}" holds a 32- or 40-character hex value, the shape of a Datadog key. Do not export keys: export the name of the Secret that holds the key instead.`, stack.urn);
      }
    }
  },
};

const UST = { env: "DD_ENV", service: "DD_SERVICE", version: "DD_VERSION" } as const;
const ustLabel = (key: keyof typeof UST) => `tags.datadoghq.com/${key}`;

export const deploymentUnifiedServiceTagging: ResourceValidationPolicy = {
  name: "deployment-unified-service-tagging",
  description:
    "Every Deployment carries Datadog unified service tagging: DD_ENV, DD_SERVICE and DD_VERSION in each container and the tags.datadoghq.com/{env,service,version} labels on the Deployment and its pod template.",
  enforcementLevel: "mandatory",
  validateResource: onWorkloads(["Deployment"], (w, report) => {
    const deploymentLabels = w.metadata?.labels ?? {};
    const podLabels = w.podLabels ?? {};
    for (const key of Object.keys(UST) as (keyof typeof UST)[]) {
      const label = ustLabel(key);
      for (const [where, labels] of [
        ["metadata.labels", deploymentLabels],
        ["spec.template.metadata.labels", podLabels],
      ] as const) {
        if (!labels[label]) {
          report(`${w.id}: ${where} has no "${label}" label. Set tags.datadoghq.com/env, /service and /version on both metadata.labels and spec.template.metadata.labels, with the values of DD_ENV, DD_SERVICE and DD_VERSION.`);
        }
      }
      if (deploymentLabels[label] && podLabels[label] && deploymentLabels[label] !== podLabels[label]) {
        report(`${w.id}: label "${label}" is "${deploymentLabels[label]}" on the Deployment but "${podLabels[label]}" on the pod template. Give both the same value.`);
      }
    }
    for (const container of containersOf(w.pod)) {
      for (const key of Object.keys(UST) as (keyof typeof UST)[]) {
        const name = UST[key];
        const e = envNamed(container, name);
        const where = `${w.id}: container "${container.name}"`;
        const fieldPath = `metadata.labels['${ustLabel(key)}']`;
        if (!hasValue(e)) {
          report(`${where} has no ${name} env. Set it from the pod label: valueFrom.fieldRef.fieldPath: ${fieldPath} (so env and labels cannot disagree).`);
          continue;
        }
        const fromField = e!.valueFrom?.fieldRef?.fieldPath;
        if (fromField !== undefined && fromField !== fieldPath) {
          report(`${where} reads ${name} from ${fromField}. Read it from ${fieldPath}.`);
        }
        if (e!.value !== undefined && e!.value !== "" && podLabels[ustLabel(key)] && e!.value !== podLabels[ustLabel(key)]) {
          report(`${where} sets ${name}="${e!.value}" but the pod label ${ustLabel(key)} is "${podLabels[ustLabel(key)]}". Set ${name} from the label: valueFrom.fieldRef.fieldPath: ${fieldPath}.`);
        }
      }
    }
  }),
};

export const deploymentTraceAgentAddress: ResourceValidationPolicy = {
  name: "deployment-trace-agent-address",
  description: "Every Deployment container knows where the node's trace-agent is: DD_AGENT_HOST (hostPort) or DD_TRACE_AGENT_URL (Unix socket, mounted into the pod).",
  enforcementLevel: "mandatory",
  validateResource: onWorkloads(["Deployment"], (w, report) => {
    for (const container of containersOf(w.pod)) {
      const where = `${w.id}: container "${container.name}"`;
      const host = envNamed(container, "DD_AGENT_HOST");
      const url = envNamed(container, "DD_TRACE_AGENT_URL");
      if (!hasValue(host) && !hasValue(url)) {
        report(
          `${where} has neither DD_AGENT_HOST nor DD_TRACE_AGENT_URL, so its tracer cannot reach the Agent. ` +
            "Set DD_TRACE_AGENT_URL=unix:///var/run/datadog/apm.socket and mount the hostPath /var/run/datadog, " +
            "or DD_AGENT_HOST from valueFrom.fieldRef.fieldPath: status.hostIP (with the Agent's hostPort enabled).",
        );
        continue;
      }
      const socket = /^unix:\/\/(\/.+)/.exec(url?.value ?? "")?.[1];
      if (socket) {
        const dir = socket.slice(0, socket.lastIndexOf("/")) || "/";
        // `/var/run/datadog/` mounts the same directory as `/var/run/datadog`.
        const mounted = (container.volumeMounts ?? []).some((m) => {
          const at = String(m.mountPath).replace(/\/+$/, "");
          return dir === at || dir.startsWith(`${at}/`);
        });
        if (!mounted) {
          report(`${where} sends traces to ${socket} but mounts nothing at ${dir}. Mount the Agent's hostPath directory ${dir} (a hostPath volume, readOnly is enough).`);
        }
      }
    }
  }),
};

/** Problems with an image reference: empty, untagged, `:latest`, or a malformed digest. */
export function imagePinProblem(image: string | undefined): string | undefined {
  if (!image) return "has no image";
  const [name, digest] = image.split("@");
  if (digest !== undefined) return /^sha256:[a-f0-9]{64}$/.test(digest) ? undefined : `has a malformed digest in "${image}"`;
  const lastPart = name.split("/").pop() ?? "";
  const tag = lastPart.includes(":") ? lastPart.slice(lastPart.indexOf(":") + 1) : undefined;
  if (tag === undefined) return `uses "${image}" without a tag (Kubernetes pulls :latest)`;
  if (tag === "latest") return `uses the mutable tag latest ("${image}")`;
  return undefined;
}

export const containerImagesPinned: ResourceValidationPolicy = {
  name: "container-images-pinned",
  description: "Every container image is pinned by a version tag or a digest; never :latest or untagged.",
  enforcementLevel: "mandatory",
  validateResource: onWorkloads(ALL_WORKLOADS, (w, report) => {
    for (const { container, field } of allContainersOf(w.pod)) {
      const problem = imagePinProblem(container.image);
      if (problem) {
        report(`${w.id}: ${field} "${container.name}" ${problem}. Pin the image by version tag (repo/name:1.2.3) or digest (repo/name@sha256:…), e.g. the services' payments-apm:services.<service>.image config.`);
      }
    }
  }),
};

export const appContainersNonRootReadOnly: ResourceValidationPolicy = {
  name: "app-containers-non-root-read-only",
  description: "Application containers (Deployments, StatefulSets) run as a non-root user on a read-only root filesystem.",
  enforcementLevel: "mandatory",
  validateResource: onWorkloads(["Deployment", "StatefulSet"], (w, report) => {
    const pod = w.pod.securityContext;
    for (const { container, field } of allContainersOf(w.pod)) {
      const sc = container.securityContext;
      const where = `${w.id}: ${field} "${container.name}"`;
      const nonRoot = sc?.runAsNonRoot ?? pod?.runAsNonRoot;
      const user = sc?.runAsUser ?? pod?.runAsUser;
      if (nonRoot !== true) {
        report(`${where} may run as root. Set securityContext.runAsNonRoot: true (on the container or the pod) and a non-zero runAsUser.`);
      } else if (user === 0) {
        report(`${where} sets runAsUser: 0 (root). Set a non-zero runAsUser, e.g. 1000.`);
      }
      if (sc?.readOnlyRootFilesystem !== true) {
        report(`${where} has a writable root filesystem. Set securityContext.readOnlyRootFilesystem: true on the container and mount an emptyDir where the app must write (e.g. /tmp).`);
      }
    }
  }),
};

/** `@slack-…`, `@pagerduty-…`, `@team@example.com` in a monitor message. */
const NOTIFY_HANDLE = /(^|[\s(])@[A-Za-z0-9][\w.+-]*/;

export const monitorHasNotificationHandle: ResourceValidationPolicy = {
  name: "monitor-has-notification-handle",
  description: "Every Datadog monitor notifies someone: its message mentions at least one @handle.",
  enforcementLevel: "mandatory",
  validateResource: validateResourceOfType(datadog.Monitor, (m, args, report) => {
    if (!NOTIFY_HANDLE.test(m.message ?? "")) {
      report(`Monitor ${m.name ? `"${m.name}"` : args.name}: its message mentions no @handle, so an alert reaches nobody. Add a handle such as @slack-payments-alerts or @pagerduty-payments to the message (payments-apm:monitors.notify).`);
    }
  }),
};

export const monitorHasEnvAndServiceTags: ResourceValidationPolicy = {
  name: "monitor-has-env-and-service-tags",
  description: "Every Datadog monitor carries env: and service: tags (to route, filter and mute by environment and service).",
  enforcementLevel: "mandatory",
  validateResource: validateResourceOfType(datadog.Monitor, (m, args, report) => {
    const tags = (m.tags ?? []).map(String);
    for (const key of ["env", "service"]) {
      if (!tags.some((t) => t.startsWith(`${key}:`) && t.length > key.length + 1)) {
        report(`Monitor ${m.name ? `"${m.name}"` : args.name}: no ${key}: tag. Add a "${key}:<${key}>" tag matching the ${key} the query is scoped to.`);
      }
    }
  }),
};

/** A node taint the Agent must tolerate. */
export interface NodeTaint {
  readonly key: string;
  readonly value?: string;
  readonly effect: "NoSchedule" | "PreferNoSchedule" | "NoExecute";
}
type Toleration = pulumi.Unwrap<k8s.types.input.core.v1.Toleration>;

/** Kubernetes' matching rule: does `t` let a pod onto a node with `taint`? */
export function tolerates(t: Toleration, taint: NodeTaint): boolean {
  if (t.effect && t.effect !== taint.effect) return false;
  const operator = t.operator ?? "Equal";
  if (!t.key) return operator === "Exists";
  if (t.key !== taint.key) return false;
  return operator === "Exists" || (t.value ?? "") === (taint.value ?? "");
}

/** Images of the Datadog Agent: gcr.io/datadoghq/agent, datadog/agent, public.ecr.aws/datadog/agent… */
const AGENT_IMAGE = /(^|\/)datadog(hq)?\/agent([:@]|$)/;

export const AGENT_TAINTS_CONFIG_SCHEMA: PolicyConfigSchema = {
  properties: {
    nodeTaints: {
      description: "Taints on the cluster's nodes that the Datadog Agent DaemonSet must tolerate (kubectl get nodes -o jsonpath='{.items[*].spec.taints}').",
      type: "array",
      default: [],
      items: {
        type: "object",
        properties: {
          key: { type: "string", minLength: 1 },
          value: { type: "string" },
          effect: { type: "string", enum: ["NoSchedule", "PreferNoSchedule", "NoExecute"] },
        },
        required: ["key", "effect"],
        additionalProperties: false,
      },
    },
  },
};

export const datadogAgentToleratesNodeTaints: ResourceValidationPolicy = {
  name: "datadog-agent-tolerates-node-taints",
  description: "The Datadog Agent DaemonSet tolerates every node taint listed in the policy config, so every node gets an Agent (and its pods' traces).",
  enforcementLevel: "mandatory",
  configSchema: AGENT_TAINTS_CONFIG_SCHEMA,
  validateResource: onWorkloads(["DaemonSet"], (w, report, args) => {
    if (!containersOf(w.pod).some((c) => AGENT_IMAGE.test(c.image ?? ""))) return;
    const taints = args.getConfig<{ nodeTaints?: NodeTaint[] }>().nodeTaints ?? [];
    const tolerations = [...(w.pod.tolerations ?? [])];
    for (const taint of taints) {
      if (!tolerations.some((t) => tolerates(t, taint))) {
        const shown = `${taint.key}${taint.value !== undefined ? `=${taint.value}` : ""}:${taint.effect}`;
        const yaml = `{key: ${taint.key}, operator: ${taint.value !== undefined ? `Equal, value: ${taint.value}` : "Exists"}, effect: ${taint.effect}}`;
        report(`${w.id}: does not tolerate the node taint ${shown}, so nodes with it run no Agent and their pods' traces are lost. Add ${yaml} to payments-apm:datadog.tolerations.`);
      }
    }
  }),
};

/** Every policy of the pack. */
export const policies: (ResourceValidationPolicy | StackValidationPolicy)[] = [
  datadogKeysNotInConfigMaps,
  datadogKeysNotInEnvLiterals,
  datadogKeysNotInStackOutputs,
  deploymentUnifiedServiceTagging,
  deploymentTraceAgentAddress,
  containerImagesPinned,
  appContainersNonRootReadOnly,
  monitorHasNotificationHandle,
  monitorHasEnvAndServiceTags,
  datadogAgentToleratesNodeTaints,
];
