/** Per-configuration medians, the ratios the goals are stated in, and the Markdown table. */
import type { ConfigId } from "./configs";
import type { IntakeCounts } from "./intake-process";
import { failures, summarize as latencySummary, type PhaseResult } from "./load";
import type { LedgerCheck } from "./stand";
import type { MachineInfo } from "./machine";

export interface RoundRecord {
  readonly config: ConfigId;
  readonly cycle: number;
  /** Rounds of the first cycle warm up the database and caches and are left out of the summary. */
  readonly warmup: boolean;
  /** Closed loop: each connection sends its next payment when the previous one is answered. */
  readonly saturation: PhaseResult;
  /** The short load before it (measured rounds). */
  readonly warm?: PhaseResult;
  /** Open loop at a fixed arrival rate below every configuration's capacity. */
  readonly fixed?: PhaseResult & { targetRate: number; samplesMs: number[] };
  /** CPU time (user + system) during the saturation phase ÷ payments answered 2xx. */
  readonly cpuMsPerPayment?: { payment: number; fraud: number; loadGenerator: number };
  /** CPU ms (user / system) of each process during the closed-loop phase. */
  readonly cpuMs?: { payment: { user: number; system: number }; fraud: { user: number; system: number }; loadGenerator: number };
  readonly logLinesPerPayment?: { payment: number; fraud: number };
  /** What the trace intake received during the saturation phase (for the kept share). */
  readonly traces?: IntakeCounts;
  /** From the end of the warm-up until the services had stopped and flushed (for spans per payment). */
  readonly tracesToEnd?: IntakeCounts;
  /** 2xx answers over all phases of the round (checked against the ledger). */
  readonly answered2xx?: number;
  readonly problems?: string[];
  readonly notes?: string[];
  readonly command?: string;
}

export interface ConfigSummary {
  readonly id: ConfigId;
  readonly rounds: number;
  /** Payments (2xx) per second: median over the measured rounds, and each round's value. */
  readonly throughput: number;
  readonly throughputPerRound: number[];
  /** Milliseconds, median over rounds of each round's percentile. */
  readonly p50: number;
  readonly p99: number;
  readonly p99PerRound: number[];
  readonly fixed?: { targetRate: number; achievedRate: number; p50: number; p99: number; samples: number; p99PerRound: number[] };
  readonly requests: number;
  readonly failed: number;
  readonly non2xx: number;
  readonly errors: number;
  readonly cpuMsPerPayment?: { payment: number; fraud: number; loadGenerator: number };
  readonly logLinesPerPayment?: { payment: number; fraud: number };
  /** Spans the intake received per payment (both services), and the share of payment-service roots kept (priority > 0). */
  readonly spansPerPayment?: number;
  readonly paymentRootsKept?: number;
  readonly paymentRootsKeptPerRound?: number[];
  readonly paymentRootsKeptPerSecond?: number;
  /** Spans per payment by "<service> <name>" (median over rounds). */
  readonly spansByName?: Record<string, number>;
}

export interface Ratios {
  /** traced ÷ untraced throughput, from the medians, and per cycle (rounds next to each other). */
  readonly tracedProdOverUntraced: number;
  readonly tracedProdOverUntracedPerCycle: number[];
  readonly traced100OverUntraced: number;
  /** p99(traced) − p99(untraced), ms, closed loop at saturation and open loop at the fixed rate. */
  readonly p99AddedAtSaturationMs: number;
  readonly p99AddedAtFixedRateMs?: number;
  readonly p99AddedAtFixedRate100Ms?: number;
  /** p50(traced, prod sampling) − p50(untraced) at the fixed rate, ms: the typical payment's added latency. */
  readonly p50AddedAtFixedRateMs?: number;
  /** payments/s ÷ pgbench transactions/s. */
  readonly untracedOverCeiling: number;
  readonly tracedProdOverCeiling: number;
  /** Extra CPU per payment with tracing (payment-service + fraud-service), ms. */
  readonly cpuAddedPerPaymentMs?: number;
}

export interface Goal {
  readonly name: string;
  readonly target: string;
  readonly measured: string;
  readonly met: boolean;
}

