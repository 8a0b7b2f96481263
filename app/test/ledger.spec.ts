import assert from "node:assert/strict";
import { DETAIL_TAGS, FAILURE_REASONS, SERVICES, SPANS, TAGS } from "../src/tracing/conventions";
import {
  balanceOf,
  createWallet,
  ledgerEntriesOf,
  openingTotal,
  totalBalance,
  transactionsOf,
} from "./support/database";
import { e2e, newKey, postPayment, type E2E } from "./support/e2e";
import { identity } from "./support/identity";
import { onlySpan, tagged, waitForTrace } from "./support/traces";

function payment(sender: string, receiver: string, amount: number, extra: object = {}) {
  return { sender_id: sender, receiver_id: receiver, amount, currency: "USD", payment_method_type: "wallet", ...extra };
}

describe("the ledger", function () {
  let env: E2E;

  before(async function () {
    env = await e2e();
  });

  it("moves exactly the amount, with one debit, one credit and one outbox event", async function () {
    const sender = await createWallet(env.db.pool, "ledger_sender", { balance: 50_000 });
    const receiver = await createWallet(env.db.pool, "ledger_receiver", { balance: 1_000 });
    const response = await postPayment(env.payment, payment(sender, receiver, 12_345));
    assert.equal(response.status, 201);
    const id = response.body.transaction_id;
    assert.deepEqual(response.body, {
      transaction_id: id,
      status: "completed",
      amount: 12_345,
      currency: "USD",
      sender_id: sender,
      receiver_id: receiver,
    });

    assert.equal(await balanceOf(env.db.pool, sender), 37_655n);
    assert.equal(await balanceOf(env.db.pool, receiver), 13_345n);
    const [tx] = await transactionsOf(env.db.pool, sender);
    assert.equal(tx.id, id);
    assert.equal(tx.status, "completed");
    assert.equal(tx.amount, "12345");
    assert.equal(tx.response_status, 201);
    assert.deepEqual(tx.response_body, response.body);
    assert.deepEqual(
      (await ledgerEntriesOf(env.db.pool, sender)).map((e) => [e.user_id, e.direction, e.amount]),
      [
        [sender, "debit", "12345"],
        [receiver, "credit", "12345"],
      ],
    );
    const { rows: events } = await env.db.pool.query(`SELECT event_type, payload FROM outbox WHERE aggregate_id = $1`, [id]);
    assert.equal(events.length, 1);
    assert.equal(events[0].event_type, "payment.completed");
    assert.equal(events[0].payload.amount, 12_345);
  });

  it("answers a repeated Idempotency-Key with the first answer and moves the money once", async function () {
    const sender = await createWallet(env.db.pool, "replay_sender", { balance: 10_000 });
    const receiver = await createWallet(env.db.pool, "replay_receiver", { balance: 0 });
    const key = newKey();
    const first = await postPayment(env.payment, payment(sender, receiver, 4_000), { "idempotency-key": key });
    const second = await postPayment(env.payment, payment(sender, receiver, 4_000), { "idempotency-key": key });
    assert.equal(first.status, 201);
    assert.deepEqual(second, first);
    assert.equal(await balanceOf(env.db.pool, sender), 6_000n);
    assert.equal(await balanceOf(env.db.pool, receiver), 4_000n);
    assert.equal((await transactionsOf(env.db.pool, sender)).length, 1);
    assert.equal((await ledgerEntriesOf(env.db.pool, sender)).length, 2);

    const replay = await waitForTrace(
      env.intake,
      (s) => s.name === SPANS.processPayment && s.meta[DETAIL_TAGS.idempotentReplay] === "true" && s.meta[TAGS.senderId] === sender,
      [SERVICES.payment],
    );
    assert.equal(onlySpan(replay, SPANS.processPayment).meta[TAGS.transactionId], first.body.transaction_id);
    assert.ok(!replay.some((s) => s.name === SPANS.processing), "a replay does not process again");
  });

  it("moves the money once when requests with the same Idempotency-Key race", async function () {
    const sender = await createWallet(env.db.pool, "race_sender", { balance: 10_000, tier: "enterprise" });
    const receiver = await createWallet(env.db.pool, "race_receiver", { balance: 0 });
    const key = newKey();
    const answers = await Promise.all(
      Array.from({ length: 6 }, () => postPayment(env.payment, payment(sender, receiver, 2_500), { "idempotency-key": key })),
    );
    for (const answer of answers) assert.deepEqual(answer, answers[0]);
    assert.equal(answers[0].status, 201);
    assert.equal(await balanceOf(env.db.pool, sender), 7_500n);
    assert.equal(await balanceOf(env.db.pool, receiver), 2_500n);
    assert.equal((await transactionsOf(env.db.pool, sender)).length, 1);
    assert.equal((await ledgerEntriesOf(env.db.pool, sender)).length, 2);
  });

  it("never overdraws a wallet under concurrent payments", async function () {
    const sender = await createWallet(env.db.pool, "overdraw_sender", { balance: 10_000, tier: "enterprise" });
    const receivers = await Promise.all(
      Array.from({ length: 6 }, () => createWallet(env.db.pool, "overdraw_receiver", { balance: 0 })),
    );
    const answers = await Promise.all(receivers.map((r) => postPayment(env.payment, payment(sender, r, 3_000))));
    const statuses = answers.map((a) => a.status).sort();
    assert.deepEqual(statuses, [201, 201, 201, 402, 402, 402]);
    for (const declined of answers.filter((a) => a.status === 402)) {
      assert.equal(declined.body.error, FAILURE_REASONS.insufficientFunds);
    }
    assert.equal(await balanceOf(env.db.pool, sender), 1_000n);
    let credited = 0n;
    for (const r of receivers) credited += await balanceOf(env.db.pool, r);
    assert.equal(credited, 9_000n, "what left the sender arrived, no more, no less");
  });

  it("replays a decline for its key, and refuses the key for a different request with 422", async function () {
    const sender = await createWallet(env.db.pool, "decline_sender", { balance: 100 });
    const receiver = await createWallet(env.db.pool, "decline_receiver", { balance: 0 });
    const key = newKey();
    const first = await postPayment(env.payment, payment(sender, receiver, 500), { "idempotency-key": key });
    const again = await postPayment(env.payment, payment(sender, receiver, 500), { "idempotency-key": key });
    const other = await postPayment(env.payment, payment(sender, receiver, 50), { "idempotency-key": key });
    assert.equal(first.status, 402);
    assert.deepEqual(again, first);
    assert.equal(other.status, 422);
    assert.equal(other.body.error, FAILURE_REASONS.idempotencyKeyReused);
    assert.equal(await balanceOf(env.db.pool, sender), 100n, "the 50 was not paid under the reused key");
    const rows = await transactionsOf(env.db.pool, sender);
    assert.deepEqual(
      rows.map((r) => [r.status, r.failure_reason]),
      [["declined", FAILURE_REASONS.insufficientFunds]],
    );
  });

  it("answers 400 with the problems to bad requests and writes nothing", async function () {
    const sender = await createWallet(env.db.pool, "bad_sender", { balance: 10_000 });
    const receiver = await createWallet(env.db.pool, "bad_receiver", { balance: 0 });
    const good = payment(sender, receiver, 100);
    const { amount: _amount, ...withoutAmount } = good;
    const cases: Array<[string, unknown, Record<string, string | undefined>, string, string]> = [
      ["negative amount", { ...good, amount: -5 }, {}, "invalid_request", "amount"],
      ["fractional amount", { ...good, amount: 10.5 }, {}, "invalid_request", "amount"],
      ["amount above the bound", { ...good, amount: 1e12 }, {}, "invalid_request", "amount"],
      ["amount as a string", { ...good, amount: "100" }, {}, "invalid_request", "amount"],
      ["missing amount", withoutAmount, {}, "invalid_request", "amount"],
      ["unknown currency", { ...good, currency: "XXX" }, {}, "invalid_request", "currency"],
      ["unknown payment method", { ...good, payment_method_type: "cash" }, {}, "invalid_request", "payment_method_type"],
      ["card method without a card", { ...good, payment_method_type: "card" }, {}, "invalid_request", "card"],
      ["paying oneself", { ...good, receiver_id: sender }, {}, "invalid_request", "receiver_id"],
      ["an unexpected field", { ...good, note: "hi" }, {}, "invalid_request", ""],
      ["malformed JSON", "{\"sender_id\":", {}, "invalid_json", ""],
      ["no Idempotency-Key", good, { "idempotency-key": undefined }, "idempotency_key_required", "headers.idempotency-key"],
      ["a blank Idempotency-Key", good, { "idempotency-key": "  " }, "idempotency_key_required", "headers.idempotency-key"],
    ];
    for (const [name, body, headers, code, path] of cases) {
      const response = await postPayment(env.payment, body, headers);
      assert.equal(response.status, 400, name);
      assert.equal(response.body.error, code, name);
      assert.ok(Array.isArray(response.body.details), `${name}: details`);
      if (path) {
        const paths = (response.body.details as Array<{ path: string }>).map((d) => d.path);
        assert.ok(paths.includes(path), `${name}: ${JSON.stringify(paths)}`);
      }
    }
    const notJson = await fetch(`${env.payment.url}/v1/payments`, {
      method: "POST",
      headers: { "content-type": "text/plain", "idempotency-key": newKey(), authorization: await (await identity()).bearer(sender) },
      body: JSON.stringify(good),
    });
    assert.equal(notJson.status, 415);
    assert.equal(((await notJson.json()) as { error: string }).error, "unsupported_media_type");
    assert.equal(await balanceOf(env.db.pool, sender), 10_000n);
    assert.deepEqual(await transactionsOf(env.db.pool, sender), []);
  });

  it("answers 413 to an oversized body and writes nothing", async function () {
    const sender = await createWallet(env.db.pool, "big_sender", { balance: 10_000 });
    const receiver = await createWallet(env.db.pool, "big_receiver", { balance: 0 });
    const response = await postPayment(env.payment, { ...payment(sender, receiver, 100), padding: "x".repeat(64 * 1024) });
    assert.equal(response.status, 413);
    assert.equal(response.body.error, "payload_too_large");
    assert.deepEqual(await transactionsOf(env.db.pool, sender), []);
  });

  it("keeps every completed transaction balanced: debits equal credits, per transaction and overall", async function () {
    const { rows } = await env.db.pool.query<{ unbalanced: string; completed_without_entries: string; entries_without_completion: string }>(`
      SELECT
        (SELECT count(*) FROM (
           SELECT transaction_id FROM ledger_entries GROUP BY transaction_id
           HAVING sum(CASE direction WHEN 'debit' THEN amount ELSE -amount END) <> 0 OR count(*) <> 2) t) AS unbalanced,
        (SELECT count(*) FROM transactions t WHERE status = 'completed'
           AND NOT EXISTS (SELECT 1 FROM ledger_entries e WHERE e.transaction_id = t.id)) AS completed_without_entries,
        (SELECT count(*) FROM ledger_entries e JOIN transactions t ON t.id = e.transaction_id
           WHERE t.status <> 'completed') AS entries_without_completion`);
    assert.deepEqual(rows[0], { unbalanced: "0", completed_without_entries: "0", entries_without_completion: "0" });
  });

  it("neither creates nor loses money: all balances add up to the opening balances", async function () {
    assert.equal(await totalBalance(env.db.pool), openingTotal());
  });
});
