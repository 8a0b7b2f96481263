/**
 * `npm run demo`, as a newcomer runs it (a child process, a few seconds of payments): exit
 * status 0, the counts it prints equal the ledger's read here with SQL, the HTML report and
 * the capture file written, the payment spans annotated from the seeded user profiles.
 */
import * as assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Client, Pool } from "pg";
import { readSpansFile } from "../analytics/spans-file";
import { PG } from "../app/test/support/database";
import { DETAIL_TAGS, SERVICES, SPANS, TAGS } from "../app/src/tracing/conventions";
import { compareCounts, compareTransactions, ledgerCounts, paymentTracesDropped } from "../scripts/demo";
import { reportOfCapture } from "../scripts/traces-analyze";

const REPO_ROOT = path.resolve(__dirname, "..");
const SECONDS = 6;

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function runDemo(args: string[], timeoutMs: number): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn("npm", ["run", "demo", "--", ...args], { cwd: REPO_ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    // SIGINT, like Ctrl-C: the demo stops its services on the way out.
    const timer = setTimeout(() => child.kill("SIGINT"), timeoutMs);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** The rows of the counts table the demo prints: outcome → [report, ledger, client]. */
function printedCounts(stdout: string): Map<string, [string, string, string]> {
  const lines = stdout.split("\n");
  const header = lines.findIndex((l) => /^payments\s+report\s+ledger\s+client$/.test(l.trim()));
  assert.ok(header >= 0, `no counts table in:\n${stdout}`);
  const rows = new Map<string, [string, string, string]>();
  for (const line of lines.slice(header + 1)) {
    const match = /^(completed|declined|held|failed)\s+(\S+)\s+(\(no row\)|\d+)\s+(\d+)$/.exec(line.trim());
    if (!match) break;
    rows.set(match[1], [match[2], match[3], match[4]]);
  }
  return rows;
}

describe("npm run demo (scripts/demo.ts)", function () {
  this.timeout(150_000);
  const database = `payments_demo_test_${process.pid}`;
  let dir: string;
  let run: Run;

  before(async function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "demo-"));
    run = await runDemo(["--seconds", String(SECONDS), "--out", dir, "--database", database], 140_000);
  });
  after(async () => {
    fs.rmSync(dir, { recursive: true, force: true });
    const admin = new Client({ ...PG, database: "postgres" });
    await admin.connect();
    await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
    await admin.end();
  });

  it("exits 0 having printed counts equal to the ledger's, read here", async () => {
    assert.equal(run.code, 0, `exit ${run.code}\nstdout:\n${run.stdout}\nstderr:\n${run.stderr}`);
    assert.match(run.stdout, /The report's counts equal the ledger's and the client's answers\./);

    const client = new Client({ ...PG, database });
    await client.connect();
    const { rows } = await client.query<{ status: string; held: boolean; n: number }>(
      `SELECT status, failure_reason IS NOT DISTINCT FROM 'fraud_review' AS held, count(*)::int AS n FROM transactions GROUP BY 1, 2`,
    );
    await client.end();
    const sum = (pred: (r: { status: string; held: boolean }) => boolean) => rows.filter(pred).reduce((n, r) => n + r.n, 0);
    const ledger = {
      completed: sum((r) => r.status === "completed"),
      declined: sum((r) => r.status === "declined" && !r.held),
      held: sum((r) => r.status === "declined" && r.held),
    };
    assert.equal(sum((r) => r.status !== "completed" && r.status !== "declined"), 0, "no payment left half-made");

    const printed = printedCounts(run.stdout);
    for (const outcome of ["completed", "declined", "held"] as const) {
      const [report, ledgerShown, client] = printed.get(outcome) ?? [];
      assert.ok(ledger[outcome] > 0, `some ${outcome} payments in the ledger: ${JSON.stringify(ledger)}`);
      assert.equal(Number(report), ledger[outcome], `${outcome}: report`);
      assert.equal(Number(ledgerShown), ledger[outcome], `${outcome}: the ledger as printed`);
      assert.equal(Number(client), ledger[outcome], `${outcome}: the client's answers`);
    }
    // Failed payments (fraud-service stalled past payment-service's deadline) write nothing.
    const [failedReport, failedLedger, failedClient] = printed.get("failed") ?? [];
    assert.ok(Number(failedReport) > 0, "fraud-service stalled at least once");
    assert.equal(failedLedger, "(no row)");
    assert.equal(failedReport, failedClient);
  });

  it("writes the HTML report and the capture file it analysed, with annotated payment spans", () => {
    const html = fs.readFileSync(path.join(dir, "report.html"), "utf8");
    assert.match(html, /id="waterfall"/);
    assert.match(run.stdout, new RegExp(`HTML report: .*report\\.html`));
    const payments = readSpansFile(path.join(dir, "spans.jsonl")).filter((s) => s.name === SPANS.processPayment && s.service === SERVICES.payment);
    assert.ok(payments.length > 0);
    // Every sender is seeded with a profile (src/ledger/seed.ts): every payment span carries it.
    const unannotated = payments.filter((s) => s.meta[DETAIL_TAGS.userSegment] === undefined || s.meta[DETAIL_TAGS.kycLevel] === undefined || s.metrics[DETAIL_TAGS.userTenureDays] === undefined);
    assert.deepEqual(unannotated.map((s) => s.spanId), [], "payment spans without business.user_* tags");
    assert.ok(new Set(payments.map((s) => s.meta[DETAIL_TAGS.userSegment])).size >= 2, "several segments");
  });

  it("would name a payment the trace lost or got wrong, or a trace sampling dropped", async () => {
    const spans = readSpansFile(path.join(dir, "spans.jsonl"));
    const pool = new Pool({ ...PG, database, max: 1 });
    try {
      assert.deepEqual(await compareTransactions(spans, pool), []);
      const completed = spans.filter((s) => s.name === SPANS.processPayment && s.meta[TAGS.finalStatus] === "completed");
      const [lost, wrong] = completed;
      const id = (s: (typeof spans)[number]) => s.meta[TAGS.transactionId];
      const altered = spans
        .filter((s) => s !== lost)
        .map((s) => (s === wrong ? { ...s, meta: { ...s.meta, [TAGS.finalStatus]: "failed" } } : s));
      assert.deepEqual((await compareTransactions(altered, pool)).sort(), [
        `transaction ${id(lost)}: ledger completed, no payment span`,
        `transaction ${id(wrong)}: span failed, ledger completed`,
      ].sort());

      // Every payment trace was kept by the prod sampling rules; one the tracer dropped is named.
      assert.deepEqual(paymentTracesDropped(spans), []);
      const root = spans.find((s) => s.service === SERVICES.payment && s.parentId === "0" && s.traceId === lost.traceId)!;
      const rejected = spans.map((s) => (s === root ? { ...s, metrics: { ...s.metrics, _sampling_priority_v1: 0 } } : s));
      assert.deepEqual(paymentTracesDropped(rejected), [
        `sampling: 1 payment trace(s) not kept (priority 0 on trace ${lost.traceId}): Datadog would not show them`,
      ]);

      const ledger = await ledgerCounts(pool);
      const report = reportOfCapture(altered, "altered", "prod");
      const outcomes = report.paymentFlow.outcomes;
      // What the client was answered: the run's own counts (one payment span fewer failed than the altered capture says).
      const answered = { completed: ledger.completed, declined: ledger.declined, held: ledger.held, failed: outcomes.failed - 1, retryable: outcomes.retryable ?? 0, refused: 0, no_answer: 0 };
      assert.deepEqual(compareCounts(report, ledger, answered), [
        `completed: report ${ledger.completed - 2}, ledger ${ledger.completed}`,
        `completed: report ${ledger.completed - 2}, client ${ledger.completed}`,
        `failed: report ${outcomes.failed}, client ${outcomes.failed - 1}`,
      ]);
    } finally {
      await pool.end();
    }
  });

  it("showed its progress with live counts (plain lines when not on a terminal)", () => {
    assert.match(run.stderr, new RegExp(`\\] +\\d+\\.\\d/${SECONDS} s +completed \\d+ +declined \\d+ +held \\d+ +failed \\d+`));
    assert.doesNotMatch(run.stderr, /\r/, "no carriage returns outside a terminal");
  });
});
