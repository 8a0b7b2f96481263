/**
 * Rolling pods when a Secret they read changes. Env from a Secret (`secretKeyRef`) is read
 * only at container start, so a new value in the Secret alone leaves running pods on the
 * old one. A pod-template annotation holding a checksum of the Secret's data changes with
 * it, and a changed pod template makes the DaemonSet or Deployment roll (the Helm chart's
 * `checksum/api_key`).
 */
import { createHash } from "node:crypto";
import * as pulumi from "@pulumi/pulumi";

/** The pod-template annotation tracking the Secret `secretName`: `checksum/<secretName>`. */
export const secretChecksumAnnotation = (secretName: string) => `checksum/${secretName}`;

/**
 * What is hashed: the Secret's data as canonical JSON, keys sorted by UTF-16 code unit (the
 * default sort; not `localeCompare`, which depends on the machine's locale), e.g. `{"api-key":"…"}`. Hashing
 * the whole map rather than the bare values means a renamed, added or removed key rolls the
 * pods too, and the result does not depend on the order the keys were written in.
 */
export function canonicalSecretData(data: Readonly<Record<string, string>>): string {
  const keys = Object.keys(data).sort();
  return JSON.stringify(Object.fromEntries(keys.map((k) => [k, data[k]])));
}

/**
 * SHA-256 hex of {@link canonicalSecretData} as UTF-8. Plain SHA-256, no salt or HMAC key: it
 * must be reproducible from the data alone on every run, or each `pulumi up` would roll the
 * pods. It is one-way, but not a guard for a guessable value: annotations are readable by
 * anyone who may `get` the pods.
 */
export function secretDataChecksum(data: Readonly<Record<string, string>>): string {
  return createHash("sha256").update(canonicalSecretData(data), "utf8").digest("hex");
}

/**
 * The pod-template annotation for a Secret holding `data` (the same map the Secret gets as
 * `stringData`). The value is marked secret: Pulumi would mark it so anyway, being derived
 * from secret config, and this way it stays encrypted in state and shows as `[secret]` in a
 * preview whatever the caller passed. Computed from the inputs, not from the Secret's
 * outputs, so a preview already knows it and shows the pods will roll.
 */
export function secretChecksumAnnotations(
  secretName: string,
  data: Readonly<Record<string, pulumi.Input<string>>>,
): Record<string, pulumi.Output<string>> {
  return { [secretChecksumAnnotation(secretName)]: pulumi.secret(data).apply(secretDataChecksum) };
}
