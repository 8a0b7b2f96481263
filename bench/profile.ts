/**
 * npm run bench -- --profile [--configs untraced,traced --seconds 10 --connections 16]
 *
 * CPU profiles (node --cpu-prof through NODE_OPTIONS) of both services under the
 * benchmark's payment load, one fresh pair per configuration: warmed, then profiled for
 * `seconds`; only the samples of that window are read. Prints µs per payment by package,
 * charged to the nearest function of ours, and dd-trace's own time by component; the raw
 * profiles stay in a temp directory (open them in Chrome DevTools or speedscope).
 */
import { mkdtempSync, readdirSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { configById, type BenchConfig } from "./lib/configs";
import { summarizeProfile, type ProfileSummary } from "./lib/cpuprofile";
import { runPaymentLoad } from "./lib/load";
import { deleteRedisKeys, openStand, startPair } from "./lib/stand";

interface Profiled {
  readonly config: BenchConfig;
  readonly payments: number;
  readonly cpuMsPerPayment: number;
  readonly summaries: { payment: ProfileSummary; fraud: ProfileSummary };
}

const nowUs = () => Number(process.hrtime.bigint() / 1000n);

export async function profileMain(argv: string[]): Promise<void> {
  const options = { configs: "untraced,traced", seconds: 10, warmup: 10, connections: 16, wallets: 10_000 };
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, "") as keyof typeof options;
    if (!(key in options) || argv[i + 1] === undefined) throw new Error(`unknown option ${argv[i]} (known: ${Object.keys(options).join(", ")})`);
    (options as Record<string, string | number>)[key] = key === "configs" ? argv[i + 1] : Number(argv[i + 1]);
  }
  const dir = mkdtempSync(path.join(os.tmpdir(), "payments-apm-profiles-"));
  const stand = await openStand("payments_bench_profile", options.wallets);
  const redisPrefix = `payments-bench:profile:${Date.now().toString(36)}:`;
  const results: Profiled[] = [];
  try {
    for (const config of options.configs.split(",").map(configById)) {
      if (config.build !== "this") throw new Error(`${config.id}: the profiler runs this build only`);
      // Both services write into one directory; the pid in each file name tells them apart.
      const out = path.join(dir, config.id);
      const pair = await startPair(stand, config, { this: {}, previous: { appDir: "", node: "" } }, `${redisPrefix}${config.id}:`, {
        NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${out} --cpu-prof-interval=500`,
      });
      const load = (seconds: number, phase: string) =>
        runPaymentLoad({ url: pair.payment.url, connections: options.connections, seconds, wallets: options.wallets, keyPrefix: `bench-profile-${Date.now()}-${phase}` });
      await load(options.warmup, "w");
      const cpu0 = pair.payment.cpuMs() + pair.fraud.cpuMs();
      const from = nowUs();
      const measured = await load(options.seconds, "m");
      const to = nowUs();
      const cpuMsPerPayment = (pair.payment.cpuMs() + pair.fraud.cpuMs() - cpu0) / measured.ok2xx;
      await pair.stop();
      const files = readdirSync(out).filter((f) => f.endsWith(".cpuprofile")).map((f) => path.join(out, f));
      if (files.length !== 2) throw new Error(`expected two profiles in ${out}, found ${files.length}`);
      const pidOf = (file: string) => Number(/CPU\.\d+\.\d+\.(\d+)\./.exec(path.basename(file))?.[1]);
      const fileOf = (pid: number | undefined) => files.find((f) => pidOf(f) === pid)!;
      results.push({
        config,
        payments: measured.ok2xx,
        cpuMsPerPayment,
        summaries: {
          payment: summarizeProfile(fileOf(pair.payment.running.child.pid), from, to),
          fraud: summarizeProfile(fileOf(pair.fraud.running.child.pid), from, to),
        },
      });
      process.stderr.write(`profile: ${config.id} ${measured.throughput.toFixed(0)}/s, ${cpuMsPerPayment.toFixed(3)} ms CPU per payment\n`);
    }
  } finally {
    await stand.intake.close().catch(() => undefined);
    await deleteRedisKeys(redisPrefix).catch(() => undefined);
    await stand.db.drop().catch(() => undefined);
  }
  process.stdout.write(`${render(results)}\nRaw profiles: ${dir}\n`);
}

function render(results: Profiled[]): string {
  const lines = [
    "# CPU profile of POST /v1/payments (µs per payment of profiled non-idle time; includes waiting for a core)",
    "",
    `| | ${results.map((r) => r.config.id).join(" | ")} |`,
    `|---|${results.map(() => "---:").join("|")}|`,
    `| CPU per payment, both services (/proc) | ${results.map((r) => Math.round(r.cpuMsPerPayment * 1000)).join(" | ")} |`,
  ];
  const table = (service: "payment" | "fraud", list: "byPackage" | "nearestApp" | "ddTraceSelf", heading: string, limit: number) => {
    const perPayment = results.map((r) => new Map(r.summaries[service][list].map((b) => [b.key, (b.ms * 1000) / r.payments])));
    const keys = [...new Set(perPayment.flatMap((m) => [...m.keys()]))];
    keys.sort((a, b) => Math.max(...perPayment.map((m) => m.get(b) ?? 0)) - Math.max(...perPayment.map((m) => m.get(a) ?? 0)));
    lines.push("", `## ${service}-service: ${heading}`, "", `| | ${results.map((r) => r.config.id).join(" | ")} |`, `|---|${results.map(() => "---:").join("|")}|`);
    for (const key of keys.slice(0, limit)) {
      lines.push(`| \`${key.replace(/\|/g, "\\|")}\` | ${perPayment.map((m) => (m.has(key) ? Math.round(m.get(key)!) : "–")).join(" | ")} |`);
    }
  };
  for (const service of ["payment", "fraud"] as const) {
    table(service, "byPackage", "self time by package", 12);
    table(service, "nearestApp", "charged to the nearest function of ours on the stack", 15);
    table(service, "ddTraceSelf", "dd-trace's own time by component", 10);
  }
  return lines.join("\n");
}
