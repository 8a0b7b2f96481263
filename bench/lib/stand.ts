/**
 * What the benchmark runs against: a PostgreSQL and redis-servers of its own with TLS on
 * (app/test/support/tls-servers.ts), its database migrated and seeded, a trace intake in a
 * process of its own, an access token per wallet owner, and per configuration a
 * fraud-service + payment-service pair started by the app tests' launcher with the env the
 * program renders for prod.
 */
import { fork } from "node:child_process";
import { once } from "node:events";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { SERVICES } from "../../app/src/tracing/conventions";
import { createTestDatabase } from "../../app/test/support/database";
import { auditLedger, snapshotLedger } from "../../app/test/support/ledger-audit";
import { clusterIssuer, identity, serviceTokenFile } from "../../app/test/support/identity";
import { ensureBuilt, renderedEnv, startService, testEnv, type RunningService } from "../../app/test/support/services";
import { TlsServers } from "../../app/test/support/tls-servers";
import { serviceTokenVerifier } from "../../app/src/auth/service-tokens";
import { userTokenVerifier } from "../../app/src/auth/user-tokens";
import type { BenchConfig } from "./configs";
import type { IntakeCounts } from "./intake-process";

export const walletId = (i: number) => `bench_${i}`;

/** `Authorization` of each wallet's owner, by wallet index, signed before the load. */
export const authorizations: string[] = [];

/**
 * The database with the app's migrations and `count` wallets, all enterprise tier
 * (fraud-service's velocity rule would hold a standard sender's 5th payment in an hour for
 * review: the benchmark measures completed payments), each owner with a profile so the
 * payment span's user annotations cost what they do in prod.
 */
async function prepareDatabase(servers: TlsServers, name: string, count: number) {
  const db = await createTestDatabase(name, servers.pg.server);
  await db.pool.query(
    `INSERT INTO wallets (user_id, currency, balance, customer_tier, country)
     SELECT 'bench_' || i, 'USD', $2, 'enterprise', (ARRAY['US', 'GB', 'DE', 'FR'])[1 + i % 4] FROM generate_series(1, $1::int) AS i`,
    [count, "1000000000"],
  );
  await db.pool.query(
    `INSERT INTO user_profiles (user_id, segment, kyc_level, customer_since)
     SELECT 'bench_' || i, (ARRAY['consumer', 'small_business', 'corporate'])[1 + i % 3], 'verified', now() - make_interval(days => i % 2000)
       FROM generate_series(1, $1::int) AS i`,
    [count],
  );
  await db.pool.query("VACUUM ANALYZE wallets, user_profiles");
  return { db, opening: await snapshotLedger(db.pool) };
}

/** The trace intake in a child process (lib/intake-process.ts); `take()`: the counts since the previous take. */
async function startIntakeProcess() {
  const child = fork(path.join(__dirname, "intake-process.ts"), [], { execArgv: ["--import", "tsx"], stdio: ["ignore", "inherit", "inherit", "ipc"] });
  // It speaks only when spoken to, after its first message ("ready").
  const answer = async <T>() => ((await once(child, "message", { signal: AbortSignal.timeout(60_000) })) as T[])[0];
  const { url } = await answer<{ url: string }>();
  const exited = once(child, "exit");
  return {
    url,
    pid: child.pid ?? 0,
    take: () => (child.send("take"), answer<IntakeCounts>()),
    close: () => (child.kill(), exited),
  };
}

/** user + system CPU ms of a process so far (Linux /proc, USER_HZ 100), NaN once it is gone. */
export function processCpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return Number.NaN;
  }
}

/** Busy CPU ms of the whole machine so far (all cores; /proc/stat minus idle and iowait). */
export function machineBusyMs(): number {
  const [user, nice, system, , , irq, softirq, steal] = readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
  return (user + nice + system + irq + softirq + steal) * 10;
}

/** One service process: its CPU time, and its error lines counted (the launcher's parsing of every line would cost the bench CPU). */
class BenchService {
  errorLines = 0;
  lastError = "";
  tail = "";

  constructor(readonly running: RunningService) {
    for (const stream of [running.child.stdout, running.child.stderr]) {
      stream?.removeAllListeners("data");
      stream?.on("data", (chunk: Buffer | string) => {
        const errors = String(chunk).split("\n").filter((line) => line.includes('"level":"error"'));
        this.errorLines += errors.length;
        this.lastError = errors.at(-1)?.slice(0, 300) ?? this.lastError;
        this.tail = (this.tail + String(chunk)).slice(-3000);
      });
    }
  }

  cpuMs = () => processCpuMs(this.running.child.pid ?? 0);
  alive = () => this.running.child.exitCode === null && this.running.child.signalCode === null;
}

export type Stand = Awaited<ReturnType<typeof openStand>>;
export type ServicePair = Awaited<ReturnType<typeof startPair>>;

/**
 * The servers, the database, the intake, the tokens, and the rendered prod env with the tests'
 * identity provider and cluster token issuer in place of prod's: payment-service verifies its
 * callers' tokens and presents its ServiceAccount token, fraud-service verifies that.
 */
