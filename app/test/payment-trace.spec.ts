import assert from "node:assert/strict";
import {
  FLOWS,
  HTTP_SERVER_SPAN,
  MEASURED_SPANS,
  ROUTES,
  SERVICES,
  SPANS,
  TAGS,
} from "../src/tracing/conventions";
import { createWallet } from "./support/database";
import { e2e, paymentWithFraudStandIn, postPayment, type E2E } from "./support/e2e";
import type { CapturedSpan } from "./support/trace-intake";
import { childrenOf, describe as describeTrace, isRoot, onlySpan, tagged, waitForTrace } from "./support/traces";

/** The 128-bit trace id as logs and `traceparent` write it: 32 hex digits (the upper half is tagged on the root). */
function traceIdHex(span: CapturedSpan): string {
  return (span.meta["_dd.p.tid"] ?? "0".repeat(16)) + BigInt(span.traceId).toString(16).padStart(16, "0");
}

describe("a payment's trace", function () {
  let env: E2E;
  let trace: CapturedSpan[];
  let transactionId: string;

  before(async function () {
    env = await e2e();
    const sender = await createWallet(env.db.pool, "trace_sender", { balance: 100_000, country: "US" });
    const receiver = await createWallet(env.db.pool, "trace_receiver", { balance: 0, country: "GB" });
    const response = await postPayment(env.payment, {
      sender_id: sender,
      receiver_id: receiver,
      amount: 2_500,
      currency: "USD",
      payment_method_type: "wallet",
    });
    assert.equal(response.status, 201, JSON.stringify(response.body));
    transactionId = String(response.body.transaction_id);
    trace = await waitForTrace(env.intake, tagged(TAGS.transactionId, transactionId), [SERVICES.payment, SERVICES.fraud]);
  });

  it("is one trace from the payment-service root through fraud-service, with each step under its parent", function () {
    const child = (parent: CapturedSpan, name: string, service: string = SERVICES.payment) => {
      const found = childrenOf(trace, parent).filter((s) => s.name === name && s.service.startsWith(service));
      assert.ok(found.length > 0, `${name} under ${parent.name}:\n${describeTrace(trace)}`);
      return found;
    };

    const root = onlySpan(trace, HTTP_SERVER_SPAN, SERVICES.payment);
    assert.ok(isRoot(root), "payment-service's fastify.request is the trace root");
    assert.equal(root.resource, `POST ${ROUTES.payments}`);

    const payment = child(root, SPANS.processPayment)[0];
    const validation = child(payment, SPANS.validation)[0];
    const [loadWallets] = child(validation, SPANS.databaseQuery);
    assert.equal(loadWallets.resource, "load_wallets");
    const [walletQuery] = child(loadWallets, "pg.query", `${SERVICES.payment}-postgres`);
    assert.match(walletQuery.resource, /FROM wallets w LEFT JOIN user_profiles p .* WHERE w\.currency = \$1/s);
    assert.equal(child(root, SPANS.userAuthentication).length, 1, "the caller's token, verified under the root");

    const fraudCall = child(payment, SPANS.fraudDetection)[0];
    const [httpClient] = child(fraudCall, "http.request");
    assert.equal(httpClient.meta["span.kind"], "client");

    const fraudRoot = onlySpan(trace, HTTP_SERVER_SPAN, SERVICES.fraud);
    assert.equal(fraudRoot.parentId, httpClient.spanId, "fraud-service's root continues the payment-service client span");
    assert.equal(fraudRoot.meta[TAGS.flow], FLOWS.fraudScore);
    assert.equal(child(fraudRoot, SPANS.serviceAuthentication, SERVICES.fraud).length, 1, "payment-service's token, verified");
    const detection = child(fraudRoot, SPANS.fraudDetection, SERVICES.fraud)[0];
    const scoring = child(detection, SPANS.riskScoring, SERVICES.fraud)[0];
    const redis = child(scoring, "redis.command", `${SERVICES.fraud}-redis`);
    assert.deepEqual(redis.map((s) => s.resource), ["evalsha"], "the history read is one script call");

    const processing = child(payment, SPANS.processing)[0];
    const [transfer] = child(processing, SPANS.databaseQuery);
    assert.equal(transfer.resource, "transfer_funds");
    const statements = child(transfer, "pg.query", `${SERVICES.payment}-postgres`).map((s) => s.resource);
    assert.equal(statements.length, 1, "the transfer is one round trip");
    assert.match(statements[0], /^SELECT transfer_funds\(/);

    assert.equal(fraudRoot.meta["_dd.p.tid"], root.meta["_dd.p.tid"], "both halves share the 128-bit trace id");
  });

  it("labels the root span with the flow and the customer tier for the sampling rules", function () {
    const root = onlySpan(trace, HTTP_SERVER_SPAN, SERVICES.payment);
    assert.equal(root.meta[TAGS.flow], FLOWS.payment);
    assert.equal(root.meta[TAGS.customerTier], "standard");
    assert.equal(root.meta[TAGS.rootTier], "standard", "the key the tier sampling rules match");
  });

  it("carries the payment's business tags on payment.process_payment", function () {
    const payment = onlySpan(trace, SPANS.processPayment);
    assert.equal(payment.meta[TAGS.transactionId], transactionId);
    assert.equal(payment.metrics[TAGS.amount], 2_500);
    assert.equal(payment.meta[TAGS.currency], "USD");
    assert.equal(payment.meta[TAGS.paymentMethod], "wallet");
    assert.equal(payment.meta[TAGS.customerTier], "standard");
    assert.equal(payment.meta[TAGS.crossBorder], "true");
    assert.equal(payment.meta[TAGS.fraudAction], "allow");
    assert.equal(payment.meta[TAGS.finalStatus], "completed");
    assert.equal(typeof payment.metrics[TAGS.fraudRiskScore], "number");
    assert.equal(payment.error, 0);
    const decision = onlySpan(trace, SPANS.fraudDetection, SERVICES.fraud);
    assert.equal(decision.meta[TAGS.fraudDecision], "allow");
    assert.equal(decision.meta[TAGS.fraudDegraded], "false");
  });

  it("puts env, version and the global tags of DD_TAGS on every span", function () {
    for (const service of [SERVICES.payment, SERVICES.fraud]) {
      const rendered = env.rendered[service];
      const globalTags = rendered.DD_TAGS.split(/[,\s]+/).filter(Boolean).map((t) => t.split(":"));
      assert.ok(globalTags.length >= 3, `DD_TAGS of ${service}: ${rendered.DD_TAGS}`);
      const spans = trace.filter((s) => s.service.startsWith(service));
      assert.ok(spans.length > 3);
      for (const span of spans) {
        const where = `${span.service} ${span.name}`;
        assert.equal(span.meta.env, rendered.DD_ENV, where);
        assert.equal(span.meta.version, rendered.DD_VERSION, where);
        for (const [key, value] of globalTags) assert.equal(span.meta[key], value, `${where} ${key}`);
      }
    }
    assert.deepEqual(
      ["cluster", "region", "deployment"].filter((k) => trace.some((s) => s.meta[k] === undefined)),
      [],
    );
  });

  it("marks every span the monitors query as measured", function () {
    // The post-processing spans come later, from the relay and the consumers: post-processing.spec.ts.
    const inRequest = MEASURED_SPANS.filter((name) => name !== SPANS.postProcessing && name !== SPANS.postProcessingLag);
    for (const name of inRequest) {
      const spans = trace.filter((s) => s.name === name);
      assert.ok(spans.length > 0, `${name} in the trace`);
      for (const span of spans) assert.equal(span.metrics["_dd.measured"], 1, `${span.service} ${name}`);
    }
  });

  it("writes log lines that carry the trace id and a span id of the trace", async function () {
    const spanIds = new Set(trace.map((s) => s.spanId));
    const traceId = traceIdHex(onlySpan(trace, HTTP_SERVER_SPAN, SERVICES.payment));
    for (const service of [env.payment, env.fraud]) {
      const line = await service.waitForLog((l) => l.dd?.trace_id === traceId);
      assert.ok(spanIds.has(String(line.dd?.span_id)), `${service.service} log span id ${line.dd?.span_id}`);
      assert.equal(line.dd?.service, service.service);
    }
  });

  it("sends Datadog and W3C trace context to fraud-service", async function () {
    const { standIn, payment } = await paymentWithFraudStandIn();
    standIn.behaviour = "allow";
    const before = standIn.requests.length;
    const sender = await createWallet(env.db.pool, "headers_sender", { balance: 10_000 });
    const receiver = await createWallet(env.db.pool, "headers_receiver", { balance: 0 });
    const response = await postPayment(payment, {
      sender_id: sender,
      receiver_id: receiver,
      amount: 100,
      currency: "USD",
      payment_method_type: "wallet",
    });
    assert.equal(response.status, 201, JSON.stringify(response.body));
    const [request] = (await standIn.waitForRequests(before + 1)).slice(before);
    const sent = await waitForTrace(env.intake, tagged(TAGS.senderId, sender), [SERVICES.payment]);
    const client = onlySpan(sent, "http.request", SERVICES.payment);

    const h = request.headers;
    assert.equal(h["x-datadog-trace-id"], client.traceId);
    assert.equal(h["x-datadog-parent-id"], client.spanId);
    assert.equal(h["x-datadog-sampling-priority"], "2");
    const root = onlySpan(sent, HTTP_SERVER_SPAN, SERVICES.payment);
    assert.equal(h.traceparent, `00-${traceIdHex(root)}-${BigInt(client.spanId).toString(16).padStart(16, "0")}-01`);
    assert.match(String(h.tracestate), /(^|,)dd=/);
  });

  it("names the database and cache spans after the service that calls them: the program renders no DD_SERVICE_MAPPING", function () {
    for (const service of [SERVICES.payment, SERVICES.fraud]) assert.equal(env.rendered[service].DD_SERVICE_MAPPING, undefined, service);
    const services = (name: string) => [...new Set(trace.filter((s) => s.name === name).map((s) => s.service))];
    assert.deepEqual(services("pg.query"), ["payment-service-postgres"]);
    assert.deepEqual(services("redis.command"), ["fraud-service-redis"]);
  });
});