export interface BenchReport {
  readonly machine: MachineInfo & { loadAverageAtEnd: number[] };
  readonly options: Record<string, unknown>;
  readonly wallSeconds: number;
  readonly complete: boolean;
  readonly incomplete?: string;
  readonly configs: { id: ConfigId; title: string; description: string }[];
  readonly summary: ConfigSummary[];
  readonly ratios: Ratios;
  readonly goals: Goal[];
  /** What fails the run. */
  readonly problems: string[];
  /** Reported only: individual failed requests and their reasons, warnings. */
  readonly notes: string[];
  readonly ledger?: LedgerCheck;
  readonly rounds: RoundRecord[];
}

/** Spans received ÷ payment-service root spans received: spans per payment, both services, over the same window. */
export function spansPerTrace(counts: IntakeCounts): number {
  let roots = 0;
  for (const [key, count] of Object.entries(counts.rootsByServicePriority)) {
    if (key.startsWith("payment-service:")) roots += count;
  }
  return roots ? counts.spans / roots : Number.NaN;
}

function spansByName(counts: IntakeCounts[]): Record<string, number> {
  const names = new Set(counts.flatMap((c) => Object.keys(c.spansByName)));
  const out: Record<string, number> = {};
  for (const name of [...names].sort()) {
    out[name] = round(median(counts.map((c) => (c.spansByName[name] ?? 0) / (c.spans / spansPerTrace(c)))), 2);
  }
  return out;
}

