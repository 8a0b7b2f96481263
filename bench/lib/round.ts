/**
 * One measured round against a running service pair: a short warm-up (pools reconnect
 * after idling while the other configurations ran), the closed-loop phase, a pause until
 * the database is idle and the tracer has flushed the saturation's spans, the open-loop
 * fixed-rate phase (so it measures a payment below capacity, not the saturation's
 * backlog), then a pause for the tracer's flush so that every span of the round reaches
 * the intake before the next round starts.
 */
import type { TestDatabase } from "../../app/test/support/database";
import type { IntakeCounts } from "./intake-process";
import { failures, runPaymentLoad, type PhaseResult } from "./load";
import { runPacedLoad, type PacedResult } from "./paced";
import { waitForQuiet } from "./quiet";
import { declineReasons, type IntakeProcess, type ServicePair } from "./stand";

export interface RoundPlan {
  /** Seconds of load before the measured phase (not recorded). */
  readonly warmupSec: number;
  /** Seconds of the closed-loop phase; 0 = warm-up only. */
  readonly durationSec: number;
  readonly connections: number;
  readonly wallets: number;
  /** Payments per second and seconds of the open-loop phase (0 = none). */
  readonly fixedRate: number;
  readonly fixedSec: number;
  /** Every Idempotency-Key of the round starts with it. */
  readonly keyPrefix: string;
  /** Where problems are reported from, e.g. "traced-prod cycle 2". */
  readonly label: string;
}

export interface CpuSplit {
  readonly user: number;
  readonly system: number;
}

export interface MeasuredRound {
  readonly warm: PhaseResult;
  readonly saturation: PhaseResult;
  readonly fixed?: PacedResult & { targetRate: number };
  /** CPU ms of each process during the closed-loop phase. */
  readonly cpuMs: { payment: CpuSplit; fraud: CpuSplit; loadGenerator: number };
  readonly logLines: { payment: number; fraud: number };
  /** Intake counts during the closed-loop phase, and from its start until the round's spans were flushed. */
  readonly traces: IntakeCounts;
  readonly tracesToEnd: IntakeCounts;
  readonly answered2xx: number;
  /** Fail the run: an error logged, a process gone. */
  readonly problems: string[];
  /** Reported: failed requests and why (the run fails on their rate, see report.ts), warnings logged. */
  readonly notes: string[];
}

