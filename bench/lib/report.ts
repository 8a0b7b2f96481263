/**
 * The results page (bench/results/latest.md): the side-by-side table, the ratios, the goal
 * table with met / not met / undecided, what authentication, TLS and the performance
 * annotations cost, the candidate cuts, the machine's load.
 */
import os from "node:os";
import type { Round } from "../run";
import type { BenchConfig } from "./configs";
import type { PreviousBuild } from "./previous";
import { figure, isNoise, judge, judgeCost, judgeCut, MIN_ROUNDS, paired, type Figure, type Goal } from "./verdict";

/** What the page says of the run; rendered at its end (wall time, load average at the end). */
export interface RunInfo {
  /** Date.now() at the start. */
  readonly started: number;
  readonly loadAverageAtStart: number[];
  readonly options: { rounds: number; seconds: number; connections: number; wallets: number; warmupPayments: number };
  readonly previous?: PreviousBuild;
  readonly configs: readonly BenchConfig[];
  readonly stopped?: string;
  /** Per round, CPU µs of one verification in the bench process (ES256 user token, RS256 ServiceAccount token). */
  readonly verification: { user: number; service: number }[];
  readonly problems: string[];
  /** "<config> <failed> of <total>" for each configuration with failed requests. */
  readonly failed: string[];
}

const GOALS = {
  cpuAdded: { target: 0.5, bound: "max", impossibleBeyond: 0 } satisfies Goal,
  throughputRatio: { target: 0.8, bound: "min", impossibleBeyond: 1 } satisfies Goal,
};

const cpu = (r: Round) => r.cpuMsPerPayment.payment + r.cpuMsPerPayment.fraud;
const fmt = (n: number, digits: number) => (Number.isFinite(n) ? n.toFixed(digits) : "n/a");

/** "1.234 [1.100–1.400]", or "noise (…)" when the median is impossible for the figure. */
function show(f: Figure, digits: number, goal?: Goal): string {
  const text = `${fmt(f.median, digits)} [${fmt(f.min, digits)}–${fmt(f.max, digits)}]`;
  return goal && isNoise(f, goal) ? `noise (${text})` : text;
}

