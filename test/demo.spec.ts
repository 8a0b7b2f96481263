/**
 * `npm run demo`, shortened: both services on the prod env, the payment mix, the analysis
 * of the captured spans, and the report's counts held against the ledger read here.
 */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { PassThrough } from "node:stream";
import { Client } from "pg";
import { readSpansFile } from "../analytics/spans-file";
import { PG } from "../app/test/support/database";
import { runDemo } from "../scripts/demo";

describe("npm run demo (scripts/demo.ts)", function () {
  this.timeout(240_000);
  const database = `payments_demo_${process.pid}`;
  let dir: string;

  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "demo-"));
  });
  after(async () => {
    fs.rmSync(dir, { recursive: true, force: true });
    const admin = new Client({ ...PG, database: "postgres" });
    await admin.connect();
    await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
    await admin.end();
  });

  it("makes completed, declined, held and failed payments and reports counts equal to the ledger's and the client's", async () => {
    const progress = new PassThrough();
    let progressText = "";
    progress.on("data", (c: Buffer) => (progressText += c.toString()));
    const printed: string[] = [];
    const result = await runDemo({ seconds: 10, outDir: dir, database, redisPrefix: `demo:${process.pid}:`, progress, print: (t) => printed.push(t) });

    assert.deepEqual(result.mismatches, []);
    for (const outcome of ["completed", "declined", "held", "failed"] as const) {
      assert.ok(result.answered[outcome] > 0, `some ${outcome} payments: ${JSON.stringify(result.answered)}`);
    }
    assert.equal(result.answered.other, 0);

    // The ledger, read here: every stored row is one payment of the report.
    const client = new Client({ ...PG, database });
    await client.connect();
    const { rows } = await client.query<{ status: string; reason: string | null; n: number }>(
      `SELECT status, failure_reason AS reason, count(*)::int AS n FROM transactions GROUP BY 1, 2`,
    );
    await client.end();
    const sum = (pred: (r: { status: string; reason: string | null }) => boolean) => rows.filter(pred).reduce((n, r) => n + r.n, 0);
    const outcomes = result.report.paymentFlow.outcomes;
    assert.equal(outcomes.completed, sum((r) => r.status === "completed"));
    assert.equal(outcomes.held, sum((r) => r.status === "declined" && r.reason === "fraud_review"));
    assert.equal(outcomes.declined, sum((r) => r.status === "declined" && r.reason !== "fraud_review"));
    assert.equal(sum((r) => r.status === "pending"), 0, "no payment left half-made");
    assert.equal(outcomes.failed, result.answered.failed, "failed payments write nothing: only the client saw them");
    assert.equal(result.report.paymentFlow.count, Object.values(result.answered).reduce((a, b) => a + b, 0));
    assert.ok(result.report.paymentFlow.errors >= outcomes.failed, "each failed payment is an error span");

    assert.ok(readSpansFile(result.spansFile).length > result.report.paymentFlow.count * 5, "the whole traces were captured");
    assert.match(fs.readFileSync(result.htmlFile, "utf8"), /id="waterfall"/);
    assert.ok(result.report.slowestTrace!.services.includes("fraud-service"));
    assert.match(printed.join("\n"), /Report, ledger and client answers agree\./);
    assert.match(progressText, /\] +\d+\.\d\/10 s +completed \d+ +declined \d+ +held \d+ +failed \d+/);
  });
});
