/**
 * npm run demo [-- --seconds 30] [--out out/demo]
 *
 * What the project does, on this machine: PostgreSQL and Redis on 127.0.0.1, both services
 * started with the env the prod stack renders (only addresses on loopback), dd-trace
 * sending to a local trace intake that writes every span to `<out>/spans.jsonl`. A mix of
 * payments runs for the given time (completed; declined for funds or limits; held for
 * fraud review; failed while fraud-service stalls past payment-service's deadline) with a
 * progress bar; then the trace analysis (the same as `npm run traces:analyze -- --spans`)
 * is printed, `<out>/report.html` written, and the report's counts are checked against the
 * ledger's. Exit status 0 when they match, 1 otherwise.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import Redis from "ioredis";
import { analyzeSpans, type TraceReport } from "../analytics/analyze";
import { renderHtml } from "../analytics/html";
import { readSpansFile } from "../analytics/spans-file";
import { stackView } from "../analytics/stack";
import { renderText } from "../analytics/text";
import { SERVICES } from "../app/src/tracing/conventions";
import { createTestDatabase, type TestDatabase } from "../app/test/support/database";
import { seedWallets, type SeedWallet } from "../app/test/support/ledger-audit";
import { renderedEnv, startService, testEnv, type RunningService } from "../app/test/support/services";
import { TraceIntake } from "../app/test/support/trace-intake";
import { REPO_ROOT } from "./mock-engine";

export const DEMO_OUTCOMES = ["completed", "declined", "held", "failed"] as const;
export type DemoOutcome = (typeof DEMO_OUTCOMES)[number];

export interface DemoOptions {
  /** How long payments are sent. Default 30. */
  readonly seconds?: number;
  /** Where spans.jsonl and report.html go. Default out/demo. */
  readonly outDir?: string;
  /** The demo's own database, dropped and recreated. Default payments_demo. */
  readonly database?: string;
  /** Prefix of the demo's Redis keys (deleted at the end). Default demo:. */
  readonly redisPrefix?: string;
  /** Requests in flight at once. Default 4. */
  readonly concurrency?: number;
  /** Where the progress bar and the report go. Default process.stderr / process.stdout. */
  readonly progress?: NodeJS.WritableStream & { isTTY?: boolean };
  readonly print?: (text: string) => void;
}

export interface LedgerCounts {
  readonly completed: number;
  /** Every stored decline, held ones included. */
  readonly declined: number;
  /** Declines for fraud review. */
  readonly held: number;
}

export interface DemoResult {
  readonly report: TraceReport;
  /** What the client was answered, by outcome. */
  readonly answered: Readonly<Record<DemoOutcome | "other", number>>;
  readonly ledger: LedgerCounts;
  readonly spansFile: string;
  readonly htmlFile: string;
  /** Report and ledger (and the client's answers) agree. */
  readonly matches: boolean;
  readonly mismatches: string[];
}

const CARD = { number: "4539148803436467", cvv: "8472", expiry: "12/39" };
const STALL_EVERY_MS = 7_000;
/** Longer than the prod stack's services.fraudTimeoutMs (800 ms): the payments in flight fail closed. */
const STALL_MS = 1_200;

type Scenario = "completed" | "insufficient_funds" | "limit_exceeded" | "held";
const MIX: readonly [Scenario, number][] = [
  ["completed", 0.74],
  ["insufficient_funds", 0.08],
  ["limit_exceeded", 0.06],
  ["held", 0.12],
];

