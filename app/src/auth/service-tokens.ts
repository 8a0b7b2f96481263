/**
 * Service-to-service identity: Kubernetes projected ServiceAccount tokens. payment-service
 * presents its own (audience fraud-service, at most an hour old, rotated by the kubelet in
 * the file it mounts); fraud-service verifies it against the cluster's OIDC issuer and its
 * keys and accepts only the listed service accounts.
 */
import { readFileSync } from "node:fs";
import { AUTH_FAILURES } from "../tracing/conventions";
import { keySetVerifier, type KeySetSettings } from "./keys";
import { AuthRefused } from "./refusals";

/** The longest-lived token accepted: projected tokens are asked for 1 h, the kubelet renews them at 80 %. */
export const MAX_SERVICE_TOKEN_AGE_SECONDS = 3600;

export interface ServiceAccount {
  /** `system:serviceaccount:<namespace>:<name>`. */
  readonly id: string;
}

export type ServiceTokenVerifier = (token: string) => Promise<ServiceAccount>;

export function serviceTokenVerifier(settings: KeySetSettings, subjects: readonly string[]): ServiceTokenVerifier {
  const allowed = new Set(subjects);
  const verify = keySetVerifier(settings, { maxTokenAgeSeconds: MAX_SERVICE_TOKEN_AGE_SECONDS });
  return async (token) => {
    const claims = await verify(token);
    if (typeof claims.sub !== "string" || !allowed.has(claims.sub)) throw new AuthRefused(AUTH_FAILURES.subjectNotAllowed);
    return { id: claims.sub };
  };
}

/**
 * The token in `file`, read again once the copy in hand is `rereadMs` old: the kubelet
 * replaces the file well before the token expires, and a restart must not be needed to
 * follow it. Throws when the file cannot be read or is empty.
 */
export function serviceTokenFile(file: string, rereadMs: number): () => string {
  let token = "";
  let readAt = -Infinity;
  return () => {
    const now = performance.now();
    if (token === "" || now - readAt >= rereadMs) {
      const text = readFileSync(file, "utf8").trim();
      if (text === "") throw new Error(`service token file ${file} is empty`);
      token = text;
      readAt = now;
    }
    return token;
  };
}
