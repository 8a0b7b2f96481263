/**
 * npm run bench [-- --rounds 5 --seconds 5 --connections 16 --budget 900 --configs untraced,traced]
 * npm run bench -- --profile   (CPU profiles instead: bench/profile.ts)
 *
 * Every configuration of lib/configs.ts (this build and the previous runtime, traced and
 * untraced, then the candidate cuts) gets its own fraud-service + payment-service pair,
 * warmed to a number of payments, then measured in alternating rounds (A B C … A B C …)
 * under closed-loop POST /v1/payments load. Per round: CPU ms per payment of both services
 * (process CPU time ÷ 2xx answers), payments/s, latency, spans, and the machine's load.
 * Prints the tables and writes bench/results/latest.md; exits 1 when a request failed, an
 * error was logged, a service died or the ledger does not add up.
 */
import { writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import type { TestDatabase } from "../app/test/support/database";
import { CONFIGS, configById, PREVIOUS, type BenchConfig } from "./lib/configs";
import { runPaymentLoad } from "./lib/load";
import { preparePrevious, type PreviousBuild } from "./lib/previous";
import { renderReport, type Round, type RunInfo } from "./lib/report";
import {
  checkLedger,
  deleteRedisKeys,
  machineBusyMs,
  openStand,
  processCpuMs,
  startPair,
  type Builds,
  type ServicePair,
  type Stand,
} from "./lib/stand";

export interface BenchOptions {
  rounds: number;
  /** Seconds of measured load per round (after 1 s of unmeasured load: pools reconnect). */
  seconds: number;
  /** Each pair's warm-up: until this many payments were answered (JIT)… */
  warmupPayments: number;
  connections: number;
  wallets: number;
  /** No round starts that would end past this many seconds from the start. */
  budget: number;
  configs: string;
  previous: string;
  database: string;
  out: string;
}

export const DEFAULTS: BenchOptions = {
  rounds: 5,
  seconds: 5,
  warmupPayments: 1000,
  connections: 16,
  wallets: 10_000,
  budget: 900,
  configs: CONFIGS.map((c) => c.id).join(","),
  previous: PREVIOUS.commit,
  database: "payments_bench",
  out: path.join(__dirname, "results/latest.md"),
};

export function parseOptions(argv: readonly string[]): BenchOptions {
  const options: BenchOptions = { ...DEFAULTS };
  for (let i = 0; i < argv.length; i++) {
    const match = /^--([a-z-]+)(?:=(.*))?$/.exec(argv[i]);
    if (!match) throw new Error(`unexpected argument ${argv[i]}`);
    const key = match[1].replace(/-([a-z])/g, (_, c: string) => c.toUpperCase()) as keyof BenchOptions;
    if (!(key in options)) throw new Error(`unknown option --${match[1]}`);
    const value = match[2] ?? argv[++i];
    if (value === undefined) throw new Error(`--${match[1]} needs a value`);
    if (typeof DEFAULTS[key] === "number") {
      const n = Number(value);
      if (!Number.isFinite(n) || n < 1) throw new Error(`--${match[1]} must be a number ≥ 1, got ${value}`);
      (options[key] as number) = n;
    } else (options[key] as string) = value;
  }
  options.configs.split(",").forEach(configById);
  return options;
}

const log = (message: string) => process.stderr.write(`${message}\n`);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const round2 = (n: number) => Math.round(n * 100) / 100;

/** Waits until no statement runs on the bench database (a phase ends with payments in flight). */
async function waitForQuiet(db: TestDatabase): Promise<void> {
  for (let quiet = 0, until = Date.now() + 5_000; quiet < 2 && Date.now() < until; await sleep(100)) {
    const { rows } = await db.pool.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND state <> 'idle' AND pid <> pg_backend_pid()",
      [db.name],
    );
    quiet = rows[0].n === 0 ? quiet + 1 : 0;
  }
}

