/**
 * Token verification against an issuer's published keys (JWKS), shared by the user and the
 * service verifiers. jose fetches and caches the key set: an unknown `kid` refetches it, at
 * most once per cooldown, so a rotated key is accepted without a restart.
 */
import { createRemoteJWKSet, jwtVerify, type JWTPayload } from "jose";

/** Asymmetric only: `none` and HS* (a public key used as an HMAC secret) are refused. */
export const ALLOWED_ALGORITHMS = ["ES256", "RS256"];

export interface KeySetSettings {
  readonly issuer: string;
  readonly audience: string;
  readonly jwksUrl: string;
  /** Accepted clock difference for exp/nbf, in seconds. */
  readonly clockToleranceSeconds: number;
  /** Minimum time between two fetches an unknown `kid` triggers. */
  readonly cooldownMs: number;
  /** Keys older than this are fetched again before use. */
  readonly cacheMaxAgeMs: number;
  /** Deadline of one key set fetch. */
  readonly timeoutMs: number;
}

export interface VerifyOptions {
  /** The JOSE header `typ` the tokens must carry (RFC 9068 access tokens: `at+jwt`). */
  readonly typ?: string;
  /** Refuse tokens issued (`iat`) longer ago than this; `iat` is then required. */
  readonly maxTokenAgeSeconds?: number;
}

/** Verifies signature, algorithm, `iss`, `aud`, `exp` and `nbf` (with the tolerance); resolves with the claims. */
export function keySetVerifier(settings: KeySetSettings, options: VerifyOptions = {}): (token: string) => Promise<JWTPayload> {
  const keys = createRemoteJWKSet(new URL(settings.jwksUrl), {
    cooldownDuration: settings.cooldownMs,
    cacheMaxAge: settings.cacheMaxAgeMs,
    timeoutDuration: settings.timeoutMs,
  });
  return async (token) => {
    const { payload } = await jwtVerify(token, keys, {
      algorithms: ALLOWED_ALGORITHMS,
      issuer: settings.issuer,
      audience: settings.audience,
      clockTolerance: settings.clockToleranceSeconds,
      requiredClaims: ["exp", "sub"],
      typ: options.typ,
      maxTokenAge: options.maxTokenAgeSeconds,
    });
    return payload;
  };
}
