/**
 * npm run bench [-- --rounds 5 --seconds 5 --connections 16 --budget 900 --configs untraced,traced]
 * npm run bench -- --profile [--configs untraced,traced --seconds 10]   (CPU profiles: lib/profile.ts)
 *
 * Every configuration of lib/configs.ts gets its own fraud-service + payment-service pair,
 * warmed to a number of payments, then measured in alternating rounds (A B C … A B C …)
 * under closed-loop POST /v1/payments load. Per round: CPU ms per payment of both services
 * (process CPU time ÷ 2xx answers), payments/s, latency, spans, and the machine's load.
 * Prints the tables and writes bench/results/latest.md; exits 1 when more than 1 % of a
 * configuration's requests failed, an error was logged, a service died or the ledger does not add up.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import os from "node:os";
import path from "node:path";
import { CONFIGS, configById, PREVIOUS } from "./lib/configs";
import { runPaymentLoad } from "./lib/load";
import { preparePrevious } from "./lib/previous";
import { renderProfiles } from "./lib/profile";
import { renderReport, type RunInfo } from "./lib/report";
import { machineBusyMs, openStand, processCpuMs, startPair, type ServicePair, type Stand } from "./lib/stand";

const DEFAULTS = {
  rounds: 5,
  /** Seconds of measured load per round (after 1 s of unmeasured load: pools reconnect). */
  seconds: 5,
  /** Each pair's warm-up (JIT): until this many payments were answered, or 15 s. */
  warmupPayments: 1000,
  connections: 16,
  wallets: 10_000,
  /** No round starts that would end past this many seconds from the start. */
  budget: 900,
  configs: CONFIGS.map((c) => c.id).join(","),
  previous: PREVIOUS.commit,
  database: "payments_bench",
  out: path.join(__dirname, "results/latest.md"),
};
type BenchOptions = typeof DEFAULTS;

/** `--kebab-case value` for each default; --profile: one round of 10 s, untraced and traced, under node --cpu-prof. */
function parseOptions(argv: string[]): BenchOptions & { profile: boolean } {
  const kebab = (key: string) => key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
  const names = Object.fromEntries(Object.keys(DEFAULTS).map((key) => [kebab(key), { type: "string" as const }]));
  const { values } = parseArgs({ args: argv, options: { ...names, profile: { type: "boolean" } } });
  const options = { ...DEFAULTS, ...(values.profile ? { rounds: 1, seconds: 10, configs: "untraced,traced" } : {}), profile: values.profile === true };
  for (const key of Object.keys(DEFAULTS) as (keyof BenchOptions)[]) {
    const value = (values as Record<string, unknown>)[kebab(key)];
    if (typeof value !== "string") continue;
    if (typeof DEFAULTS[key] === "string") (options[key] as string) = value;
    else if (Number(value) >= 1) (options[key] as number) = Number(value);
    else throw new Error(`--${kebab(key)} must be a number ≥ 1, got ${value}`);
  }
  options.configs.split(",").forEach(configById);
  return options;
}

const log = (message: string) => process.stderr.write(`${message}\n`);
const nowUs = () => Number(process.hrtime.bigint() / 1000n);

