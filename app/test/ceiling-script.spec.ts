/**
 * The benchmark's ceiling (bench/ledger-transfer.pgbench.sql, run by pgbench) must be the
 * payment's own database work: if the ledger changes and the script does not, the ceiling
 * measures something else. Runs the script for a few transactions and checks what they
 * wrote against what payment-service writes for a payment.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";
import { createTestDatabase, PG, type TestDatabase } from "./support/database";

const SCRIPT = path.join(__dirname, "..", "..", "bench", "ledger-transfer.pgbench.sql");
const TRANSFERS = 20;
const WALLETS = 3;
const OPENING_BALANCE = 1_000_000n;

describe("the benchmark's ceiling script", function () {
  let db: TestDatabase;

  before(async function () {
    db = await createTestDatabase(`ceiling_${process.pid}`);
    await db.pool.query(
      `INSERT INTO wallets (user_id, currency, balance, customer_tier, country)
       SELECT 'bench_' || i, 'USD', $2, 'enterprise', 'US' FROM generate_series(1, $1::int) AS i`,
      [WALLETS, String(OPENING_BALANCE)],
    );
  });

  after(async function () {
    await db?.drop();
  });

  it("makes complete transfers through the ledger's transfer_funds, as payment-service does", async function () {
    const { stdout } = await promisify(execFile)("pgbench", [
      "--no-vacuum",
      "--protocol=extended",
      "--client=1",
      `--transactions=${TRANSFERS}`,
      `--define=nwallets=${WALLETS}`,
      `--file=${SCRIPT}`,
      `--host=${PG.host}`,
      `--port=${PG.port}`,
      `--username=${PG.user}`,
      db.name,
    ]);
    assert.match(stdout, new RegExp(`number of transactions actually processed: ${TRANSFERS}/${TRANSFERS}`), stdout);

    const { rows } = await db.pool.query<{ status: string; response_status: number; entries: string; events: string }>(
      `SELECT t.status, t.response_status,
              (SELECT count(*) FROM ledger_entries e WHERE e.transaction_id = t.id)::text AS entries,
              (SELECT count(*) FROM outbox o WHERE o.aggregate_id = t.id AND o.event_type = 'payment.completed')::text AS events
         FROM transactions t`,
    );
    assert.equal(rows.length, TRANSFERS);
    for (const row of rows) assert.deepEqual(row, { status: "completed", response_status: 201, entries: "2", events: "1" });

    const { rows: totals } = await db.pool.query<{ total: string; debits: string; credits: string }>(
      `SELECT (SELECT sum(balance) FROM wallets)::text AS total,
              (SELECT sum(amount) FROM ledger_entries WHERE direction = 'debit')::text AS debits,
              (SELECT sum(amount) FROM ledger_entries WHERE direction = 'credit')::text AS credits`,
    );
    assert.equal(BigInt(totals[0].total), OPENING_BALANCE * BigInt(WALLETS), "money neither created nor lost");
    assert.equal(totals[0].debits, totals[0].credits);
  });
});