/** The tracer flushes every DD_TRACE_FLUSH_INTERVAL (2 s by default). */
const FLUSH_WAIT_MS = 2_300;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function measureRound(
  pair: ServicePair,
  intake: IntakeProcess,
  db: TestDatabase,
  plan: RoundPlan,
): Promise<MeasuredRound> {
  const out0 = { payment: pair.payment.output(), fraud: pair.fraud.output() };
  const load = (phase: string, durationSec: number) =>
    runPaymentLoad({
      url: pair.payment.url,
      connections: plan.connections,
      durationSec,
      wallets: plan.wallets,
      keyPrefix: `${plan.keyPrefix}-${phase}`,
    });
  const warm = await load("w", plan.warmupSec);
  await intake.take();
  const cpu0 = { payment: pair.payment.cpuSplitMs(), fraud: pair.fraud.cpuSplitMs(), bench: process.cpuUsage() };
  const lines0 = { payment: pair.payment.output().lines, fraud: pair.fraud.output().lines };
  const saturation = await load("s", plan.durationSec);
  const cpu1 = { payment: pair.payment.cpuSplitMs(), fraud: pair.fraud.cpuSplitMs(), bench: process.cpuUsage(cpu0.bench) };
  const logLines = {
    payment: pair.payment.output().lines - lines0.payment,
    fraud: pair.fraud.output().lines - lines0.fraud,
  };
  const traces = await intake.take();
  let fixed: MeasuredRound["fixed"];
  if (plan.fixedRate > 0 && plan.fixedSec > 0) {
    await waitForQuiet(db);
    await sleep(FLUSH_WAIT_MS);
    const result = await runPacedLoad({
      url: pair.payment.url,
      rate: plan.fixedRate,
      durationSec: plan.fixedSec,
      wallets: plan.wallets,
      keyPrefix: `${plan.keyPrefix}-f`,
    });
    fixed = { ...result, targetRate: plan.fixedRate };
  }
  await waitForQuiet(db);
  await sleep(FLUSH_WAIT_MS);
  const rest = await intake.take();

  const problems: string[] = [];
  const notes: string[] = [];
  for (const [name, phase] of [["warm-up", warm], ["closed-loop", saturation], ["fixed-rate", fixed]] as const) {
    if (phase && failures(phase) > 0) {
      notes.push(
        `${plan.label} ${name}: ${failures(phase)} of ${phase.requests} requests failed ` +
          `(${JSON.stringify({ statusCodes: phase.statusCodes, errors: phase.errors, timeouts: phase.timeouts })})`,
      );
    }
  }
  if ([warm, saturation, fixed].some((phase) => phase && phase.non2xx > 0)) {
    notes.push(`${plan.label}: declined by reason ${JSON.stringify(await declineReasons(db, plan.keyPrefix))}`);
  }
  const out1 = { payment: pair.payment.output(), fraud: pair.fraud.output() };
  const errors = out1.payment.errorLines - out0.payment.errorLines + out1.fraud.errorLines - out0.fraud.errorLines;
  const warnings = out1.payment.warnLines - out0.payment.warnLines + out1.fraud.warnLines - out0.fraud.warnLines;
  if (errors > 0) problems.push(`${plan.label}: ${errors} error log line(s)`);
  if (warnings > 0) notes.push(`${plan.label}: ${warnings} warning log line(s): ${lastWarning(pair)}`);
  for (const service of [pair.payment, pair.fraud]) {
    if (service.running.child.exitCode !== null || service.running.child.signalCode !== null) {
      problems.push(`${plan.label}: ${service.running.service} exited`);
    }
  }
  if (problems.length) {
    process.stderr.write(
      `--- payment-service output (tail) ---\n${pair.payment.tail()}\n--- fraud-service output (tail) ---\n${pair.fraud.tail()}\n`,
    );
  }
  return {
    warm,
    saturation,
    fixed,
    cpuMs: {
      payment: { user: cpu1.payment.user - cpu0.payment.user, system: cpu1.payment.system - cpu0.payment.system },
      fraud: { user: cpu1.fraud.user - cpu0.fraud.user, system: cpu1.fraud.system - cpu0.fraud.system },
      loadGenerator: (cpu1.bench.user + cpu1.bench.system) / 1000,
    },
    logLines,
    traces,
    tracesToEnd: mergeCounts(traces, rest),
    answered2xx: warm.ok2xx + saturation.ok2xx + (fixed?.ok2xx ?? 0),
    problems,
    notes,
  };
}

/**
 * A warm-up round: load only, on processes started for it, until they answered `payments`
 * payments (a fresh process's CPU per payment keeps falling for thousands of payments as
 * the JIT optimises; warming to a count rather than a time treats slower configurations
 * alike) or `seconds` passed. The first cycle of a run is made of these: they also warm
 * the database, Redis and the OS, and are not part of the results.
 */