export function median(values: number[]): number {
  const v = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (v.length === 0) return Number.NaN;
  const mid = Math.floor(v.length / 2);
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

/** p50 and p99 of every fixed-rate answer of the rounds together. */
function pooledPercentiles(fixed: ReadonlyArray<NonNullable<RoundRecord["fixed"]>>): { p50: number; p99: number; samples: number } {
  const samples = fixed.flatMap((f) => f.samplesMs);
  const { p50, p99 } = latencySummary(samples);
  return { p50: round(p50), p99: round(p99), samples: samples.length };
}

const round = (n: number, digits = 2) => (Number.isFinite(n) ? Math.round(n * 10 ** digits) / 10 ** digits : Number.NaN);

function summarizeConfig(id: ConfigId, rounds: RoundRecord[]): ConfigSummary {
  const measured = rounds.filter((r) => r.config === id && !r.warmup);
  const all = rounds.filter((r) => r.config === id);
  const fixed = measured.map((r) => r.fixed).filter((f): f is NonNullable<RoundRecord["fixed"]> => f !== undefined);
  const withCpu = measured.filter((r) => r.cpuMsPerPayment);
  const traced = measured.filter((r) => r.traces && r.traces.spans > 0);
  const whole = measured.map((r) => r.tracesToEnd ?? r.traces).filter((t): t is IntakeCounts => t !== undefined && t.spans > 0);
  const spansPerPayment = whole.length ? median(whole.map(spansPerTrace)) : undefined;
  const keptShares = traced.map((r) => {
    const roots = r.traces!.rootsByServicePriority;
    let kept = 0;
    let total = 0;
    for (const [key, count] of Object.entries(roots)) {
      const [service, priority] = key.split(":");
      if (service !== "payment-service") continue;
      total += count;
      if (Number(priority) > 0) kept += count;
    }
    return { share: total ? kept / total : Number.NaN, perSecond: kept / r.saturation.durationSec };
  });
  return {
    id,
    rounds: measured.length,
    throughput: round(median(measured.map((r) => r.saturation.throughput)), 1),
    throughputPerRound: measured.map((r) => round(r.saturation.throughput, 1)),
    p50: round(median(measured.map((r) => r.saturation.latencyMs.p50))),
    p99: round(median(measured.map((r) => r.saturation.latencyMs.p99))),
    p99PerRound: measured.map((r) => round(r.saturation.latencyMs.p99)),
    fixed: fixed.length
      ? {
          targetRate: fixed[0].targetRate,
          achievedRate: round(median(fixed.map((f) => f.throughput)), 1),
          // Pooled over the rounds: one round's few dozen answers make a p99 that is its maximum.
          ...pooledPercentiles(fixed),
          p99PerRound: fixed.map((f) => round(f.latencyMs.p99)),
        }
      : undefined,
    requests: all.reduce((n, r) => n + r.saturation.requests + (r.fixed?.requests ?? 0) + (r.warm?.requests ?? 0), 0),
    failed: all.reduce((n, r) => n + failures(r.saturation) + (r.fixed ? failures(r.fixed) : 0) + (r.warm ? failures(r.warm) : 0), 0),
    non2xx: all.reduce((n, r) => n + r.saturation.non2xx + (r.fixed?.non2xx ?? 0) + (r.warm?.non2xx ?? 0), 0),
    errors: all.reduce((n, r) => n + r.saturation.errors + (r.fixed?.errors ?? 0) + (r.warm?.errors ?? 0), 0),
    cpuMsPerPayment: withCpu.length
      ? {
          payment: round(median(withCpu.map((r) => r.cpuMsPerPayment!.payment)), 3),
          fraud: round(median(withCpu.map((r) => r.cpuMsPerPayment!.fraud)), 3),
          loadGenerator: round(median(withCpu.map((r) => r.cpuMsPerPayment!.loadGenerator)), 3),
        }
      : undefined,
    logLinesPerPayment: withCpu.length
      ? {
          payment: round(median(withCpu.map((r) => r.logLinesPerPayment!.payment))),
          fraud: round(median(withCpu.map((r) => r.logLinesPerPayment!.fraud))),
        }
      : undefined,
    spansPerPayment: spansPerPayment === undefined ? undefined : round(spansPerPayment, 1),
    paymentRootsKept: keptShares.length ? round(median(keptShares.map((k) => k.share)), 3) : undefined,
    paymentRootsKeptPerRound: keptShares.length ? keptShares.map((k) => round(k.share, 3)) : undefined,
    paymentRootsKeptPerSecond: keptShares.length ? round(median(keptShares.map((k) => k.perSecond)), 1) : undefined,
    spansByName: whole.length ? spansByName(whole) : undefined,
  };
}

/** Failed requests tolerated per configuration (non-2xx, errors, timeouts ÷ requests, all phases). */
export const MAX_FAILURE_RATE = 0.001;

export function summarize(rounds: RoundRecord[]): Pick<BenchReport, "summary" | "ratios" | "goals" | "problems" | "notes"> {
  const ids: ConfigId[] = ["untraced", "traced-prod", "traced-100", "ceiling"];
  const summary = ids.map((id) => summarizeConfig(id, rounds));
  const by = Object.fromEntries(summary.map((s) => [s.id, s])) as Record<ConfigId, ConfigSummary>;
  const untraced = by.untraced;
  const prod = by["traced-prod"];
  const full = by["traced-100"];
  const ceiling = by.ceiling;

  const perCycle: number[] = [];
  for (const cycle of new Set(rounds.filter((r) => !r.warmup).map((r) => r.cycle))) {
    const a = rounds.find((r) => r.cycle === cycle && r.config === "untraced");
    const b = rounds.find((r) => r.cycle === cycle && r.config === "traced-prod");
    if (a && b) perCycle.push(round(b.saturation.throughput / a.saturation.throughput, 3));
  }
  const cpu = (s: ConfigSummary) => (s.cpuMsPerPayment ? s.cpuMsPerPayment.payment + s.cpuMsPerPayment.fraud : Number.NaN);
  const ratios: Ratios = {
    tracedProdOverUntraced: round(prod.throughput / untraced.throughput, 3),
    tracedProdOverUntracedPerCycle: perCycle,
    traced100OverUntraced: round(full.throughput / untraced.throughput, 3),
    p99AddedAtSaturationMs: round(prod.p99 - untraced.p99),
    p99AddedAtFixedRateMs: prod.fixed && untraced.fixed ? round(prod.fixed.p99 - untraced.fixed.p99) : undefined,
    p99AddedAtFixedRate100Ms: full.fixed && untraced.fixed ? round(full.fixed.p99 - untraced.fixed.p99) : undefined,
    p50AddedAtFixedRateMs: prod.fixed && untraced.fixed ? round(prod.fixed.p50 - untraced.fixed.p50) : undefined,
    untracedOverCeiling: round(untraced.throughput / ceiling.throughput, 3),
    tracedProdOverCeiling: round(prod.throughput / ceiling.throughput, 3),
    cpuAddedPerPaymentMs: round(cpu(prod) - cpu(untraced), 3),
  };
  const goals: Goal[] = [
    {
      name: "traced ÷ untraced throughput (prod sampling)",
      target: "≥ 0.95",
      measured: ratios.tracedProdOverUntraced.toFixed(3),
      met: ratios.tracedProdOverUntraced >= 0.95,
    },
    {
      name: "p99 added by tracing at saturation (prod sampling)",
      target: "≤ 1 ms",
      measured: `${ratios.p99AddedAtSaturationMs.toFixed(2)} ms`,
      met: ratios.p99AddedAtSaturationMs <= 1,
    },
    ...(ratios.p99AddedAtFixedRateMs === undefined
      ? []
      : [
          {
            name: `p99 added by tracing at a fixed ${prod.fixed!.targetRate} req/s (prod sampling)`,
            target: "≤ 1 ms",
            measured: `${ratios.p99AddedAtFixedRateMs.toFixed(2)} ms`,
            met: ratios.p99AddedAtFixedRateMs <= 1,
          },
        ]),
    {
      name: "payments/s ÷ ceiling (prod sampling)",
      target: "≥ 0.5",
      measured: ratios.tracedProdOverCeiling.toFixed(3),
      met: ratios.tracedProdOverCeiling >= 0.5,
    },
  ];
  const problems = rounds.flatMap((r) => r.problems ?? []);
  for (const r of rounds) {
    const counts = r.tracesToEnd ?? r.traces;
    if (!counts) continue;
    const where = `${r.config} cycle ${r.cycle}`;
    if (counts.decodeErrors > 0) problems.push(`${where}: the intake could not decode ${counts.decodeErrors} trace payload(s)`);
    if (r.config === "untraced" && counts.spans > 0) problems.push(`${where}: untraced, yet ${counts.spans} spans arrived`);
    if (r.config !== "untraced" && r.config !== "ceiling" && counts.spans === 0) problems.push(`${where}: traced, yet no span arrived`);
  }
  for (const s of summary) {
    if (s.id === "ceiling" && s.failed > 0) problems.push(`ceiling: ${s.failed} pgbench transaction(s) failed`);
    if (s.id !== "ceiling" && s.failed > MAX_FAILURE_RATE * s.requests) {
      problems.push(`${s.id}: ${s.failed} of ${s.requests} requests failed, more than ${MAX_FAILURE_RATE * 100} %`);
    }
  }
  const notes = rounds.flatMap((r) => r.notes ?? []);
  return { summary, ratios, goals, problems, notes };
}

const num = (n: number | undefined, digits = 1) => (n === undefined || !Number.isFinite(n) ? "–" : n.toFixed(digits));

export function renderMarkdown(report: BenchReport): string {
  const { machine, summary, ratios, goals } = report;
  const title = Object.fromEntries(report.configs.map((c) => [c.id, c.title]));
  const o = report.options as {
    connections: number;
    duration: number;
    warmup: number;
    warmupRound: number;
    warmupPayments: number;
    rounds: number;
    wallets: number;
    fixedDuration: number;
  };
  const fixedRate = summary.find((s) => s.fixed)?.fixed?.targetRate;
  const lines: string[] = [];
  lines.push(`# POST /v1/payments benchmark`);
  lines.push("");
  lines.push(
    `${machine.date.slice(0, 16).replace("T", " ")} UTC · ${machine.cpus} × ${machine.cpuModel} · services on Node ` +
      `${machine.serviceNodeVersion ?? "?"} · dd-trace ${machine.versions["dd-trace"] ?? "?"} · PostgreSQL ${machine.postgres ?? "?"} · ` +
      `Redis ${machine.redis ?? "?"} · load average ${machine.loadAverageAtStart.join("/")} at start, ` +
      `${machine.loadAverageAtEnd.join("/")} at end · wall time ${report.wallSeconds} s`,
  );
  lines.push("");
  lines.push(
    `${o.connections} connections, ${o.wallets} wallets. Each configuration's processes start once and get a warm-up round ` +
      `(first cycle, discarded: ${o.warmupPayments} payments or ${o.warmupRound} s); then ${summary[0].rounds} alternating cycles, each round ${o.warmup} s of load, ` +
      `${o.duration} s measured (closed loop)` +
      (fixedRate ? `, then ${o.fixedDuration} s at a fixed ${fixedRate} payments/s (open loop, evenly spaced)` : "") +
      `. Medians over rounds.`,
  );
  if (!report.complete) lines.push("", `**Incomplete run:** ${report.incomplete}`);
  lines.push("");
  lines.push(
    "| configuration | payments/s | per round | p50 ms | p99 ms | failed / requests (all phases) | CPU ms per payment (payment + fraud) | spans per payment | payment roots kept, per round | p50 / p99 ms at fixed rate (rounds pooled) |",
  );
  lines.push("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|");
  for (const s of summary) {
    const cpu = s.cpuMsPerPayment ? `${num(s.cpuMsPerPayment.payment, 2)} + ${num(s.cpuMsPerPayment.fraud, 2)}` : "–";
    const kept =
      s.paymentRootsKeptPerRound === undefined
        ? "–"
        : `${s.paymentRootsKeptPerRound.map((k) => `${num(k * 100, 0)} %`).join(", ")} (median ${num(s.paymentRootsKeptPerSecond, 0)}/s)`;
    const fixed = s.fixed ? `${num(s.fixed.p50, 2)} / ${num(s.fixed.p99, 2)}` : "–";
    lines.push(
      `| ${title[s.id]} | ${num(s.throughput)} | ${s.throughputPerRound.map((t) => num(t, 0)).join(", ")} | ${num(s.p50, 2)} | ${num(s.p99, 2)} | ` +
        `${s.failed} / ${s.requests} | ${cpu} | ${num(s.spansPerPayment)} | ${kept} | ${fixed} |`,
    );
  }
  const prod = summary.find((s) => s.id === "traced-prod");
  if (prod?.spansByName) {
    lines.push("");
    lines.push(
      `Spans per payment, prod sampling (service, name): ` +
        Object.entries(prod.spansByName)
          .filter(([, n]) => n >= 0.05)
          .sort((a, b) => b[1] - a[1])
          .map(([name, n]) => `${name} ${num(n, n >= 1.95 || n < 0.95 ? 1 : 0)}`)
          .join(" · ") +
        ".",
    );
  }
  lines.push("");
  lines.push("| ratio | value |");
  lines.push("|---|---:|");
  lines.push(`| traced (prod sampling) ÷ untraced throughput | ${num(ratios.tracedProdOverUntraced, 3)} (per cycle: ${ratios.tracedProdOverUntracedPerCycle.map((r) => num(r, 2)).join(", ")}) |`);
  lines.push(`| traced (100 %) ÷ untraced throughput | ${num(ratios.traced100OverUntraced, 3)} |`);
  lines.push(`| p99 added by tracing, saturation (prod sampling) | ${num(ratios.p99AddedAtSaturationMs, 2)} ms |`);
  if (ratios.p99AddedAtFixedRateMs !== undefined) {
    lines.push(`| p99 added by tracing at ${fixedRate} req/s (prod sampling / 100 %) | ${num(ratios.p99AddedAtFixedRateMs, 2)} / ${num(ratios.p99AddedAtFixedRate100Ms, 2)} ms |`);
  }
  if (ratios.p50AddedAtFixedRateMs !== undefined) {
    lines.push(`| p50 added by tracing at ${fixedRate} req/s (prod sampling) | ${num(ratios.p50AddedAtFixedRateMs, 2)} ms |`);
  }
  lines.push(`| CPU added by tracing per payment (both services) | ${num(ratios.cpuAddedPerPaymentMs, 3)} ms |`);
  lines.push(`| payments/s ÷ ceiling (untraced / prod sampling) | ${num(ratios.untracedOverCeiling, 3)} / ${num(ratios.tracedProdOverCeiling, 3)} |`);
  lines.push("");
  lines.push("| goal | target | measured | met |");
  lines.push("|---|---|---|---|");
  for (const g of goals) lines.push(`| ${g.name} | ${g.target} | ${g.measured} | ${g.met ? "yes" : "**no**"} |`);
  lines.push("");
  if (report.ledger) {
    lines.push(
      report.ledger.ok
        ? `Ledger after the run: money conserved, no negative balance, every transaction final, every completed one with two entries and its outbox event (${report.ledger.completedByService} payments completed by the services, ${report.ledger.declined} declined, ${report.ledger.completedByPgbench} by pgbench).`
        : `**Ledger problems:** ${report.ledger.problems.join("; ")}`,
    );
  }
  if (report.problems.length) lines.push("", `**Problems (the run failed):**`, ...report.problems.map((p) => `- ${p}`));
  if (report.notes.length) lines.push("", `Notes:`, ...report.notes.map((p) => `- ${p}`));
  lines.push("");
  return `${lines.join("\n")}\n`;
}
