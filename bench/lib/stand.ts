/**
 * What the benchmark runs against: its own database (migrated, seeded), Redis, a trace
 * intake in a process of its own, and per configuration a fraud-service + payment-service
 * pair started by the app tests' launcher with the env the program renders for prod.
 */
import { fork } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import Redis from "ioredis";
import { SERVICES } from "../../app/src/tracing/conventions";
import { createTestDatabase, type TestDatabase } from "../../app/test/support/database";
import { ensureBuilt, renderedEnv, startService, testEnv, type RunningService } from "../../app/test/support/services";
import type { BenchConfig } from "./configs";
import { clusterIssuer, identity, serviceTokenFile } from "../../app/test/support/identity";
import type { IntakeCounts } from "./intake-process";

export const REDIS_URL = "redis://127.0.0.1:6379";
export const WALLET_BALANCE = 1_000_000_000n;
export const walletId = (i: number) => `bench_${i}`;

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

/**
 * Recreates the database with the app's migrations and `count` wallets, all enterprise
 * tier (fraud-service's velocity rule would hold a standard sender's 5th payment in an
 * hour for review: the benchmark measures completed payments).
 */
export async function prepareDatabase(name: string, count: number): Promise<TestDatabase> {
  const db = await createTestDatabase(name);
  await db.pool.query(
    `INSERT INTO wallets (user_id, currency, balance, customer_tier, country)
     SELECT 'bench_' || i, 'USD', $2, 'enterprise', (ARRAY['US', 'GB', 'DE', 'FR'])[1 + i % 4]
       FROM generate_series(1, $1::int) AS i`,
    [count, String(WALLET_BALANCE)],
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

/** Money conserved, no negative wallet, nothing pending, each completed payment whole. */
export async function checkLedger(db: TestDatabase, wallets: number, answered2xx: number): Promise<string[]> {
  const { rows } = await db.pool.query<Record<string, string>>(
    `SELECT (SELECT sum(balance) FROM wallets)::text AS total,
            (SELECT count(*) FROM wallets WHERE balance < 0)::text AS negative,
            (SELECT count(*) FROM transactions WHERE status = 'pending')::text AS pending,
            (SELECT count(*) FROM transactions WHERE status = 'completed')::text AS completed,
            (SELECT count(*) FROM transactions t WHERE t.status = 'completed' AND (
               (SELECT count(*) FROM ledger_entries e WHERE e.transaction_id = t.id) <> 2
               OR NOT EXISTS (SELECT 1 FROM outbox o WHERE o.aggregate_id = t.id)))::text AS partial`,
  );
  const r = rows[0];
  const problems: string[] = [];
  if (BigInt(r.total) !== WALLET_BALANCE * BigInt(wallets)) problems.push(`total balance ${r.total} is not conserved`);
  if (r.negative !== "0") problems.push(`${r.negative} negative wallet(s)`);
  if (r.pending !== "0") problems.push(`${r.pending} transaction(s) left pending`);
  if (r.partial !== "0") problems.push(`${r.partial} completed payment(s) without two entries and an outbox event`);
  if (Number(r.completed) < answered2xx) problems.push(`${r.completed} completed payments, ${answered2xx} answered 2xx`);
  return problems;
}

export async function deleteRedisKeys(prefix: string): Promise<void> {
  const redis = new Redis(REDIS_URL, { lazyConnect: true, disableClientInfo: true, maxRetriesPerRequest: 1 });
  await redis.connect();
  try {
    let cursor = "0";
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 2000);
      if (keys.length) await redis.unlink(...keys);
      cursor = next;
    } while (cursor !== "0");
  } finally {
    redis.disconnect();
  }
}

export interface IntakeProcess {
  readonly url: string;
  readonly pid: number;
  /** Counts since the previous take. */
  take(): Promise<IntakeCounts>;
  close(): Promise<void>;
}

/** The trace intake in a child process (lib/intake-process.ts). */
export async function startIntakeProcess(): Promise<IntakeProcess> {
  const child = fork(path.join(__dirname, "intake-process.ts"), [], {
    execArgv: ["--import", "tsx"],
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const message = <T>(type: string, what: string): Promise<T> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`trace intake: no ${what} within 60 s`)), 60_000);
      const on = (m: { type?: string } & T) => {
        if (m?.type !== type) return;
        clearTimeout(timer);
        child.off("message", on);
        resolve(m);
      };
      child.on("message", on);
    });
  const { url } = await message<{ url: string }>("ready", "listening");
  return {
    url,
    pid: child.pid ?? 0,
    async take() {
      const answer = message<{ counts: IntakeCounts }>("counts", "counts");
      child.send({ type: "take" });
      return (await answer).counts;
    },
    async close() {
      if (child.connected) child.disconnect();
      const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** USER_HZ: 100 on every Linux this runs on. */
const CLOCK_TICKS = 100;

/** user + system CPU ms of a process so far (Linux /proc), NaN once it is gone. */
export function processCpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
  } catch {
    return Number.NaN;
  }
}

