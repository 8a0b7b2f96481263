/**
 * npm run demo [-- --seconds 30] [--out out/demo] [--concurrency 4] [--database payments_demo]
 *
 * What the project does, on this machine: PostgreSQL and Redis on 127.0.0.1, both services
 * started with the env the prod stack renders (only addresses on loopback), dd-trace
 * sending to a local trace intake that writes every span to `<out>/spans.jsonl`, callers
 * authenticated with access tokens from an identity provider the demo runs (its own keys,
 * its JWKS on 127.0.0.1). A mix of payments runs for the given time (completed; declined
 * for funds or limits; held for fraud review; failed while fraud-service stalls past
 * payment-service's deadline) with a live progress line; then the trace analysis (the
 * code of `npm run traces:analyze -- --spans`) is printed, `<out>/report.html` written, and
 * the report's counts are checked against the ledger's, read with SQL.
 *
 * Exit status: 0 the counts agree, 1 they differ (or the demo failed), 2 bad usage.
 */
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import type { Pool } from "pg";
import { outcomeOf, type TraceReport } from "../analytics/analyze";
import { renderHtml } from "../analytics/html";
import { readSpansFile } from "../analytics/spans-file";
import type { SpanRecord } from "../analytics/spans";
import { renderText } from "../analytics/text";
import { SERVICES, SPANS, TAGS, type CustomerTier } from "../app/src/tracing/conventions";
import { seedWallets, type ProfileSeed, type WalletSeed } from "../app/src/ledger/seed";
import { deleteKeys } from "../app/test/support/redis-keys";
import { createTestDatabase, type TestDatabase } from "../app/test/support/database";
import { IdentityProvider, TokenFile } from "../app/test/support/identity";
import { renderedEnv, startService, testEnv, type RunningService } from "../app/test/support/services";
import { TraceIntake } from "../app/test/support/trace-intake";
import { REPO_ROOT } from "./mock-engine";
import { reportOfCapture } from "./traces-analyze";

/** What the demo makes happen, and how a payment ended for the client, the trace and the ledger. */
export const DEMO_OUTCOMES = ["completed", "declined", "held", "failed"] as const;
export type DemoOutcome = (typeof DEMO_OUTCOMES)[number];
/**
 * Also answered: `retryable`, a hold or block on a degraded fraud score (fraud-service's Redis
 * slower than its deadline, on a starved machine), which the ledger does not store; refused
 * before the payment (401/403/429/400); or no answer.
 */
export type ClientAnswer = DemoOutcome | "retryable" | "refused" | "no_answer";

export interface DemoOptions {
  /** How long payments are sent. Default 30. */
  readonly seconds?: number;
  /** Where spans.jsonl and report.html go. Default out/demo. */
  readonly outDir?: string;
  /** The demo's own database on the local PostgreSQL, dropped and recreated at the start, kept at the end. Default payments_demo. */
  readonly database?: string;
  /** Prefix of the demo's Redis keys (deleted at the end). Default `<database>:`. */
  readonly redisPrefix?: string;
  /** Requests in flight at once. Default 4. */
  readonly concurrency?: number;
  /** Where the progress line goes. Default process.stderr (a line redrawn in place on a terminal). */
  readonly progress?: NodeJS.WritableStream & { isTTY?: boolean };
  /** Where the analysis and the check go. Default process.stdout. */
  readonly print?: (text: string) => void;
}

/** Payments per outcome, as one source saw them. `failed` is null for the ledger: a failed payment writes nothing. */
export type OutcomeCounts = Readonly<Record<DemoOutcome, number>>;

export interface LedgerCounts extends OutcomeCounts {
  /** Rows left half-made (status pending): none in a sound ledger. */
  readonly pending: number;
}

export interface DemoResult {
  readonly report: TraceReport;
  /** What the client was answered. */
  readonly answered: Readonly<Record<ClientAnswer, number>>;
  readonly ledger: LedgerCounts;
  readonly spansFile: string;
  readonly htmlFile: string;
  readonly database: string;
  /** Every disagreement between the report, the ledger and the client's answers; empty when they agree. */
  readonly mismatches: string[];
}

