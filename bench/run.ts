/**
 * npm run bench [-- --duration 8 --rounds 3 --connections 32 …]
 * npm run bench -- --profile          (CPU profiles instead: see bench/profile.ts)
 *
 * Starts fraud-service and payment-service (compiled, on the image's Node, the prod env) once per
 * configuration against a database of its own, Redis and a local trace intake, and drives
 * POST /v1/payments with autocannon, alternating untraced / traced with prod sampling /
 * traced at 100 % / the pgbench ceiling, one round each per cycle. The first cycle warms
 * up each configuration's processes (JIT), the database and the caches, and is discarded.
 * Writes bench/results/latest.json and latest.md; exits 1 when a request failed, an error
 * or warning was logged, the ledger does not add up, or the time budget ran out.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { CEILING_DESCRIPTION, SERVICE_CONFIGS, type ConfigId, type ServiceConfigId } from "./lib/configs";
import { failures } from "./lib/load";
import { machineInfo } from "./lib/machine";
import { runPgbench } from "./lib/pgbench";
import { renderMarkdown, summarize, type BenchReport, type RoundRecord } from "./lib/report";
import { measureRound, warmUp } from "./lib/round";
import {
  checkLedger,
  deleteRedisKeys,
  openStand,
  REDIS_PREFIX_ROOT,
  startPair,
  type IntakeProcess,
  type ServicePair,
} from "./lib/stand";
import type { TestDatabase } from "../app/test/support/database";

export interface BenchOptions {
  /** Seconds of the measured, closed-loop phase of each round. */
  duration: number;
  /** Seconds of load before it in every measured round (pools reconnect after idling). */
  warmup: number;
  /** Each configuration's warm-up round (first cycle, discarded): until this many payments… */
  warmupPayments: number;
  /** …or this many seconds. */
  warmupRound: number;
  /** Seconds of the fixed-rate phase after it (0 = none). */
  fixedDuration: number;
  /** Payments per second of that phase (open loop, evenly spaced). */
  fixedRate: number;
  /** Measured cycles (one round per configuration each), after the warm-up cycle. */
  rounds: number;
  connections: number;
  wallets: number;
  /** The run does not start a round that would end past this many seconds. */
  budget: number;
  database: string;
  out: string;
}

export const DEFAULTS: BenchOptions = {
  duration: 8,
  warmup: 2,
  warmupPayments: 1500,
  warmupRound: 15,
  fixedDuration: 4,
  fixedRate: 20,
  rounds: 3,
  connections: 32,
  wallets: 10_000,
  budget: 290,
  database: "payments_bench",
  out: path.join(__dirname, "results"),
};

export function parseOptions(argv: readonly string[], defaults: BenchOptions = DEFAULTS): BenchOptions {
  const options = { ...defaults };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const match = /^--([a-z-]+)(?:=(.*))?$/.exec(arg);
    if (!match) throw new Error(`unexpected argument ${arg}`);
    const key = match[1].replace(/-([a-z])/g, (_, c: string) => c.toUpperCase()) as keyof BenchOptions;
    if (!(key in options)) throw new Error(`unknown option --${match[1]}`);
    const value = match[2] ?? argv[++i];
    if (value === undefined) throw new Error(`--${match[1]} needs a value`);
    if (typeof options[key] === "number") {
      const n = Number(value);
      if (!Number.isFinite(n) || n < 0) throw new Error(`--${match[1]} must be a non-negative number, got ${value}`);
      (options[key] as number) = n;
    } else {
      (options[key] as string) = value;
    }
  }
  if (options.duration < 1 || options.connections < 1 || options.wallets < 2) {
    throw new Error("--duration and --connections must be at least 1, --wallets at least 2");
  }
  return options;
}

const log = (message: string) => process.stderr.write(`${message}\n`);
const fmt = (n: number, digits = 1) => (Number.isFinite(n) ? n.toFixed(digits) : "n/a");

