/**
 * What an authentication failure looks like on the wire: status, error code and the
 * RFC 6750 `WWW-Authenticate` challenge. Pure, so the table of cases is tested without a
 * server; the hook (hook.ts) only places the answer.
 */
import { errors } from "jose";
import { AUTH_FAILURES, type AuthFailure } from "../tracing/conventions";

/** A refused authentication: the reason is tagged on the span, never sent beyond the error code. */
export class AuthRefused extends Error {
  override readonly name = "AuthRefused";
  constructor(readonly reason: AuthFailure) {
    super(reason);
  }
}

export interface Refusal {
  readonly status: 401 | 403 | 503;
  /** The `error` of the JSON answer. */
  readonly error: "authentication_required" | "invalid_token" | "insufficient_scope" | "authentication_unavailable";
  /** The `WWW-Authenticate` value, when the answer carries one. */
  readonly challenge?: string;
}

/**
 * The answer for a failure. A request without a bearer token gets a challenge with no error
 * code, as RFC 6750 §3.1 asks ("the resource server SHOULD NOT include an error code" when
 * the request lacks any authentication information); every token that fails verification
 * gets `error="invalid_token"`; a valid token without the scope `insufficient_scope` (403).
 * Keys that cannot be fetched are the server's problem: 503 without a challenge, never a pass.
 */
export function refusalFor(reason: AuthFailure, realm: string, requiredScope?: string): Refusal {
  const bearer = (params: string) => `Bearer realm="${realm}"${params}`;
  switch (reason) {
    case AUTH_FAILURES.missingToken:
      return { status: 401, error: "authentication_required", challenge: bearer("") };
    case AUTH_FAILURES.keysUnavailable:
      return { status: 503, error: "authentication_unavailable" };
    case AUTH_FAILURES.insufficientScope:
      return {
        status: 403,
        error: "insufficient_scope",
        challenge: bearer(`, error="insufficient_scope"${requiredScope ? `, scope="${requiredScope}"` : ""}`),
      };
    default:
      return { status: 401, error: "invalid_token", challenge: bearer(`, error="invalid_token"`) };
  }
}

/** Longest token accepted: far above any access token, low enough to bound the work. */
export const MAX_TOKEN_LENGTH = 8 * 1024;

/** b64token of RFC 6750 §2.1. */
const B64_TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;

/**
 * The bearer token of an `Authorization` header. Undefined when there is none (no header,
 * or another scheme): a missing token. Throws `malformed_token` for a Bearer header whose
 * token is empty, too long or not b64token.
 */
export function bearerToken(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const match = /^Bearer(?:\s+(.*))?$/is.exec(header.trim());
  if (!match) return undefined;
  const token = (match[1] ?? "").trim();
  if (token === "" || token.length > MAX_TOKEN_LENGTH || !B64_TOKEN.test(token)) {
    throw new AuthRefused(AUTH_FAILURES.malformedToken);
  }
  return token;
}

/**
 * The failure reason for what `jwtVerify` threw. Anything that is not a verdict on the
 * token (JWKS unreachable, timed out, not JSON, not a key set) is `keys_unavailable`.
 */
export function failureOf(error: unknown): AuthFailure {
  if (error instanceof AuthRefused) return error.reason;
  if (error instanceof errors.JWTExpired) return AUTH_FAILURES.expired;
  if (error instanceof errors.JWTClaimValidationFailed) {
    switch (error.claim) {
      case "nbf":
        return AUTH_FAILURES.notYetValid;
      case "iss":
        return AUTH_FAILURES.wrongIssuer;
      case "aud":
        return AUTH_FAILURES.wrongAudience;
      case "typ":
        return AUTH_FAILURES.wrongType;
      default:
        return AUTH_FAILURES.invalidClaims;
    }
  }
  if (error instanceof errors.JOSEAlgNotAllowed) return AUTH_FAILURES.algorithmNotAllowed;
  if (error instanceof errors.JWSSignatureVerificationFailed) return AUTH_FAILURES.badSignature;
  if (error instanceof errors.JWKSNoMatchingKey || error instanceof errors.JWKSMultipleMatchingKeys) {
    return AUTH_FAILURES.unknownKey;
  }
  if (
    error instanceof errors.JWSInvalid ||
    error instanceof errors.JWTInvalid ||
    error instanceof errors.JOSENotSupported ||
    error instanceof errors.JWKInvalid
  ) {
    return AUTH_FAILURES.malformedToken;
  }
  return AUTH_FAILURES.keysUnavailable;
}