const CARD = { number: "4539148803436467", cvv: "8472", expiry: "12/39" };
/** Longer than the prod stack's FRAUD_TIMEOUT_MS (800 ms): the payments in flight fail closed. */
const STALL_MS = 1_200;
const FIRST_STALL_AFTER_MS = 2_500;
const STALL_EVERY_MS = 7_000;

type Scenario = "completed" | "insufficient_funds" | "limit_exceeded" | "held";
/** Shares of the payments sent (failures come from fraud-service's stalls, whatever was sent). */
const MIX: readonly [Scenario, number][] = [
  ["completed", 0.74],
  ["insufficient_funds", 0.08],
  ["limit_exceeded", 0.06],
  ["held", 0.12],
];

/**
 * Users per scenario. The prod stack limits each user to 60 payments a minute with a burst
 * of 10 (RATE_LIMIT_*), and the demo keeps those limits: payments go round the users, so
 * each one pays at most about once a second even at 400 payments a second.
 */
const USERS_PER_SCENARIO = 400;
const RECEIVERS = 20;

const SEGMENTS: readonly ProfileSeed["segment"][] = ["consumer", "small_business", "corporate"];
const KYC_LEVELS: readonly ProfileSeed["kycLevel"][] = ["basic", "verified", "enhanced", "none"];