export async function warmUp(
  pair: ServicePair,
  intake: IntakeProcess,
  db: TestDatabase,
  plan: Pick<RoundPlan, "connections" | "wallets" | "keyPrefix" | "label"> & { seconds: number; payments?: number },
): Promise<{ result: PhaseResult; problems: string[]; notes: string[] }> {
  const out0 = { payment: pair.payment.output(), fraud: pair.fraud.output() };
  const started = Date.now();
  const steps: PhaseResult[] = [];
  const target = plan.payments ?? Number.POSITIVE_INFINITY;
  for (let answered = 0, step = 0; ; step++) {
    const left = plan.seconds - (Date.now() - started) / 1000;
    if (left < 1 || answered >= target) break;
    const chunk = await runPaymentLoad({
      url: pair.payment.url,
      connections: plan.connections,
      durationSec: Math.min(Number.isFinite(target) ? 2.5 : left, left),
      wallets: plan.wallets,
      keyPrefix: `${plan.keyPrefix}-w${step}`,
    });
    steps.push(chunk);
    answered += chunk.ok2xx;
  }
  const result = combine(steps);
  await waitForQuiet(db);
  await intake.take();
  const problems: string[] = [];
  const notes: string[] = [];
  if (failures(result) > 0) {
    notes.push(`${plan.label} warm-up: ${failures(result)} of ${result.requests} requests failed (${JSON.stringify(result.statusCodes)})`);
    if (result.non2xx > 0) notes.push(`${plan.label}: declined by reason ${JSON.stringify(await declineReasons(db, plan.keyPrefix))}`);
  }
  const out1 = { payment: pair.payment.output(), fraud: pair.fraud.output() };
  const errors = out1.payment.errorLines - out0.payment.errorLines + out1.fraud.errorLines - out0.fraud.errorLines;
  const warnings = out1.payment.warnLines - out0.payment.warnLines + out1.fraud.warnLines - out0.fraud.warnLines;
  if (errors > 0) problems.push(`${plan.label} warm-up: ${errors} error log line(s)`);
  if (warnings > 0) notes.push(`${plan.label} warm-up: ${warnings} warning log line(s): ${lastWarning(pair)}`);
  return { result, problems, notes };
}

/** The message of the last warning either service logged, for the report. */
function lastWarning(pair: ServicePair): string {
  for (const service of [pair.fraud, pair.payment]) {
    const last = service.lastWarnLine;
    if (!last) continue;
    try {
      const parsed = JSON.parse(last) as { msg?: string; err?: { message?: string } };
      return `${service.running.service}: ${parsed.msg ?? "?"}${parsed.err?.message ? ` (${parsed.err.message})` : ""}`;
    } catch {
      return `${service.running.service}: ${last.slice(0, 200)}`;
    }
  }
  return "?";
}

/** Consecutive phases as one: counts added, latency percentiles from the longest phase. */
function combine(phases: PhaseResult[]): PhaseResult {
  if (phases.length === 1) return phases[0];
  const sum = (f: (p: PhaseResult) => number) => phases.reduce((n, p) => n + f(p), 0);
  const statusCodes: Record<string, number> = {};
  for (const p of phases) for (const [code, n] of Object.entries(p.statusCodes)) statusCodes[code] = (statusCodes[code] ?? 0) + n;
  const durationSec = sum((p) => p.durationSec);
  const ok2xx = sum((p) => p.ok2xx);
  const longest = phases.reduce((a, b) => (b.durationSec > a.durationSec ? b : a));
  return {
    durationSec,
    requests: sum((p) => p.requests),
    ok2xx,
    non2xx: sum((p) => p.non2xx),
    errors: sum((p) => p.errors),
    timeouts: sum((p) => p.timeouts),
    statusCodes,
    throughput: ok2xx / durationSec,
    latencyMs: longest.latencyMs,
  };
}

export function mergeCounts(a: IntakeCounts, b: IntakeCounts): IntakeCounts {
  const sum = (x: Record<string, number>, y: Record<string, number>) => {
    const out = { ...x };
    for (const [k, v] of Object.entries(y)) out[k] = (out[k] ?? 0) + v;
    return out;
  };
  return {
    payloads: a.payloads + b.payloads,
    bytes: a.bytes + b.bytes,
    spans: a.spans + b.spans,
    chunksByPriority: sum(a.chunksByPriority, b.chunksByPriority),
    rootsByServicePriority: sum(a.rootsByServicePriority, b.rootsByServicePriority),
    spansByName: sum(a.spansByName, b.spansByName),
    decodeErrors: a.decodeErrors + b.decodeErrors,
    otherRequests: a.otherRequests + b.otherRequests,
  };
}
