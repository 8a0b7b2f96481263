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
};

/**
 * Parses the environment or exits with one line per bad variable, naming it. Runs before
 * the logger exists (LOG_LEVEL is one of the variables), hence the hand-written JSON line.
 */
export function loadEnv<T extends z.ZodRawShape>(shape: T, env: NodeJS.ProcessEnv = process.env) {
  const result = z.object(shape).safeParse(env);
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