async function measure(stand: Stand, pair: ServicePair, config: BenchConfig, index: number, options: BenchOptions, keyPrefix: string): Promise<Round> {
  const load = (seconds: number, phase: string) =>
    runPaymentLoad({ url: pair.payment.url, connections: options.connections, seconds, wallets: options.wallets, keyPrefix: `${keyPrefix}-${phase}` });
  const warm = await load(1, "w");
  await stand.intake.take();
  const errors0 = pair.payment.errorLines + pair.fraud.errorLines;
  const before = { payment: pair.payment.cpuMs(), fraud: pair.fraud.cpuMs(), bench: process.cpuUsage(), intake: processCpuMs(stand.intake.pid), busy: machineBusyMs() };
  const loadAverage = os.loadavg()[0];
  const result = await load(options.seconds, "m");
  const bench = process.cpuUsage(before.bench);
  const cpu = { payment: pair.payment.cpuMs() - before.payment, fraud: pair.fraud.cpuMs() - before.fraud };
  const own = cpu.payment + cpu.fraud + (bench.user + bench.system) / 1000 + processCpuMs(stand.intake.pid) - before.intake;
  const busy = machineBusyMs() - before.busy;
  const traces = await stand.intake.take();
  await waitForQuiet(stand.db);
  const n = result.ok2xx;
  const roots = Object.entries(traces.rootsByServicePriority).filter(([k]) => k.startsWith("payment-service:"));
  const rootsKept = roots.filter(([k]) => Number(k.split(":")[1]) > 0).reduce((s, [, v]) => s + v, 0);
  const rootsAll = roots.reduce((s, [, v]) => s + v, 0);
  const problems: string[] = [];
  const errors = pair.payment.errorLines + pair.fraud.errorLines - errors0;
  if (errors > 0) problems.push(`${config.id} round ${index}: ${errors} error log line(s)`);
  for (const service of [pair.payment, pair.fraud]) if (!service.alive()) problems.push(`${config.id}: ${service.running.service} exited:\n${service.tail()}`);
  return {
    config: config.id,
    index,
    payments: n,
    cpuMsPerPayment: { payment: cpu.payment / n, fraud: cpu.fraud / n },
    throughput: result.throughput,
    p50: result.p50,
    p99: result.p99,
    // Per payment-service root received: spans reach the intake up to a flush interval late,
    // and counting them against the roots received cancels that lag.
    spansPerPayment: traces.spans / rootsAll,
    spansByName: Object.fromEntries(Object.entries(traces.spansByName).map(([k, v]) => [k, round2(v / rootsAll)])),
    paymentRootsKept: rootsAll ? rootsKept / rootsAll : Number.NaN,
    machine: { loadAverage, busyCores: busy / (result.seconds * 1000), otherCores: (busy - own) / (result.seconds * 1000) },
    answered2xx: warm.ok2xx + n,
    failed: warm.failed + result.failed,
    problems,
  };
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  for (const signal of ["SIGINT", "SIGTERM"] as const) process.once(signal, () => process.exit(130));
  if (argv.includes("--profile")) {
    const { profileMain } = await import("./profile");
    return profileMain(argv.filter((a) => a !== "--profile"));
  }
  const options = parseOptions(argv);
  const started = Date.now();
  const configs = options.configs.split(",").map(configById);
  const loadAverageAtStart = os.loadavg();
  let previous: PreviousBuild | undefined;
  if (configs.some((c) => c.build === "previous")) previous = preparePrevious(options.previous, log);
  const builds: Builds = { this: {}, previous: { appDir: previous?.appDir ?? "", node: previous?.node ?? "" } };
  const deadline = Date.now() + options.budget * 1000;
  const fits = (seconds: number) => Date.now() + seconds * 1000 <= deadline;

  const runId = Date.now().toString(36);
  const redisPrefix = `payments-bench:${runId}:`;
  const stand = await openStand(options.database, options.wallets);
  const pairs = new Map<string, ServicePair>();
  const rounds: Round[] = [];
  const problems: string[] = [];
  /** Failed requests by configuration (e.g. 402 fraud_review when fraud-service's 200 ms Redis deadline passes on a starved machine). */
  const failed = new Map<string, { failed: number; total: number }>(configs.map((c) => [c.id, { failed: 0, total: 0 }]));
  let answered = 0;
  let stopped: string | undefined;
  try {
    // Started two at a time (starting is slow on a busy machine), warmed one after the other.
    for (let i = 0; i < configs.length; i += 2) {
      const batch = configs.slice(i, i + 2);
      const started = await Promise.allSettled(batch.map((c) => startPair(stand, c, builds, `${redisPrefix}${c.id}:`)));
      started.forEach((s, k) => s.status === "fulfilled" && pairs.set(batch[k].id, s.value));
      const failedStart = started.find((s) => s.status === "rejected");
      if (failedStart) throw (failedStart as PromiseRejectedResult).reason;
    }
    for (const config of configs) {
      const pair = pairs.get(config.id)!;
      // Warm to a count, not a time, so slower configurations get the same JIT warm-up.
      for (let done = 0, step = 0, until = Date.now() + 15_000; done < options.warmupPayments && Date.now() < until; step++) {
        if (!fits(2)) throw new Error(`the --budget of ${options.budget} s ran out while warming ${config.id}`);
        const warm = await runPaymentLoad({ url: pair.payment.url, connections: options.connections, seconds: 2, wallets: options.wallets, keyPrefix: `bench-${runId}-${config.id}-warm${step}` });
        done += warm.ok2xx;
        answered += warm.ok2xx;
        failed.get(config.id)!.failed += warm.failed;
        failed.get(config.id)!.total += warm.failed + warm.ok2xx;
      }
      await waitForQuiet(stand.db);
      log(`bench: ${config.id} started and warmed`);
    }
    const roundSeconds = options.seconds + 3;
    for (let index = 1; index <= options.rounds && !stopped; index++) {
      for (const config of configs) {
        if (!fits(roundSeconds)) {
          stopped = `the --budget of ${options.budget} s ran out in round ${index}`;
          break;
        }
        const round = await measure(stand, pairs.get(config.id)!, config, index, options, `bench-${runId}-${config.id}-${index}`);
        rounds.push(round);
        answered += round.answered2xx;
        problems.push(...round.problems);
        failed.get(config.id)!.failed += round.failed;
        failed.get(config.id)!.total += round.failed + round.answered2xx;
        log(`  round ${index} ${config.id.padEnd(17)} ${round.throughput.toFixed(0).padStart(5)}/s  ` +
          `cpu ${(round.cpuMsPerPayment.payment + round.cpuMsPerPayment.fraud).toFixed(3)} ms/payment  ` +
          `load ${round.machine.loadAverage.toFixed(1)}, other processes ${round.machine.otherCores.toFixed(2)} cores`);
      }
    }
    await Promise.all([...pairs.values()].map((p) => p.stop()));
    pairs.clear();
    problems.push(...(await checkLedger(stand.db, options.wallets, answered)).map((p) => `ledger: ${p}`));
  } finally {
    await Promise.all([...pairs.values()].map((p) => p.stop().catch(() => undefined)));
    await stand.intake.close().catch(() => undefined);
    await deleteRedisKeys(redisPrefix).catch(() => undefined);
    await stand.db.pool.end().catch(() => undefined);
  }

  // More than 1 % of a configuration's requests failing makes its figures meaningless.
  for (const [id, f] of failed) if (f.failed > 0.01 * f.total) problems.push(`${id}: ${f.failed} of ${f.total} requests failed`);
  const info: RunInfo = {
    date: new Date(started).toISOString(),
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? "?",
    loadAverageAtStart,
    loadAverageAtEnd: os.loadavg(),
    wallSeconds: (Date.now() - started) / 1000,
    options,
    previous,
    configs,
    stopped,
    problems,
    notes: [...failed].filter(([, f]) => f.failed > 0).map(([id, f]) => `${id} ${f.failed} of ${f.total}`),
  };
  const page = renderReport(info, rounds);
  writeFileSync(options.out, page);
  process.stdout.write(`\n${page}\n`);
  log(`bench: wrote ${path.relative(process.cwd(), options.out)} in ${info.wallSeconds.toFixed(0)} s`);
  if (problems.length) {
    log(`\nBENCH FAILED:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    process.exitCode = 1;
  }
}

if (require.main === module) {
  main().catch((error: Error) => {
    log(`bench: ${error.stack ?? error.message}`);
    process.exit(1);
  });
}
