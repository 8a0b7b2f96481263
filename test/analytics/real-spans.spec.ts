/**
 * The analysis on spans the real tracer sent: payments through both services, their
 * spans captured by the local intake, written to a capture file, read back and analysed,
 * and every figure checked against a reference computed from the raw captured spans.
 */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { analyzeSpans } from "../../analytics/analyze";
import { readSpansFile } from "../../analytics/spans-file";
import { SERVICES, SPANS, TAGS } from "../../app/src/tracing/conventions";
import { createWallet } from "../../app/test/support/database";
import { e2e, postPayment, type E2E } from "../../app/test/support/e2e";
import { TraceIntake, type CapturedSpan } from "../../app/test/support/trace-intake";

/** Nearest-rank by counting, on integer nanoseconds: independent of analytics/stats.ts. */
function referencePercentileNs(values: readonly number[], p: number): number {
  return Math.min(...values.filter((v) => values.filter((x) => x <= v).length * 100 >= p * values.length));
}

describe("analytics on spans the real tracer sent", function () {
  this.timeout(60_000);
  let env: E2E;
  let dir: string;

  before(async () => {
    env = await e2e();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "analytics-"));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("computes the payment flow's count, outcomes, percentiles and error rate as the raw spans say, through a capture file", async () => {
    const senders: string[] = [];
    const statuses: number[] = [];
    const receiver = await createWallet(env.db.pool, "an_receiver", { balance: 0 });
    for (let i = 0; i < 12; i++) {
      const sender = await createWallet(env.db.pool, "an_sender", { balance: i % 4 === 3 ? 10 : 100_000 });
      senders.push(sender);
      const response = await postPayment(env.payment, { sender_id: sender, receiver_id: receiver, amount: 1_000 + i, currency: "USD", payment_method_type: "wallet" });
      statuses.push(response.status);
    }
    assert.deepEqual([statuses.filter((s) => s === 201).length, statuses.filter((s) => s === 402).length], [9, 3]);

    const ours = (trace: CapturedSpan[]) => trace.some((s) => senders.includes(s.meta[TAGS.senderId]));
    await env.intake.waitForSpans(() => {
      const traces = env.intake.traces().filter(ours);
      return traces.length === 12 && traces.every((t) => t.some((s) => s.name === "fastify.request" && s.service === SERVICES.payment));
    }, 20_000);

    // Replay the tracer's own submissions into an intake that writes a capture file.
    const file = path.join(dir, "spans.jsonl");
    const capturing = await TraceIntake.start({ captureFile: file });
    try {
      for (const request of env.intake.requests().filter((r) => /^\/v0\.[45]\/traces/.test(r.path) && r.status === 200)) {
        const answer = await fetch(`${capturing.url}${request.path}`, { method: request.method, headers: { "content-type": "application/msgpack" }, body: request.body });
        assert.equal(answer.status, 200);
      }
    } finally {
      await capturing.close();
    }
    const fromFile = readSpansFile(file);
    const ourTraceIds = new Set(env.intake.traces().filter(ours).map((t) => t[0].traceId));
    const report = analyzeSpans(
      fromFile.filter((s) => ourTraceIds.has(s.traceId)),
      { source: { kind: "spans-file", description: file, stack: "prod", env: "prod", fromMs: null, toMs: null }, thresholds: { paymentLatencyP95Seconds: 2, paymentErrorRate: 0.05, databaseLatencyP95Seconds: 1 } },
    );

    const raw = env.intake.traces().filter(ours).flat().filter((s) => s.name === SPANS.processPayment && s.service === SERVICES.payment);
    assert.equal(raw.length, 12);
    const ns = raw.map((s) => s.duration);
    assert.equal(report.paymentFlow.count, 12);
    assert.deepEqual(report.paymentFlow.outcomes, { completed: 9, declined: 3 });
    assert.equal(report.paymentFlow.errors, raw.filter((s) => s.error === 1).length);
    assert.equal(report.paymentFlow.errorRate, 0);
    for (const [p, got] of [[50, report.paymentFlow.p50Ms], [95, report.paymentFlow.p95Ms], [99, report.paymentFlow.p99Ms]] as const) {
      assert.equal(got, referencePercentileNs(ns, p) / 1e6, `p${p}`);
    }
    assert.ok(Math.abs(report.paymentFlow.avgMs! - ns.reduce((a, b) => a + b, 0) / ns.length / 1e6) < 1e-9);
    const declines = report.errorPatterns.find((e) => e.operation === SPANS.processPayment && e.failureReason === "insufficient_funds");
    assert.equal(declines?.count, 3);
    const slowest = raw.reduce((a, b) => (b.duration > a.duration ? b : a));
    assert.equal(report.slowestTrace?.traceId, slowest.traceId);
    // A completed payment called fraud-service: its waterfall holds both services' spans.
    const scored = slowest.meta[TAGS.finalStatus] === "completed";
    const services = report.slowestTrace?.services.filter((s) => s === SERVICES.fraud || s === SERVICES.payment);
    assert.deepEqual(services, scored ? [SERVICES.fraud, SERVICES.payment] : [SERVICES.payment]);
    // The measured performance tags, averaged over the payments that carry them.
    const queries = report.annotations.find((a) => a.tag === "performance.db_query_count");
    assert.equal(queries?.count, 12);
    assert.equal(queries?.avg, raw.reduce((n, s) => n + s.metrics["performance.db_query_count"], 0) / 12);
    const validation = report.operations.find((o) => o.name === SPANS.validation && o.service === SERVICES.payment);
    assert.equal(validation?.count, 12);
    assert.equal(validation?.errors, 3, "payment.validation records the declines as errors");
  });
});
