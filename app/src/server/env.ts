import { z } from "zod";
import { DEFAULT_PORT } from "../tracing/conventions";

/** An unset or empty variable takes the default. */
const unsetIfEmpty = (value: unknown) => (value === "" ? undefined : value);

export function integerVar(defaultValue: number, min: number, max: number) {
  return z.preprocess(unsetIfEmpty, z.coerce.number().int().min(min).max(max).default(defaultValue));
}

export function stringVar(defaultValue: string) {
  return z.preprocess(unsetIfEmpty, z.string().default(defaultValue));
}

/** Variables every service reads. */
export const commonEnv = {
  PORT: integerVar(DEFAULT_PORT, 0, 65535),
  HOST: stringVar("0.0.0.0"),
  LOG_LEVEL: z.preprocess(
    unsetIfEmpty,
    z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  ),
  /** Upper bound on draining requests, closing pools and flushing traces after SIGTERM. */
  SHUTDOWN_TIMEOUT_MS: integerVar(20_000, 100, 600_000),
  /** Whole request (headers and body) must arrive within it, or 408 and the connection closes. */
  HTTP_REQUEST_TIMEOUT_MS: integerVar(10_000, 100, 300_000),
  /** Request headers must arrive within it (slow-header clients), or 408. At most HTTP_REQUEST_TIMEOUT_MS. */
  HTTP_HEADERS_TIMEOUT_MS: integerVar(5_000, 100, 300_000),
  /** An idle keep-alive connection is closed after it. Above the load balancers' and clients' idle timeouts (60 s). */
  HTTP_KEEP_ALIVE_TIMEOUT_MS: integerVar(72_000, 1_000, 600_000),
  /** Requests served on one keep-alive connection before the server closes it. */
  HTTP_MAX_REQUESTS_PER_SOCKET: integerVar(1_000, 1, 1_000_000),
  /** Open connections accepted at once; further ones are closed at accept. */
  HTTP_MAX_CONNECTIONS: integerVar(1_024, 1, 1_000_000),
};

/** The server limits out of the parsed common variables. */
export function serverLimits(env: {
  HTTP_REQUEST_TIMEOUT_MS: number;
  HTTP_HEADERS_TIMEOUT_MS: number;
  HTTP_KEEP_ALIVE_TIMEOUT_MS: number;
  HTTP_MAX_REQUESTS_PER_SOCKET: number;
  HTTP_MAX_CONNECTIONS: number;
}) {
  return {
    requestTimeoutMs: env.HTTP_REQUEST_TIMEOUT_MS,
    headersTimeoutMs: env.HTTP_HEADERS_TIMEOUT_MS,
    keepAliveTimeoutMs: env.HTTP_KEEP_ALIVE_TIMEOUT_MS,
    maxRequestsPerSocket: env.HTTP_MAX_REQUESTS_PER_SOCKET,
    maxConnections: env.HTTP_MAX_CONNECTIONS,
  };
}

/**
 * Parses the environment or exits with one line per bad variable, naming it. Runs before
 * the logger exists (LOG_LEVEL is one of the variables), hence the hand-written JSON line.
 */
export function loadEnv<T extends z.ZodRawShape>(shape: T, env: NodeJS.ProcessEnv = process.env) {
  const result = z
    .object(shape)
    .superRefine((v, ctx) => {
      const value = v as Record<string, unknown>;
      const [headers, request, shutdown] = [value.HTTP_HEADERS_TIMEOUT_MS, value.HTTP_REQUEST_TIMEOUT_MS, value.SHUTDOWN_TIMEOUT_MS];
      if (typeof headers === "number" && typeof request === "number" && headers > request) {
        ctx.addIssue({ code: "custom", path: ["HTTP_HEADERS_TIMEOUT_MS"], message: "must not exceed HTTP_REQUEST_TIMEOUT_MS" });
      }
      // A request still arriving when SIGTERM comes is cut by its timeout, before the deadline.
      if (typeof request === "number" && typeof shutdown === "number" && request >= shutdown) {
        ctx.addIssue({
          code: "custom",
          path: ["HTTP_REQUEST_TIMEOUT_MS"],
          message: "must be less than SHUTDOWN_TIMEOUT_MS, so a slow client cannot hold shutdown past it",
        });
      }
    })
    .safeParse(env);
  if (result.success) return result.data;
  for (const issue of result.error.issues) {
    const variable = issue.path.join(".");
    const line = { level: "fatal", msg: `invalid environment: ${variable}: ${issue.message}`, variable };
    process.stderr.write(`${JSON.stringify(line)}\n`);
  }
  process.exit(1);
}

/**
 * Verification of tokens against an issuer's key set (JWKS), under `prefix`: AUTH_* for
 * payment-service's callers, SERVICE_AUTH_* for fraud-service's.
 */
export function keySetEnv<const P extends string>(prefix: P) {
  return {
    [`${prefix}_ISSUER`]: z.string().min(1),
    [`${prefix}_AUDIENCE`]: z.string().min(1),
    [`${prefix}_JWKS_URL`]: z.url({ protocol: /^https?$/ }),
    /** Accepted clock difference on exp/nbf. */
    [`${prefix}_CLOCK_TOLERANCE_SECONDS`]: integerVar(30, 0, 300),
    /** Minimum time between two key set fetches an unknown `kid` triggers. */
    [`${prefix}_JWKS_COOLDOWN_MS`]: integerVar(30_000, 0, 3_600_000),
    /** Keys older than this are fetched again before use. */
    [`${prefix}_JWKS_MAX_AGE_MS`]: integerVar(600_000, 1_000, 86_400_000),
    [`${prefix}_JWKS_TIMEOUT_MS`]: integerVar(2_000, 100, 30_000),
  } as Record<`${P}_${"ISSUER" | "AUDIENCE" | "JWKS_URL"}`, z.ZodType<string>> &
    Record<`${P}_${"CLOCK_TOLERANCE_SECONDS" | "JWKS_COOLDOWN_MS" | "JWKS_MAX_AGE_MS" | "JWKS_TIMEOUT_MS"}`, z.ZodType<number>>;
}

/** The key set settings of `keySetEnv(prefix)`, once parsed. */
export function keySetSettings<P extends string>(prefix: P, config: Record<string, unknown>) {
  return {
    issuer: config[`${prefix}_ISSUER`] as string,
    audience: config[`${prefix}_AUDIENCE`] as string,
    jwksUrl: config[`${prefix}_JWKS_URL`] as string,
    clockToleranceSeconds: config[`${prefix}_CLOCK_TOLERANCE_SECONDS`] as number,
    cooldownMs: config[`${prefix}_JWKS_COOLDOWN_MS`] as number,
    cacheMaxAgeMs: config[`${prefix}_JWKS_MAX_AGE_MS`] as number,
    timeoutMs: config[`${prefix}_JWKS_TIMEOUT_MS`] as number,
  };
}