export async function runDemo(options: DemoOptions = {}): Promise<DemoResult> {
  const seconds = options.seconds ?? 30;
  const outDir = path.resolve(options.outDir ?? path.join(REPO_ROOT, "out/demo"));
  const progress = options.progress ?? process.stderr;
  const print = options.print ?? ((t: string) => process.stdout.write(`${t}\n`));
  const say = (line: string) => progress.write(`${line}\n`);
  fs.mkdirSync(outDir, { recursive: true });
  const spansFile = path.join(outDir, "spans.jsonl");
  const htmlFile = path.join(outDir, "report.html");
  const redisPrefix = options.redisPrefix ?? "demo:";
  const stack = stackView("prod");

  say(`demo: prod stack env, PostgreSQL database ${options.database ?? "payments_demo"}, Redis keys ${redisPrefix}*, spans → ${path.relative(process.cwd(), spansFile) || spansFile}`);
  const cleanups: (() => Promise<unknown>)[] = [];
  let db: TestDatabase | undefined;
  const running: RunningService[] = [];
  try {
    const intake = await TraceIntake.start({ captureFile: spansFile });
    cleanups.push(() => intake.close());
    const [database, paymentRendered, fraudRendered] = await Promise.all([
      createTestDatabase(options.database ?? "payments_demo"),
      renderedEnv(SERVICES.payment),
      renderedEnv(SERVICES.fraud),
    ]);
    db = database;
    const senders = Math.max(100, seconds * 12);
    const wallets = demoWallets(senders);
    await seedWallets(db.pool, wallets);

    say("demo: starting fraud-service and payment-service (prod env, Node of the image)…");
    const fraud = await startService(SERVICES.fraud, testEnv(fraudRendered, intake.url, { REDIS_URL: "redis://127.0.0.1:6379", REDIS_KEY_PREFIX: redisPrefix }));
    running.push(fraud);
    const payment = await startService(SERVICES.payment, testEnv(paymentRendered, intake.url, { ...db.env, FRAUD_SERVICE_URL: fraud.url }));
    running.push(payment);

    const answered: Record<DemoOutcome | "other", number> = { completed: 0, declined: 0, held: 0, failed: 0, other: 0 };
    const started = Date.now();
    const deadline = started + seconds * 1000;
    let sent = 0;
    let stalled = false;
    const bar = progressBar(progress, seconds, answered, () => stalled);

    // fraud-service stalls now and then (SIGSTOP): payment-service's deadline passes and it fails closed.
    const stalls = setInterval(() => {
      if (Date.now() + STALL_MS > deadline || fraud.child.exitCode !== null) return;
      stalled = true;
      fraud.child.kill("SIGSTOP");
      setTimeout(() => {
        fraud.child.kill("SIGCONT");
        stalled = false;
      }, STALL_MS);
    }, STALL_EVERY_MS);
    const ticker = setInterval(() => bar.draw(false), progress.isTTY ? 200 : 5_000);

    const worker = async () => {
      while (Date.now() < deadline) {
        const n = sent++;
        const outcome = await pay(payment.url, scenarioOf(n), n, senders);
        answered[outcome] += 1;
      }
    };
    await Promise.all(Array.from({ length: options.concurrency ?? 4 }, worker));
    clearInterval(stalls);
    clearInterval(ticker);
    if (stalled) fraud.child.kill("SIGCONT");
    bar.draw(true);

    // SIGTERM: each service answers what is in flight, flushes its tracer and exits.
    say("demo: stopping the services (their tracers flush on the way out)…");
    for (const service of running.splice(0).reverse()) await service.stop();
    await intake.close();

    const ledger = await ledgerCounts(db);
    const spans = readSpansFile(spansFile);
    const report = analyzeSpans(spans, {
      thresholds: stack.thresholds,
      source: {
        kind: "spans-file",
        description: path.relative(process.cwd(), spansFile) || spansFile,
        stack: "prod",
        env: stack.env,
        fromMs: spans.length ? Math.min(...spans.map((s) => s.startMs)) : null,
        toMs: spans.length ? Math.max(...spans.map((s) => s.startMs + s.durationMs)) : null,
      },
    });
    fs.writeFileSync(htmlFile, renderHtml(report));
    const mismatches = compare(report, ledger, answered);
    print(renderText(report));
    print("");
    print(`Ledger: ${ledger.completed} completed, ${ledger.declined} declined (${ledger.held} of them held for review); failed payments write nothing.`);
    print(`Client: ${DEMO_OUTCOMES.map((o) => `${answered[o]} ${o}`).join(", ")}${answered.other ? `, ${answered.other} other` : ""}.`);
    print(mismatches.length === 0 ? "Report, ledger and client answers agree." : `MISMATCH: ${mismatches.join("; ")}`);
    print(`HTML report: ${path.relative(process.cwd(), htmlFile) || htmlFile}`);
    return { report, answered, ledger, spansFile, htmlFile, matches: mismatches.length === 0, mismatches };
  } finally {
    for (const service of running) await service.stop().catch(() => undefined);
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
    await db?.pool.end().catch(() => undefined);
    await deleteRedisKeys(redisPrefix).catch(() => undefined);
  }
}