export async function runDemo(options: DemoOptions = {}): Promise<DemoResult> {
  const seconds = options.seconds ?? 30;
  const outDir = path.resolve(options.outDir ?? path.join(REPO_ROOT, "out/demo"));
  const progress = options.progress ?? process.stderr;
  const print = options.print ?? ((t: string) => process.stdout.write(`${t}\n`));
  const t0 = Date.now();
  const say = (line: string) => progress.write(`${line} (${((Date.now() - t0) / 1000).toFixed(1)} s)\n`);
  const databaseName = options.database ?? "payments_demo";
  const redisPrefix = options.redisPrefix ?? `${databaseName}:`;
  fs.mkdirSync(outDir, { recursive: true });
  const spansFile = path.join(outDir, "spans.jsonl");
  const htmlFile = path.join(outDir, "report.html");
  const shown = (file: string) => path.relative(process.cwd(), file) || file;

  say(`demo: prod stack env; PostgreSQL database ${databaseName}, Redis keys ${redisPrefix}*; spans to ${shown(spansFile)}`);
  const cleanups: (() => Promise<unknown>)[] = [];
  const running: RunningService[] = [];
  let db: TestDatabase | undefined;
  try {
    const intake = await TraceIntake.start({ captureFile: spansFile });
    cleanups.push(() => intake.close());
    const [database, paymentRendered, fraudRendered] = await Promise.all([
      createTestDatabase(databaseName),
      renderedEnv(SERVICES.payment),
      renderedEnv(SERVICES.fraud),
    ]);
    db = database;
    const seeded = await seedWallets(demoWallets(), { host: db.env.PGHOST, port: Number(db.env.PGPORT), user: db.env.PGUSER, database: db.name });

    // The identity provider of payment-service's callers, and the cluster's ServiceAccount
    // token issuer, under the prod stack's issuer and audience names: only the JWKS is local.
    const [users, cluster] = await Promise.all([
      IdentityProvider.start({ issuer: paymentRendered.AUTH_ISSUER, audience: paymentRendered.AUTH_AUDIENCE }),
      IdentityProvider.start({ issuer: fraudRendered.SERVICE_AUTH_ISSUER, audience: fraudRendered.SERVICE_AUTH_AUDIENCE }),
    ]);
    cleanups.push(() => users.close(), () => cluster.close());
    const tokenFile = new TokenFile(`demo-service-token-${process.pid}`);
    cleanups.push(async () => fs.rmSync(tokenFile.path, { force: true }));
    tokenFile.write(
      await cluster.serviceAccountToken(fraudRendered.SERVICE_AUTH_SUBJECTS.split(",")[0], { audience: fraudRendered.SERVICE_AUTH_AUDIENCE }),
    );

    say(`demo: ${seeded.wallets} wallets and ${seeded.profiles} user profiles seeded; starting fraud-service and payment-service…`);
    // dd-trace keeps the prod flush interval (2 s): the services send what is left when they stop.
    const fraud = await startService(
      SERVICES.fraud,
      testEnv(fraudRendered, intake.url, {
        DD_TRACE_FLUSH_INTERVAL: undefined,
        REDIS_URL: "redis://127.0.0.1:6379",
        REDIS_KEY_PREFIX: redisPrefix,
        REDIS_KEY_SECRET: randomBytes(32).toString("hex"),
        SERVICE_AUTH_JWKS_URL: cluster.jwksUrl,
      }),
    );
    running.push(fraud);
    const payment = await startService(
      SERVICES.payment,
      testEnv(paymentRendered, intake.url, {
        ...db.env,
        DD_TRACE_FLUSH_INTERVAL: undefined,
        AUTH_JWKS_URL: users.jwksUrl,
        SERVICE_TOKEN_FILE: tokenFile.path,
        FRAUD_SERVICE_URL: fraud.url,
      }),
    );
    running.push(payment);

    const answered: Record<ClientAnswer, number> = { completed: 0, declined: 0, held: 0, failed: 0, retryable: 0, refused: 0, no_answer: 0 };
    const started = Date.now();
    const deadline = started + seconds * 1000;
    let stalled = false;
    const line = progressLine(progress, seconds, answered, () => stalled);

    // fraud-service stalls now and then (SIGSTOP): payment-service's deadline passes and it fails closed.
    const stalls: NodeJS.Timeout[] = [];
    for (let at = FIRST_STALL_AFTER_MS; at + STALL_MS < seconds * 1000; at += STALL_EVERY_MS) {
      stalls.push(
        setTimeout(() => {
          if (fraud.child.exitCode !== null) return;
          stalled = true;
          fraud.child.kill("SIGSTOP");
          stalls.push(
            setTimeout(() => {
              fraud.child.kill("SIGCONT");
              stalled = false;
            }, STALL_MS),
          );
        }, at),
      );
    }
    const ticker = setInterval(() => line.draw(false), progress.isTTY ? 200 : 5_000);

    const next = scenarios();
    const worker = async () => {
      while (Date.now() < deadline) {
        const [scenario, n] = next();
        answered[await pay(payment.url, users, scenario, n)] += 1;
      }
    };
    try {
      await Promise.all(Array.from({ length: options.concurrency ?? 4 }, worker));
    } finally {
      for (const timer of stalls) clearTimeout(timer);
      clearInterval(ticker);
      if (stalled) fraud.child.kill("SIGCONT");
    }
    line.draw(true);

    // SIGTERM: each service answers what is in flight, sends its buffered spans and exits.
    say("demo: stopping the services (each sends its last spans on the way out)…");
    for (const service of running.splice(0).reverse()) {
      const code = await service.stop();
      if (code !== 0) throw new Error(`${service.service} exited with ${code} on SIGTERM:\n${service.tail()}`);
    }
    await intake.close();
    say("demo: services stopped; analysing the spans and reading the ledger…");

    const spans = readSpansFile(spansFile);
    const report = reportOfCapture(spans, spansFile, "prod");
    fs.writeFileSync(htmlFile, renderHtml(report));
    const ledger = await ledgerCounts(db.pool);
    const mismatches = [
      ...compareCounts(report, ledger, answered),
      ...(await compareTransactions(spans, db.pool)),
      ...paymentTracesDropped(spans),
    ];
    print(renderText(report));
    print("");
    print(countsTable(report, ledger, answered));
    print(
      mismatches.length === 0
        ? "The report's counts equal the ledger's and the client's answers."
        : `MISMATCH:\n${mismatches.map((m) => `  ${m}`).join("\n")}`,
    );
    print(`HTML report: ${shown(htmlFile)}   spans: ${shown(spansFile)}   ledger: database ${db.name}`);
    return { report, answered, ledger, spansFile, htmlFile, database: db.name, mismatches };
  } finally {
    for (const service of running) await service.stop().catch(() => undefined);
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
    await db?.pool.end().catch(() => undefined);
    await deleteKeys(redisPrefix).catch(() => undefined);
  }
}

