/**
 * The callers of payment-service: OAuth 2.0 bearer access tokens (RFC 6750), JWTs as RFC
 * 9068 profiles them (`typ: at+jwt`, `sub`, `scope`), issued by the identity provider.
 */
import { AUTH_FAILURES } from "../tracing/conventions";
import { keySetVerifier, type KeySetSettings } from "./keys";
import { AuthRefused } from "./refusals";

/** The scope a token needs to make payments. */
export const PAYMENTS_WRITE_SCOPE = "payments:write";

export interface User {
  /** The token's `sub`: the user id payments are bound to. */
  readonly id: string;
}

export type UserTokenVerifier = (token: string) => Promise<User>;

export function userTokenVerifier(settings: KeySetSettings, requiredScope = PAYMENTS_WRITE_SCOPE): UserTokenVerifier {
  const verify = keySetVerifier(settings, { typ: "at+jwt" });
  return async (token) => {
    const claims = await verify(token);
    if (typeof claims.sub !== "string" || claims.sub === "") throw new AuthRefused(AUTH_FAILURES.invalidClaims);
    const scopes = typeof claims.scope === "string" ? claims.scope.split(" ") : [];
    if (!scopes.includes(requiredScope)) throw new AuthRefused(AUTH_FAILURES.insufficientScope);
    return { id: claims.sub };
  };
}
