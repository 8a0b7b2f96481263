/**
 * npx tsx bench/experiments.ts [--variants a,b,… --cycles 3 --mode side-by-side|alternate --duration 8 --connections 32]
 * npx tsx bench/experiments.ts --variants vs-earlier,untraced-vs-earlier --earlier <app/ of an earlier commit, built>
 *
 * Measures candidate hot-path changes against the prod-traced baseline without editing
 * app/: each variant is the baseline plus env changes and/or a rewrite of a compiled
 * module at load time (bench/lib/source-patch.cjs). Each variant's processes start once
 * and get a warm-up round (discarded). Side by side (the default), each variant then runs
 * at the same time as the baseline (half the connections each), so load from anything
 * else on the machine hits both alike; alternate runs them one after the other. Reports
 * per variant the CPU per payment (payment-service + fraud-service, /proc) and payments/s
 * against its reference. Writes bench/results/experiments.json and .md.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { SERVICE_CONFIGS, type ServiceConfigId } from "./lib/configs";
import { failures, runPaymentLoad, type PhaseResult } from "./lib/load";
import { machineInfo } from "./lib/machine";
import { median, spansPerTrace } from "./lib/report";
import { waitForQuiet } from "./lib/quiet";
import { measureRound, warmUp } from "./lib/round";
import {
  deleteRedisKeys,
  openStand,
  REDIS_PREFIX_ROOT,
  startPair,
  type ServiceOverrides,
  type ServicePair,
} from "./lib/stand";

interface Patch {
  readonly file: string;
  readonly find?: string;
  readonly replace?: string;
  readonly replaceWith?: string;
  readonly append?: string;
}

interface Variant {
  readonly id: string;
  readonly description: string;
  readonly base: ServiceConfigId;
  /** In side-by-side mode, the variant it runs next to (default: baseline). */
  readonly against?: string;
  readonly env?: ServiceOverrides;
  readonly patches?: readonly Patch[];
  /** Runs the app built from an earlier commit (--earlier <its app/ dir>) instead of this one. */
  readonly earlier?: boolean;
  /** Only ever the reference of another variant: not measured against the baseline itself. */
  readonly referenceOnly?: boolean;
}

const SET_TAGS_LOOP = `    for (const [key, value] of Object.entries(tags)) {
        const recorded = (0, redaction_1.redactTag)(key, value);
        if (recorded !== undefined)
            span.setTag(key, recorded);
    }`;

const LEAN_TAGS: Patch[] = [
  {
    file: "tracing/spans.js",
    find: SET_TAGS_LOOP,
    replace: `    let out;
    for (const key in tags) {
        const recorded = (0, redaction_1.redactTag)(key, tags[key]);
        if (recorded !== undefined)
            (out ??= {})[key] = recorded;
    }
    if (out)
        span.addTags(out);`,
  },
  {
    file: "tracing/redaction.js",
    find: "function isSensitiveKey(key) {\n    return SENSITIVE_KEY.test(key);\n}",
    replace: `const sensitiveKeys = new Map();
function isSensitiveKey(key) {
    let sensitive = sensitiveKeys.get(key);
    if (sensitive === undefined) {
        sensitive = SENSITIVE_KEY.test(key);
        if (sensitiveKeys.size < 10000)
            sensitiveKeys.set(key, sensitive);
    }
    return sensitive;
}`,
  },
];

export const VARIANTS: readonly Variant[] = [
  { id: "baseline", description: "traced, prod sampling, as rendered (the reference)", base: "traced-prod" },
  { id: "untraced", description: "DD_TRACE_ENABLED=false: what all tracing costs", base: "untraced" },
  { id: "pool-10", description: "PG_POOL_MAX=10 instead of the rendered 20", base: "traced-prod", env: { PG_POOL_MAX: "10" } },
  {
    id: "lean-tags",
    description: "setTags: one span.addTags() per call instead of setTag() per key, no Object.entries; isSensitiveKey memoised per key",
    base: "traced-prod",
    patches: LEAN_TAGS,
  },
  {
    id: "no-db-query-span",
    description: "dbQuery (single statements) without its database.query wrapper span: what 3 of our spans per payment cost (information, not a proposal)",
    base: "traced-prod",
    patches: [{ file: "ledger/db.js", append: "exports.dbQuery = function dbQuery(pool, operation, text, values = []) {\n    return pool.query(text, values);\n};" }],
  },
  // This code against an earlier commit's, side by side (needs --earlier): what a change bought.
  { id: "earlier", description: "the earlier commit's app, traced, prod sampling", base: "traced-prod", earlier: true, referenceOnly: true },
  { id: "earlier-untraced", description: "the earlier commit's app, untraced", base: "untraced", earlier: true, referenceOnly: true },
  {
    id: "vs-earlier",
    description: "this app, traced with prod sampling, side by side with the earlier commit's (--earlier)",
    base: "traced-prod",
    against: "earlier",
  },
  {
    id: "untraced-vs-earlier",
    description: "this app, untraced, side by side with the earlier commit's, untraced (--earlier)",
    base: "untraced",
    against: "earlier-untraced",
  },
];