/** One round of one configuration: 1 s of unmeasured load, then `seconds` measured. */
export type Round = Awaited<ReturnType<typeof measure>>;
async function measure(stand: Stand, pair: ServicePair, config: string, index: number, options: BenchOptions, keyPrefix: string) {
  const load = (seconds: number, phase: string) =>
    runPaymentLoad({ url: pair.payment.running.url, connections: options.connections, seconds, wallets: options.wallets, keyPrefix: `${keyPrefix}-${phase}` });
  const warm = await load(1, "w");
  await stand.intake.take();
  const errors0 = pair.payment.errorLines + pair.fraud.errorLines;
  const before = { payment: pair.payment.cpuMs(), fraud: pair.fraud.cpuMs(), bench: process.cpuUsage(), intake: processCpuMs(stand.intake.pid), busy: machineBusyMs() };
  const loadAverage = os.loadavg()[0];
  const from = nowUs();
  const result = await load(options.seconds, "m");
  const to = nowUs();
  const bench = process.cpuUsage(before.bench);
  const cpu = { payment: pair.payment.cpuMs() - before.payment, fraud: pair.fraud.cpuMs() - before.fraud };
  const own = cpu.payment + cpu.fraud + (bench.user + bench.system) / 1000 + processCpuMs(stand.intake.pid) - before.intake;
  const busy = machineBusyMs() - before.busy;
  const traces = await stand.intake.take();
  const n = result.ok2xx;
  // Per payment-service root received: spans reach the intake up to a flush interval late,
  // and counting them against the roots received cancels that lag.
  const rootsAll = traces.paymentRoots;
  const errors = pair.payment.errorLines + pair.fraud.errorLines - errors0;
  const problems = errors > 0 ? [`${config} round ${index}: ${errors} error log line(s), the last: ${pair.payment.lastError || pair.fraud.lastError}`] : [];
  for (const s of [pair.payment, pair.fraud]) if (!s.alive()) problems.push(`${config}: ${s.running.service} exited:\n${s.tail}`);
  return {
    config, index,
    /** The measured phase, µs of the monotonic clock (what --cpu-prof stamps samples with). */
    window: { from, to },
    payments: n,
    cpuMsPerPayment: { payment: cpu.payment / n, fraud: cpu.fraud / n },
    throughput: result.throughput, p50: result.p50, p99: result.p99,
    spansPerPayment: traces.spans / rootsAll,
    /** Per "<service> <name>": spans per payment and their mean duration. */
    spans: Object.fromEntries(Object.entries(traces.spansByName).map(([k, v]) => [k, { count: v / rootsAll, meanMs: traces.msByName[k] / v }])),
    /** Share of payment-service roots received with a keep priority. */
    paymentRootsKept: traces.paymentRootsKept / rootsAll,
    /** 1-minute load average at the start; busy cores over the measured phase, and those not ours. */
    machine: { loadAverage, busyCores: busy / (result.seconds * 1000), otherCores: (busy - own) / (result.seconds * 1000) },
    answered2xx: warm.ok2xx + n,
    failed: warm.failed + result.failed,
    problems,
  };
}

