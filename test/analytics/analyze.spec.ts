import * as assert from "node:assert/strict";
import { analyzeSpans, type MonitorThresholds, type ReportSource } from "../../analytics/analyze";
import { renderHtml } from "../../analytics/html";
import { renderText } from "../../analytics/text";
import { reportOfCapture } from "../../scripts/traces-analyze";
import type { SpanRecord } from "../../analytics/spans";
import { parseSpansFile } from "../../analytics/spans-file";

const THRESHOLDS: MonitorThresholds = { paymentLatencyP95Seconds: 2, paymentErrorRate: 0.05, databaseLatencyP95Seconds: 1 };
const SOURCE: ReportSource = { kind: "spans-file", description: "test", stack: "prod", env: "prod", fromMs: null, toMs: null };
const analyze = (spans: SpanRecord[]) => analyzeSpans(spans, { source: SOURCE, thresholds: THRESHOLDS });

let nextId = 1;
function span(fields: Partial<SpanRecord> & Pick<SpanRecord, "name">): SpanRecord {
  return {
    traceId: "1",
    spanId: String(nextId++),
    parentId: "0",
    service: "payment-service",
    resource: fields.name,
    startMs: 1_000,
    durationMs: 1,
    error: false,
    meta: {},
    metrics: {},
    ...fields,
  };
}
const payment = (durationMs: number, meta: Record<string, string>, extra: Partial<SpanRecord> = {}) =>
  span({ name: "payment.process_payment", durationMs, meta, ...extra });

describe("analytics: the report (analytics/analyze.ts)", () => {
  it("counts a decline the client may retry (not stored in the ledger) as retryable, apart from held ones", () => {
    const r = analyze([
      payment(40, { "payment.final_status": "declined", "payment.failure_reason": "fraud_review" }),
      payment(45, { "payment.final_status": "declined", "payment.failure_reason": "fraud_review", "payment.retryable": "true" }),
      payment(50, { "payment.final_status": "declined", "payment.failure_reason": "fraud_blocked", "payment.retryable": "true" }),
      payment(55, { "payment.final_status": "declined", "payment.failure_reason": "insufficient_funds" }),
    ]);
    assert.deepEqual(r.paymentFlow.outcomes, { held: 1, retryable: 2, declined: 1 });
  });

  it("summarises the payment flow, its outcomes (held = declined for fraud review) and holds it against the monitors", () => {
    const spans = [
      payment(100, { "payment.final_status": "completed" }),
      payment(300, { "payment.final_status": "completed" }),
      payment(2500, { "payment.final_status": "declined", "payment.failure_reason": "insufficient_funds" }),
      payment(50, { "payment.final_status": "declined", "payment.failure_reason": "fraud_review" }),
      payment(900, { "payment.final_status": "failed", "payment.failure_reason": "fraud_unavailable", "error.type": "FraudServiceUnavailable" }, { error: true }),
    ];
    const r = analyze(spans);
    assert.equal(r.paymentFlow.count, 5);
    assert.equal(r.paymentFlow.errors, 1);
    assert.equal(r.paymentFlow.errorRate, 0.2);
    assert.equal(r.paymentFlow.p95Ms, 2500);
    assert.equal(r.paymentFlow.p50Ms, 300);
    assert.deepEqual(r.paymentFlow.outcomes, { completed: 2, declined: 1, held: 1, failed: 1 });
    const [latency, errorRate, database] = r.checks;
    assert.equal(latency.text, "p95 2.5 s, threshold 2 s");
    assert.equal(latency.breached, true);
    assert.equal(errorRate.text, "error rate 20 %, threshold 5 %");
    assert.equal(errorRate.breached, true);
    assert.equal(database.breached, null, "no database.query spans: nothing to hold against");
    assert.match(renderText(r), /payment p95\s+p95 2\.5 s, threshold 2 s: ABOVE THRESHOLD/);
  });

  it("groups error patterns by service, operation, error.type and payment.failure_reason, declines included", () => {
    const spans = [
      payment(10, { "payment.final_status": "declined", "payment.failure_reason": "insufficient_funds" }),
      payment(10, { "payment.final_status": "declined", "payment.failure_reason": "insufficient_funds" }),
      payment(10, { "payment.final_status": "completed" }),
      payment(10, { "payment.final_status": "completed" }),
      span({ name: "payment.validation", error: true, meta: { "error.type": "PaymentDeclined" } }),
      span({ name: "fraud.detection", service: "fraud-service", error: true, meta: {} }),
    ];
    const patterns = analyze(spans).errorPatterns;
    assert.deepEqual(patterns[0], { service: "payment-service", operation: "payment.process_payment", errorType: null, failureReason: "insufficient_funds", count: 2, shareOfOperation: 0.5 });
    assert.ok(patterns.some((p) => p.operation === "payment.validation" && p.errorType === "PaymentDeclined" && p.shareOfOperation === 1));
    assert.ok(patterns.some((p) => p.operation === "fraud.detection" && p.errorType === "error"), "an error span without error.type still counts");
    assert.equal(patterns.reduce((n, p) => n + p.count, 0), 4);
  });

  it("reports every span in error as the error rate when all payments fail", () => {
    const r = analyze([1, 2, 3].map((d) => payment(d, { "payment.final_status": "failed" }, { error: true })));
    assert.equal(r.paymentFlow.errorRate, 1);
    assert.equal(r.checks[1].breached, true);
  });

  it("reports no payment figures, no distribution and the slowest root's trace when there are no payment spans", () => {
    const root = span({ name: "fastify.request", durationMs: 40, traceId: "9" });
    const child = span({ name: "database.query", durationMs: 30, parentId: root.spanId, traceId: "9", startMs: 1_005 });
    const r = analyze([root, child]);
    assert.equal(r.paymentFlow.count, 0);
    assert.equal(r.paymentFlow.p95Ms, null);
    assert.equal(r.checks[0].breached, null);
    assert.equal(r.checks[0].text, "p95 –, threshold 2 s");
    assert.deepEqual(r.distribution, []);
    assert.equal(r.slowestTrace?.traceId, "9");
    assert.deepEqual(r.slowestTrace?.spans.map((s) => [s.name, s.depth, s.offsetMs]), [["fastify.request", 0, 0], ["database.query", 1, 5]]);
    assert.equal(analyze([]).slowestTrace, null);
  });

  it("lists each measured span per service, and a measured name no service sent with a count of 0", () => {
    const r = analyze([
      span({ name: "fraud.detection", service: "payment-service", durationMs: 5 }),
      span({ name: "fraud.detection", service: "fraud-service", durationMs: 3 }),
    ]);
    const fraud = r.operations.filter((o) => o.name === "fraud.detection");
    assert.deepEqual(fraud.map((o) => [o.service, o.count, o.avgMs]), [["fraud-service", 1, 3], ["payment-service", 1, 5]]);
    assert.deepEqual(r.operations.find((o) => o.name === "payment.processing"), { service: "", name: "payment.processing", ...zeroStats() });
  });

  it("draws the waterfall of the slowest payment's trace across both services, and counts a resent span once", () => {
    const slow = payment(80, { "payment.final_status": "completed" }, { traceId: "7", startMs: 1_002, parentId: "100" });
    const root = span({ name: "fastify.request", traceId: "7", spanId: "100", startMs: 1_000, durationMs: 90 });
    const fraudRoot = span({ name: "fastify.request", service: "fraud-service", traceId: "7", parentId: slow.spanId, startMs: 1_020, durationMs: 10 });
    const fast = payment(10, { "payment.final_status": "completed" }, { traceId: "8" });
    const r = analyze([root, slow, fraudRoot, fraudRoot, fast]);
    assert.equal(r.spanCount, 4);
    assert.equal(r.paymentFlow.count, 2);
    assert.equal(r.slowestTrace?.traceId, "7");
    assert.deepEqual(r.slowestTrace?.services, ["fraud-service", "payment-service"]);
    assert.deepEqual(r.slowestTrace?.spans.map((s) => [s.service, s.depth, s.offsetMs]), [["payment-service", 0, 0], ["payment-service", 1, 2], ["fraud-service", 2, 20]]);
    assert.equal(r.slowestTrace?.durationMs, 90);
  });
});

