/**
 * Wiring for the reliability specs: each spec gets its own trace intake, database (on the
 * shared server or a private one) and Redis key prefix, so its invariants cover the whole
 * database and nothing another spec does can disturb them. Start services on it with
 * `startPaymentService` / `startFraudService` from e2e.ts; `close()` undoes the rest.
 */
import { SERVICES } from "../../src/tracing/conventions";
import { createTestDatabase, type PgServer, type TestDatabase } from "./database";
import { deleteKeys } from "./e2e";
import { renderedEnv } from "./services";
import { TraceIntake, type TraceIntakeOptions } from "./trace-intake";

export interface Wiring {
  readonly intake: TraceIntake;
  readonly db: TestDatabase;
  readonly redisPrefix: string;
  readonly rendered: Record<string, Record<string, string>>;
  /** Closes the intake, drops the database, deletes the Redis keys (shared Redis). */
  close(): Promise<void>;
}

export async function createWiring(
  name: string,
  options: { server?: PgServer; intake?: TraceIntakeOptions } = {},
): Promise<Wiring> {
  const intake = await TraceIntake.start({ defaultTimeoutMs: 15_000, ...options.intake });
  let db: TestDatabase;
  let rendered: Record<string, Record<string, string>>;
  try {
    const [database, payment, fraud] = await Promise.all([
      createTestDatabase(`payments_${name}_${process.pid}`, options.server),
      renderedEnv(SERVICES.payment),
      renderedEnv(SERVICES.fraud),
    ]);
    db = database;
    rendered = { [SERVICES.payment]: payment, [SERVICES.fraud]: fraud };
  } catch (error) {
    await intake.close();
    throw error;
  }
  const redisPrefix = `${name}:${process.pid}:`;
  return {
    intake,
    db,
    redisPrefix,
    rendered,
    async close() {
      await intake.close();
      await db.drop().catch(() => undefined);
      await deleteKeys(redisPrefix).catch(() => undefined);
    },
  };
}

/** Runs every cleanup (last registered first), even when some fail; rethrows the first failure. */
export async function runCleanups(cleanups: Array<() => Promise<unknown>>): Promise<void> {
  let first: unknown;
  for (const cleanup of cleanups.splice(0).reverse()) {
    try {
      await cleanup();
    } catch (error) {
      first ??= error;
    }
  }
  if (first !== undefined) throw first;
}