async function main(): Promise<void> {
  for (const signal of ["SIGINT", "SIGTERM"] as const) process.once(signal, () => process.exit(130));
  const options = parseOptions(process.argv.slice(2));
  const started = Date.now();
  const configs = options.configs.split(",").map(configById);
  const loadAverageAtStart = os.loadavg();
  const previous = configs.some((c) => c.build === "previous") ? preparePrevious(options.previous, log) : undefined;
  const profileDir = options.profile ? mkdtempSync(path.join(os.tmpdir(), "payments-apm-profiles-")) : "";
  const fits = (seconds: number) => Date.now() + seconds * 1000 <= started + options.budget * 1000;

  const runId = Date.now().toString(36);
  const stand = await openStand(options.database, options.wallets);
  const pairs = new Map<string, ServicePair>();
  const rounds: Round[] = [];
  const problems: string[] = [];
  /** Requests by configuration (a 402 fraud_review when fraud-service's 200 ms Redis deadline passes on a starved machine). */
  const requests = new Map(configs.map((c) => [c.id, { failed: 0, total: 0 }]));
  let answered = 0;
  const count = (config: string, failed: number, ok: number) => {
    requests.get(config)!.failed += failed;
    requests.get(config)!.total += failed + ok;
    answered += ok;
  };
  let stopped: string | undefined;
  const verification: { user: number; service: number }[] = [];
  try {
    // Started three at a time (starting is slow on a busy machine), warmed one after the other.
    for (let i = 0; i < configs.length; i += 3) {
      const batch = configs.slice(i, i + 3);
      const starts = await Promise.allSettled(
        batch.map((c) =>
          startPair(stand, c, c.build === "previous" ? previous! : {}, options.profile ? { NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${path.join(profileDir, c.id)} --cpu-prof-interval=500` } : {}),
        ),
      );
      starts.forEach((s, k) => s.status === "fulfilled" && pairs.set(batch[k].id, s.value));
      const failedStart = starts.find((s) => s.status === "rejected");
      if (failedStart) throw (failedStart as PromiseRejectedResult).reason;
    }
    for (const config of configs) {
      const pair = pairs.get(config.id)!;
      // Warm to a count, not a time, so slower configurations get the same JIT warm-up.
      for (let done = 0, step = 0, until = Date.now() + 15_000; done < options.warmupPayments && Date.now() < until; step++) {
        if (!fits(2)) throw new Error(`the --budget of ${options.budget} s ran out while warming ${config.id}`);
        const warm = await runPaymentLoad({ url: pair.payment.running.url, connections: options.connections, seconds: 2, wallets: options.wallets, keyPrefix: `bench-${runId}-${config.id}-warm${step}` });
        done += warm.ok2xx;
        count(config.id, warm.failed, warm.ok2xx);
      }
      log(`bench: ${config.id} started and warmed`);
    }
    for (let index = 1; index <= options.rounds && !stopped; index++) {
      for (const config of configs) {
        if (!fits(options.seconds + 3)) {
          stopped = `the --budget of ${options.budget} s ran out in round ${index}`;
          break;
        }
        const round = await measure(stand, pairs.get(config.id)!, config.id, index, options, `bench-${runId}-${config.id}-${index}`);
        rounds.push(round);
        problems.push(...round.problems);
        count(config.id, round.failed, round.answered2xx);
        log(`  round ${index} ${config.id.padEnd(17)} ${round.throughput.toFixed(0).padStart(5)}/s  ` +
          `cpu ${(round.cpuMsPerPayment.payment + round.cpuMsPerPayment.fraud).toFixed(3)} ms/payment  ` +
          `load ${round.machine.loadAverage.toFixed(1)}, other processes ${round.machine.otherCores.toFixed(2)} cores`);
      }
      if (!stopped) verification.push(await stand.verificationCpuUs());
    }
    // The pids, before the pairs stop (the profiles are written at exit).
    const pids = new Map([...pairs].map(([id, p]) => [id, { payment: p.payment.running.child.pid!, fraud: p.fraud.running.child.pid! }]));
    await Promise.all([...pairs.values()].map((p) => p.stop()));
    pairs.clear();
    problems.push(...(await stand.audit(answered)).map((p) => `ledger: ${p}`));
    if (options.profile) {
      process.stdout.write(`${renderProfiles(profileDir, rounds, pids)}\nRaw profiles: ${profileDir}\n`);
      return;
    }
  } finally {
    await Promise.all([...pairs.values()].map((p) => p.stop().catch(() => undefined)));
    await stand.close();
  }

  // More than 1 % of a configuration's requests failing makes its figures meaningless.
  for (const [id, r] of requests) if (r.failed > 0.01 * r.total) problems.push(`${id}: ${r.failed} of ${r.total} requests failed`);
  const info: RunInfo = { started, loadAverageAtStart, options, previous, configs, stopped, verification, problems,
    failed: [...requests].filter(([, r]) => r.failed > 0).map(([id, r]) => `${id} ${r.failed} of ${r.total}`),
  };
  const page = renderReport(info, rounds);
  writeFileSync(options.out, page);
  process.stdout.write(`\n${page}\n`);
  log(`bench: wrote ${path.relative(process.cwd(), options.out)} in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  if (problems.length) {
    log(`\nBENCH FAILED:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    process.exitCode = 1;
  }
}

main().catch((error: Error) => {
  log(`bench: ${error.stack ?? error.message}`);
  process.exit(1);
});
