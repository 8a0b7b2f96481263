/**
 * Turns a recorded program run into what a reviewer reads: Kubernetes objects ready for
 * `kubectl apply`, and the Datadog objects as the provider would send them.
 */
import type { ProgramRun, RecordedResource } from "./mock-engine";

export interface KubernetesObject {
  apiVersion: string;
  kind: string;
  metadata: { name?: string; namespace?: string; [k: string]: unknown };
  [k: string]: unknown;
}

/** Apply order: what others refer to first (as `kubectl apply -f dir/` reads files sorted by name). */
const KIND_ORDER = ["Namespace", "PriorityClass", "ServiceAccount", "Secret", "ConfigMap", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "Service", "DaemonSet", "Job", "Deployment", "PodDisruptionBudget"];

export const isKubernetesResource = (r: RecordedResource) => r.type.startsWith("kubernetes:");

/** The Kubernetes objects of a run, in apply order, each with its logical resource name. */
export function kubernetesObjects(run: ProgramRun): { resource: RecordedResource; object: KubernetesObject }[] {
  return run.resources
    .filter(isKubernetesResource)
    .map((resource) => ({ resource, object: stripUndefined(resource.inputs) as KubernetesObject }))
    .sort((a, b) => kindRank(a.object.kind) - kindRank(b.object.kind) || objectId(a.object).localeCompare(objectId(b.object)));
}

function kindRank(kind: string): number {
  const i = KIND_ORDER.indexOf(kind);
  return i === -1 ? KIND_ORDER.length : i;
}

/** `Kind/namespace/name` (or `Kind/name` for cluster-scoped objects). */
export function objectId(o: KubernetesObject): string {
  return [o.kind, o.metadata?.namespace, o.metadata?.name].filter(Boolean).join("/");
}

/** A stable file name that keeps apply order when sorted: `03-secret-datadog-datadog-agent.yaml`. */
export function manifestFileName(o: KubernetesObject): string {
  const rank = String(kindRank(o.kind)).padStart(2, "0");
  const parts = [o.kind, o.metadata?.namespace, o.metadata?.name].filter(Boolean).map((p) => String(p).toLowerCase().replace(/[^a-z0-9.-]+/g, "-"));
  return `${rank}-${parts.join("-")}.yaml`;
}

/** Datadog resources of a run, by kind (`Monitor`, `ApmRetentionFilter`, …). */
export function datadogObjects(run: ProgramRun): { kind: string; name: string; inputs: Record<string, unknown> }[] {
  return run.resources
    .filter((r) => r.type.startsWith("datadog:index/"))
    .map((r) => ({ kind: r.type.split(":").pop() as string, name: r.name, inputs: stripUndefined(r.inputs) as Record<string, unknown> }))
    .sort((a, b) => a.kind.localeCompare(b.kind) || a.name.localeCompare(b.name));
}

/** The container env of a Deployment, by container name. */
export function deploymentEnv(o: KubernetesObject): Record<string, { name: string; value?: string; valueFrom?: unknown }[]> {
  const containers = ((o.spec as any)?.template?.spec?.containers ?? []) as any[];
  return Object.fromEntries(containers.map((c) => [c.name, c.env ?? []]));
}

function stripUndefined(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(stripUndefined);
  if (v && typeof v === "object") {
    return Object.fromEntries(
      Object.entries(v)
        .filter(([, x]) => x !== undefined)
        .map(([k, x]) => [k, stripUndefined(x)]),
    );
  }
  return v;
}