export async function openStand(database: string, wallets: number) {
  await ensureBuilt();
  // Every pair keeps its pool open: PostgreSQL's default 100 connections are too few.
  const servers = await TlsServers.start({ plainRedis: true, maxConnections: 400 });
  const [{ db, opening }, intake, payment, fraud, users, cluster] = await Promise.all([
    prepareDatabase(servers, database, wallets),
    startIntakeProcess(),
    renderedEnv(SERVICES.payment),
    renderedEnv(SERVICES.fraud),
    identity(),
    clusterIssuer(),
  ]);
  for (let i = 1; i <= wallets; i++) authorizations[i] = await users.bearer(walletId(i));
  const subject = fraud.SERVICE_AUTH_SUBJECTS.split(",")[0];
  const tokenFile = await serviceTokenFile(subject, fraud.SERVICE_AUTH_AUDIENCE);
  // The services' own verifiers, in this process, for the micro-benchmark of verificationCpuUs.
  const settings = (env: Record<string, string>, prefix: string) =>
    ({ issuer: env[`${prefix}_ISSUER`], audience: env[`${prefix}_AUDIENCE`], jwksUrl: env[`${prefix}_JWKS_URL`], clockToleranceSeconds: 30, cooldownMs: 30_000, cacheMaxAgeMs: 600_000, timeoutMs: 2_000 });
  const verifyUser = userTokenVerifier(settings(users.userAuthEnv(), "AUTH"));
  const verifyService = serviceTokenVerifier(settings({ ...fraud, ...cluster.serviceAuthEnv() }, "SERVICE_AUTH"), [subject]);
  const serviceToken = readFileSync(tokenFile.path, "utf8").trim();
  return {
    servers,
    db,
    intake,
    rendered: {
      payment: { ...payment, ...users.userAuthEnv(), SERVICE_TOKEN_FILE: tokenFile.path },
      fraud: { ...fraud, ...cluster.serviceAuthEnv() },
    } as Record<"payment" | "fraud", Record<string, string>>,
    /**
     * CPU µs of one verification, each verifier `n` times after a first call (keys fetched):
     * the user's ES256 access token (payment-service) and payment-service's RS256 ServiceAccount token (fraud-service).
     */
    async verificationCpuUs(n = 1000) {
      const cpu = async (verify: () => Promise<unknown>) => {
        await verify();
        const before = process.cpuUsage();
        for (let i = 0; i < n; i++) await verify();
        const { user, system } = process.cpuUsage(before);
        return (user + system) / n;
      };
      return { user: await cpu(() => verifyUser(authorizations[1].slice("Bearer ".length))), service: await cpu(() => verifyService(serviceToken)) };
    },
    /** The money invariants of app/test/support/ledger-audit.ts, and every 2xx answer a completed payment. */
    async audit(answered2xx: number) {
      const { violations, completed } = await auditLedger(db.pool, opening);
      return [...violations.slice(0, 20), ...(completed < answered2xx ? [`${completed} completed payments, ${answered2xx} answered 2xx`] : [])];
    },
    async close() {
      await intake.close().catch(() => undefined);
      await db.pool.end().catch(() => undefined);
      await servers.destroy();
    },
  };
}

/**
 * fraud-service, then payment-service pointed at it, for `config`: the rendered prod env on
 * loopback (the launcher's testEnv) with the tracer's own flush schedule restored (the tests
 * flush each trace at once), TLS on or off, the configuration's env and its source patches.
 * `build`: another compiled app/ and its Node binary (the previous runtime); this build by default.
 * A service that fails to start throws; the launcher kills what it started when the process exits.
 */
export async function startPair(stand: Stand, config: BenchConfig, build: { appDir?: string; node?: string }, extra: Record<string, string> = {}) {
  const patchEnv: Record<string, string> = {};
  if (config.patches?.length) {
    const file = path.join(os.tmpdir(), `payments-apm-bench-${process.pid}-${config.id}.json`);
    writeFileSync(file, JSON.stringify(config.patches));
    patchEnv.BENCH_SOURCE_PATCHES = file;
    patchEnv.NODE_OPTIONS = `--require ${path.join(__dirname, "source-patch.cjs")}`;
  }
  const start = (service: "fraud" | "payment", specific: Record<string, string | undefined>) => {
    const own = stand.rendered[service];
    const env = testEnv(own, stand.intake.url, {
      DD_TRACE_FLUSH_INTERVAL: own.DD_TRACE_FLUSH_INTERVAL,
      ...config.env,
      ...patchEnv,
      ...specific,
      ...extra,
      NODE_OPTIONS: [patchEnv.NODE_OPTIONS, extra.NODE_OPTIONS].filter(Boolean).join(" ") || undefined,
    });
    return startService(SERVICES[service], env, build.appDir, build.node).then((r) => new BenchService(r));
  };
  const redis = stand.servers.redisEnv(config.tls);
  // The previous runtime reads no REDIS_PASSWORD: ioredis takes it from the URL.
  if (config.build === "previous") redis.REDIS_URL = redis.REDIS_URL.replace("//", `//:${redis.REDIS_PASSWORD}@`);
  const fraud = await start("fraud", { ...redis, REDIS_KEY_PREFIX: `bench:${config.id}:`, REDIS_KEY_SECRET: "bench-redis-key-secret-0123456789abcdef" });
  const payment = await start("payment", { ...stand.db.env, ...stand.servers.pgEnv(config.tls), FRAUD_SERVICE_URL: fraud.running.url });
  // Read once, as each service preloads: not needed once both run.
  if (patchEnv.BENCH_SOURCE_PATCHES) rmSync(patchEnv.BENCH_SOURCE_PATCHES, { force: true });
  return {
    fraud,
    payment,
    async stop() {
      for (const s of [payment, fraud]) await s.running.stop("SIGTERM", 10_000);
    },
  };
}