function zeroStats() {
  return { count: 0, errors: 0, errorRate: null, avgMs: null, p50Ms: null, p95Ms: null, p99Ms: null, maxMs: null };
}

describe("analytics: the capture file format (analytics/spans-file.ts)", () => {
  it("reads a line into a span with exact sub-millisecond times and names a bad line", () => {
    const line = JSON.stringify({ trace_id: "18446744073709551615", span_id: "2", parent_id: "0", service: "payment-service", name: "payment.process_payment", resource: "r", start: "1764828000123456789", duration: 1_234_567, error: 1, meta: { a: "b" }, metrics: { n: 1 } });
    const [s] = parseSpansFile(`${line}\n\n`);
    assert.equal(s.traceId, "18446744073709551615");
    assert.equal(s.startMs, 1764828000123.456);
    assert.equal(s.durationMs, 1.234567);
    assert.equal(s.error, true);
    assert.throws(() => parseSpansFile(`${line}\n{"trace_id": 5, "duration": 1}`, "f.jsonl"), /f\.jsonl:2: trace_id must be a decimal string/);
    assert.throws(() => parseSpansFile("nope", "f.jsonl"), /f\.jsonl:1: not JSON/);
  });
});

describe("analytics: a long capture (scripts/traces-analyze.ts, analytics/)", () => {
  it("reports on 200,000 payment spans, more than a call takes arguments (a long demo's capture)", function () {
    this.timeout(60_000);
    const n = 200_000;
    const spans: SpanRecord[] = [];
    for (let i = 0; i < n; i++) {
      spans.push({
        traceId: String(i + 1),
        spanId: String(i + 1),
        parentId: "0",
        service: "payment-service",
        name: "payment.process_payment",
        resource: "payment.process_payment",
        startMs: 1_000 + i,
        durationMs: 1 + (i % 997),
        error: false,
        meta: { "payment.final_status": "completed" },
        metrics: {},
      });
    }
    const r = reportOfCapture(spans, "big.jsonl", "prod");
    assert.equal(r.paymentFlow.count, n);
    assert.equal(r.paymentFlow.maxMs, 997);
    let end = 0;
    for (const s of spans) end = Math.max(end, s.startMs + s.durationMs);
    assert.deepEqual([r.source.fromMs, r.source.toMs], [1_000, end]);
    assert.equal(r.distribution.reduce((sum, b) => sum + b.count, 0), n);
    assert.equal(r.slowestOperations[0].maxMs, 997);
    assert.equal(r.slowestTrace?.durationMs, 997);
    assert.match(renderHtml(r), /id="latency-distribution"/);
  });
});
