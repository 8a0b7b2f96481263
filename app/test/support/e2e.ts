/**
 * The shared end-to-end environment: a trace intake, a fresh database, a Redis key prefix,
 * fraud-service and payment-service wired together, started once per test run and torn
 * down after the last test. Specs that need other wiring start extra instances with
 * `startPaymentService` / `startFraudService`.
 */
import Redis from "ioredis";
import { SERVICES } from "../../src/tracing/conventions";
import { createTestDatabase, type TestDatabase } from "./database";
import { FraudStandIn } from "./fraud-stand-in";
import { renderedEnv, startService, stopAll, testEnv, type RunningService } from "./services";
import { TraceIntake } from "./trace-intake";

export const REDIS_URL = "redis://127.0.0.1:6379";

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

export function startPaymentService(
  env: Wiring,
  overrides: Record<string, string | undefined> = {},
): Promise<RunningService> {
  return startService(
    SERVICES.payment,
    testEnv(env.rendered[SERVICES.payment], env.intake.url, { ...env.db.env, ...overrides }),
  );
}

export function startFraudService(
  env: Wiring,
  overrides: Record<string, string | undefined> = {},
): Promise<RunningService> {
  return startService(
    SERVICES.fraud,
    testEnv(env.rendered[SERVICES.fraud], env.intake.url, {
      REDIS_URL,
      REDIS_KEY_PREFIX: env.redisPrefix,
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

/** Deletes every key of the shared Redis that starts with `prefix`. */
export async function deleteKeys(prefix: string): Promise<void> {
  const redis = new Redis(REDIS_URL, { lazyConnect: true, disableClientInfo: true });
  await redis.connect();
  try {
    let cursor = "0";
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 500);
      if (keys.length) await redis.del(...keys);
      cursor = next;
    } while (cursor !== "0");
  } finally {
    redis.disconnect();
  }
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

/** A fresh Idempotency-Key. */
export function newKey(): string {
  keyCount += 1;
  return `test-${process.pid}-${Date.now()}-${keyCount}`;
}

/** POST /v1/payments with a JSON body (or a raw string) and a fresh Idempotency-Key unless given. */
export async function postPayment(
  service: RunningService,
  body: unknown,
  headers: Record<string, string | undefined> = {},
): Promise<ApiResponse> {
  const allHeaders: Record<string, string> = { "content-type": "application/json" };
  for (const [k, v] of Object.entries({ "idempotency-key": newKey(), ...headers })) if (v !== undefined) allHeaders[k] = v;
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
