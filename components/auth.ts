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
