import { z } from "zod";
import { commonEnv, integerVar, keySetEnv, loadEnv, stringVar } from "../server/env";

/** fraud-service environment (DD_* is read by dd-trace). */
export const fraudServiceEnv = {
  ...commonEnv,
  REDIS_URL: z.preprocess((v) => (v === "" ? undefined : v), z.url({ protocol: /^rediss?$/ }).default("redis://127.0.0.1:6379")),
  /** Prepended to every Redis key, so several deployments can share one Redis. */
  REDIS_KEY_PREFIX: stringVar("fraud:"),
  REDIS_COMMAND_TIMEOUT_MS: integerVar(200, 10, 10_000),
  VELOCITY_WINDOW_SECONDS: integerVar(3_600, 1, 86_400),
  DEVICE_MEMORY_SECONDS: integerVar(90 * 86_400, 60, 365 * 86_400),
  /** The cluster's ServiceAccount token issuer (SERVICE_AUTH_ISSUER, _AUDIENCE, _JWKS_URL, …). */
  ...keySetEnv("SERVICE_AUTH"),
  /** Comma-separated service accounts allowed to call, e.g. system:serviceaccount:payments:payment-service. */
  SERVICE_AUTH_SUBJECTS: z
    .string()
    .transform((s) => s.split(",").map((x) => x.trim()).filter(Boolean))
    .pipe(z.array(z.string().regex(/^system:serviceaccount:[a-z0-9-]+:[a-z0-9.-]+$/, "must be system:serviceaccount:<namespace>:<name>")).min(1)),
};

export type FraudServiceConfig = ReturnType<typeof loadFraudServiceConfig>;

export function loadFraudServiceConfig(env: NodeJS.ProcessEnv = process.env) {
  return loadEnv(fraudServiceEnv, env);
}
