/**
 * The performance tags are measurements of the request itself: each is bounded by the
 * spans of the same work, from inside (dd-trace's own client spans) and from outside
 * (our measured spans), and counted statements equal the statements the trace shows.
 */
import assert from "node:assert/strict";
import { PERFORMANCE_TAGS, SERVICES, SPANS, TAGS } from "../src/tracing/conventions";
import { createWallet } from "./support/database";
import { e2e, postPayment, type E2E } from "./support/e2e";
import type { CapturedSpan } from "./support/trace-intake";
import { childrenOf, onlySpan, tagged, waitForTrace } from "./support/traces";

const ms = (span: CapturedSpan) => span.duration / 1e6;
const sum = (spans: CapturedSpan[]) => spans.reduce((total, s) => total + ms(s), 0);
/** Tags are rounded to the microsecond. */
const SLACK_MS = 0.001;

describe("performance annotations (app/src/tracing/performance.ts)", function () {
  let env: E2E;

  before(async function () {
    this.timeout(120_000); // the first spec of a run builds the app and starts both services
    env = await e2e();
  });

  async function pay(balance: number, amount: number) {
    const sender = await createWallet(env.db.pool, "perf_sender", { balance, tier: "enterprise" });
    const receiver = await createWallet(env.db.pool, "perf_receiver", { balance: 0 });
    const response = await postPayment(env.payment, { sender_id: sender, receiver_id: receiver, amount, currency: "USD", payment_method_type: "wallet" });
    return { response, sender };
  }

  it("puts on payment.process_payment the statements it ran, their time and the fraud call's time, each within the spans of that work", async () => {
    const { response } = await pay(100_000, 2_500);
    assert.equal(response.status, 201, JSON.stringify(response.body));
    const trace = await waitForTrace(env.intake, tagged(TAGS.transactionId, String(response.body.transaction_id)), [SERVICES.payment, SERVICES.fraud]);
    const payment = onlySpan(trace, SPANS.processPayment, SERVICES.payment);
    const m = payment.metrics;

    const statements = trace.filter((s) => s.name === SPANS.databaseQuery && s.service === SERVICES.payment);
    assert.ok(statements.length >= 3, "lookup, wallets, transfer");
    assert.equal(m[PERFORMANCE_TAGS.dbQueryCount], statements.length);
    // Timed inside each database.query span, around the pg call that holds the pg.query span.
    const pgSpans = statements.flatMap((s) => childrenOf(trace, s)).filter((s) => s.name === "pg.query");
    assert.equal(pgSpans.length, statements.length);
    const dbMs = m[PERFORMANCE_TAGS.dbTotalTimeMs];
    assert.ok(dbMs >= sum(pgSpans) - SLACK_MS && dbMs <= sum(statements) + SLACK_MS, `db ${dbMs} ms within [${sum(pgSpans)}, ${sum(statements)}]`);

    const detection = onlySpan(trace, SPANS.fraudDetection, SERVICES.payment);
    const call = childrenOf(trace, detection).find((s) => s.name === "http.request")!;
    const fraudMs = m[PERFORMANCE_TAGS.fraudCallMs];
    assert.ok(fraudMs >= ms(call) - SLACK_MS && fraudMs <= ms(detection) + SLACK_MS, `fraud call ${fraudMs} ms within [${ms(call)}, ${ms(detection)}]`);
    assert.ok(dbMs + fraudMs <= ms(payment) + SLACK_MS, "both fit in the payment");
  });

  it("puts on fraud-service's fraud.detection the time spent in Redis, within its redis.command and fraud.risk_scoring spans", async () => {
    const { response } = await pay(100_000, 1_500);
    assert.equal(response.status, 201);
    const trace = await waitForTrace(env.intake, tagged(TAGS.transactionId, String(response.body.transaction_id)), [SERVICES.payment, SERVICES.fraud]);
    const detection = onlySpan(trace, SPANS.fraudDetection, SERVICES.fraud);
    const scoring = onlySpan(trace, SPANS.riskScoring, SERVICES.fraud);
    const redis = childrenOf(trace, scoring).filter((s) => s.name === "redis.command");
    assert.equal(redis.length, 1, "one script per payment");
    const cacheMs = detection.metrics[PERFORMANCE_TAGS.cacheTimeMs];
    assert.ok(cacheMs >= ms(redis[0]) - SLACK_MS && cacheMs <= ms(scoring) + SLACK_MS, `cache ${cacheMs} ms within [${ms(redis[0])}, ${ms(scoring)}]`);
  });

  it("counts a declined payment's statements and no fraud call", async () => {
    const { response, sender } = await pay(100, 5_000);
    assert.equal(response.status, 402);
    const trace = await waitForTrace(env.intake, tagged(TAGS.senderId, sender), [SERVICES.payment]);
    const payment = onlySpan(trace, SPANS.processPayment, SERVICES.payment);
    const statements = trace.filter((s) => s.name === SPANS.databaseQuery && s.service === SERVICES.payment);
    assert.equal(payment.metrics[PERFORMANCE_TAGS.dbQueryCount], statements.length);
    assert.deepEqual(statements.map((s) => s.resource).sort(), ["find_transaction", "load_wallets", "record_decline"]);
    assert.equal(payment.metrics[PERFORMANCE_TAGS.fraudCallMs], 0);
    assert.ok(payment.metrics[PERFORMANCE_TAGS.dbTotalTimeMs] > 0);
  });
});
