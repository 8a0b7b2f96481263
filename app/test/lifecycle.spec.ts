import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { SERVICES, SPANS, TAGS } from "../src/tracing/conventions";
import { balanceOf, createWallet, transactionsOf } from "./support/database";
import {
  e2e,
  get,
  newKey,
  paymentServiceTokenFile,
  postPayment,
  startFraudService,
  startPaymentService,
  type E2E,
} from "./support/e2e";
import { FraudStandIn } from "./support/fraud-stand-in";
import { identity } from "./support/identity";
import { freePort } from "./support/private-servers";
import { renderedEnv, runToExit, testEnv, type RunningService } from "./support/services";
import { TraceIntake } from "./support/trace-intake";
import { onlySpan, tagged, waitForTrace } from "./support/traces";


describe("service lifecycle", function () {
  let env: E2E;

  before(async function () {
    env = await e2e();
  });

  it("answers the liveness and readiness probes of both services", async function () {
    for (const service of [env.payment, env.fraud]) {
      assert.deepEqual(await get(service, "/healthz"), { status: 200, body: { status: "ok" } });
      assert.deepEqual(await get(service, "/readyz"), { status: 200, body: { status: "ready" } });
    }
  });

  it("refuses to start on a bad variable and names it", async function () {
    const base = testEnv(await renderedEnv(SERVICES.payment), env.intake.url, env.db.env);
    const [badTimeout, noFraudUrl] = await Promise.all([
      runToExit(SERVICES.payment, { ...base, FRAUD_SERVICE_URL: "http://127.0.0.1:9", FRAUD_TIMEOUT_MS: "soon" }),
      runToExit(SERVICES.payment, Object.fromEntries(Object.entries(base).filter(([k]) => k !== "FRAUD_SERVICE_URL"))),
    ]);
    assert.equal(badTimeout.code, 1);
    assert.match(badTimeout.output, /invalid environment: FRAUD_TIMEOUT_MS/);
    assert.equal(noFraudUrl.code, 1);
    assert.match(noFraudUrl.output, /invalid environment: FRAUD_SERVICE_URL/);
  });

  describe("fraud-service with Redis down", function () {
    let fraud: RunningService;

    before(async function () {
      fraud = await startFraudService(env, { REDIS_URL: `redis://127.0.0.1:${await freePort()}` });
    });

    after(async function () {
      await fraud.stop();
    });

    it("reports not ready", async function () {
      assert.equal((await get(fraud, "/readyz")).status, 503);
      assert.equal((await get(fraud, "/healthz")).status, 200);
    });

    it("holds payments for review and tags the scoring fraud.degraded=true", async function () {
      const transactionId = randomUUID();
      const token = readFileSync((await paymentServiceTokenFile(env.rendered)).path, "utf8");
      const response = await fetch(`${fraud.url}/v1/score`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
        body: JSON.stringify({
          transaction_id: transactionId,
          sender_id: "degraded_sender",
          receiver_id: "degraded_receiver",
          amount: 100,
          currency: "USD",
          payment_method_type: "wallet",
        }),
      });
      assert.equal(response.status, 200);
      const score = (await response.json()) as Record<string, unknown>;
      assert.equal(score.decision, "review");
      assert.equal(score.degraded, true);

      const trace = await waitForTrace(env.intake, tagged("fraud.transaction_id", transactionId), [SERVICES.fraud]);
      const scoring = onlySpan(trace, SPANS.riskScoring);
      assert.equal(scoring.meta[TAGS.fraudDegraded], "true");
      assert.equal(scoring.error, 0, "a degraded score is an answer, not an error");
      const detection = onlySpan(trace, SPANS.fraudDetection);
      assert.equal(detection.meta[TAGS.fraudDegraded], "true");
      assert.equal(detection.meta[TAGS.fraudDecision], "review");
    });
  });

  it("on SIGTERM finishes the request in flight, sends the buffered spans and exits 0", async function () {
    const standIn = await FraudStandIn.start();
    try {
      const service = await startPaymentService(env, {
        FRAUD_SERVICE_URL: standIn.url,
        FRAUD_TIMEOUT_MS: "5000",
        // Spans would wait a minute: only the shutdown flush can deliver them in time.
        DD_TRACE_FLUSH_INTERVAL: "60000",
      });
      const sender = await createWallet(env.db.pool, "shutdown_sender", { balance: 10_000 });
      const receiver = await createWallet(env.db.pool, "shutdown_receiver", { balance: 0 });
      const body = { sender_id: sender, receiver_id: receiver, amount: 300, currency: "USD", payment_method_type: "wallet" };

      assert.equal((await postPayment(service, body)).status, 201, "a payment completed before the signal");
      standIn.behaviour = "hold";
      const inFlight = postPayment(service, body);
      await standIn.waitForRequests(2);

      service.child.kill("SIGTERM");
      await service.waitForLog((l) => l.msg === "shutting down");
      await assert.rejects(fetch(`${service.url}/healthz`), "no new connections once stopping");

      standIn.release();
      assert.equal((await inFlight).status, 201, "the request in flight completed");
      assert.equal(await service.exited, 0);

      const traces = await env.intake.waitForSpans(
        (spans) => spans.filter((s) => s.name === SPANS.processPayment && s.meta[TAGS.senderId] === sender).length === 2,
      );
      const payments = traces.filter((s) => s.name === SPANS.processPayment && s.meta[TAGS.senderId] === sender);
      assert.deepEqual(payments.map((s) => s.meta[TAGS.finalStatus]), ["completed", "completed"]);
    } finally {
      await standIn.close();
    }
  });

  it("on SIGTERM waits for the trace payloads already on their way to a slow Agent", async function () {
    this.timeout(60_000);
    // Each trace is sent as soon as it ends (the tests' flush interval 0) to an Agent that
    // answers 50 ms late: when the signal comes, the last payloads are sent, not buffered.
    const slowAgent = await TraceIntake.start({ traceAnswerDelayMs: 50 });
    try {
      const service = await startPaymentService({ ...env, intake: slowAgent }, { FRAUD_SERVICE_URL: env.fraud.url });
      const receiver = await createWallet(env.db.pool, "inflight_receiver", { balance: 0 });
      const senders = await Promise.all(Array.from({ length: 20 }, () => createWallet(env.db.pool, "inflight_sender", { balance: 10_000 })));
      const answers = await Promise.all(
        senders.map((sender) =>
          postPayment(service, { sender_id: sender, receiver_id: receiver, amount: 100, currency: "USD", payment_method_type: "wallet" }),
        ),
      );
      assert.deepEqual(answers.map((a) => a.status), senders.map(() => 201));

      service.child.kill("SIGTERM");
      assert.equal(await service.exited, 0);
      const abandoned = slowAgent.requests().filter((r) => r.status === "abandoned");
      assert.deepEqual(abandoned.map((r) => r.path), [], "no payload left unanswered by the exit");
      const payments = slowAgent.spans().filter((s) => s.name === SPANS.processPayment && senders.includes(s.meta[TAGS.senderId]));
      assert.deepEqual(payments.map((s) => s.meta[TAGS.senderId]).sort(), [...senders].sort(), "every payment's trace was delivered");
    } finally {
      await slowAgent.close();
    }
  });

  it("on SIGTERM lets a handler whose client already disconnected finish before closing the pool", async function () {
    this.timeout(40_000);
    const standIn = await FraudStandIn.start();
    standIn.behaviour = "hold";
    let service: RunningService | undefined;
    try {
      service = await startPaymentService(env, {
        FRAUD_SERVICE_URL: standIn.url,
        FRAUD_TIMEOUT_MS: "10000",
        SHUTDOWN_TIMEOUT_MS: "10000",
        // Must stay below the shutdown deadline (checked at start).
        HTTP_REQUEST_TIMEOUT_MS: "5000",
      });
      const sender = await createWallet(env.db.pool, "abandoned_sender", { balance: 10_000 });
      const receiver = await createWallet(env.db.pool, "abandoned_receiver", { balance: 0 });
      const body = { sender_id: sender, receiver_id: receiver, amount: 300, currency: "USD", payment_method_type: "wallet" };

      // The client gives up while the handler waits for its fraud score.
      const client = new AbortController();
      const abandoned = fetch(`${service.url}/v1/payments`, {
        method: "POST",
        headers: { "content-type": "application/json", "idempotency-key": newKey(), authorization: await (await identity()).bearer(sender) },
        body: JSON.stringify(body),
        signal: client.signal,
      });
      await standIn.waitForRequests(1);
      client.abort();
      await assert.rejects(abandoned, { name: "AbortError" });

      service.child.kill("SIGTERM");
      // Logged once the server has closed (so without the abandoned connection), pool still open.
      await service.waitForLog((l) => l.msg === "waiting for in-flight handlers" && l.handlers === 1);
      standIn.release();
      assert.equal(await service.exited, 0);

      const transactions = await transactionsOf(env.db.pool, sender);
      assert.deepEqual(transactions.map((t) => t.status), ["completed"], "the abandoned payment committed");
      assert.equal(await balanceOf(env.db.pool, sender), 9_700n);
      assert.equal(await balanceOf(env.db.pool, receiver), 300n);
      assert.deepEqual(service.logs.filter((l) => l.msg === "payment failed"), []);
    } finally {
      await service?.stop("SIGTERM", 5_000);
      await standIn.close();
    }
  });
});