const needsEarlier = (id: string): boolean => {
  const variant = VARIANTS.find((v) => v.id === id)!;
  return Boolean(variant.earlier || (variant.against && needsEarlier(variant.against)));
};

interface Options {
  /** side-by-side: each variant runs at the same time as the one it is compared with, half the connections each; alternate: one after the other. */
  mode: "side-by-side" | "alternate";
  variants: string[];
  cycles: number;
  warmup: number;
  warmupRound: number;
  /** Side by side: payments each process answers before measuring, at most warmupMax seconds. */
  warmupPayments: number;
  warmupMax: number;
  duration: number;
  connections: number;
  wallets: number;
  out: string;
  /** app/ of an earlier commit, built (npx tsc -p tsconfig.build.json), for the *-vs-earlier variants. */
  earlier?: string;
}

function parse(argv: readonly string[]): Options {
  const options: Options = {
    mode: "side-by-side",
    variants: VARIANTS.filter((v) => !needsEarlier(v.id)).map((v) => v.id),
    cycles: 3,
    warmup: 2,
    warmupRound: 10,
    warmupPayments: 2500,
    warmupMax: 60,
    duration: 8,
    connections: 32,
    wallets: 10_000,
    out: path.join(__dirname, "results"),
  };
  for (let i = 0; i < argv.length; i++) {
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(argv[i]);
    if (!m) throw new Error(`unexpected argument ${argv[i]}`);
    m[1] = m[1].replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
    const value = m[2] ?? argv[++i];
    if (value === undefined) throw new Error(`--${m[1]} needs a value`);
    if (m[1] === "variants") {
      options.variants = value.split(",");
      for (const v of options.variants) if (!VARIANTS.some((x) => x.id === v)) throw new Error(`unknown variant ${v}`);
      if (!options.variants.includes("baseline")) options.variants.unshift("baseline");
      for (const v of [...options.variants]) {
        const against = VARIANTS.find((x) => x.id === v)!.against;
        if (against && !options.variants.includes(against)) options.variants.unshift(against);
      }
    } else if (m[1] === "mode") {
      if (value !== "side-by-side" && value !== "alternate") throw new Error("--mode is side-by-side or alternate");
      options.mode = value;
    } else if (m[1] === "out") options.out = value;
    else if (m[1] === "earlier") options.earlier = path.resolve(value);
    else if (m[1] in options) (options as unknown as Record<string, number>)[m[1]] = Number(value);
    else throw new Error(`unknown option --${m[1]}`);
  }
  const missing = options.variants.filter(needsEarlier);
  if (missing.length && !options.earlier) throw new Error(`${missing.join(", ")} need --earlier <app dir of an earlier build>`);
  if (options.earlier && !existsSync(path.join(options.earlier, "dist/src/payment-service/main.js"))) {
    throw new Error(`--earlier ${options.earlier}: no dist/src/payment-service/main.js (build it first)`);
  }
  return options;
}

const log = (message: string) => process.stderr.write(`${message}\n`);

/** "commit <short sha> (<subject>)" of the checkout holding `dir`, or what git said. */
function describeCommit(dir: string): string {
  try {
    return `commit ${execFileSync("git", ["-C", dir, "log", "-1", "--format=%h (%s)"], { encoding: "utf8" }).trim()}`;
  } catch (error) {
    return `unknown commit (${(error as Error).message.split("\n")[0]})`;
  }
}

interface VariantRound {
  readonly variant: string;
  readonly cycle: number;
  readonly load: PhaseResult;
  /** ms of CPU per payment: payment-service and fraud-service, user and system. */
  readonly cpu: { payment: number; fraud: number; paymentUser: number; paymentSystem: number; fraudUser: number; fraudSystem: number };
  readonly spansPerPayment: number;
  readonly logLinesPerPayment: number;
  /** Requests without a 2xx answer (the run goes on; they are reported). */
  readonly failed: number;
  readonly problems: string[];
  /** Side by side: the variant that ran at the same time, and what it measured. */
  readonly against?: string;
  readonly reference?: { load: PhaseResult; cpu: VariantRound["cpu"]; logLinesPerPayment: number };
}