class BudgetExceeded extends Error {}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  // Interrupted: exit, and the launcher's exit hook kills the services; the intake follows its parent.
  for (const signal of ["SIGINT", "SIGTERM"] as const) process.once(signal, () => process.exit(130));
  if (argv.includes("--profile")) {
    const { profileMain } = await import("./profile");
    await profileMain(argv.filter((a) => a !== "--profile"));
    return;
  }
  const options = parseOptions(argv);
  const started = Date.now();
  const deadline = started + options.budget * 1000;
  /** Stops before starting something that would end past the deadline. */
  const checkBudget = (nextSeconds: number) => {
    if (Date.now() + nextSeconds * 1000 > deadline) {
      throw new BudgetExceeded(`time budget of ${options.budget} s would be exceeded by the next round`);
    }
  };

  log(`bench: ${options.rounds} measured cycles + 1 warm-up cycle, ${options.duration} s rounds, ` +
    `${options.connections} connections, ${options.wallets} wallets, budget ${options.budget} s`);
  const machine = machineInfo();
  log(`bench: ${machine.cpus} × ${machine.cpuModel}, load average ${machine.loadAverageAtStart.join(" ")}`);

  const runId = `${Date.now().toString(36)}`;
  const redisPrefix = `${REDIS_PREFIX_ROOT}${runId}:`;
  let db: TestDatabase | undefined;
  let intake: IntakeProcess | undefined;
  /** Each configuration's processes, started at its warm-up round and kept for the run. */
  const pairs = new Map<ServiceConfigId, ServicePair>();
  const stopAllPairs = async () => {
    await Promise.all([...pairs.values()].map((p) => p.stop().catch(() => undefined)));
    pairs.clear();
  };
  // A last resort: whatever is still running is stopped and the process exits.
  const hardStop = setTimeout(() => {
    log("bench: hard time limit reached, stopping");
    void (async () => {
      await stopAllPairs();
      await intake?.close().catch(() => undefined);
      process.exit(2);
    })();
  }, (options.budget + 10) * 1000);
  hardStop.unref();

  const rounds: RoundRecord[] = [];
  const problems: string[] = [];
  let incomplete: string | undefined;
  let ledger: Awaited<ReturnType<typeof checkLedger>> | undefined;
  try {
    const stand = await openStand(options.database, options.wallets);
    db = stand.db;
    intake = stand.intake;
    const rendered = stand.rendered;
    log(`bench: ready after ${fmt((Date.now() - started) / 1000)} s (database ${options.database}, intake ${intake.url})`);

    let answered = 0;
    for (let cycle = 0; cycle <= options.rounds; cycle++) {
      const warmupCycle = cycle === 0;
      for (const config of SERVICE_CONFIGS) {
        const keyPrefix = `bench-${runId}-${cycle}-${config.id}`;
        const label = `${config.id} cycle ${cycle}`;
        if (warmupCycle) {
          checkBudget(4 + options.warmupRound);
          const pair = await startPair({
            rendered,
            intakeUrl: intake.url,
            db,
            redisPrefix: `${redisPrefix}${config.id}:`,
            overrides: config.overrides,
          });
          pairs.set(config.id, pair);
          const warm = await warmUp(pair, intake, db, {
            connections: options.connections,
            wallets: options.wallets,
            keyPrefix,
            label,
            seconds: options.warmupRound,
            payments: options.warmupPayments,
          });
          answered += warm.result.ok2xx;
          problems.push(...warm.problems);
          const record: RoundRecord = {
            config: config.id,
            cycle,
            warmup: true,
            saturation: warm.result,
            problems: warm.problems,
            notes: warm.notes,
          };
          rounds.push(record);
          logRound(record);
          continue;
        }
        checkBudget(options.warmup + options.duration + options.fixedDuration + 4);
        const pair = pairs.get(config.id)!;
        const m = await measureRound(pair, intake, db, {
          warmupSec: options.warmup,
          durationSec: options.duration,
          connections: options.connections,
          wallets: options.wallets,
          fixedRate: options.fixedRate,
          fixedSec: options.fixedDuration,
          keyPrefix,
          label,
        });
        answered += m.answered2xx;
        problems.push(...m.problems);
        const n = m.saturation.ok2xx;
        const record: RoundRecord = {
          config: config.id,
          cycle,
          warmup: false,
          saturation: m.saturation,
          warm: m.warm,
          fixed: m.fixed,
          cpuMsPerPayment: {
            payment: (m.cpuMs.payment.user + m.cpuMs.payment.system) / n,
            fraud: (m.cpuMs.fraud.user + m.cpuMs.fraud.system) / n,
            loadGenerator: m.cpuMs.loadGenerator / n,
          },
          cpuMs: m.cpuMs,
          logLinesPerPayment: { payment: m.logLines.payment / n, fraud: m.logLines.fraud / n },
          traces: m.traces,
          tracesToEnd: m.tracesToEnd,
          answered2xx: m.answered2xx,
          problems: m.problems,
          notes: m.notes,
        };
        rounds.push(record);
        logRound(record);
        if (m.fixed && m.saturation.throughput < 2 * options.fixedRate) {
          log(`bench: warning: ${config.id} saturates at ${fmt(m.saturation.throughput, 0)}/s, less than twice the fixed rate`);
        }
      }
      const duration = warmupCycle ? Math.min(4, options.duration) : options.duration;
      checkBudget(duration + 2);
      const ceiling = await runPgbench({
        database: db.name,
        clients: options.connections,
        threads: Math.min(2, options.connections),
        durationSec: duration,
        wallets: options.wallets,
      });
      const record: RoundRecord = { config: "ceiling", cycle, warmup: warmupCycle, saturation: ceiling, command: ceiling.command };
      rounds.push(record);
      logRound(record);
    }
    await stopAllPairs();
    ledger = await checkLedger(db, options.wallets, answered);
  } catch (error) {
    if (!(error instanceof BudgetExceeded)) throw error;
    incomplete = error.message;
    log(`bench: ${incomplete}; reporting what was measured`);
  } finally {
    await stopAllPairs();
    await intake?.close().catch(() => undefined);
    await deleteRedisKeys(redisPrefix).catch(() => undefined);
    await db?.pool.end().catch(() => undefined);
  }

  const wallSeconds = (Date.now() - started) / 1000;
  const report: BenchReport = {
    machine: { ...machine, loadAverageAtEnd: os.loadavg().map((l) => Math.round(l * 100) / 100) },
    options: { ...options, out: path.relative(process.cwd(), options.out) || "." },
    wallSeconds: Math.round(wallSeconds * 10) / 10,
    complete: incomplete === undefined,
    incomplete,
    configs: [
      ...SERVICE_CONFIGS.map((c) => ({ id: c.id as ConfigId, title: c.title, description: c.description })),
      { id: "ceiling" as ConfigId, title: "ceiling (pgbench)", description: CEILING_DESCRIPTION },
    ],
    ...summarize(rounds),
    ledger,
    rounds,
  };
  mkdirSync(options.out, { recursive: true });
  writeFileSync(path.join(options.out, "latest.json"), `${JSON.stringify(report, null, 2)}\n`);
  const markdown = renderMarkdown(report);
  writeFileSync(path.join(options.out, "latest.md"), markdown);
  process.stdout.write(`\n${markdown}\n`);
  log(`bench: wrote ${path.relative(process.cwd(), path.join(options.out, "latest.json"))} and latest.md ` +
    `in ${fmt(wallSeconds)} s`);

  const failed = [...new Set([...problems, ...report.problems])];
  if (ledger && !ledger.ok) failed.push(...ledger.problems.map((p) => `ledger: ${p}`));
  if (incomplete) failed.push(incomplete);
  if (failed.length) {
    log(`\nBENCH FAILED:\n${failed.map((p) => `  - ${p}`).join("\n")}`);
    process.exitCode = 1;
  }
}

function logRound(r: RoundRecord): void {
  const s = r.saturation;
  const fixed = r.fixed ? `; at ${r.fixed.targetRate}/s p50 ${fmt(r.fixed.latencyMs.p50, 2)} p99 ${fmt(r.fixed.latencyMs.p99, 2)} ms` : "";
  const cpu = r.cpuMsPerPayment ? `; cpu/payment ${fmt(r.cpuMsPerPayment.payment, 2)}+${fmt(r.cpuMsPerPayment.fraud, 2)} ms` : "";
  log(`${r.warmup ? "  (warm-up) " : "  "}cycle ${r.cycle} ${r.config.padEnd(11)} ${fmt(s.throughput).padStart(7)} /s  ` +
    `p50 ${fmt(s.latencyMs.p50, 2)} p99 ${fmt(s.latencyMs.p99, 2)} ms  failed ${failures(s)}${cpu}${fixed}`);
}

main().catch((error: Error) => {
  log(`bench: ${error.stack ?? error.message}`);
  process.exit(1);
});