function demoWallets(senders: number): SeedWallet[] {
  const wallets: SeedWallet[] = [];
  for (let i = 0; i < senders; i++) {
    // Enterprise senders: many payments an hour are ordinary for them, so velocity stays low.
    wallets.push({ userId: `demo_sender_${i}`, currency: "USD", balance: 50_000_000, tier: "enterprise", country: "US" });
    wallets.push({ userId: `demo_poor_${i}`, currency: "USD", balance: 100, tier: "standard", country: "US" });
    wallets.push({ userId: `demo_standard_${i}`, currency: "USD", balance: 50_000_000, tier: "standard", country: "GB" });
  }
  for (let i = 0; i < 20; i++) wallets.push({ userId: `demo_receiver_${i}`, currency: "USD", balance: 0, tier: "standard", country: "US" });
  return wallets;
}

function scenarioOf(n: number): Scenario {
  // A fixed, well-spread sequence (golden-ratio steps) instead of Math.random: runs compare.
  const u = (n * 0.6180339887498949) % 1;
  let acc = 0;
  for (const [scenario, weight] of MIX) {
    acc += weight;
    if (u < acc) return scenario;
  }
  return "completed";
}

async function pay(baseUrl: string, scenario: Scenario, n: number, senders: number): Promise<DemoOutcome | "other"> {
  const i = n % senders;
  const receiver = `demo_receiver_${n % 20}`;
  const base = { receiver_id: receiver, currency: "USD", amount: 500 + (n % 5_000) };
  const body =
    scenario === "completed"
      ? { ...base, sender_id: `demo_sender_${i}`, payment_method_type: "wallet", device: { id: `device-${i}`, fingerprint: `fp-${i}` } }
      : scenario === "insufficient_funds"
        ? { ...base, sender_id: `demo_poor_${i}`, payment_method_type: "wallet" }
        : scenario === "limit_exceeded"
          ? { ...base, sender_id: `demo_standard_${i}`, amount: 2_000_000, payment_method_type: "wallet" }
          : // A card from a device never seen: the card-not-present pattern, held for review.
            { ...base, sender_id: `demo_sender_${i}`, payment_method_type: "card", card: CARD, device: { id: `new-device-${n}`, fingerprint: `fp-new-${n}` } };
  let status: number;
  let error: unknown;
  try {
    const response = await fetch(`${baseUrl}/v1/payments`, {
      method: "POST",
      headers: { "content-type": "application/json", "idempotency-key": `demo-${process.pid}-${n}` },
      body: JSON.stringify(body),
    });
    status = response.status;
    error = ((await response.json()) as { error?: unknown }).error;
  } catch {
    return "other";
  }
  if (status === 201) return "completed";
  if (status >= 500) return "failed";
  if (error === "fraud_review") return "held";
  if (status === 402 || status === 422) return "declined";
  return "other";
}

async function ledgerCounts(db: TestDatabase): Promise<LedgerCounts> {
  const { rows } = await db.pool.query<{ status: string; held: boolean; n: string }>(
    `SELECT status, failure_reason = 'fraud_review' AS held, count(*)::text AS n FROM transactions GROUP BY 1, 2`,
  );
  const count = (pred: (r: { status: string; held: boolean }) => boolean) => rows.filter(pred).reduce((n, r) => n + Number(r.n), 0);
  return {
    completed: count((r) => r.status === "completed"),
    declined: count((r) => r.status === "declined"),
    held: count((r) => r.status === "declined" && r.held),
  };
}