interface SideMeasure {
  readonly load: PhaseResult;
  readonly cpu: VariantRound["cpu"];
  readonly logLinesPerPayment: number;
}

/**
 * Loads two service pairs at the same time, half the connections each: whatever else
 * runs on the machine hits both alike, so their CPU per payment and payments/s compare
 * even when the machine's load swings from one round to the next.
 */
async function sideBySide(
  pairsToLoad: [ServicePair, ServicePair],
  plan: { warmupSec: number; durationSec: number; connections: number; wallets: number; keyPrefix: string },
): Promise<[SideMeasure, SideMeasure]> {
  const one = async (pair: ServicePair, tag: string): Promise<SideMeasure> => {
    const load = (phase: string, durationSec: number) =>
      runPaymentLoad({
        url: pair.payment.url,
        connections: plan.connections,
        durationSec,
        wallets: plan.wallets,
        keyPrefix: `${plan.keyPrefix}-${tag}-${phase}`,
      });
    await load("w", plan.warmupSec);
    const p0 = pair.payment.cpuSplitMs();
    const f0 = pair.fraud.cpuSplitMs();
    const lines0 = pair.payment.output().lines + pair.fraud.output().lines;
    const result = await load("s", plan.durationSec);
    const p1 = pair.payment.cpuSplitMs();
    const f1 = pair.fraud.cpuSplitMs();
    const n = result.ok2xx;
    return {
      load: result,
      cpu: {
        payment: (p1.user + p1.system - p0.user - p0.system) / n,
        fraud: (f1.user + f1.system - f0.user - f0.system) / n,
        paymentUser: (p1.user - p0.user) / n,
        paymentSystem: (p1.system - p0.system) / n,
        fraudUser: (f1.user - f0.user) / n,
        fraudSystem: (f1.system - f0.system) / n,
      },
      logLinesPerPayment: (pair.payment.output().lines + pair.fraud.output().lines - lines0) / n,
    };
  };
  const [a, b] = await Promise.all([one(pairsToLoad[0], "a"), one(pairsToLoad[1], "b")]);
  return [a, b];
}

/** Loads the pairs together, in 5 s steps, until each answered `payments` or `maxSec` passed. */
async function warmTogether(
  pairsToLoad: ServicePair[],
  plan: { payments: number; maxSec: number; connections: number; wallets: number; keyPrefix: string },
): Promise<{ answered: number[]; seconds: number }> {
  const started = Date.now();
  const answered = pairsToLoad.map(() => 0);
  for (let step = 0; answered.some((n) => n < plan.payments) && Date.now() - started < plan.maxSec * 1000; step++) {
    const results = await Promise.all(
      pairsToLoad.map((pair, i) =>
        runPaymentLoad({
          url: pair.payment.url,
          connections: plan.connections,
          durationSec: 5,
          wallets: plan.wallets,
          keyPrefix: `${plan.keyPrefix}-${i}-${step}`,
        }),
      ),
    );
    results.forEach((r, i) => (answered[i] += r.ok2xx));
  }
  return { answered, seconds: (Date.now() - started) / 1000 };
}