/** Busy CPU ms of the whole machine so far (all cores; /proc/stat minus idle and iowait). */
export function machineBusyMs(): number {
  const cpu = readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, , , irq, softirq, steal] = cpu;
  return ((user + nice + system + irq + softirq + steal) * 1000) / CLOCK_TICKS;
}

/** One service process: counts of its output lines and error lines, and its CPU time. */
export class BenchService {
  errorLines = 0;
  private tailText = "";

  constructor(readonly running: RunningService) {
    // The launcher parses every output line; under load that costs the bench CPU: count instead.
    for (const stream of [running.child.stdout, running.child.stderr]) {
      stream?.removeAllListeners("data");
      stream?.on("data", (chunk: Buffer | string) => {
        const text = String(chunk);
        this.errorLines += text.split('"level":"error"').length - 1;
        this.tailText = (this.tailText + text).slice(-3000);
      });
    }
  }

  get url(): string {
    return this.running.url;
  }

  cpuMs(): number {
    return processCpuMs(this.running.child.pid ?? 0);
  }

  alive(): boolean {
    return this.running.child.exitCode === null && this.running.child.signalCode === null;
  }

  tail(): string {
    return this.tailText;
  }
}

export interface ServicePair {
  readonly fraud: BenchService;
  readonly payment: BenchService;
  stop(): Promise<void>;
}

export interface Builds {
  readonly this: { appDir?: string; node?: string };
  readonly previous: { appDir: string; node: string };
}

export interface Stand {
  readonly db: TestDatabase;
  readonly intake: IntakeProcess;
  readonly rendered: { payment: Record<string, string>; fraud: Record<string, string> };
}

/**
 * The database, the intake, a token per wallet owner, and the rendered prod env with the
 * tests' identity provider and cluster token issuer in place of prod's: payment-service
 * verifies its callers' tokens and presents its ServiceAccount token, fraud-service verifies that.
 */
export async function openStand(database: string, wallets: number): Promise<Stand> {
  await ensureBuilt();
  const [db, intake, payment, fraud, users, cluster] = await Promise.all([
    prepareDatabase(database, wallets),
    startIntakeProcess(),
    renderedEnv(SERVICES.payment),
    renderedEnv(SERVICES.fraud),
    identity(),
    clusterIssuer(),
    prepareTokens(wallets),
  ]);
  const tokenFile = await serviceTokenFile(fraud.SERVICE_AUTH_SUBJECTS.split(",")[0], fraud.SERVICE_AUTH_AUDIENCE);
  return {
    db,
    intake,
    rendered: {
      payment: { ...payment, ...users.userAuthEnv(), SERVICE_TOKEN_FILE: tokenFile.path },
      fraud: { ...fraud, ...cluster.serviceAuthEnv() },
    },
  };
}

/**
 * fraud-service, then payment-service pointed at it, for `config`: the rendered prod env on
 * loopback (the launcher's testEnv) with the tracer's own flush schedule restored (the tests
 * flush each trace at once), the configuration's env, and its source patches preloaded.
 */
export async function startPair(stand: Stand, config: BenchConfig, builds: Builds, redisPrefix: string, extra: Record<string, string> = {}): Promise<ServicePair> {
  const build = builds[config.build];
  const patchEnv: Record<string, string> = {};
  if (config.patches?.length) {
    const file = path.join(os.tmpdir(), `payments-apm-bench-${process.pid}-${config.id}.json`);
    writeFileSync(file, JSON.stringify(config.patches));
    patchEnv.BENCH_SOURCE_PATCHES = file;
    patchEnv.NODE_OPTIONS = `--require ${path.join(__dirname, "source-patch.cjs")}`;
  }
  const env = (own: Record<string, string>, specific: Record<string, string | undefined>) =>
    testEnv(own, stand.intake.url, {
      DD_TRACE_FLUSH_INTERVAL: own.DD_TRACE_FLUSH_INTERVAL,
      ...config.env,
      ...patchEnv,
      ...specific,
      ...extra,
      NODE_OPTIONS: [patchEnv.NODE_OPTIONS, extra.NODE_OPTIONS].filter(Boolean).join(" ") || undefined,
    });
  const start = (service: "fraud" | "payment", specific: Record<string, string | undefined>) =>
    startService(SERVICES[service], env(stand.rendered[service], specific), build.appDir, build.node).then((r) => new BenchService(r));
  const fraud = await start("fraud", { REDIS_URL, REDIS_KEY_PREFIX: redisPrefix });
  let payment: BenchService;
  try {
    payment = await start("payment", { ...stand.db.env, FRAUD_SERVICE_URL: fraud.url });
  } catch (error) {
    await fraud.running.stop("SIGTERM", 10_000);
    throw error;
  }
  return {
    fraud,
    payment,
    async stop() {
      await payment.running.stop("SIGTERM", 10_000);
      await fraud.running.stop("SIGTERM", 10_000);
    },
  };
}