/** The users of each scenario, their receivers, and a profile each (the payment spans' business.user_* tags). */
function demoWallets(): WalletSeed[] {
  const wallets: WalletSeed[] = [];
  const profile = (i: number): ProfileSeed => ({
    segment: SEGMENTS[i % SEGMENTS.length],
    kycLevel: KYC_LEVELS[i % KYC_LEVELS.length],
    tenureDays: (i * 37) % 2_000,
  });
  const add = (userId: string, balance: number, customerTier: CustomerTier, country: string, i: number) =>
    wallets.push({ userId, currency: "USD", balance, customerTier, country, profile: profile(i) });
  for (let i = 0; i < USERS_PER_SCENARIO; i++) {
    // Enterprise payers: many payments an hour are ordinary for them, so velocity stays low.
    add(`demo_payer_${i}`, 50_000_000, "enterprise", "US", i);
    add(`demo_card_payer_${i}`, 50_000_000, "enterprise", "US", i + 1);
    add(`demo_short_${i}`, 100, "standard", "US", i + 2);
    add(`demo_over_limit_${i}`, 50_000_000, "standard", "GB", i + 3);
  }
  for (let i = 0; i < RECEIVERS; i++) add(`demo_receiver_${i}`, 0, "standard", "US", i);
  return wallets;
}

/** The next scenario and its sequence number, on a fixed well-spread sequence (golden-ratio steps), so runs compare. */
function scenarios(): () => [Scenario, number] {
  let n = 0;
  return () => {
    const u = (n * 0.6180339887498949) % 1;
    let acc = 0;
    let scenario: Scenario = "completed";
    for (const [s, weight] of MIX) {
      acc += weight;
      if (u < acc) {
        scenario = s;
        break;
      }
    }
    return [scenario, n++];
  };
}

function paymentBody(scenario: Scenario, n: number): Record<string, unknown> & { sender_id: string } {
  const i = Math.floor(n / MIX.length) % USERS_PER_SCENARIO;
  const base = { receiver_id: `demo_receiver_${n % RECEIVERS}`, currency: "USD", amount: 500 + (n % 5_000) };
  switch (scenario) {
    case "completed":
      return { ...base, sender_id: `demo_payer_${i}`, payment_method_type: "wallet", device: { id: `device-${i}`, fingerprint: `fp-${i}` } };
    case "insufficient_funds":
      return { ...base, sender_id: `demo_short_${i}`, payment_method_type: "wallet" };
    case "limit_exceeded":
      return { ...base, sender_id: `demo_over_limit_${i}`, amount: 2_000_000, payment_method_type: "wallet" };
    case "held":
      // A card from a device never seen: the card-not-present pattern, held for review.
      return { ...base, sender_id: `demo_card_payer_${i}`, payment_method_type: "card", card: CARD, device: { id: `new-device-${n}`, fingerprint: `fp-new-${n}` } };
  }
}

async function pay(baseUrl: string, users: IdentityProvider, scenario: Scenario, n: number): Promise<ClientAnswer> {
  const body = paymentBody(scenario, n);
  let status: number;
  let answer: { error?: unknown; retryable?: unknown };
  try {
    const response = await fetch(`${baseUrl}/v1/payments`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        authorization: await users.bearer(body.sender_id),
        "idempotency-key": `demo-${process.pid}-${n}`,
      },
      body: JSON.stringify(body),
    });
    status = response.status;
    answer = (await response.json()) as typeof answer;
  } catch {
    return "no_answer";
  }
  return answerOf(status, answer.error, answer.retryable === true);
}

/** How the client reads an answer: 201 made; 402/422 declined (held when for fraud review, retryable when it says so); 5xx failed; other 4xx refused. */
export function answerOf(status: number, error: unknown, retryable = false): ClientAnswer {
  if (status === 201) return "completed";
  if (status >= 500) return "failed";
  if ((status === 402 || status === 422) && retryable) return "retryable";
  if ((status === 402 || status === 422) && error === "fraud_review") return "held";
  if (status === 402 || status === 422) return "declined";
  return "refused";
}

/** The ledger's payments by outcome: what `transactions` holds, by status and failure reason. */
export async function ledgerCounts(pool: Pool): Promise<LedgerCounts> {
  const { rows } = await pool.query<{ completed: number; held: number; declined: number; pending: number }>(
    `SELECT count(*) FILTER (WHERE status = 'completed')::int AS completed,
            count(*) FILTER (WHERE status = 'declined' AND failure_reason = 'fraud_review')::int AS held,
            count(*) FILTER (WHERE status = 'declined' AND failure_reason IS DISTINCT FROM 'fraud_review')::int AS declined,
            count(*) FILTER (WHERE status = 'pending')::int AS pending
       FROM transactions`,
  );
  // A failed payment is rolled back whole: the ledger has no row, hence no count, for it.
  return { ...rows[0], failed: 0 };
}

