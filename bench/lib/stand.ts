/**
 * What a benchmark round runs against: the bench database, the trace intake (in its own
 * process), Redis, and fraud-service + payment-service started with the app tests'
 * launcher (compiled JS, the image's Node major, the env the program renders for prod).
 */
import { fork, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import Redis from "ioredis";
import { createTestDatabase, type TestDatabase } from "../../app/test/support/database";
import { ensureBuilt, renderedEnv, startService, testEnv, type RunningService } from "../../app/test/support/services";
import { SERVICES } from "../../app/src/tracing/conventions";
import { clusterIssuer, identity, serviceTokenFile } from "../../app/test/support/identity";
import type { IntakeCounts } from "./intake-process";

export const REDIS_URL = "redis://127.0.0.1:6379";
/** Every Redis key the benchmark's fraud-service writes starts with this. */
export const REDIS_PREFIX_ROOT = "payments-bench:";

export const WALLET_CURRENCY = "USD";
/** Minor units per wallet: far more than any run can move out of one wallet. */
export const WALLET_BALANCE = 1_000_000_000n;

export function walletId(index: number): string {
  return `bench_${index}`;
}

/** `Authorization` of each wallet's owner, by wallet index (prepareTokens fills it). */
const authorizations: string[] = [];

/**
 * An access token per wallet owner from the tests' identity provider (keys generated here,
 * JWKS on loopback), signed once before the load so the generator only copies a string.
 */
export async function prepareTokens(wallets: number): Promise<void> {
  const provider = await identity();
  for (let i = authorizations.length || 1; i <= wallets; i++) authorizations[i] = await provider.bearer(walletId(i));
}

/** The `Authorization` header of wallet `index`'s owner. */
export function authorizationFor(index: number): string {
  const value = authorizations[index];
  if (value === undefined) throw new Error(`no token for wallet ${index}: call prepareTokens first`);
  return value;
}

// ---------------------------------------------------------------------------------------
// Database

/**
 * Drops and recreates `name` with the app's migrations (the tests' fixture), then seeds
 * `count` wallets in one statement. Every wallet is enterprise tier: fraud-service's
 * velocity rule holds a standard sender's 5th payment in an hour for review, and the
 * benchmark measures completed payments, not declines.
 */
export async function prepareDatabase(name: string, count: number): Promise<TestDatabase> {
  const db = await createTestDatabase(name);
  await db.pool.query(
    `INSERT INTO wallets (user_id, currency, balance, customer_tier, country)
     SELECT 'bench_' || i, $2, $3, 'enterprise', (ARRAY['US', 'GB', 'DE', 'FR'])[1 + i % 4]
       FROM generate_series(1, $1::int) AS i`,
    [count, WALLET_CURRENCY, String(WALLET_BALANCE)],
  );
  // Every owner has a profile, so the payment span's user annotations cost what they do in prod.
  await db.pool.query(
    `INSERT INTO user_profiles (user_id, segment, kyc_level, customer_since)
     SELECT 'bench_' || i, (ARRAY['consumer', 'small_business', 'corporate'])[1 + i % 3], 'verified',
            now() - make_interval(days => i % 2000)
       FROM generate_series(1, $1::int) AS i`,
    [count],
  );
  await db.pool.query("VACUUM ANALYZE wallets");
  await db.pool.query("VACUUM ANALYZE user_profiles");
  return db;
}

export interface LedgerCheck {
  readonly ok: boolean;
  readonly problems: string[];
  readonly completedByService: number;
  readonly completedByPgbench: number;
  /** Declined payments (each one also counted as a failed request). */
  readonly declined: number;
}

/**
 * After the run: money is conserved, no wallet went negative, every transaction row is
 * final (completed or declined), each completed one has its debit, credit and outbox event, and at least as many
 * payments completed as the load generator counted 2xx answers (requests still in flight
 * when a phase stopped may complete after it).
 */
export async function checkLedger(db: TestDatabase, wallets: number, answered2xx: number): Promise<LedgerCheck> {
  const problems: string[] = [];
  const one = async <T>(sql: string, values: unknown[] = []): Promise<T> => (await db.pool.query(sql, values)).rows[0] as T;
  const { total, negative } = await one<{ total: string; negative: string }>(
    `SELECT sum(balance)::text AS total, count(*) FILTER (WHERE balance < 0)::text AS negative FROM wallets`,
  );
  const expected = WALLET_BALANCE * BigInt(wallets);
  if (BigInt(total) !== expected) problems.push(`total balance ${total}, expected ${expected}`);
  if (negative !== "0") problems.push(`${negative} negative wallet(s)`);
  const counts = await one<{ pending: string; declined: string; service: string; pgbench: string }>(
    `SELECT count(*) FILTER (WHERE status = 'pending')::text AS pending,
            count(*) FILTER (WHERE status = 'declined')::text AS declined,
            count(*) FILTER (WHERE status = 'completed' AND idempotency_key LIKE 'bench-%')::text AS service,
            count(*) FILTER (WHERE status = 'completed' AND idempotency_key LIKE 'pgbench-%')::text AS pgbench
       FROM transactions`,
  );
  if (counts.pending !== "0") problems.push(`${counts.pending} transaction(s) left pending`);
  const { unbalanced } = await one<{ unbalanced: string }>(
    `SELECT count(*)::text AS unbalanced FROM transactions t
      WHERE t.status = 'completed'
        AND (SELECT count(*) FROM ledger_entries e WHERE e.transaction_id = t.id) <> 2`,
  );
  if (unbalanced !== "0") problems.push(`${unbalanced} completed transaction(s) without exactly two ledger entries`);
  const { missing } = await one<{ missing: string }>(
    `SELECT count(*)::text AS missing FROM transactions t
      WHERE t.status = 'completed' AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.aggregate_id = t.id)`,
  );
  if (missing !== "0") problems.push(`${missing} completed transaction(s) without an outbox event`);
  const completedByService = Number(counts.service);
  if (completedByService < answered2xx) {
    problems.push(`${completedByService} completed payments in the ledger, but ${answered2xx} answered 2xx`);
  }
  return {
    ok: problems.length === 0,
    problems,
    completedByService,
    completedByPgbench: Number(counts.pgbench),
    declined: Number(counts.declined),
  };
}

/** Declined payments whose Idempotency-Key starts with `keyPrefix`, by reason. */
export async function declineReasons(db: TestDatabase, keyPrefix: string): Promise<Record<string, number>> {
  const { rows } = await db.pool.query<{ reason: string; n: string }>(
    `SELECT coalesce(failure_reason, '?') AS reason, count(*)::text AS n FROM transactions
      WHERE status = 'declined' AND idempotency_key LIKE $1 GROUP BY 1`,
    [`${keyPrefix}%`],
  );
  return Object.fromEntries(rows.map((r) => [r.reason, Number(r.n)]));
}

// ---------------------------------------------------------------------------------------
// Redis

export async function deleteRedisKeys(prefix: string): Promise<number> {
  const redis = new Redis(REDIS_URL, { lazyConnect: true, disableClientInfo: true, maxRetriesPerRequest: 1 });
  await redis.connect();
  let deleted = 0;
  try {
    let cursor = "0";
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 2000);
      if (keys.length) deleted += await redis.unlink(...keys);
      cursor = next;
    } while (cursor !== "0");
  } finally {
    redis.disconnect();
  }
  return deleted;
}