async function main(): Promise<void> {
  const options = parse(process.argv.slice(2));
  // Interrupted: exit, and the launcher's exit hook kills the services; the intake follows its parent.
  for (const signal of ["SIGINT", "SIGTERM"] as const) process.once(signal, () => process.exit(130));
  const started = Date.now();
  const machine = machineInfo();
  const { db, intake, rendered } = await openStand("payments_bench_experiments", options.wallets);
  const runId = Date.now().toString(36);
  const redisPrefix = `${REDIS_PREFIX_ROOT}experiments:${runId}:`;
  const patchDir = path.join(os.tmpdir(), `payments-bench-patches-${runId}`);
  mkdirSync(patchDir, { recursive: true });
  const rounds: VariantRound[] = [];
  const running = new Set<ServicePair>();
  const startVariant = async (id: string, tag: string): Promise<ServicePair> => {
    const variant = VARIANTS.find((v) => v.id === id)!;
    const base = SERVICE_CONFIGS.find((c) => c.id === variant.base)!;
    const extra: ServiceOverrides = {};
    if (variant.patches?.length) {
      const file = path.join(patchDir, `${variant.id}.json`);
      writeFileSync(file, JSON.stringify(variant.patches));
      extra.BENCH_SOURCE_PATCHES = file;
      extra.NODE_OPTIONS = `--require ${path.join(__dirname, "lib/source-patch.cjs")}`;
    }
    const pair = await startPair({
      rendered,
      intakeUrl: intake.url,
      db,
      redisPrefix: `${redisPrefix}${tag}:`,
      overrides: { ...base.overrides, ...variant.env, ...extra },
      appDir: variant.earlier ? options.earlier : undefined,
    });
    running.add(pair);
    for (const patch of variant.patches ?? []) {
      const applied = [pair.payment, pair.fraud].some((svc) =>
        svc.running.output.some((line) => line.includes(`bench-patch: applied to ${patch.file}`)),
      );
      if (!applied) throw new Error(`${id}: the patch of ${patch.file} was not applied`);
    }
    return pair;
  };
  const stop = async (...pairsToStop: ServicePair[]) => {
    await Promise.all(pairsToStop.map((p) => p.stop().catch(() => undefined)));
    for (const p of pairsToStop) running.delete(p);
  };
  const half = Math.max(1, Math.round(options.connections / 2));

  try {
    if (options.mode === "side-by-side") {
      // Per variant: fresh processes for it and for its reference, warmed together to the same
      // number of payments (a process's CPU per payment keeps falling for thousands of payments
      // as the JIT optimises), then measured together, round after round.
      for (const id of options.variants) {
        if (id === "baseline") continue;
        const variant = VARIANTS.find((v) => v.id === id)!;
        if (variant.referenceOnly) continue;
        const againstId = variant.against ?? "baseline";
        const mine = await startVariant(id, id);
        const theirs = await startVariant(againstId, `${id}-reference`);
        try {
          const warmed = await warmTogether([mine, theirs], {
            payments: options.warmupPayments,
            maxSec: options.warmupMax,
            connections: half,
            wallets: options.wallets,
            keyPrefix: `bench-exp-${runId}-${id}-w`,
          });
          log(`  (warm-up) ${id} and ${againstId}: ${warmed.answered.join(" / ")} payments in ${warmed.seconds.toFixed(0)} s`);
          for (let cycle = 1; cycle <= options.cycles; cycle++) {
            const label = `${id} cycle ${cycle}`;
            const [a, b] = await sideBySide([mine, theirs], {
              warmupSec: 0,
              durationSec: options.duration,
              connections: half,
              wallets: options.wallets,
              keyPrefix: `bench-exp-${runId}-${cycle}-${id}`,
            });
            await waitForQuiet(db);
            await intake.take();
            const failed = failures(a.load) + failures(b.load);
            const problems = failed
              ? [`${label}: ${failed} requests failed (${JSON.stringify(a.load.statusCodes)} / ${JSON.stringify(b.load.statusCodes)})`]
              : [];
            for (const problem of problems) log(`  ${problem}`);
            rounds.push({
              variant: id,
              cycle,
              load: a.load,
              cpu: a.cpu,
              spansPerPayment: Number.NaN,
              logLinesPerPayment: a.logLinesPerPayment,
              failed,
              problems,
              against: againstId,
              reference: { load: b.load, cpu: b.cpu, logLinesPerPayment: b.logLinesPerPayment },
            });
            log(`  cycle ${cycle} ${id.padEnd(20)} ${a.load.throughput.toFixed(1).padStart(6)} /s vs ${againstId} ` +
              `${b.load.throughput.toFixed(1)} /s  CPU per payment ${(a.cpu.payment + a.cpu.fraud).toFixed(2)} vs ` +
              `${(b.cpu.payment + b.cpu.fraud).toFixed(2)} ms`);
          }
        } finally {
          await stop(mine, theirs);
        }
      }
    } else {
      // Alternate: every variant's processes start and warm up first (cycle 0, discarded),
      // then one round each per cycle.
      const pairs = new Map<string, ServicePair>();
      for (const id of options.variants) {
        const pair = await startVariant(id, id);
        pairs.set(id, pair);
        const warm = await warmUp(pair, intake, db, {
          connections: options.connections,
          wallets: options.wallets,
          keyPrefix: `bench-exp-${runId}-0-${id}`,
          label: `${id} cycle 0`,
          seconds: options.warmupRound,
        });
        for (const problem of [...warm.problems, ...warm.notes]) log(`  ${problem}`);
        log(`  (warm-up) ${id.padEnd(20)} ${warm.result.throughput.toFixed(1).padStart(6)} /s`);
      }
      for (let cycle = 1; cycle <= options.cycles; cycle++) {
        for (const id of options.variants) {
          const m = await measureRound(pairs.get(id)!, intake, db, {
            warmupSec: options.warmup,
            durationSec: options.duration,
            connections: options.connections,
            wallets: options.wallets,
            fixedRate: 0,
            fixedSec: 0,
            keyPrefix: `bench-exp-${runId}-${cycle}-${id}`,
            label: `${id} cycle ${cycle}`,
          });
          for (const problem of [...m.problems, ...m.notes]) log(`  ${problem}`);
          const n = m.saturation.ok2xx;
          const round: VariantRound = {
            variant: id,
            cycle,
            load: m.saturation,
            cpu: {
              payment: (m.cpuMs.payment.user + m.cpuMs.payment.system) / n,
              fraud: (m.cpuMs.fraud.user + m.cpuMs.fraud.system) / n,
              paymentUser: m.cpuMs.payment.user / n,
              paymentSystem: m.cpuMs.payment.system / n,
              fraudUser: m.cpuMs.fraud.user / n,
              fraudSystem: m.cpuMs.fraud.system / n,
            },
            spansPerPayment: spansPerTrace(m.tracesToEnd),
            logLinesPerPayment: (m.logLines.payment + m.logLines.fraud) / n,
            failed: failures(m.saturation) + failures(m.warm),
            problems: [...m.problems, ...m.notes],
          };
          rounds.push(round);
          log(`  cycle ${cycle} ${id.padEnd(20)} ${m.saturation.throughput.toFixed(1).padStart(6)} /s  CPU per payment ` +
            `${round.cpu.payment.toFixed(2)} + ${round.cpu.fraud.toFixed(2)} ms  p99 ${m.saturation.latencyMs.p99.toFixed(1)} ms`);
        }
      }
    }
  } finally {
    await stop(...running);
    await intake.close().catch(() => undefined);
    await deleteRedisKeys(redisPrefix).catch(() => undefined);
    await db.drop().catch(() => undefined);
  }

  const r3 = (n: number) => Math.round(n * 1000) / 1000;
  const cpuOf = (c: VariantRound["cpu"]) => c.payment + c.fraud;
  const summary = options.variants.map((id) => {
    const variant = VARIANTS.find((v) => v.id === id)!;
    let own = rounds.filter((r) => r.variant === id);
    let paired: { cpu: number; cpuRatio: number; throughputRatio: number }[];
    if (options.mode === "side-by-side") {
      const asReference = own.length === 0;
      if (asReference) {
        // A reference (the baseline, an earlier build) as measured next to each variant compared with it.
        own = rounds
          .filter((r) => r.against === id && r.reference)
          .map((r) => ({ ...r, variant: id, load: r.reference!.load, cpu: r.reference!.cpu, logLinesPerPayment: r.reference!.logLinesPerPayment }));
      }
      paired = asReference
        ? []
        : own
            .filter((r) => r.reference)
            .map((r) => ({
              cpu: cpuOf(r.cpu) - cpuOf(r.reference!.cpu),
              cpuRatio: cpuOf(r.cpu) / cpuOf(r.reference!.cpu),
              throughputRatio: r.load.throughput / r.reference!.load.throughput,
            }));
    } else {
      paired = own.map((r) => {
        const base = rounds.find((b) => b.variant === "baseline" && b.cycle === r.cycle)!;
        return {
          cpu: cpuOf(r.cpu) - cpuOf(base.cpu),
          cpuRatio: cpuOf(r.cpu) / cpuOf(base.cpu),
          throughputRatio: r.load.throughput / base.load.throughput,
        };
      });
    }
    const m = (f: (r: VariantRound) => number) => r3(median(own.map(f)));
    const spans = median(own.map((r) => r.spansPerPayment));
    return {
      id,
      against: id === "baseline" || variant.referenceOnly ? undefined : (options.mode === "side-by-side" ? variant.against ?? "baseline" : "baseline"),
      description: variant.description,
      rounds: own.length,
      throughput: m((r) => r.load.throughput),
      p50: m((r) => r.load.latencyMs.p50),
      p99: m((r) => r.load.latencyMs.p99),
      cpuPayment: m((r) => r.cpu.payment),
      cpuFraud: m((r) => r.cpu.fraud),
      cpuPaymentSystem: m((r) => r.cpu.paymentSystem),
      spansPerPayment: Number.isFinite(spans) ? Math.round(spans * 10) / 10 : undefined,
      logLinesPerPayment: m((r) => r.logLinesPerPayment),
      cpuDeltaVsBaseline: r3(median(paired.map((p) => p.cpu))),
      cpuRatioVsBaseline: r3(median(paired.map((p) => p.cpuRatio))),
      cpuRatioPerCycle: paired.map((p) => r3(p.cpuRatio)),
      throughputRatioVsBaseline: r3(median(paired.map((p) => p.throughputRatio))),
      throughputRatioPerCycle: paired.map((p) => r3(p.throughputRatio)),
      failed: own.reduce((sum, r) => sum + r.failed, 0),
      requests: own.reduce((sum, r) => sum + r.load.requests, 0),
    };
  });
  const wallSeconds = Math.round((Date.now() - started) / 100) / 10;
  const report = {
    machine: { ...machine, loadAverageAtEnd: os.loadavg().map((l) => Math.round(l * 100) / 100) },
    options: { ...options, out: path.relative(process.cwd(), options.out) || "." },
    wallSeconds,
    summary,
    rounds,
  };
  mkdirSync(options.out, { recursive: true });
  writeFileSync(path.join(options.out, "experiments.json"), `${JSON.stringify(report, null, 2)}\n`);
  const lines = [
    "# Hot-path experiments (POST /v1/payments, traced with prod sampling unless stated)",
    "",
    `${machine.date.slice(0, 16).replace("T", " ")} UTC · ${machine.cpus} × ${machine.cpuModel} · ${options.cycles} cycles (${options.mode}) · ` +
      (options.mode === "side-by-side"
        ? `per variant: fresh processes for it and its reference, warmed together to ${options.warmupPayments} payments each ` +
          `(at most ${options.warmupMax} s), then ${options.duration} s rounds with ${half} connections each · `
        : `${options.connections} connections · each variant's processes started once and warmed by a ${options.warmupRound} s round ` +
          `(discarded), then per round ${options.warmup} s of load + ${options.duration} s measured · `) +
      `wall time ${wallSeconds} s · ` +
      `load average ${machine.loadAverageAtStart.join("/")} → ${report.machine.loadAverageAtEnd.join("/")}`,
    ...(options.earlier ? ["", `Earlier build: ${describeCommit(options.earlier)}, compiled in ${options.earlier}.`] : []),
    "",
    "CPU = user + system time of the process during the measured phase ÷ payments answered 201. " +
      (options.mode === "side-by-side"
        ? `Side by side: each variant ran at the same time as the one it is compared with (${Math.max(1, Math.round(options.connections / 2))} connections each), ` +
          "so both saw the same machine; ratios are variant ÷ that reference (median over cycles, then each cycle)."
        : "Changes are against the baseline round of the same cycle (median over cycles, then each cycle)."),
    "",
    "| variant | compared with | payments/s | p99 ms | CPU ms per payment (payment + fraud) | CPU change | payments/s ratio | log lines per payment | failed |",
    "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ...summary.filter((s) => s.rounds > 0).map(
      (s) =>
        `| ${s.id} | ${s.against ?? "–"} | ${s.throughput.toFixed(1)} | ${s.p99.toFixed(1)} | ${s.cpuPayment.toFixed(2)} + ${s.cpuFraud.toFixed(2)} | ` +
        `${s.against === undefined ? "–" : `${s.cpuDeltaVsBaseline >= 0 ? "+" : ""}${s.cpuDeltaVsBaseline.toFixed(2)} ms (×${s.cpuRatioVsBaseline.toFixed(2)}; ${s.cpuRatioPerCycle.map((r) => r.toFixed(2)).join(", ")})`} | ` +
        `${s.against === undefined ? "–" : `×${s.throughputRatioVsBaseline.toFixed(2)} (${s.throughputRatioPerCycle.map((r) => r.toFixed(2)).join(", ")})`} | ` +
        `${s.logLinesPerPayment.toFixed(1)} | ${s.failed} / ${s.requests} |`,
    ),
    "",
    ...summary.filter((s) => s.rounds > 0).map((s) => `- **${s.id}**: ${s.description}`),
    "",
  ];
  writeFileSync(path.join(options.out, "experiments.md"), `${lines.join("\n")}\n`);
  process.stdout.write(`\n${lines.join("\n")}\n`);
}

main().catch((error: Error) => {
  log(`experiments: ${error.stack ?? error.message}`);
  process.exit(1);
});
