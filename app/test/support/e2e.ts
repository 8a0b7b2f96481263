/**
 * The shared end-to-end environment: a trace intake, a fresh database, a Redis key prefix,
 * fraud-service and payment-service wired together, started once per test run and torn
 * down after the last test. Specs that need other wiring start extra instances with
 * `startPaymentService` / `startFraudService`.
 */
import { SERVICES } from "../../src/tracing/conventions";
import { createTestDatabase, type TestDatabase } from "./database";
import { FraudStandIn } from "./fraud-stand-in";
import { clusterIssuer, identity, serviceTokenFile } from "./identity";
import { renderedEnv, startService, stopAll, testEnv, type RunningService } from "./services";
import { TraceIntake } from "./trace-intake";

import { deleteKeys, REDIS_URL } from "./redis-keys";

export { deleteKeys, REDIS_URL };
/** fraud-service's REDIS_KEY_SECRET in the tests (the program renders it from a Secret). */
export const TEST_REDIS_KEY_SECRET = "test-redis-key-secret-0123456789abcdef";

export interface E2E {
  readonly intake: TraceIntake;
  readonly db: TestDatabase;
  /** Every key fraud-service writes in this run starts with it. */
  readonly redisPrefix: string;
  readonly fraud: RunningService;
  readonly payment: RunningService;
  /** The prod env the program renders for each service. */
  readonly rendered: Record<string, Record<string, string>>;
}

let environment: Promise<E2E> | undefined;
const cleanups: Array<() => Promise<unknown>> = [];

export function e2e(): Promise<E2E> {
  environment ??= setUp();
  return environment;
}

async function setUp(): Promise<E2E> {
  const intake = await TraceIntake.start({ defaultTimeoutMs: 10_000 });
  cleanups.push(() => intake.close());
  const [db, paymentRendered, fraudRendered] = await Promise.all([
    createTestDatabase(`payments_e2e_${process.pid}`),
    renderedEnv(SERVICES.payment),
    renderedEnv(SERVICES.fraud),
  ]);
  cleanups.push(() => db.drop());
  const redisPrefix = `e2e:${process.pid}:`;
  cleanups.push(() => deleteKeys(redisPrefix));
  const rendered = { [SERVICES.payment]: paymentRendered, [SERVICES.fraud]: fraudRendered };

  const partial = { intake, db, redisPrefix, rendered };
  const fraud = await startFraudService(partial);
  const payment = await startPaymentService(partial, { FRAUD_SERVICE_URL: fraud.url });
  return { ...partial, fraud, payment };
}

type Wiring = Pick<E2E, "intake" | "db" | "redisPrefix" | "rendered">;

/**
 * The ServiceAccount token file of payment-service, for the subject and audience fraud-service
 * is rendered to accept.
 */
export function paymentServiceTokenFile(rendered: Wiring["rendered"]) {
  const fraud = rendered[SERVICES.fraud];
  return serviceTokenFile(fraud.SERVICE_AUTH_SUBJECTS.split(",")[0], fraud.SERVICE_AUTH_AUDIENCE);
}

/**
 * payment-service on the wiring, trusting the test identity provider's tokens and presenting
 * its ServiceAccount token from a file, unless `overrides` say otherwise.
 */
export async function startPaymentService(
  env: Wiring,
  overrides: Record<string, string | undefined> = {},
): Promise<RunningService> {
  const [users, tokenFile] = await Promise.all([identity(), paymentServiceTokenFile(env.rendered)]);
  return startService(
    SERVICES.payment,
    testEnv(env.rendered[SERVICES.payment], env.intake.url, {
      ...env.db.env,
      ...users.userAuthEnv(),
      SERVICE_TOKEN_FILE: tokenFile.path,
      // Specs send many payments from one sender on purpose; the limit's own spec uses the
      // rendered values (rate-limit.spec.ts).
      RATE_LIMIT_PER_MINUTE: "1000000",
      RATE_LIMIT_BURST: "1000000",
      ...overrides,
    }),
  );
}

/** fraud-service on the wiring, trusting the test cluster issuer's ServiceAccount tokens. */
export async function startFraudService(
  env: Wiring,
  overrides: Record<string, string | undefined> = {},
): Promise<RunningService> {
  const cluster = await clusterIssuer();
  return startService(
    SERVICES.fraud,
    testEnv(env.rendered[SERVICES.fraud], env.intake.url, {
      REDIS_URL,
      REDIS_KEY_PREFIX: env.redisPrefix,
      REDIS_KEY_SECRET: TEST_REDIS_KEY_SECRET,
      ...cluster.serviceAuthEnv(),
      ...overrides,
    }),
  );
}

/** Deadline payment-service gets for a fraud score when talking to the stand-in. */
export const STAND_IN_FRAUD_TIMEOUT_MS = 300;

let standIn: Promise<{ standIn: FraudStandIn; payment: RunningService }> | undefined;

/** A payment-service whose fraud-service is a recording stand-in (same database and intake). */
export function paymentWithFraudStandIn(): Promise<{ standIn: FraudStandIn; payment: RunningService }> {
  standIn ??= (async () => {
    const env = await e2e();
    const fraudStandIn = await FraudStandIn.start();
    cleanups.push(() => fraudStandIn.close());
    const payment = await startPaymentService(env, {
      FRAUD_SERVICE_URL: fraudStandIn.url,
      FRAUD_TIMEOUT_MS: String(STAND_IN_FRAUD_TIMEOUT_MS),
    });
    return { standIn: fraudStandIn, payment };
  })();
  return standIn;
}

// Root-level hook: runs once after every spec of the run, whichever of them started the environment.
after(async function () {
  this.timeout(30_000);
  await stopAll();
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
});

export interface ApiResponse {
  readonly status: number;
  readonly body: Record<string, unknown>;
}

let keyCount = 0;

/** `Authorization` of POST /v1/score: payment-service's ServiceAccount token, as the program renders fraud-service to accept it. */
export async function scoreAuthorization(env: E2E): Promise<string> {
  const fraud = env.rendered[SERVICES.fraud];
  const token = await (await clusterIssuer()).serviceAccountToken(fraud.SERVICE_AUTH_SUBJECTS.split(",")[0], { audience: fraud.SERVICE_AUTH_AUDIENCE });
  return `Bearer ${token}`;
}

/** A fresh Idempotency-Key. */
export function newKey(): string {
  keyCount += 1;
  return `test-${process.pid}-${Date.now()}-${keyCount}`;
}

/** Who a body's token is for: its sender, or a client of its own when the body names none. */
export function subjectOf(body: unknown): string {
  const sender = (body as { sender_id?: unknown } | null)?.sender_id;
  return typeof sender === "string" && sender !== "" ? sender : `test-client-${process.pid}`;
}

/**
 * POST /v1/payments with a JSON body (or a raw string), a fresh Idempotency-Key and an access
 * token for the body's sender, unless `headers` give them (`authorization: undefined` sends none).
 */
export async function postPayment(
  service: RunningService,
  body: unknown,
  headers: Record<string, string | undefined> = {},
): Promise<ApiResponse> {
  const allHeaders: Record<string, string> = { "content-type": "application/json" };
  const authorization = "authorization" in headers ? undefined : await (await identity()).bearer(subjectOf(body));
  for (const [k, v] of Object.entries({ "idempotency-key": newKey(), authorization, ...headers })) if (v !== undefined) allHeaders[k] = v;
  const response = await fetch(`${service.url}/v1/payments`, {
    method: "POST",
    headers: allHeaders,
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

export async function get(service: RunningService, path: string): Promise<ApiResponse> {
  const response = await fetch(`${service.url}${path}`);
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}
