import assert from "node:assert/strict";
import { FAILURE_REASONS, HTTP_SERVER_SPAN, SERVICES, SPANS, TAGS } from "../src/tracing/conventions";
import { balanceOf, createWallet, ledgerEntriesOf, transactionsOf } from "./support/database";
import { freePort } from "./support/private-servers";
import {
  e2e,
  get,
  newKey,
  paymentWithFraudStandIn,
  postPayment,
  startPaymentService,
  type E2E,
} from "./support/e2e";
import type { RunningService } from "./support/services";
import type { CapturedSpan } from "./support/trace-intake";
import { onlySpan, tagged, waitForTrace } from "./support/traces";

const VALID_CARD = { number: "4539148803436467", cvv: "8472", expiry: "12/39" };

function payment(sender: string, receiver: string, amount: number, extra: object = {}) {
  return { sender_id: sender, receiver_id: receiver, amount, currency: "USD", payment_method_type: "wallet", ...extra };
}

function assertErrorTags(span: CapturedSpan, type: string): void {
  assert.equal(span.error, 1, `${span.name} is an error`);
  assert.equal(span.meta["error.type"], type, `${span.name} error.type`);
  assert.ok(span.meta["error.message"], `${span.name} error.message`);
}


describe("payment error paths", function () {
  let env: E2E;

  before(async function () {
    env = await e2e();
  });

  async function wallets(senderBalance: number | bigint, receiverBalance: number | bigint = 0, tier?: "premium") {
    return {
      sender: await createWallet(env.db.pool, "err_sender", { balance: senderBalance, tier }),
      receiver: await createWallet(env.db.pool, "err_receiver", { balance: receiverBalance }),
    };
  }

  it("declines a payment above the balance with 402 insufficient_funds, recorded on payment.validation", async function () {
    const { sender, receiver } = await wallets(1_000);
    const response = await postPayment(env.payment, payment(sender, receiver, 5_000));
    assert.equal(response.status, 402);
    assert.equal(response.body.error, FAILURE_REASONS.insufficientFunds);

    const trace = await waitForTrace(env.intake, tagged(TAGS.senderId, sender), [SERVICES.payment]);
    const paymentSpan = onlySpan(trace, SPANS.processPayment);
    assert.equal(paymentSpan.meta[TAGS.failureReason], FAILURE_REASONS.insufficientFunds);
    assert.equal(paymentSpan.meta[TAGS.finalStatus], "declined");
    assert.equal(paymentSpan.error, 0, "a business decline is not a system error");
    assertErrorTags(onlySpan(trace, SPANS.validation), "PaymentDeclined");
    assert.equal(onlySpan(trace, HTTP_SERVER_SPAN).error, 0);
    assert.ok(!trace.some((s) => s.name === "http.request"), "no fraud call for a payment that cannot be made");
    assert.equal(await balanceOf(env.db.pool, sender), 1_000n);
  });

  it("holds an unusual amount for review with 402 fraud_review, recorded on fraud.detection", async function () {
    const { sender, receiver } = await wallets(1_000_000);
    const response = await postPayment(env.payment, payment(sender, receiver, 900_000));
    assert.equal(response.status, 402);
    assert.equal(response.body.error, FAILURE_REASONS.fraudReview);

    const trace = await waitForTrace(env.intake, tagged(TAGS.senderId, sender), [SERVICES.payment, SERVICES.fraud]);
    const paymentSpan = onlySpan(trace, SPANS.processPayment);
    assert.equal(paymentSpan.meta[TAGS.failureReason], FAILURE_REASONS.fraudReview);
    assert.equal(paymentSpan.meta[TAGS.fraudAction], "review");
    assert.equal(paymentSpan.error, 0);
    assertErrorTags(onlySpan(trace, SPANS.fraudDetection, SERVICES.payment), "PaymentDeclined");
    const scored = onlySpan(trace, SPANS.fraudDetection, SERVICES.fraud);
    assert.equal(scored.meta[TAGS.fraudDecision], "review");
    assert.equal(scored.meta[TAGS.fraudRiskFactors], "unusual_amount");
    assert.equal(await balanceOf(env.db.pool, sender), 1_000_000n);
  });

  it("blocks a card payment of an unusual amount from an unseen device with 402 fraud_blocked", async function () {
    const { sender, receiver } = await wallets(1_000_000);
    const response = await postPayment(
      env.payment,
      payment(sender, receiver, 900_000, {
        payment_method_type: "card",
        card: VALID_CARD,
        device: { id: `device-${sender}`, fingerprint: "fp-3f9a" },
      }),
    );
    assert.equal(response.status, 402);
    assert.equal(response.body.error, FAILURE_REASONS.fraudBlocked);

    const trace = await waitForTrace(env.intake, tagged(TAGS.senderId, sender), [SERVICES.payment, SERVICES.fraud]);
    const paymentSpan = onlySpan(trace, SPANS.processPayment);
    assert.equal(paymentSpan.meta[TAGS.failureReason], FAILURE_REASONS.fraudBlocked);
    assert.equal(paymentSpan.meta[TAGS.fraudAction], "block");
    assertErrorTags(onlySpan(trace, SPANS.fraudDetection, SERVICES.payment), "PaymentDeclined");
    const scored = onlySpan(trace, SPANS.fraudDetection, SERVICES.fraud);
    assert.equal(scored.meta[TAGS.fraudDecision], "block");
    assert.equal(scored.meta[TAGS.fraudRiskFactors], "suspicious_device,unusual_amount");
    assert.equal(await balanceOf(env.db.pool, sender), 1_000_000n);
  });

  it("declines a credit that would overflow the receiver's balance with a permanent 422, moving nothing", async function () {
    // The credit overflows BIGINT inside the transfer statement, after the debit: the whole
    // statement rolls back, and no retry can ever succeed, so it is a decline, not a 5xx.
    const { sender, receiver } = await wallets(10_000, 9_223_372_036_854_775_000n);
    const key = newKey();
    const response = await postPayment(env.payment, payment(sender, receiver, 1_000), { "idempotency-key": key });
    assert.equal(response.status, 422);
    assert.equal(response.body.error, FAILURE_REASONS.receiverBalanceLimit);
    assert.equal(response.body.retryable, undefined, "not retryable");

    assert.equal(await balanceOf(env.db.pool, sender), 10_000n);
    assert.equal(await balanceOf(env.db.pool, receiver), 9_223_372_036_854_775_000n);
    assert.deepEqual(await ledgerEntriesOf(env.db.pool, sender), [], "no ledger entry");
    const rows = await transactionsOf(env.db.pool, sender);
    assert.deepEqual(
      rows.map((r) => [r.status, r.failure_reason, r.response_status]),
      [["declined", FAILURE_REASONS.receiverBalanceLimit, 422]],
      "only the decline, stored for replay",
    );
    const replayed = await postPayment(env.payment, payment(sender, receiver, 1_000), { "idempotency-key": key });
    assert.deepEqual(replayed, response, "a retry with the key replays the decline");

    const trace = await waitForTrace(env.intake, tagged(TAGS.senderId, sender), [SERVICES.payment, SERVICES.fraud]);
    const paymentSpan = onlySpan(trace, SPANS.processPayment);
    assert.equal(paymentSpan.meta[TAGS.failureReason], FAILURE_REASONS.receiverBalanceLimit);
    assert.equal(paymentSpan.meta[TAGS.finalStatus], "declined");
    assert.equal(paymentSpan.error, 0, "a business decline is not a system error");
    const processing = onlySpan(trace, SPANS.processing);
    assertErrorTags(processing, "PaymentDeclined");
    assert.equal(processing.meta[TAGS.failureReason], FAILURE_REASONS.receiverBalanceLimit);
    assert.equal(processing.meta["processing.rolled_back"], "true");
    const statement = trace.find((s) => s.name === "pg.query" && s.resource.startsWith("SELECT transfer_funds("));
    assert.equal(statement?.error, 1, "the transfer statement failed");
    assert.equal(onlySpan(trace, HTTP_SERVER_SPAN, SERVICES.payment).error, 0);
  });

  it("fails closed with 503 fraud_unavailable when fraud-service does not answer in time, and a retry then succeeds", async function () {
    const { standIn, payment: service } = await paymentWithFraudStandIn();
    const { sender, receiver } = await wallets(10_000);
    const key = newKey();
    standIn.behaviour = "hold";
    const response = await postPayment(service, payment(sender, receiver, 700), { "idempotency-key": key });
    standIn.release();
    assert.equal(response.status, 503);
    assert.equal(response.body.error, FAILURE_REASONS.fraudUnavailable);
    assert.equal(await balanceOf(env.db.pool, sender), 10_000n);

    const trace = await waitForTrace(env.intake, tagged(TAGS.senderId, sender), [SERVICES.payment]);
    const paymentSpan = onlySpan(trace, SPANS.processPayment);
    assert.equal(paymentSpan.meta[TAGS.failureReason], FAILURE_REASONS.fraudUnavailable);
    assertErrorTags(paymentSpan, "FraudServiceUnavailable");
    assertErrorTags(onlySpan(trace, SPANS.fraudDetection, SERVICES.payment), "FraudServiceUnavailable");
    assert.equal(onlySpan(trace, "http.request").error, 1);

    standIn.behaviour = "allow";
    const retry = await postPayment(service, payment(sender, receiver, 700), { "idempotency-key": key });
    assert.equal(retry.status, 201, "a 503 is not stored: the same key may be retried");
    assert.equal(await balanceOf(env.db.pool, sender), 9_300n);
  });

  it("fails closed with 503 fraud_unavailable when fraud-service answers 500", async function () {
    const { standIn, payment: service } = await paymentWithFraudStandIn();
    const { sender, receiver } = await wallets(10_000);
    standIn.behaviour = "fail";
    const response = await postPayment(service, payment(sender, receiver, 700));
    standIn.behaviour = "allow";
    assert.equal(response.status, 503);
    assert.equal(response.body.error, FAILURE_REASONS.fraudUnavailable);
    const trace = await waitForTrace(env.intake, tagged(TAGS.senderId, sender), [SERVICES.payment]);
    assertErrorTags(onlySpan(trace, SPANS.processPayment), "FraudServiceUnavailable");
    assert.equal(await balanceOf(env.db.pool, sender), 10_000n);
  });

  describe("with PostgreSQL unreachable", function () {
    let service: RunningService;

    before(async function () {
      service = await startPaymentService(env, {
        PGPORT: String(await freePort()),
        PG_CONNECT_TIMEOUT_MS: "500",
        FRAUD_SERVICE_URL: env.fraud.url,
      });
    });

    after(async function () {
      await service.stop();
    });

    it("reports not ready while staying alive", async function () {
      assert.equal((await get(service, "/readyz")).status, 503);
      assert.equal((await get(service, "/healthz")).status, 200);
    });

    it("answers 503 database_unavailable and marks payment.process_payment and database.query as errors", async function () {
      const sender = `db_down_${process.pid}`;
      const response = await postPayment(service, payment(sender, "someone_else", 100));
      assert.equal(response.status, 503);
      assert.equal(response.body.error, FAILURE_REASONS.databaseUnavailable);

      const trace = await waitForTrace(env.intake, tagged(TAGS.senderId, sender), [SERVICES.payment]);
      const paymentSpan = onlySpan(trace, SPANS.processPayment);
      assert.equal(paymentSpan.meta[TAGS.failureReason], FAILURE_REASONS.databaseUnavailable);
      assert.equal(paymentSpan.error, 1);
      const query = trace.find((s) => s.name === SPANS.databaseQuery);
      assert.ok(query, "the failed statement has its database.query span");
      assert.equal(query.error, 1);
      assert.ok(query.meta["error.message"]);
      assert.equal(onlySpan(trace, HTTP_SERVER_SPAN).error, 1);
    });
  });
});
