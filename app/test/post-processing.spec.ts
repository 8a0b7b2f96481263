import assert from "node:assert/strict";
import { HEADERS } from "../src/post-processing/broker";
import { SERVICES, SPANS, TAGS, DETAIL_TAGS, HTTP_SERVER_SPAN } from "../src/tracing/conventions";
import { createWallet } from "./support/database";
import { e2e, postPayment, startPaymentService, type E2E } from "./support/e2e";
import {
  brokerChannel,
  deadLetterQueueName,
  deleteTopology,
  eventually,
  fraudHistoryOf,
  receiptCount,
  receiptsOf,
  startConsumers,
  startRelay,
  uniqueExchange,
  unpublishedCount,
} from "./support/post-processing";
import type { RunningService } from "./support/services";
import type { CapturedSpan } from "./support/trace-intake";
import { describe as describeTrace } from "./support/traces";

const PRIORITY = "_sampling_priority_v1";

describe("post-processing: the outbox relayed to RabbitMQ, receipts and fraud history", function () {
  let env: E2E;
  const exchange = uniqueExchange();
  let relay: RunningService;
  let consumers: RunningService;

  before(async function () {
    // The first spec to ask builds the app and starts the shared services.
    this.timeout(120_000);
    env = await e2e();
    [relay, consumers] = await Promise.all([
      startRelay({ env, exchange }),
      startConsumers({ env, exchange }, { CONSUMER_MAX_ATTEMPTS: "3" }),
    ]);
  });

  after(async function () {
    await Promise.all([relay?.stop(), consumers?.stop()]);
    await deleteTopology(exchange).catch(() => undefined);
  });

  const pay = (sender: string, receiver: string, extra: Record<string, unknown> = {}) =>
    postPayment(env.payment, { sender_id: sender, receiver_id: receiver, amount: 1_000, currency: "USD", payment_method_type: "wallet", ...extra });

  it("gives every completed payment exactly one receipt pair and one fraud-history update, and a declined one neither", async function () {
    const senders = await Promise.all([0, 1, 2].map(() => createWallet(env.db.pool, "pp_sender", { balance: 10_000, tier: "premium" })));
    const receiver = await createWallet(env.db.pool, "pp_receiver", { balance: 0 });
    const completed: string[] = [];
    // Two payments from the first sender, one from each of the others.
    for (const sender of [senders[0], senders[0], senders[1], senders[2]]) {
      const response = await pay(sender, receiver, { device: { id: `dev-${sender}`, fingerprint: "fp-1" } });
      assert.equal(response.status, 201, JSON.stringify(response.body));
      completed.push(String(response.body.transaction_id));
    }
    const poor = await createWallet(env.db.pool, "pp_poor", { balance: 10 });
    const declined = await pay(poor, receiver);
    assert.equal(declined.status, 402);

    await eventually(
      async () => (await receiptCount(env.db.pool, completed)) === 2 * completed.length,
      async () => `receipts ${await receiptCount(env.db.pool, completed)}\n${consumers.tail()}\n${relay.tail()}`,
    );
    const receipts = await receiptsOf(env.db.pool, completed);
    for (const id of completed) assert.deepEqual(receipts.get(id), ["receiver", "sender"], id);
    assert.equal(await unpublishedCount(env.db.pool, completed), 0, "every event is marked published");
    const { rows } = await env.db.pool.query(`SELECT count(*)::int AS n FROM receipts WHERE user_id = $1`, [poor]);
    assert.equal(rows[0].n, 0, "the declined payment has no receipt");
    const { rows: owed } = await env.db.pool.query<{ user_id: string; role: string; amount: string; counterparty_id: string }>(
      `SELECT user_id, role, amount, counterparty_id FROM receipts WHERE transaction_id = $1 ORDER BY role`,
      [completed[2]],
    );
    assert.deepEqual(owed, [
      { user_id: receiver, role: "receiver", amount: "1000", counterparty_id: senders[1] },
      { user_id: senders[1], role: "sender", amount: "1000", counterparty_id: receiver },
    ]);

    await eventually(
      async () => (await fraudHistoryOf(env.redisPrefix, senders[0])).payments === 2,
      async () => JSON.stringify(await fraudHistoryOf(env.redisPrefix, senders[0])),
    );
    assert.deepEqual(await fraudHistoryOf(env.redisPrefix, senders[0]), { payments: 2, devices: 1 });
    assert.deepEqual(await fraudHistoryOf(env.redisPrefix, senders[1]), { payments: 1, devices: 1 });
    assert.deepEqual(await fraudHistoryOf(env.redisPrefix, poor), { payments: 0, devices: 0 }, "a declined payment teaches nothing");
  });

  it("continues the payment's trace through the relay and both consumers, with measured spans and the lag", async function () {
    const sender = await createWallet(env.db.pool, "pp_trace_sender", { balance: 10_000 });
    const receiver = await createWallet(env.db.pool, "pp_trace_receiver", { balance: 0 });
    const response = await pay(sender, receiver);
    assert.equal(response.status, 201);
    const transactionId = String(response.body.transaction_id);
    const processing = (await env.intake.waitForSpans((spans) =>
      spans.some((s) => s.name === SPANS.processing && s.meta["processing.transaction_id"] === transactionId),
    )).find((s) => s.name === SPANS.processing && s.meta["processing.transaction_id"] === transactionId)!;
    const inTrace = (spans: CapturedSpan[]) => spans.filter((s) => s.traceId === processing.traceId);
    const post = (spans: CapturedSpan[]) => inTrace(spans).filter((s) => s.name === SPANS.postProcessing || s.name === SPANS.postProcessingLag);
    const spans = inTrace(await env.intake.waitForSpans((all) => post(all).length >= 5, 20_000));
    const trace = describeTrace(spans);

    const published = spans.filter((s) => s.name === SPANS.postProcessing && s.service === SERVICES.relay);
    assert.equal(published.length, 1, trace);
    assert.equal(published[0].parentId, processing.spanId, `the relay's publish is a child of payment.processing\n${trace}`);
    assert.equal(published[0].resource, "publish payment.completed");
    const paymentRoot = spans.find((s) => s.service === SERVICES.payment && s.parentId === "0");
    assert.ok(paymentRoot?.meta["_dd.p.tid"], trace);
    assert.equal(published[0].meta["_dd.p.tid"], paymentRoot.meta["_dd.p.tid"], "the same 128-bit trace id");
    const amqpPublish = spans.find((s) => s.service.startsWith(SERVICES.relay) && s.name === "amqp.command" && s.parentId === published[0].spanId);
    assert.ok(amqpPublish, `dd-trace's amqplib publish span under the relay's\n${trace}`);

    for (const consumer of ["receipts", "fraud-history"]) {
      const work = spans.filter((s) => s.name === SPANS.postProcessing && s.service === SERVICES.postProcessing && s.resource === consumer);
      assert.equal(work.length, 1, `${consumer}\n${trace}`);
      const deliver = spans.find((s) => s.spanId === work[0].parentId);
      assert.ok(deliver && deliver.name === "amqp.command" && deliver.parentId === amqpPublish!.spanId, `${consumer}'s work continues the publish through the message headers\n${trace}`);
      const lag = spans.filter((s) => s.name === SPANS.postProcessingLag && s.resource === consumer);
      assert.equal(lag.length, 1, `${consumer} lag span\n${trace}`);
      for (const span of [...work, ...lag]) {
        assert.equal(span.metrics["_dd.measured"], 1, `${span.name} ${consumer} is measured`);
        const lagMs = Number(span.meta[DETAIL_TAGS.postProcessingLagMs] ?? span.metrics[DETAIL_TAGS.postProcessingLagMs]);
        assert.ok(Number.isFinite(lagMs) && lagMs >= 0 && lagMs < 20_000, `lag tag ${lagMs}`);
      }
      // The lag span starts at the commit: before the relay published.
      assert.ok(lag[0].start <= published[0].start, "the lag span starts at the payment's commit");
      assert.equal(work[0].meta[DETAIL_TAGS.duplicateEvent], "false");
    }
    assert.equal(published[0].metrics["_dd.measured"], 1);
  });

  it("keeps a trace dropped by sampling at the payment dropped in the relay and the consumers", async function () {
    // A payment-service whose rules drop every trace, on the same database and intake.
    const dropping = await startPaymentService(env, {
      FRAUD_SERVICE_URL: env.fraud.url,
      DD_TRACE_SAMPLE_RATE: "0",
      DD_TRACE_SAMPLING_RULES: JSON.stringify([{ sample_rate: 0 }]),
    });
    try {
      const sender = await createWallet(env.db.pool, "pp_dropped_sender", { balance: 10_000 });
      const receiver = await createWallet(env.db.pool, "pp_dropped_receiver", { balance: 0 });
      const response = await postPayment(dropping, { sender_id: sender, receiver_id: receiver, amount: 500, currency: "USD", payment_method_type: "wallet" });
      assert.equal(response.status, 201);
      const transactionId = String(response.body.transaction_id);
      const spans = await env.intake.waitForSpans((all) => {
        const root = all.find((s) => s.name === HTTP_SERVER_SPAN && s.service === SERVICES.payment && s.meta[TAGS.transactionId] === transactionId);
        const processing = all.find((s) => s.name === SPANS.processing && s.meta["processing.transaction_id"] === transactionId);
        const traceId = processing?.traceId;
        return Boolean(root || processing) && all.filter((s) => s.traceId === traceId && s.name === SPANS.postProcessing).length >= 3;
      }, 20_000);
      const processing = spans.find((s) => s.name === SPANS.processing && s.meta["processing.transaction_id"] === transactionId)!;
      const trace = spans.filter((s) => s.traceId === processing.traceId);
      const priorities = (filter: (s: CapturedSpan) => boolean) =>
        trace.filter(filter).map((s) => s.metrics[PRIORITY]).filter((p) => p !== undefined);
      const atPayment = priorities((s) => s.service === SERVICES.payment && s.parentId === "0");
      assert.ok(atPayment.length > 0 && atPayment.every((p) => p <= 0), `dropped at the payment: ${atPayment}`);
      const downstream = priorities((s) => s.service === SERVICES.relay || s.service === SERVICES.postProcessing);
      assert.ok(downstream.length >= 2, describeTrace(trace));
      assert.ok(downstream.every((p) => p <= 0), `downstream priorities ${downstream}`);
    } finally {
      await dropping.stop();
    }
  });

  it("dead-letters a malformed event at once, with the reason, and changes nothing", async function () {
    const { channel, close } = await brokerChannel();
    try {
      const bad = [
        { id: "m1", body: Buffer.from("{not json") },
        { id: "m2", body: Buffer.from(JSON.stringify({ id: "7", type: "payment.completed", occurred_at: new Date().toISOString(), payload: { amount: 5 } })) },
      ];
      for (const m of bad) {
        await new Promise<void>((resolve, reject) =>
          channel.publish(exchange, "payment.completed", m.body, { messageId: m.id, persistent: true }, (e) => (e ? reject(e) : resolve())),
        );
      }
      for (const consumer of ["receipts", "fraud-history"] as const) {
        const dlq = deadLetterQueueName(exchange, consumer);
        const got: Array<{ id: string; reason: string; attempts: unknown; consumer: unknown }> = [];
        await eventually(
          async () => {
            const message = await channel.get(dlq, { noAck: true });
            if (message) {
              const headers = message.properties.headers ?? {};
              got.push({ id: String(message.properties.messageId), reason: String(headers[HEADERS.deadLetterReason]), attempts: headers[HEADERS.attempts], consumer: headers[HEADERS.consumer] });
            }
            return got.length >= 2;
          },
          () => `${consumer}: ${JSON.stringify(got)}`,
        );
        const byId = Object.fromEntries(got.map((g) => [g.id, g]));
        assert.equal(byId.m1.reason, "malformed: body is not JSON");
        assert.match(byId.m2.reason, /^malformed: .*payload\.transaction_id/);
        assert.match(byId.m2.reason, /payload\.sender_id/);
        assert.equal(byId.m1.attempts, 1, "no retry for a message that cannot parse");
        assert.equal(byId.m1.consumer, consumer);
      }
      const logged = consumers.logs.filter((l) => l.msg === "message dead-lettered");
      assert.ok(logged.length >= 4, consumers.tail());
    } finally {
      await close();
    }
  });

  it("dead-letters an event its handler keeps failing on after a bounded number of attempts", async function () {
    const { channel, close } = await brokerChannel();
    try {
      // Parses (ISO 8601 has a year 0), but PostgreSQL has no year 0: the receipt insert fails every time.
      const event = {
        id: "900000001",
        type: "payment.completed",
        occurred_at: "0000-01-01T00:00:00Z",
        payload: { transaction_id: "5b0c6f43-1f0a-4c8e-9d55-5a1c1b0f6a11", sender_id: `year0_${process.pid}`, receiver_id: "r", amount: 100, currency: "USD" },
      };
      await new Promise<void>((resolve, reject) =>
        channel.publish(exchange, "payment.completed", Buffer.from(JSON.stringify(event)), { messageId: event.id, persistent: true }, (e) => (e ? reject(e) : resolve())),
      );
      const dlq = deadLetterQueueName(exchange, "receipts");
      let dead: { reason: string; attempts: unknown } | undefined;
      await eventually(
        async () => {
          const message = await channel.get(dlq, { noAck: true });
          if (message && message.properties.messageId === event.id) {
            const h = message.properties.headers ?? {};
            dead = { reason: String(h[HEADERS.deadLetterReason]), attempts: h[HEADERS.attempts] };
          }
          return dead !== undefined;
        },
        () => consumers.tail(),
      );
      assert.equal(dead!.attempts, 3, "CONSUMER_MAX_ATTEMPTS");
      assert.match(dead!.reason, /^failed 3 times: date\/time field value out of range/);
      const retried = consumers.logs.filter((l) => l.msg === "event failed, retrying" && l.event_id === event.id);
      assert.equal(retried.length, 2);
    } finally {
      await close();
    }
  });

  it("learns from completed payments only: a held attempt retried with a new key is still held", async function () {
    const sender = await createWallet(env.db.pool, "pp_fraud_sender", { balance: 1_000_000 });
    const receiver = await createWallet(env.db.pool, "pp_fraud_receiver", { balance: 0 });
    const device = { id: `phone-${process.pid}`, fingerprint: "fp-held" };
    const card = { number: "4111111111111111", cvv: "123", expiry: "12/39" };
    const byCard = { payment_method_type: "card", card, device };

    const first = await pay(sender, receiver, byCard);
    assert.equal(first.status, 402, JSON.stringify(first.body));
    assert.equal(first.body.error, "fraud_review", "an unseen device paying by card is held");
    // The same request with a new key: the held attempt did not make the device known.
    const retried = await pay(sender, receiver, byCard);
    assert.equal(retried.status, 402, JSON.stringify(retried.body));
    assert.equal(retried.body.error, "fraud_review");
    assert.deepEqual(await fraudHistoryOf(env.redisPrefix, sender), { payments: 0, devices: 0 });

    // A completed wallet payment from that device teaches it…
    const wallet = await pay(sender, receiver, { device });
    assert.equal(wallet.status, 201, JSON.stringify(wallet.body));
    await eventually(
      async () => (await fraudHistoryOf(env.redisPrefix, sender)).devices === 1,
      () => consumers.tail(),
    );
    // …so the card payment from it now passes.
    const known = await pay(sender, receiver, byCard);
    assert.equal(known.status, 201, JSON.stringify(known.body));
  });
});
