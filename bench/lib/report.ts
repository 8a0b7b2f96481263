/**
 * The results page (bench/results/latest.md): the side-by-side table, the ratios, the goal
 * table with met / not met / undecided, the candidate cuts, the machine's load.
 */
import type { BenchConfig } from "./configs";
import type { PreviousBuild } from "./previous";
import { figure, isNoise, judge, judgeCut, MIN_ROUNDS, paired, type Figure, type Goal } from "./verdict";

export interface Round {
  readonly config: string;
  readonly index: number;
  readonly payments: number;
  readonly cpuMsPerPayment: { payment: number; fraud: number };
  readonly throughput: number;
  readonly p50: number;
  readonly p99: number;
  readonly spansPerPayment: number;
  readonly spansByName: Record<string, number>;
  /** Share of payment-service roots the intake received with a keep priority. */
  readonly paymentRootsKept: number;
  /** 1-minute load average at the start; busy cores over the measured phase, and those not ours. */
  readonly machine: { loadAverage: number; busyCores: number; otherCores: number };
  readonly answered2xx: number;
  readonly failed: number;
  readonly problems: string[];
}

export interface RunInfo {
  readonly date: string;
  readonly cpus: number;
  readonly cpuModel: string;
  readonly loadAverageAtStart: number[];
  readonly loadAverageAtEnd: number[];
  readonly wallSeconds: number;
  readonly options: { rounds: number; seconds: number; connections: number; wallets: number; warmupPayments: number };
  readonly previous?: PreviousBuild;
  readonly configs: readonly BenchConfig[];
  readonly stopped?: string;
  readonly problems: string[];
  readonly notes: string[];
}

export const GOALS = {
  cpuAdded: { target: 0.5, bound: "max", impossibleBeyond: 0 } satisfies Goal,
  throughputRatio: { target: 0.8, bound: "min", impossibleBeyond: 1 } satisfies Goal,
};

const cpu = (r: Round) => r.cpuMsPerPayment.payment + r.cpuMsPerPayment.fraud;

/** Per-round values of `config`, indexed by round (NaN where it has none). */
function series(rounds: readonly Round[], config: string, value: (r: Round) => number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => {
    const r = rounds.find((x) => x.config === config && x.index === i + 1);
    return r ? value(r) : Number.NaN;
  });
}

const fmt = (n: number, digits: number) => (Number.isFinite(n) ? n.toFixed(digits) : "n/a");
/** "1.234 [1.100–1.400]", or "noise (…)" when the median is impossible for the figure. */
function show(f: Figure, digits: number, goal?: Goal): string {
  const text = `${fmt(f.median, digits)} [${fmt(f.min, digits)}–${fmt(f.max, digits)}]`;
  return goal && isNoise(f, goal) ? `noise (${text})` : text;
}