/** Report against ledger (completed, declined, held) and against the client's answers (every outcome). */
export function compareCounts(report: TraceReport, ledger: LedgerCounts, answered: Readonly<Record<ClientAnswer, number>>): string[] {
  const outcomes = report.paymentFlow.outcomes;
  const got = (k: string) => outcomes[k] ?? 0;
  const problems: string[] = [];
  for (const outcome of ["completed", "declined", "held"] as const) {
    if (got(outcome) !== ledger[outcome]) problems.push(`${outcome}: report ${got(outcome)}, ledger ${ledger[outcome]}`);
  }
  for (const outcome of [...DEMO_OUTCOMES, "retryable"] as const) {
    if (got(outcome) !== answered[outcome]) problems.push(`${outcome}: report ${got(outcome)}, client ${answered[outcome]}`);
  }
  if (ledger.pending !== 0) problems.push(`ledger: ${ledger.pending} payment(s) left pending`);
  const other = Object.keys(outcomes).filter((k) => !(DEMO_OUTCOMES as readonly string[]).includes(k) && k !== "retryable");
  if (other.length) problems.push(`report: outcomes the demo does not make: ${other.map((k) => `${k} ${outcomes[k]}`).join(", ")}`);
  if (answered.no_answer) problems.push(`client: ${answered.no_answer} request(s) got no answer`);
  return problems;
}

/**
 * Payment by payment: each payment span's transaction id and outcome against the ledger's
 * row of that id (a failed payment must have none), and each ledger row against a span.
 * Names the first few that differ.
 */
export async function compareTransactions(captured: readonly SpanRecord[], pool: Pool): Promise<string[]> {
  const spans = captured.filter((s) => s.name === SPANS.processPayment && s.service === SERVICES.payment);
  const { rows } = await pool.query<{ id: string; status: string; failure_reason: string | null }>(
    `SELECT id::text, status, failure_reason FROM transactions`,
  );
  const ledger = new Map(rows.map((r) => [r.id, r.status === "declined" && r.failure_reason === "fraud_review" ? "held" : r.status]));
  const problems: string[] = [];
  const seen = new Set<string>();
  for (const span of spans) {
    const id = span.meta[TAGS.transactionId] ?? "(none)";
    const outcome = outcomeOf(span);
    if (seen.has(id)) problems.push(`transaction ${id}: more than one payment span`);
    seen.add(id);
    const stored = ledger.get(id);
    // Failed payments and retryable declines write nothing.
    const expected = outcome === "failed" || outcome === "retryable" ? undefined : outcome;
    if (stored !== expected) problems.push(`transaction ${id}: span ${outcome}, ledger ${stored ?? "no row"}`);
  }
  for (const [id, status] of ledger) if (!seen.has(id)) problems.push(`transaction ${id}: ledger ${status}, no payment span`);
  return problems.length > 10 ? [...problems.slice(0, 10), `… ${problems.length - 10} more`] : problems;
}

/**
 * Payments whose trace the tracer marked to drop (sampling priority ≤ 0 on payment-service's
 * root span): the local intake keeps them, a Datadog Agent would not, so the report would
 * show more than Datadog. The prod sampling rules keep every payment trace (priority 2, a
 * rule at rate 1 on `payments.flow: payment`), within DD_TRACE_RATE_LIMIT.
 */
export function paymentTracesDropped(captured: readonly SpanRecord[]): string[] {
  const priorityOfTrace = new Map<string, number | undefined>();
  for (const s of captured) {
    if (s.service === SERVICES.payment && s.parentId === "0") priorityOfTrace.set(s.traceId, s.metrics[SAMPLING_PRIORITY]);
  }
  const dropped = captured.filter((s) => {
    if (s.name !== SPANS.processPayment || s.service !== SERVICES.payment) return false;
    const priority = priorityOfTrace.get(s.traceId);
    return priority === undefined || priority <= 0;
  });
  if (dropped.length === 0) return [];
  const first = dropped[0];
  return [
    `sampling: ${dropped.length} payment trace(s) not kept (priority ${priorityOfTrace.get(first.traceId) ?? "none"} on trace ${first.traceId}): Datadog would not show them`,
  ];
}