// ---------------------------------------------------------------------------------------
// Trace intake

export interface IntakeProcess {
  readonly url: string;
  /** Counts since the previous take. */
  take(): Promise<IntakeCounts>;
  close(): Promise<void>;
}

export async function startIntakeProcess(): Promise<IntakeProcess> {
  const child: ChildProcess = fork(path.join(__dirname, "intake-process.ts"), [], {
    execArgv: ["--import", "tsx"],
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("trace intake did not start within 15 s")), 15_000);
    child.on("message", (m: { type?: string; url?: string }) => {
      if (m?.type === "ready" && m.url) {
        clearTimeout(timer);
        resolve(m.url);
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`trace intake exited (${code}) before listening`));
    });
  });
  return {
    url,
    take() {
      return new Promise<IntakeCounts>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error("trace intake did not answer within 10 s")), 10_000);
        const onMessage = (m: { type?: string; counts?: IntakeCounts }) => {
          if (m?.type !== "counts" || !m.counts) return;
          clearTimeout(timer);
          child.off("message", onMessage);
          resolve(m.counts);
        };
        child.on("message", onMessage);
        child.send({ type: "take" });
      });
    },
    async close() {
      if (child.connected) child.disconnect();
      const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

// ---------------------------------------------------------------------------------------
// Services

/**
 * What every benchmark starts from: the app compiled, its database `name` with `wallets`
 * wallets, a trace intake, and the env the program renders for prod.
 */
export async function openStand(
  name: string,
  wallets: number,
): Promise<{ db: TestDatabase; intake: IntakeProcess; rendered: RenderedEnvs }> {
  await ensureBuilt();
  const [db, intake, rendered] = await Promise.all([
    prepareDatabase(name, wallets),
    startIntakeProcess(),
    loadRenderedEnvs(),
    prepareTokens(wallets),
  ]);
  return { db, intake, rendered };
}

export type ServiceOverrides = Record<string, string | undefined>;

export interface RenderedEnvs {
  readonly payment: Record<string, string>;
  readonly fraud: Record<string, string>;
}

/**
 * The rendered prod env, with the tests' identity provider and cluster token issuer in place
 * of prod's: payment-service verifies its callers' tokens and presents its ServiceAccount
 * token, fraud-service verifies that.
 */
export async function loadRenderedEnvs(): Promise<RenderedEnvs> {
  const [payment, fraud, users, cluster] = await Promise.all([
    renderedEnv(SERVICES.payment),
    renderedEnv(SERVICES.fraud),
    identity(),
    clusterIssuer(),
  ]);
  const tokenFile = await serviceTokenFile(fraud.SERVICE_AUTH_SUBJECTS.split(",")[0], fraud.SERVICE_AUTH_AUDIENCE);
  return {
    payment: { ...payment, ...users.userAuthEnv(), SERVICE_TOKEN_FILE: tokenFile.path },
    fraud: { ...fraud, ...cluster.serviceAuthEnv() },
  };
}

/** One started service, with its output reduced to counters once it listens. */
export class BenchService {
  private lines = 0;
  private errorLines = 0;
  private warnLines = 0;
  /** The last warning line logged (possibly cut at a chunk boundary). */
  lastWarnLine = "";
  private tailText = "";

  constructor(readonly running: RunningService) {
    // The launcher keeps and parses every output line, which under load costs the
    // benchmark process CPU and memory: keep counts and a short tail instead.
    for (const stream of [running.child.stdout, running.child.stderr]) {
      if (!stream) continue;
      stream.removeAllListeners("data");
      stream.on("data", (chunk: string | Buffer) => {
        const text = String(chunk);
        for (let i = text.indexOf("\n"); i >= 0; i = text.indexOf("\n", i + 1)) this.lines += 1;
        for (let i = text.indexOf('"level":"error"'); i >= 0; i = text.indexOf('"level":"error"', i + 1)) {
          this.errorLines += 1;
        }
        for (let i = text.indexOf('"level":"warn"'); i >= 0; i = text.indexOf('"level":"warn"', i + 1)) {
          this.warnLines += 1;
          const start = text.lastIndexOf("\n", i) + 1;
          const end = text.indexOf("\n", i);
          this.lastWarnLine = text.slice(start, end < 0 ? undefined : end).slice(0, 2000);
        }
        this.tailText = (this.tailText + text).slice(-4000);
      });
    }
  }

  get url(): string {
    return this.running.url;
  }

  get pid(): number {
    return this.running.child.pid ?? 0;
  }

  /** Output lines, error and warning log lines so far. */
  output(): { lines: number; errorLines: number; warnLines: number } {
    return { lines: this.lines, errorLines: this.errorLines, warnLines: this.warnLines };
  }

  tail(): string {
    return this.tailText;
  }

  /** user + system CPU time of the process so far, in milliseconds (Linux /proc). */
  cpuMs(): number {
    const { user, system } = this.cpuSplitMs();
    return user + system;
  }

  /** User and system CPU time of the process so far, in milliseconds. */
  cpuSplitMs(): { user: number; system: number } {
    try {
      const stat = readFileSync(`/proc/${this.pid}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      // fields[0] is field 3 (state); utime and stime are fields 14 and 15.
      return { user: (Number(fields[11]) * 1000) / CLOCK_TICKS, system: (Number(fields[12]) * 1000) / CLOCK_TICKS };
    } catch {
      return { user: Number.NaN, system: Number.NaN };
    }
  }

  async stop(): Promise<number | null> {
    return this.running.stop("SIGTERM", 15_000);
  }
}

/** USER_HZ: 100 on every Linux this runs on. */
const CLOCK_TICKS = 100;

export interface ServicePair {
  readonly fraud: BenchService;
  readonly payment: BenchService;
  stop(): Promise<void>;
}

export interface PairOptions {
  readonly rendered: RenderedEnvs;
  readonly intakeUrl: string;
  readonly db: TestDatabase;
  readonly redisPrefix: string;
  /** Applied to both services, after the rendered env. */
  readonly overrides: ServiceOverrides;
  /** Extra env for payment-service only (e.g. NODE_OPTIONS for the profiler). */
  readonly paymentExtra?: ServiceOverrides;
  readonly fraudExtra?: ServiceOverrides;
  /** Another compiled copy of app/ to run (default: this one). */
  readonly appDir?: string;
}

/**
 * fraud-service, then payment-service pointed at it. The rendered prod env with loopback
 * addresses (the launcher's `testEnv`), except that the test-only per-trace flush is
 * undone: traces are flushed on the tracer's own schedule, as in production.
 */
export async function startPair(options: PairOptions): Promise<ServicePair> {
  const { rendered, intakeUrl, db, redisPrefix, overrides } = options;
  const common = (own: Record<string, string>) => ({
    DD_TRACE_FLUSH_INTERVAL: own.DD_TRACE_FLUSH_INTERVAL,
    ...overrides,
  });
  const fraud = new BenchService(
    await startService(
      SERVICES.fraud,
      testEnv(rendered.fraud, intakeUrl, {
        ...common(rendered.fraud),
        REDIS_URL,
        REDIS_KEY_PREFIX: redisPrefix,
        ...options.fraudExtra,
      }),
      options.appDir,
    ),
  );
  let payment: BenchService;
  try {
    payment = new BenchService(
      await startService(
        SERVICES.payment,
        testEnv(rendered.payment, intakeUrl, {
          ...common(rendered.payment),
          ...db.env,
          FRAUD_SERVICE_URL: fraud.url,
          ...options.paymentExtra,
        }),
        options.appDir,
      ),
    );
  } catch (error) {
    await fraud.stop();
    throw error;
  }
  return {
    fraud,
    payment,
    async stop() {
      await payment.stop();
      await fraud.stop();
    },
  };
}
