/**
 * Rolling pods when a Secret they read changes. Env from a Secret (`secretKeyRef`) is read
 * only at container start, so a new value in the Secret alone leaves running pods on the
 * old one. A pod-template annotation holding a checksum of the Secret's data changes with
 * it, and a changed pod template makes the DaemonSet or Deployment roll (the Helm chart's
 * `checksum/api_key`).
 *
 * The checksum is an HMAC keyed by a random stack secret (`payments-apm:rolloutChecksumKey`),
 * not a bare hash: annotations are readable by whoever may `get` the pods, and a bare
 * SHA-256 of `{"PGPASSWORD":"…"}` would let them test password guesses offline. Without
 * the key, the annotation says nothing about the value; with the same key and data it is
 * the same on every run, so an unchanged Secret rolls nothing.
 */
import { createHmac } from "node:crypto";
import * as pulumi from "@pulumi/pulumi";

/** The pod-template annotation tracking the Secret `secretName`: `checksum/<secretName>`. */
export const secretChecksumAnnotation = (secretName: string) => `checksum/${secretName}`;

/** The shortest checksum key accepted: 32 characters (`openssl rand -hex 32` gives 64). */
export const MIN_CHECKSUM_KEY_LENGTH = 32;

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
 * HMAC-SHA256 hex of {@link canonicalSecretData} as UTF-8, keyed by `key` (UTF-8). Throws
 * when the key is shorter than {@link MIN_CHECKSUM_KEY_LENGTH}: a short key is guessable,
 * and with it the annotation is a password oracle again.
 */
export function secretDataChecksum(data: Readonly<Record<string, string>>, key: string): string {
  if (key.length < MIN_CHECKSUM_KEY_LENGTH) {
    throw new Error(
      `payments-apm:rolloutChecksumKey must be at least ${MIN_CHECKSUM_KEY_LENGTH} characters (e.g. \`openssl rand -hex 32\`), got ${key.length}`,
    );
  }
  // Node encodes a string key and data as UTF-8.
  return createHmac("sha256", key).update(canonicalSecretData(data)).digest("hex");
}

/**
 * The pod-template annotation for a Secret holding `data` (the same map the Secret gets as
 * `stringData`), keyed by `key`. The value is marked secret: Pulumi would mark it so anyway,
 * being derived from secret config, and this way it stays encrypted in state and shows as
 * `[secret]` in a preview whatever the caller passed. Computed from the inputs, not from the
 * Secret's outputs, so a preview already knows it and shows the pods will roll.
 */
export function secretChecksumAnnotations(
  secretName: string,
  data: Readonly<Record<string, pulumi.Input<string>>>,
  key: pulumi.Input<string>,
): Record<string, pulumi.Output<string>> {
  return {
    [secretChecksumAnnotation(secretName)]: pulumi.secret(pulumi.all([data, key])).apply(([d, k]) => secretDataChecksum(d, k)),
  };
}