/** The metric dd-trace sets on a trace's local root span: ≤ 0 dropped, > 0 kept. */
const SAMPLING_PRIORITY = "_sampling_priority_v1";

function countsTable(report: TraceReport, ledger: LedgerCounts, answered: Readonly<Record<ClientAnswer, number>>): string {
  const outcomes = report.paymentFlow.outcomes;
  const rows = [
    ["payments", "report", "ledger", "client"],
    ...DEMO_OUTCOMES.map((o) => [o, String(outcomes[o] ?? 0), o === "failed" ? "(no row)" : String(ledger[o]), String(answered[o])]),
  ];
  if (answered.retryable || outcomes.retryable) rows.push(["retryable", String(outcomes.retryable ?? 0), "(no row)", String(answered.retryable)]);
  if (answered.refused) rows.push(["refused", "(no payment)", "(no row)", String(answered.refused)]);
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows.map((r) => r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join("  ")).join("\n");
}

function progressLine(
  stream: NodeJS.WritableStream & { isTTY?: boolean },
  seconds: number,
  counts: Readonly<Record<ClientAnswer, number>>,
  stalled: () => boolean,
) {
  const started = Date.now();
  return {
    draw(last: boolean) {
      const elapsed = Math.min(seconds, (Date.now() - started) / 1000);
      const width = 24;
      const done = Math.round((elapsed / seconds) * width);
      const total = Object.values(counts).reduce((a, b) => a + b, 0);
      const text =
        `[${"#".repeat(done)}${"-".repeat(width - done)}] ${elapsed.toFixed(1).padStart(5)}/${seconds} s  ` +
        `completed ${counts.completed}  declined ${counts.declined}  held ${counts.held}  failed ${counts.failed}` +
        `${counts.retryable ? `  retryable ${counts.retryable}` : ""}${counts.refused ? `  refused ${counts.refused}` : ""}  (${(total / Math.max(elapsed, 0.001)).toFixed(0)}/s)` +
        `${stalled() ? "  fraud-service stalled" : ""}`;
      if (stream.isTTY) stream.write(`\r${text.padEnd(120)}${last ? "\n" : ""}`);
      else stream.write(`${text}\n`);
    },
  };
}


const USAGE = "usage: npm run demo -- [--seconds 30] [--out out/demo] [--concurrency 4] [--database payments_demo]";

export function parseDemoArgs(argv: readonly string[]): DemoOptions {
  const opts: { seconds?: number; outDir?: string; concurrency?: number; database?: string } = {};
  const whole = (flag: string, v: string, max: number) => {
    const n = Number(v);
    if (!(Number.isInteger(n) && n >= 1 && n <= max)) throw new Error(`${flag} must be a whole number from 1 to ${max}, got ${JSON.stringify(v)}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const [flag, inline] = arg.startsWith("--") && arg.includes("=") ? [arg.slice(0, arg.indexOf("=")), arg.slice(arg.indexOf("=") + 1)] : [arg, undefined];
    const value = () => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new Error(`${flag} needs a value`);
      return v;
    };
    if (flag === "--seconds") opts.seconds = whole(flag, value(), 3_600);
    else if (flag === "--out") opts.outDir = value();
    else if (flag === "--concurrency") opts.concurrency = whole(flag, value(), 64);
    else if (flag === "--database") {
      const name = value();
      if (!/^[a-z][a-z0-9_]{0,62}$/.test(name)) throw new Error(`--database must be lower-case letters, digits and _ (it is dropped and recreated), got ${JSON.stringify(name)}`);
      opts.database = name;
    }
    else throw new Error(`unknown argument ${arg}`);
  }
  return opts;
}

if (require.main === module) {
  let options: DemoOptions;
  try {
    options = parseDemoArgs(process.argv.slice(2));
  } catch (error) {
    console.error(`demo: ${(error as Error).message}\n${USAGE}`);
    process.exit(2);
  }
  runDemo(options).then(
    (result) => process.exit(result.mismatches.length === 0 ? 0 : 1),
    (error) => {
      console.error(`demo: ${(error as Error).message}`);
      process.exit(1);
    },
  );
}