export function renderReport(info: RunInfo, rounds: readonly Round[]): string {
  const count = Math.max(0, ...rounds.map((r) => r.index));
  /** Per-round values of `config`, indexed by round (NaN where it has none). */
  const of = (config: string, value: (r: Round) => number) =>
    Array.from({ length: count }, (_, i) => {
      const r = rounds.find((x) => x.config === config && x.index === i + 1);
      return r ? value(r) : Number.NaN;
    });
  const median = (config: string, value: (r: Round) => number, digits: number) => fmt(figure(of(config, value)).median, digits);
  const has = (config: string) => info.configs.some((c) => c.id === config);
  const diff = (a: string, b: string, value = cpu) => figure(paired(of(a, value), of(b, value), (x, y) => x - y));
  const ratio = (a: string, b: string, value: (r: Round) => number) => figure(paired(of(a, value), of(b, value), (x, y) => x / y));
  const prev = info.previous;
  const cpus = os.cpus();
  const lines = [
    "# POST /v1/payments: tracing cost, side by side",
    "",
    `${new Date(info.started).toISOString().slice(0, 16).replace("T", " ")} UTC · ${cpus.length} × ${cpus[0]?.model ?? "?"} · ${count} alternating rounds of ` +
      `${info.options.seconds} s per configuration, ${info.options.connections} connections, ${info.options.wallets} wallets, ` +
      `each pair warmed to ${info.options.warmupPayments} payments first · wall time ${((Date.now() - info.started) / 1000).toFixed(0)} s` +
      (prev ? ` · previous runtime: ${prev.commit.slice(0, 7)} (${prev.nodeVersion}, dd-trace ${prev.ddTraceVersion})` : ""),
    "",
    "Figures are medians over rounds with their [min–max]. CPU is user + system time of both service processes ÷ " +
      "payments answered 201; it moves least with the machine's other load, so it is the primary figure. This build " +
      "runs as prod: bearer tokens verified, TLS to PostgreSQL (verify-full) and Redis (rediss:// + AUTH) of the " +
      "bench's own; the previous runtime's app predates both (it ignores the tokens and speaks cleartext).",
    "",
  ];
  if (info.stopped) lines.push(`**Incomplete:** ${info.stopped}.`, "");

  lines.push("| configuration | CPU ms / payment (payment + fraud) | payments/s | p50 / p99 ms | spans / payment | payment roots kept |", "|---|---|---|---|---:|---:|");
  for (const c of info.configs) {
    const traced = (text: string) => (c.traced ? text : "–");
    lines.push(
      `| ${c.variant ? `traced, ${c.variant.kind === "cost" ? "without" : "cut:"} ${c.title}` : c.title} | ${show(figure(of(c.id, cpu)), 3)} ` +
        `(${median(c.id, (r) => r.cpuMsPerPayment.payment, 3)} + ${median(c.id, (r) => r.cpuMsPerPayment.fraud, 3)}) | ` +
        `${show(figure(of(c.id, (r) => r.throughput)), 0)} | ${median(c.id, (r) => r.p50, 1)} / ${median(c.id, (r) => r.p99, 1)} | ` +
        `${traced(median(c.id, (r) => r.spansPerPayment, 1))} | ${traced(`${fmt(100 * figure(of(c.id, (r) => r.paymentRootsKept)).min, 0)} % (lowest round)`)} |`,
    );
  }

  const both = (label: string, make: (t: string, u: string) => string) =>
    `| ${label} | ${[["traced", "untraced"], ["prev-traced", "prev-untraced"]].map(([t, u]) => (has(t) && has(u) ? make(t, u) : "–")).join(" | ")} |`;
  const cpuAdded = diff("traced", "untraced");
  const throughputRatio = ratio("traced", "untraced", (r) => r.throughput);
  lines.push(
    "",
    "| ratio | this build | previous runtime |",
    "|---|---|---|",
    both("CPU added by tracing, ms / payment (per-round pairs)", (t, u) => show(diff(t, u), 3, GOALS.cpuAdded)),
    both("traced ÷ untraced payments/s", (t, u) => show(ratio(t, u, (r) => r.throughput), 2, GOALS.throughputRatio)),
    both("traced ÷ untraced p50 latency", (t, u) => show(ratio(t, u, (r) => r.p50), 2)),
  );
  for (const [a, b, label] of [["traced", "prev-traced", "traced"], ["untraced", "prev-untraced", "untraced"]]) {
    if (has(a) && has(b)) lines.push(`| this ÷ previous CPU / payment, ${label} | ${show(ratio(a, b, cpu), 2)} | |`);
  }
  lines.push(
    "",
    "| goal (this build, prod sampling) | target | measured | verdict |",
    "|---|---|---|---|",
    goalRow("CPU added by tracing per payment, both services", "≤ 0.5 ms", cpuAdded, 3, GOALS.cpuAdded),
    goalRow("traced ÷ untraced throughput", "≥ 0.8", throughputRatio, 2, GOALS.throughputRatio),
    "",
  );
  const spanCount = figure(of("traced", (r) => r.spansPerPayment)).median;
  const perSpan = (cpuAdded.median * 1000) / spanCount;
  const short = cpuAdded.median > GOALS.cpuAdded.target
    ? ` Short by ${fmt(cpuAdded.median - 0.5, 3)} ms (×${fmt(cpuAdded.median / 0.5, 1)} the goal): at ${fmt(perSpan, 0)} µs per span (${fmt(spanCount, 1)} ` +
      `spans), 0.5 ms buys about ${fmt(500 / perSpan, 0)} spans per payment across both services, or the same spans at ${fmt(500 / spanCount, 0)} µs each.`
    : "";
  lines.push(`Met only when the whole [min–max] meets the target, not met only when none of it does, otherwise undecided; ` +
    `fewer than ${MIN_ROUNDS} rounds decide nothing; a negative added cost or a ratio above 1 is noise.${short}`, "");

  const variants = (kind: "cost" | "cut") => (has("traced") ? info.configs.filter((c) => c.variant?.kind === kind) : []);
  for (const [kind, heading] of [
    ["cost", "what it costs per payment | CPU ms, traced − traced without it (payment + fraud) | traced ÷ without it, payments/s"],
    ["cut", "candidate cut | CPU ms, cut − traced (payment + fraud) | cut ÷ traced, payments/s"],
  ] as const) {
    if (!variants(kind).length) continue;
    lines.push(`| ${heading} | verdict |`, "|---|---|---|---|");
    for (const c of variants(kind)) {
      const [a, b] = kind === "cost" ? ["traced", c.id] : [c.id, "traced"];
      const part = (value: (r: Round) => number) => fmt(diff(a, b, value).median, 3);
      lines.push(`| ${c.title} | ${show(diff(a, b), 3)} (${part((r) => r.cpuMsPerPayment.payment)} + ${part((r) => r.cpuMsPerPayment.fraud)}) | ` +
        `${show(ratio(a, b, (r) => r.throughput), 2)} | ${kind === "cost" ? judgeCost(diff(a, b)) : judgeCut(diff(a, b))} |`);
    }
    lines.push("");
  }
  if (variants("cost").length + variants("cut").length) lines.push("A feature costs CPU, and a cut is kept, only when every round says so; a negative cost in every round is noise. " +
    "What each cut changes: bench/lib/configs.ts.", "");
  for (const c of variants("cost")) lines.push(`- **${c.title}**: ${c.variant!.note}`);
  if (info.verification.length) {
    const us = (value: (v: { user: number; service: number }) => number) => show(figure(info.verification.map(value)), 0);
    lines.push("", `Token verification alone, CPU µs in the bench process (Node ${process.versions.node}) with the services' verifiers (app/src/auth), per round: ` +
      `ES256 user token ${us((v) => v.user)} + RS256 ServiceAccount token ${us((v) => v.service)} = ${us((v) => v.user + v.service)} per payment.`);
  }
  if (has("no-verify") && has("traced")) {
    const auth = (r: Round) => ["payment-service user.authentication", "fraud-service service.authentication"].reduce((sum, k) => sum + (r.spans[k]?.meanMs ?? Number.NaN), 0);
    lines.push("", `Wall time of the two authentication spans per payment (verification included, waits for a core too): ` +
      `${show(figure(of("traced", auth)), 3)} ms with verification, ${show(figure(of("no-verify", auth)), 3)} ms decoding only.`);
  }

  const load = (value: (r: Round) => number) => show(figure(rounds.map(value)), 2);
  const spans = rounds.find((r) => r.config === "traced")?.spans ?? {};
  lines.push(
    "",
    "| machine during the measured phases | median [min–max] |",
    "|---|---|",
    `| load average (1 min) | ${load((r) => r.machine.loadAverage)}; at start ${info.loadAverageAtStart.map((l) => l.toFixed(1)).join(" / ")}, at end ${os.loadavg().map((l) => l.toFixed(1)).join(" / ")} |`,
    `| busy cores (of ${cpus.length}) | ${load((r) => r.machine.busyCores)} |`,
    `| cores used by other processes (PostgreSQL, Redis, anything not the services, the load generator or the intake) | ${load((r) => r.machine.otherCores)} |`,
    "",
    `Spans per payment (mean duration), this build traced, round 1: ${Object.entries(spans).sort().map(([k, v]) => `${k} ${v.count.toFixed(2)} (${fmt(v.meanMs, 2)} ms)`).join(" · ")}.`,
    "",
    info.problems.length ? `Problems: ${info.problems.join("; ")}.` : "No error logged, no service died, the ledger adds up.",
  );
  if (info.failed.length) lines.push("", `Failed requests, warm-up included (the run fails above 1 %): ${info.failed.join(", ")}.`);
  return `${lines.join("\n")}\n`;
}

function goalRow(label: string, target: string, f: Figure, digits: number, goal: Goal): string {
  const judged = judge(f, goal);
  return `| ${label} | ${target} | ${show(f, digits, goal)} | **${judged.verdict}**${judged.reason ? ` (${judged.reason})` : ""} |`;
}