/** Every way the report could disagree with the ledger or with what the client was answered. */
export function compare(report: TraceReport, ledger: LedgerCounts, answered: Readonly<Record<string, number>>): string[] {
  const o = report.paymentFlow.outcomes;
  const got = (k: string) => o[k] ?? 0;
  const problems: string[] = [];
  const check = (what: string, a: number, b: number) => {
    if (a !== b) problems.push(`${what}: report ${a}, ${b}`);
  };
  check("completed vs ledger", got("completed"), ledger.completed);
  check("declined + held vs ledger's declines", got("declined") + got("held"), ledger.declined);
  check("held vs ledger's fraud_review declines", got("held"), ledger.held);
  for (const outcome of DEMO_OUTCOMES) check(`${outcome} vs client`, got(outcome), answered[outcome] ?? 0);
  const other = Object.keys(o).filter((k) => !(DEMO_OUTCOMES as readonly string[]).includes(k));
  if (other.length) problems.push(`outcomes the demo does not make: ${other.join(", ")}`);
  return problems;
}

function progressBar(stream: NodeJS.WritableStream & { isTTY?: boolean }, seconds: number, counts: Record<string, number>, stalled: () => boolean) {
  const started = Date.now();
  return {
    draw(last: boolean) {
      const elapsed = Math.min(seconds, (Date.now() - started) / 1000);
      const width = 24;
      const done = Math.round((elapsed / seconds) * width);
      const total = Object.values(counts).reduce((a, b) => a + b, 0);
      const line =
        `[${"#".repeat(done)}${"-".repeat(width - done)}] ${elapsed.toFixed(1).padStart(5)}/${seconds} s  ` +
        `completed ${counts.completed}  declined ${counts.declined}  held ${counts.held}  failed ${counts.failed}  ` +
        `(${(total / Math.max(elapsed, 0.001)).toFixed(0)}/s)${stalled() ? "  fraud-service stalled" : ""}`;
      if (stream.isTTY) stream.write(`\r${line.padEnd(110)}${last ? "\n" : ""}`);
      else stream.write(`${line}\n`);
    },
  };
}

/** The demo's velocity counters and device sets (the test fixture's helper needs mocha). */
async function deleteRedisKeys(prefix: string): Promise<void> {
  const redis = new Redis("redis://127.0.0.1:6379", { lazyConnect: true, disableClientInfo: true, maxRetriesPerRequest: 1 });
  await redis.connect();
  try {
    let cursor = "0";
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 500);
      if (keys.length) await redis.del(...keys);
      cursor = next;
    } while (cursor !== "0");
  } finally {
    redis.disconnect();
  }
}

function parseArgs(argv: string[]): DemoOptions {
  const opts: { seconds?: number; outDir?: string } = {};
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].includes("=") ? argv[i].split(/=(.*)/) : [argv[i], undefined];
    const value = () => inline ?? argv[++i];
    if (flag === "--seconds") opts.seconds = Number(value());
    else if (flag === "--out") opts.outDir = value();
    else {
      console.error(`demo: unknown argument ${argv[i]} (usage: npm run demo -- [--seconds 30] [--out out/demo])`);
      process.exit(2);
    }
  }
  if (opts.seconds !== undefined && !(Number.isInteger(opts.seconds) && opts.seconds >= 1 && opts.seconds <= 600)) {
    console.error("demo: --seconds must be a whole number from 1 to 600");
    process.exit(2);
  }
  return opts;
}

if (require.main === module) {
  runDemo(parseArgs(process.argv.slice(2))).then(
    (result) => process.exit(result.matches ? 0 : 1),
    (error) => {
      console.error(`demo: ${(error as Error).message}`);
      process.exit(1);
    },
  );
}
