/**
 * npm run bench -- --profile [--duration 12 --warmup 10 --connections 32 --cycles 2]
 *
 * CPU profiles (node --cpu-prof, through NODE_OPTIONS) of payment-service and
 * fraud-service under the benchmark's payment load, untraced and traced with prod
 * sampling, alternating, `cycles` times each. Only the samples of the measured window are
 * analysed (after the warm-up, before shutdown). Writes bench/results/profile.json and
 * profile.md; the raw profiles go to bench/results/profiles/ (open them in Chrome DevTools
 * or speedscope).
 */
import { mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { SERVICE_CONFIGS, type ServiceConfigId } from "./lib/configs";
import { summarizeProfile, type Bucket, type ProfileSummary } from "./lib/cpuprofile";
import { failures, runPaymentLoad, type PhaseResult } from "./lib/load";
import { machineInfo } from "./lib/machine";
import { waitForQuiet } from "./lib/quiet";
import { median } from "./lib/report";
import {
  deleteRedisKeys,
  openStand,
  REDIS_PREFIX_ROOT,
  startPair,
  type ServicePair,
} from "./lib/stand";

interface ProfileOptions {
  duration: number;
  warmup: number;
  connections: number;
  wallets: number;
  cycles: number;
  /** Sampling interval, µs. */
  interval: number;
  configs: ServiceConfigId[];
  out: string;
}

const DEFAULTS: ProfileOptions = {
  duration: 12,
  warmup: 10,
  connections: 32,
  wallets: 10_000,
  cycles: 2,
  interval: 500,
  configs: ["untraced", "traced-prod"],
  out: path.join(__dirname, "results"),
};

function parse(argv: readonly string[]): ProfileOptions {
  const options: ProfileOptions = { ...DEFAULTS, configs: [...DEFAULTS.configs] };
  for (let i = 0; i < argv.length; i++) {
    const m = /^--([a-z]+)(?:=(.*))?$/.exec(argv[i]);
    if (!m) throw new Error(`unexpected argument ${argv[i]}`);
    const value = m[2] ?? argv[++i];
    if (value === undefined) throw new Error(`--${m[1]} needs a value`);
    if (m[1] === "configs") {
      const ids = value.split(",") as ServiceConfigId[];
      for (const id of ids) if (!SERVICE_CONFIGS.some((c) => c.id === id)) throw new Error(`unknown configuration ${id}`);
      options.configs = ids;
    } else if (m[1] === "out") {
      options.out = value;
    } else if (m[1] in options && typeof options[m[1] as keyof ProfileOptions] === "number") {
      const n = Number(value);
      if (!Number.isFinite(n) || n <= 0) throw new Error(`--${m[1]} must be a positive number`);
      (options as unknown as Record<string, number>)[m[1]] = n;
    } else {
      throw new Error(`unknown option --${m[1]}`);
    }
  }
  return options;
}

const log = (message: string) => process.stderr.write(`${message}\n`);
const nowUs = () => Number(process.hrtime.bigint() / 1000n);

interface ProfiledRound {
  readonly config: ServiceConfigId;
  readonly cycle: number;
  readonly load: PhaseResult;
  readonly cpuMsPerPayment: { payment: number; fraud: number };
  readonly payment: ProfileSummary;
  readonly fraud: ProfileSummary;
  readonly files: { payment: string; fraud: string };
}

export async function profileMain(argv: string[]): Promise<void> {
  const options = parse(argv);
  const started = Date.now();
  const machine = machineInfo();
  const profileDir = path.join(options.out, "profiles");
  rmSync(profileDir, { recursive: true, force: true });
  mkdirSync(profileDir, { recursive: true });
  const { db, intake, rendered } = await openStand("payments_bench_profile", options.wallets);
  const runId = Date.now().toString(36);
  const redisPrefix = `${REDIS_PREFIX_ROOT}profile:${runId}:`;
  const rounds: ProfiledRound[] = [];
  let pair: ServicePair | undefined;
  try {
    for (let cycle = 1; cycle <= options.cycles; cycle++) {
      for (const id of options.configs) {
        const config = SERVICE_CONFIGS.find((c) => c.id === id)!;
        const dir = (service: string) => path.join(profileDir, `${id}-${cycle}-${service}`);
        const cpuProf = (service: string) => ({
          NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${dir(service)} --cpu-prof-interval=${options.interval}`,
        });
        pair = await startPair({
          rendered,
          intakeUrl: intake.url,
          db,
          redisPrefix: `${redisPrefix}${cycle}:${id}:`,
          overrides: config.overrides,
          paymentExtra: cpuProf("payment"),
          fraudExtra: cpuProf("fraud"),
        });
        const load = (phase: string, durationSec: number) =>
          runPaymentLoad({
            url: pair!.payment.url,
            connections: options.connections,
            durationSec,
            wallets: options.wallets,
            keyPrefix: `bench-profile-${runId}-${cycle}-${id}-${phase}`,
          });
        await load("w", options.warmup);
        const from = nowUs();
        const cpu0 = { payment: pair.payment.cpuMs(), fraud: pair.fraud.cpuMs() };
        const measured = await load("s", options.duration);
        const cpuMsPerPayment = {
          payment: (pair.payment.cpuMs() - cpu0.payment) / measured.ok2xx,
          fraud: (pair.fraud.cpuMs() - cpu0.fraud) / measured.ok2xx,
        };
        const to = nowUs();
        if (failures(measured) > 0) throw new Error(`${id}: ${failures(measured)} requests failed while profiling`);
        await waitForQuiet(db);
        await pair.stop();
        pair = undefined;
        const file = (service: string) => {
          const found = readdirSync(dir(service)).filter((f) => f.endsWith(".cpuprofile"));
          if (found.length !== 1) throw new Error(`expected one profile in ${dir(service)}, found ${found.length}`);
          return path.join(dir(service), found[0]);
        };
        const files = { payment: file("payment"), fraud: file("fraud") };
        const round: ProfiledRound = {
          config: id,
          cycle,
          load: measured,
          cpuMsPerPayment,
          payment: summarizeProfile(files.payment, from, to),
          fraud: summarizeProfile(files.fraud, from, to),
          files: { payment: path.relative(options.out, files.payment), fraud: path.relative(options.out, files.fraud) },
        };
        rounds.push(round);
        log(`  cycle ${cycle} ${id.padEnd(11)} ${measured.throughput.toFixed(1)} payments/s, CPU per payment ` +
          `${cpuMsPerPayment.payment.toFixed(2)} + ${cpuMsPerPayment.fraud.toFixed(2)} ms`);
      }
    }
  } finally {
    await pair?.stop().catch(() => undefined);
    await intake.close().catch(() => undefined);
    await deleteRedisKeys(redisPrefix).catch(() => undefined);
    await db.drop().catch(() => undefined);
  }
  const report = {
    machine: { ...machine, loadAverageAtEnd: os.loadavg().map((l) => Math.round(l * 100) / 100) },
    options: { ...options, out: path.relative(process.cwd(), options.out) || "." },
    wallSeconds: Math.round((Date.now() - started) / 100) / 10,
    rounds,
  };
  mkdirSync(options.out, { recursive: true });
  writeFileSync(path.join(options.out, "profile.json"), `${JSON.stringify(report, null, 2)}\n`);
  const markdown = renderProfile(report.rounds, options, machine.date, report.wallSeconds);
  writeFileSync(path.join(options.out, "profile.md"), markdown);
  process.stdout.write(`\n${markdown}\n`);
}

/** Per payment: a bucket's milliseconds divided by the payments of its round, median over cycles. */
function perPayment(rounds: ProfiledRound[], service: "payment" | "fraud", list: keyof ProfileSummary): Map<string, number> {
  const keys = new Set<string>();
  for (const r of rounds) for (const b of r[service][list] as Bucket[]) keys.add(b.key);
  const out = new Map<string, number>();
  for (const key of keys) {
    out.set(
      key,
      median(rounds.map((r) => ((r[service][list] as Bucket[]).find((b) => b.key === key)?.ms ?? 0) / r.load.ok2xx)),
    );
  }
  return out;
}

function renderProfile(rounds: ProfiledRound[], options: ProfileOptions, date: string, wall: number): string {
  const lines: string[] = [];
  const us = (ms: number | undefined) => (ms === undefined ? "–" : `${Math.round(ms * 1000)}`);
  lines.push("# CPU profile of POST /v1/payments");
  lines.push("");
  lines.push(
    `${date.slice(0, 16).replace("T", " ")} UTC · ${options.cycles} alternating cycles of ${options.configs.join(" / ")} · ` +
      `${options.connections} connections · ${options.warmup} s warm-up then ${options.duration} s profiled · ` +
      `sampling every ${options.interval} µs · wall time ${wall} s. Figures are µs per payment (median over cycles) of profiled ` +
      `non-idle time, which also counts time the thread was runnable but waiting for a core: on this shared machine it runs ` +
      `above the /proc CPU time (first rows). Compare the columns and the shares, not the absolute values; the profiler's own ` +
      `overhead is in every column.`,
  );
  const byConfig = new Map<ServiceConfigId, ProfiledRound[]>();
  for (const r of rounds) byConfig.set(r.config, [...(byConfig.get(r.config) ?? []), r]);
  const configs = [...byConfig.keys()];
  lines.push("");
  lines.push(`| | ${configs.join(" | ")} |`);
  lines.push(`|---|${configs.map(() => "---:").join("|")}|`);
  lines.push(`| payments/s | ${configs.map((c) => median(byConfig.get(c)!.map((r) => r.load.throughput)).toFixed(1)).join(" | ")} |`);
  for (const service of ["payment", "fraud"] as const) {
    lines.push(
      `| ${service}-service CPU per payment (/proc) | ${configs.map((c) => us(median(byConfig.get(c)!.map((r) => r.cpuMsPerPayment[service])))).join(" | ")} |`,
    );
    lines.push(
      `| ${service}-service profiled busy time per payment | ${configs.map((c) => us(median(byConfig.get(c)!.map((r) => r[service].busyMs / r.load.ok2xx)))).join(" | ")} |`,
    );
  }
  const table = (service: "payment" | "fraud", list: keyof ProfileSummary, heading: string, limit: number) => {
    const maps = configs.map((c) => perPayment(byConfig.get(c)!, service, list));
    const keys = new Set<string>();
    for (const m of maps) for (const k of m.keys()) keys.add(k);
    const sorted = [...keys].sort((a, b) => Math.max(...maps.map((m) => m.get(b) ?? 0)) - Math.max(...maps.map((m) => m.get(a) ?? 0)));
    lines.push("", `## ${service}-service: ${heading}`, "");
    lines.push(`| | ${configs.join(" | ")} |`);
    lines.push(`|---|${configs.map(() => "---:").join("|")}|`);
    for (const key of sorted.slice(0, limit)) {
      lines.push(`| \`${key.replace(/\|/g, "\\|")}\` | ${maps.map((m) => us(m.get(key))).join(" | ")} |`);
    }
  };
  table("payment", "byPackage", "self time by package", 16);
  table("payment", "nearestApp", "charged to the nearest function of ours on the stack", 25);
  table("payment", "appInclusive", "our functions, inclusive", 25);
  table("payment", "outsideApp", "samples with no function of ours on the stack, by outermost package", 10);
  table("payment", "selfTop", "self time by function", 25);
  table("payment", "ddTraceSelf", "dd-trace's own time by component", 12);
  table("fraud", "byPackage", "self time by package", 12);
  table("fraud", "nearestApp", "charged to the nearest function of ours on the stack", 15);
  table("fraud", "ddTraceSelf", "dd-trace's own time by component", 10);
  return `${lines.join("\n")}\n`;
}
