/**
 * Validates rendered Kubernetes objects against the Kubernetes OpenAPI schemas shipped by
 * `kubernetes-models` 4.5.1 (Kubernetes 1.27), offline. Those schemas check types, enums
 * and required fields; they accept unknown fields, so typos in field names are left to the
 * TypeScript input types.
 */
import * as assert from "node:assert/strict";
import type { RecordedResource } from "./mock-engine";

interface SchemaError {
  readonly instancePath: string;
  readonly keyword: string;
  readonly params: Record<string, unknown>;
  readonly message?: string;
}

interface ModelClass {
  readonly apiVersion: string;
  readonly kind: string;
  new (data: unknown): { validate(): void };
}

/**
 * API versions kubernetes-models still ships but the API server no longer serves (the
 * Kubernetes deprecation guide), with the release that removed them: a schema pass for
 * these would hide a certain failure at deploy time.
 */
const REMOVED_API_VERSIONS: Readonly<Record<string, string>> = {
  "extensions/v1beta1": "1.22",
  "apps/v1beta1": "1.16",
  "apps/v1beta2": "1.16",
  "admissionregistration.k8s.io/v1beta1": "1.22",
  "apiextensions.k8s.io/v1beta1": "1.22",
  "apiregistration.k8s.io/v1beta1": "1.22",
  "authentication.k8s.io/v1beta1": "1.22",
  "authorization.k8s.io/v1beta1": "1.22",
  "certificates.k8s.io/v1beta1": "1.22",
  "coordination.k8s.io/v1beta1": "1.22",
  "networking.k8s.io/v1beta1": "1.22",
  "rbac.authorization.k8s.io/v1beta1": "1.22",
  "scheduling.k8s.io/v1beta1": "1.22",
  "batch/v1beta1": "1.25",
  "discovery.k8s.io/v1beta1": "1.25",
  "events.k8s.io/v1beta1": "1.25",
  "node.k8s.io/v1beta1": "1.25",
  "policy/v1beta1": "1.25",
  "autoscaling/v2beta1": "1.25",
  "autoscaling/v2beta2": "1.26",
  "flowcontrol.apiserver.k8s.io/v1beta1": "1.26",
  "storage.k8s.io/v1beta1": "1.27",
  "flowcontrol.apiserver.k8s.io/v1beta2": "1.29",
};

const GROUP = /^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/;
const VERSION = /^v\d+((alpha|beta)\d+)?$/;
const KIND = /^[A-Z][A-Za-z0-9]*$/;

/** The kubernetes-models class for an apiVersion and kind, or undefined if it has none. */
function modelFor(apiVersion: string, kind: string): ModelClass | undefined {
  const slash = apiVersion.indexOf("/");
  const group = slash < 0 ? "" : apiVersion.slice(0, slash);
  const version = apiVersion.slice(slash + 1);
  if ((group !== "" && !GROUP.test(group)) || !VERSION.test(version) || !KIND.test(kind)) return undefined;
  // Core objects live under `kubernetes-models/v1`, the others under `<group>/<version>`.
  const modulePath = group === "" ? `kubernetes-models/${version}/${kind}` : `kubernetes-models/${group}/${version}/${kind}`;
  try {
    const model = require(modulePath)[kind] as ModelClass | undefined;
    return model && model.apiVersion === apiVersion && model.kind === kind ? model : undefined;
  } catch {
    return undefined;
  }
}

/** `/spec/containers/0/ports/0/containerPort` → `spec.containers[0].ports[0].containerPort` */
function fieldPath(instancePath: string, child?: string): string {
  const segments = instancePath.split("/").slice(1);
  if (child !== undefined) segments.push(child);
  let out = "";
  for (const segment of segments) {
    const s = segment.replace(/~1/g, "/").replace(/~0/g, "~");
    out += /^\d+$/.test(s) ? `[${s}]` : out === "" ? s : `.${s}`;
  }
  return out === "" ? "(root)" : out;
}

/** One readable message per field: `oneOf` alternatives (IntOrString) are folded together. */
function describeErrors(errors: readonly SchemaError[]): string[] {
  const byPath = new Map<string, SchemaError[]>();
  for (const e of errors) {
    const key = e.keyword === "required" ? fieldPath(e.instancePath, String(e.params.missingProperty)) : fieldPath(e.instancePath);
    byPath.set(key, [...(byPath.get(key) ?? []), e]);
  }
  const out: string[] = [];
  for (const [path, errs] of byPath) {
    const types = errs.filter((e) => e.keyword === "type").map((e) => String(e.params.type));
    const alternatives = errs.some((e) => e.keyword === "oneOf" || e.keyword === "anyOf");
    if (alternatives && types.length > 0) {
      out.push(`${path} must be ${[...new Set(types)].join(" or ")}`);
      continue;
    }
    for (const e of errs) {
      if (e.keyword === "required") out.push(`${path} is required`);
      else if (e.keyword === "enum") out.push(`${path} ${e.message} (${(e.params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(", ")})`);
      else out.push(`${path} ${e.message ?? e.keyword}`);
    }
  }
  return [...new Set(out)];
}

function str(v: unknown): string | undefined {
  return typeof v === "string" && v !== "" ? v : undefined;
}

/**
 * The problems of one Kubernetes object, each as `<Kind>/<namespace>/<name>: <field path>
 * <message>` (`<Kind>/<name>` when it has no namespace); empty when it is valid. An
 * apiVersion/kind without a schema (custom resources included), or one removed from
 * Kubernetes, is a problem, never a silent pass.
 */
export function validateKubernetesObject(obj: unknown): string[] {
  const o = (obj && typeof obj === "object" ? obj : {}) as Record<string, any>;
  const kind = str(o.kind);
  const apiVersion = str(o.apiVersion);
  const name = str(o.metadata?.name) ?? "<unnamed>";
  const namespace = str(o.metadata?.namespace);
  const label = `${kind ?? "<no kind>"}/${namespace ? `${namespace}/` : ""}${name}`;

  if (!kind || !apiVersion) return [`${label}: ${!apiVersion ? "apiVersion" : "kind"} is required`];
  const Model = modelFor(apiVersion, kind);
  if (!Model) return [`${label}: apiVersion/kind ${apiVersion} ${kind} is not a Kubernetes kind known to kubernetes-models 4.5.1`];
  const removedIn = REMOVED_API_VERSIONS[apiVersion];
  if (removedIn) return [`${label}: apiVersion ${apiVersion} is no longer served (removed in Kubernetes ${removedIn})`];
  try {
    new Model(o).validate();
    return [];
  } catch (e) {
    const errors = (e as { errors?: SchemaError[] }).errors;
    if (!Array.isArray(errors)) return [`${label}: (root) ${(e as Error).message}`];
    return describeErrors(errors).map((p) => `${label}: ${p}`);
  }
}

/**
 * Validates every Kubernetes object among the recorded resources (type `kubernetes:*`; the
 * provider's type is `pulumi:providers:kubernetes`) and fails with all problems at once.
 * Returns how many objects were checked.
 */
export function assertValidKubernetesObjects(resources: readonly RecordedResource[]): number {
  const objects = resources.filter((r) => r.type.startsWith("kubernetes:"));
  const problems = objects.flatMap((r) => validateKubernetesObject(r.inputs).map((p) => `${p}  [${r.type} ${r.name}]`));
  assert.deepEqual(problems, [], `Kubernetes objects fail their schemas:\n  ${problems.join("\n  ")}`);
  return objects.length;
}
