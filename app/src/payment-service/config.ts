import { z } from "zod";
import { commonEnv, integerVar, keySetEnv, loadEnv } from "../server/env";

/**
 * payment-service environment. PGHOST, PGPORT, PGDATABASE, PGUSER and PGPASSWORD are read
 * by pg itself; DD_* by dd-trace.
 */
export const paymentServiceEnv = {
  ...commonEnv,
  /** Base URL of fraud-service, e.g. http://fraud-service.payments.svc.cluster.local:8080. */
  FRAUD_SERVICE_URL: z.url({ protocol: /^https?$/ }),
  /** Deadline for a fraud score; past it the payment is refused (fail closed). */
  FRAUD_TIMEOUT_MS: integerVar(1_000, 10, 30_000),
  PG_POOL_MAX: integerVar(10, 1, 200),
  PG_STATEMENT_TIMEOUT_MS: integerVar(5_000, 100, 120_000),
  PG_CONNECT_TIMEOUT_MS: integerVar(2_000, 100, 60_000),
  /** The identity provider whose access tokens callers present (AUTH_ISSUER, AUTH_AUDIENCE, AUTH_JWKS_URL, …). */
  ...keySetEnv("AUTH"),
  /** payment-service's projected ServiceAccount token (audience fraud-service), sent to fraud-service. */
  SERVICE_TOKEN_FILE: z.string().min(1),
  /** How old the token read from SERVICE_TOKEN_FILE may get before the file is read again (the kubelet rotates it). */
  SERVICE_TOKEN_REREAD_MS: integerVar(10_000, 0, 600_000),
  /** How long an Idempotency-Key answers with its first outcome (24 h, as Stripe keeps them); then it is free again. */
  IDEMPOTENCY_WINDOW_SECONDS: integerVar(86_400, 1, 30 * 86_400),
  /** How often expired keys are released, and how many per statement. */
  IDEMPOTENCY_PRUNE_INTERVAL_MS: integerVar(600_000, 100, 86_400_000),
  IDEMPOTENCY_PRUNE_BATCH: integerVar(500, 1, 100_000),
  /** Payments a user may start per minute in this pod, and at once. */
  RATE_LIMIT_PER_MINUTE: integerVar(60, 1, 1_000_000),
  RATE_LIMIT_BURST: integerVar(10, 1, 1_000_000),
};

export type PaymentServiceConfig = ReturnType<typeof loadPaymentServiceConfig>;

export function loadPaymentServiceConfig(env: NodeJS.ProcessEnv = process.env) {
  return loadEnv(paymentServiceEnv, env);
}