export function renderReport(info: RunInfo, rounds: readonly Round[]): string {
  const count = Math.max(0, ...rounds.map((r) => r.index));
  const of = (config: string, value: (r: Round) => number) => series(rounds, config, value, count);
  const has = (config: string) => info.configs.some((c) => c.id === config);
  const lines: string[] = [];
  const prev = info.previous;
  lines.push(
    "# POST /v1/payments: tracing cost, side by side",
    "",
    `${info.date.slice(0, 16).replace("T", " ")} UTC · ${info.cpus} × ${info.cpuModel} · ${count} alternating rounds of ` +
      `${info.options.seconds} s per configuration, ${info.options.connections} connections, ${info.options.wallets} wallets, ` +
      `each pair warmed to ${info.options.warmupPayments} payments first · wall time ${info.wallSeconds.toFixed(0)} s` +
      (prev ? ` · previous runtime: ${prev.commit.slice(0, 7)} (${prev.nodeVersion}, dd-trace ${prev.ddTraceVersion})` : ""),
    "",
    "Figures are medians over rounds with their [min–max]. CPU is user + system time of both service processes ÷ " +
      "payments answered 201; it moves least with the machine's other load, so it is the primary figure.",
    "",
  );
  if (info.stopped) lines.push(`**Incomplete:** ${info.stopped}.`, "");

  lines.push(
    "| configuration | CPU ms / payment (payment + fraud) | payments/s | p50 / p99 ms | spans / payment | payment roots kept |",
    "|---|---|---|---|---:|---:|",
  );
  for (const c of info.configs) {
    const total = figure(of(c.id, cpu));
    const split = `${fmt(figure(of(c.id, (r) => r.cpuMsPerPayment.payment)).median, 3)} + ${fmt(figure(of(c.id, (r) => r.cpuMsPerPayment.fraud)).median, 3)}`;
    lines.push(
      `| ${c.title} | ${show(total, 3)} (${split}) | ${show(figure(of(c.id, (r) => r.throughput)), 0)} | ` +
        `${fmt(figure(of(c.id, (r) => r.p50)).median, 1)} / ${fmt(figure(of(c.id, (r) => r.p99)).median, 1)} | ` +
        `${c.traced ? fmt(figure(of(c.id, (r) => r.spansPerPayment)).median, 1) : "–"} | ` +
        `${c.traced ? `${fmt(100 * figure(of(c.id, (r) => r.paymentRootsKept)).min, 0)} % (lowest round)` : "–"} |`,
    );
  }
  lines.push("");

  const added = (traced: string, untraced: string) => figure(paired(of(traced, cpu), of(untraced, cpu), (a, b) => a - b));
  const ratio = (a: string, b: string, value: (r: Round) => number) => figure(paired(of(a, value), of(b, value), (x, y) => x / y));
  const rows: string[] = [];
  const both = (label: string, make: (t: string, u: string) => string) => {
    const cells = [["traced", "untraced"], ["prev-traced", "prev-untraced"]].map(([t, u]) => (has(t) && has(u) ? make(t, u) : "–"));
    rows.push(`| ${label} | ${cells.join(" | ")} |`);
  };
  both("CPU added by tracing, ms / payment (per-round pairs)", (t, u) => show(added(t, u), 3, GOALS.cpuAdded));
  both("traced ÷ untraced payments/s", (t, u) => show(ratio(t, u, (r) => r.throughput), 2, GOALS.throughputRatio));
  both("traced ÷ untraced p50 latency", (t, u) => show(ratio(t, u, (r) => r.p50), 2));
  lines.push("| ratio | this build | previous runtime |", "|---|---|---|", ...rows);
  if (has("prev-traced") && has("traced")) {
    lines.push(`| this ÷ previous CPU / payment, traced | ${show(ratio("traced", "prev-traced", cpu), 2)} | |`);
  }
  if (has("prev-untraced") && has("untraced")) {
    lines.push(`| this ÷ previous CPU / payment, untraced | ${show(ratio("untraced", "prev-untraced", cpu), 2)} | |`);
  }
  lines.push("");

  const cpuAdded = added("traced", "untraced");
  const tput = ratio("traced", "untraced", (r) => r.throughput);
  lines.push(
    "| goal (this build, prod sampling) | target | measured | verdict |",
    "|---|---|---|---|",
    goalRow("CPU added by tracing per payment, both services", "≤ 0.5 ms", cpuAdded, 3, GOALS.cpuAdded),
    goalRow("traced ÷ untraced throughput", "≥ 0.8", tput, 2, GOALS.throughputRatio),
    "",
    `Met only when the whole [min–max] meets the target, not met only when none of it does, otherwise undecided; ` +
      `fewer than ${MIN_ROUNDS} rounds decide nothing; a negative added cost or a ratio above 1 is noise.`,
    "",
  );
  if (Number.isFinite(cpuAdded.median) && cpuAdded.median > GOALS.cpuAdded.target) {
    const spans = figure(of("traced", (r) => r.spansPerPayment)).median;
    const perSpan = (cpuAdded.median * 1000) / spans;
    lines.push(
      `Short by ${fmt(cpuAdded.median - 0.5, 3)} ms (×${fmt(cpuAdded.median / 0.5, 1)} the goal). At ${fmt(perSpan, 0)} µs ` +
        `per span (${fmt(spans, 1)} spans), 0.5 ms buys about ${fmt(500 / perSpan, 0)} spans per payment across both ` +
        `services, or the same ${fmt(spans, 0)} spans at ${fmt(500 / spans, 0)} µs each.`,
      "",
    );
  }

  const cuts = info.configs.filter((c) => c.cut);
  if (cuts.length && has("traced")) {
    lines.push("| candidate cut | CPU ms / payment vs traced (per-round pairs) | payments/s vs traced | verdict |", "|---|---|---|---|");
    for (const c of cuts) {
      const saving = figure(paired(of(c.id, cpu), of("traced", cpu), (a, b) => a - b));
      lines.push(`| ${c.title} | ${show(saving, 3)} | ×${show(ratio(c.id, "traced", (r) => r.throughput), 2)} | ${judgeCut(saving)} |`);
    }
    lines.push("", "A cut is kept only when every round saved CPU. What each one changes:", "");
    for (const c of cuts) lines.push(`- **${c.title}**: ${c.cut}`);
    lines.push("");
  }

  const load = (value: (r: Round) => number) => figure(rounds.map(value));
  lines.push(
    "| machine load during the measured phases | median [min–max] |",
    "|---|---|",
    `| load average (1 min) | ${show(load((r) => r.machine.loadAverage), 1)}; at start ${info.loadAverageAtStart.map((l) => l.toFixed(1)).join(" / ")}, at end ${info.loadAverageAtEnd.map((l) => l.toFixed(1)).join(" / ")} |`,
    `| busy cores (of ${info.cpus}) | ${show(load((r) => r.machine.busyCores), 2)} |`,
    `| cores used by other processes (PostgreSQL, Redis, anything not the services, the load generator or the intake) | ${show(load((r) => r.machine.otherCores), 2)} |`,
    "",
  );
  const spans = rounds.find((r) => r.config === "traced")?.spansByName;
  if (spans) lines.push(`Spans per payment, this build traced: ${Object.entries(spans).sort().map(([k, v]) => `${k} ${v}`).join(" · ")}.`, "");
  lines.push(info.problems.length ? `Problems: ${info.problems.join("; ")}.` : "No error logged, no service died, the ledger adds up.", "");
  if (info.notes.length) lines.push(`Failed requests, warm-up included (the run fails above 1 %): ${info.notes.join(", ")}.`, "");
  return lines.join("\n");
}

function goalRow(label: string, target: string, f: Figure, digits: number, goal: Goal): string {
  const judged = judge(f, goal);
  return `| ${label} | ${target} | ${show(f, digits, goal)} | **${judged.verdict}**${judged.reason ? ` (${judged.reason})` : ""} |`;
}
