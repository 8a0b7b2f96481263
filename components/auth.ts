import * as pulumi from "@pulumi/pulumi";
import type { StackSettings } from "./config";

/**
 * payment-service's env for verifying its callers' access tokens (app/src/auth/user-tokens.ts):
 * the identity provider's issuer, the API's audience, the provider's key set.
 */
export function userAuthEnv(auth: StackSettings["auth"]): Record<string, string> {
  return {
    AUTH_ISSUER: auth.issuer,
    AUTH_AUDIENCE: auth.audience,
    AUTH_JWKS_URL: auth.jwksUrl,
    AUTH_CLOCK_TOLERANCE_SECONDS: String(auth.clockToleranceSeconds),
  };
}

/** The subject of a ServiceAccount's tokens. */
export const serviceAccountSubject = (namespace: string, name: string) => `system:serviceaccount:${namespace}:${name}`;

/**
 * A service's env for verifying its callers' projected ServiceAccount tokens: the cluster's
 * OIDC issuer and its key set (EKS serves it at `<issuer>/keys`), the audience the callers'
 * tokens are for (the service's own name), the service accounts allowed.
 */
export function serviceAuthEnv(args: {
  readonly issuer: pulumi.Input<string>;
  readonly audience: string;
  readonly namespace: string;
  readonly callers: readonly string[];
}): Record<string, pulumi.Input<string>> {
  return {
    SERVICE_AUTH_ISSUER: args.issuer,
    SERVICE_AUTH_JWKS_URL: pulumi.interpolate`${args.issuer}/keys`,
    SERVICE_AUTH_AUDIENCE: args.audience,
    SERVICE_AUTH_SUBJECTS: args.callers.map((caller) => serviceAccountSubject(args.namespace, caller)).join(","),
  };
}

/** payment-service's per-user policies: the idempotency window and the rate limit (per pod). */
export function paymentPolicyEnv(payments: StackSettings["payments"]): Record<string, string> {
  return {
    IDEMPOTENCY_WINDOW_SECONDS: String(payments.idempotencyWindowHours * 3600),
    RATE_LIMIT_PER_MINUTE: String(payments.rateLimit.perUserPerMinute),
    RATE_LIMIT_BURST: String(payments.rateLimit.burst),
  };
}
