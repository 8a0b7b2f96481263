/**
 * `npm run traces:analyze -- --stack prod` against a local stand-in for Datadog's Spans
 * API that checks each request against the documented API (paths, keys, body types, query,
 * time window, aggregations, pagination) and answers in the documented response shapes.
 */
import * as assert from "node:assert/strict";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { analyzeSpans, type TraceReport } from "../../analytics/analyze";
import type { SpanRecord } from "../../analytics/spans";
import { analyzeCommand } from "../../scripts/traces-analyze";

const KEYS = { DD_API_KEY: "a1b2c3d4e5f60718293a4b5c6d7e8f90", DD_APP_KEY: "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c" };
const NOW = Date.parse("2026-12-04T06:00:00.000Z");
const HOUR = 3_600_000;
const QUERY = "env:prod service:(payment-service OR fraud-service)";
const AGGREGATIONS = ["count", "cardinality", "pc75", "pc90", "pc95", "pc98", "pc99", "sum", "min", "max", "avg", "median"];

interface Received {
  readonly path: string;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: any;
}

/** Synthetic spans of both services: payments (completed, declined, failed) with their fraud calls. */
function spansOfAnHour(n: number): SpanRecord[] {
  const spans: SpanRecord[] = [];
  for (let i = 0; i < n; i++) {
    const traceId = String(7_000_000 + i);
    const start = NOW - HOUR + i * 1000;
    const ms = 20 + ((i * 7919) % 400);
    const kind = i % 20 === 0 ? "failed" : i % 7 === 0 ? "declined" : "completed";
    const meta: Record<string, string> =
      kind === "failed"
        ? { "payment.final_status": "failed", "payment.failure_reason": "fraud_unavailable", "error.type": "FraudServiceUnavailable", "error.message": "fraud-service did not answer" }
        : kind === "declined"
          ? { "payment.final_status": "declined", "payment.failure_reason": "insufficient_funds" }
          : { "payment.final_status": "completed" };
    spans.push({ traceId, spanId: `${i}1`, parentId: "0", service: "payment-service", name: "fastify.request", resource: "POST /v1/payments", startMs: start, durationMs: ms + 2, error: false, meta: {}, metrics: {} });
    spans.push({ traceId, spanId: `${i}2`, parentId: `${i}1`, service: "payment-service", name: "payment.process_payment", resource: "payment.process_payment", startMs: start + 1, durationMs: ms, error: kind === "failed", meta, metrics: { "performance.db_query_count": 3 } });
    spans.push({ traceId, spanId: `${i}3`, parentId: `${i}2`, service: "fraud-service", name: "fraud.detection", resource: "fraud.detection", startMs: start + 5, durationMs: ms / 4, error: false, meta: { "fraud.decision": "allow" }, metrics: {} });
  }
  return spans;
}

/** A SpanRecord in the documented search answer's shape: tags nested under `custom`, duration (ns) and the operation under `attributes`. */
function documentedSpan(s: SpanRecord) {
  const custom: Record<string, any> = {};
  for (const [key, value] of [...Object.entries(s.meta), ...Object.entries(s.metrics)]) {
    const parts = key.split(".");
    let at = custom;
    for (const p of parts.slice(0, -1)) at = at[p] ??= {};
    at[parts[parts.length - 1]] = value;
  }
  return {
    id: `AAAA${s.spanId}`,
    type: "spans",
    attributes: {
      attributes: { duration: Math.round(s.durationMs * 1e6), operation_name: s.name },
      custom,
      end_timestamp: new Date(s.startMs + s.durationMs).toISOString(),
      env: "prod",
      host: "i-0123",
      ingestion_reason: "rule",
      parent_id: s.parentId,
      resource_hash: "a12345678b91c23d",
      resource_name: s.resource,
      retained_by: "retention_filter",
      service: s.service,
      single_span: false,
      span_id: s.spanId,
      start_timestamp: new Date(s.startMs).toISOString(),
      tags: ["env:prod", `service:${s.service}`, ...(s.error ? ["status:error"] : [])],
      trace_id: s.traceId,
      type: "web",
    },
  };
}

class SpansApiStandIn {
  readonly received: Received[] = [];
  readonly problems: string[] = [];
  spans: SpanRecord[] = [];
  failWith: { status: number; body: unknown } | undefined;
  private cursors = new Map<string, number>();
  private server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const text = Buffer.concat(chunks).toString("utf8");
      const request = { path: req.url ?? "", headers: req.headers, body: text ? JSON.parse(text) : undefined };
      this.received.push(request);
      const send = (status: number, body: unknown) => res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
      if (this.failWith) return send(this.failWith.status, this.failWith.body);
      const problems = this.check(req.method ?? "", request);
      if (problems.length > 0) {
        this.problems.push(...problems);
        return send(400, { errors: problems.map((detail) => ({ status: "400", title: "Bad Request", detail })) });
      }
      if (request.path === "/api/v2/spans/analytics/aggregate") return send(200, this.aggregate());
      return send(200, this.search(request.body));
    });
  });

  private check(method: string, r: Received): string[] {
    const p: string[] = [];
    if (method !== "POST") p.push(`method ${method}`);
    if (!["/api/v2/spans/analytics/aggregate", "/api/v2/spans/events/search"].includes(r.path)) p.push(`path ${r.path}`);
    if (r.headers["dd-api-key"] !== KEYS.DD_API_KEY) p.push("DD-API-KEY header");
    if (r.headers["dd-application-key"] !== KEYS.DD_APP_KEY) p.push("DD-APPLICATION-KEY header");
    if (!/^application\/json/.test(String(r.headers["content-type"]))) p.push("content-type");
    const data = r.body?.data;
    const attrs = data?.attributes ?? {};
    const filter = attrs.filter ?? {};
    if (filter.query !== QUERY) p.push(`query ${JSON.stringify(filter.query)}`);
    // The window: ISO 8601 date-times, one hour ending now.
    const iso = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;
    if (!iso.test(filter.from) || !iso.test(filter.to)) p.push(`from/to not ISO 8601: ${filter.from} ${filter.to}`);
    else if (Date.parse(filter.to) !== NOW || Date.parse(filter.to) - Date.parse(filter.from) !== HOUR) p.push(`window ${filter.from} → ${filter.to}`);
    if (r.path.endsWith("/aggregate")) {
      if (data?.type !== "aggregate_request") p.push(`type ${data?.type}`);
      for (const c of attrs.compute ?? []) {
        if (!AGGREGATIONS.includes(c.aggregation)) p.push(`aggregation ${c.aggregation}`);
        if (c.type !== undefined && !["total", "timeseries"].includes(c.type)) p.push(`compute type ${c.type}`);
        if (c.aggregation !== "count" && c.metric !== "@duration") p.push(`metric ${c.metric}`);
      }
      if (!Array.isArray(attrs.group_by) || attrs.group_by.some((g: any) => typeof g.facet !== "string")) p.push("group_by");
    } else {
      if (data?.type !== "search_request") p.push(`type ${data?.type}`);
      if (attrs.sort !== undefined && !["timestamp", "-timestamp"].includes(attrs.sort)) p.push(`sort ${attrs.sort}`);
      const limit = attrs.page?.limit;
      if (!Number.isInteger(limit) || limit < 1 || limit > 1000) p.push(`page.limit ${limit}`);
      const cursor = attrs.page?.cursor;
      if (cursor !== undefined && !this.cursors.has(cursor)) p.push(`unknown cursor ${cursor}`);
    }
    return p;
  }

  private aggregate() {
    const groups = new Map<string, SpanRecord[]>();
    for (const s of this.spans) {
      const key = JSON.stringify([s.service, s.name]);
      groups.set(key, [...(groups.get(key) ?? []), s]);
    }
    return {
      data: [...groups.entries()].map(([key, group], i) => {
        const [service, operation] = JSON.parse(key);
        const ns = group.map((s) => s.durationMs * 1e6).sort((a, b) => a - b);
        return { id: `bucket-${i}`, type: "bucket", attributes: { by: { service, operation_name: operation }, computes: { c0: group.length, c1: ns.reduce((a, b) => a + b, 0) / ns.length, c2: ns[Math.ceil(ns.length * 0.95) - 1], c3: ns[Math.ceil(ns.length * 0.99) - 1] } } };
      }),
      meta: { elapsed: 12, request_id: "req-aggregate", status: "done" },
    };
  }

  private search(body: any) {
    const { limit, cursor } = body.data.attributes.page;
    const from = cursor === undefined ? 0 : this.cursors.get(cursor)!;
    const sorted = [...this.spans].sort((a, b) => a.startMs - b.startMs);
    const page = sorted.slice(from, from + limit);
    const next = from + limit < sorted.length ? Buffer.from(`after-${from + limit}`).toString("base64") : undefined;
    if (next) this.cursors.set(next, from + limit);
    return {
      data: page.map(documentedSpan),
      links: next ? { next: `https://app.datadoghq.com/api/v2/spans/events?page[cursor]=${next}` } : {},
      meta: { elapsed: 20, page: next ? { after: next } : {}, request_id: "req-search", status: "done" },
    };
  }

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }
  stop(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

describe("traces:analyze against Datadog's Spans API (analytics/datadog.ts)", function () {
  this.timeout(30_000);
  const standIn = new SpansApiStandIn();
  let baseUrl: string;
  let out: string[];
  let err: string[];
  const run = (argv: string[], env: Record<string, string | undefined> = KEYS) =>
    analyzeCommand({ argv, env, baseUrl, now: NOW, out: (t) => out.push(t), err: (t) => err.push(t) });
  const printed = () => [...out, ...err].join("\n");
  const assertNoKeyPrinted = () => {
    for (const key of Object.values(KEYS)) assert.ok(!printed().includes(key), "a key was printed");
  };

  before(async () => {
    baseUrl = await standIn.start();
  });
  after(() => standIn.stop());
  beforeEach(() => {
    standIn.received.length = 0;
    standIn.problems.length = 0;
    standIn.failWith = undefined;
    out = [];
    err = [];
  });

  it("aggregates, then pages through the search with each answer's cursor, and reports exactly what the spans hold", async () => {
    standIn.spans = spansOfAnHour(900); // 2,700 spans: three search pages of 1,000
    assert.equal(await run(["--stack", "prod", "--since", "1h", "--json"]), 0, printed());
    assert.deepEqual(standIn.problems, []);
    assert.deepEqual(standIn.received.map((r) => r.path), ["/api/v2/spans/analytics/aggregate", ...Array(3).fill("/api/v2/spans/events/search")]);
    const cursors = standIn.received.slice(1).map((r) => r.body.data.attributes.page.cursor);
    assert.deepEqual(cursors, [undefined, Buffer.from("after-1000").toString("base64"), Buffer.from("after-2000").toString("base64")]);

    const report = JSON.parse(out.join("\n")) as TraceReport;
    const expected = analyzeSpans(standIn.spans, { source: report.source, thresholds: report.thresholds });
    assert.equal(report.spanCount, 2_700);
    assert.deepEqual(report.paymentFlow, JSON.parse(JSON.stringify(expected.paymentFlow)));
    assert.deepEqual(report.operations, JSON.parse(JSON.stringify(expected.operations)));
    assert.deepEqual(report.errorPatterns, JSON.parse(JSON.stringify(expected.errorPatterns)));
    assert.equal(report.slowestTrace?.traceId, expected.slowestTrace?.traceId);
    assert.deepEqual(report.paymentFlow.outcomes, { completed: 733, declined: 122, failed: 45 });
    assert.deepEqual(report.thresholds, { paymentLatencyP95Seconds: 2, paymentErrorRate: 0.05, databaseLatencyP95Seconds: 1 }, "Pulumi.prod.yaml's monitors");
    assert.equal(report.source.kind, "datadog");
    assert.equal(report.datadog?.truncated, false);
    const payments = report.datadog?.totals.find((t) => t.operation === "payment.process_payment");
    assert.equal(payments?.count, 900);
    assert.equal(payments?.p95Ms, expected.paymentFlow.p95Ms);
    assertNoKeyPrinted();
  });

  it("prints the tables with the payment flow held against the stack's thresholds", async () => {
    standIn.spans = spansOfAnHour(50);
    assert.equal(await run(["--stack", "prod"]), 0, printed());
    assert.match(out.join("\n"), /payment p95\s+p95 \d+(\.\d+)? ms, threshold 2 s: ok/);
    assert.match(out.join("\n"), /payment error rate\s+error rate 6 %, threshold 5 %: ABOVE THRESHOLD/);
    assert.match(out.join("\n"), /payment\.process_payment\s+payment-service\s+FraudServiceUnavailable\s+fraud_unavailable\s+3/);
  });

  it("stops at --max-spans and says the figures cover part of the window", async () => {
    standIn.spans = spansOfAnHour(900);
    assert.equal(await run(["--stack", "prod", "--max-spans", "1500", "--json"]), 0, printed());
    const report = JSON.parse(out.join("\n")) as TraceReport;
    assert.equal(report.spanCount, 1500);
    assert.equal(report.datadog?.truncated, true);
    assert.equal(standIn.received.filter((r) => r.path.endsWith("/search")).length, 2);
  });

  for (const [status, body, pattern] of [
    [403, { errors: ["Forbidden"] }, /Datadog refused the aggregate request \(HTTP 403: Forbidden\): check that DD_API_KEY and DD_APP_KEY .* apm_read/],
    [429, { errors: [{ status: "429", title: "Too many requests", detail: "rate limit of 300 per hour exceeded" }] }, /Datadog rate-limited the aggregate request \(HTTP 429: Too many requests: rate limit of 300 per hour exceeded\)/],
  ] as const) {
    it(`answers an HTTP ${status} from Datadog with one clear line and exit status 1, no stack trace, no key`, async () => {
      standIn.spans = spansOfAnHour(5);
      standIn.failWith = { status, body: { ...body, echo: `${KEYS.DD_API_KEY} ${KEYS.DD_APP_KEY}` } };
      assert.equal(await run(["--stack", "prod"]), 1);
      assert.equal(out.length, 0, "no report");
      assert.equal(err.length, 1, printed());
      assert.match(err[0], pattern);
      assert.doesNotMatch(printed(), /\n\s+at /, "no stack trace");
      assert.equal(standIn.received.length, 1, "nothing retried");
      assertNoKeyPrinted();
    });
  }

  it("asks nothing and exits 2 naming the variables when a key is missing", async () => {
    assert.equal(await run(["--stack", "prod"], { DD_API_KEY: KEYS.DD_API_KEY }), 2);
    assert.match(printed(), /DD_APP_KEY not set/);
    assert.equal(standIn.received.length, 0);
  });

  it("exits 2 on bad usage: no stack, a bad --since, an unknown stack", async () => {
    assert.equal(await run([]), 2);
    assert.match(printed(), /--stack is required/);
    assert.equal(await run(["--stack", "prod", "--since", "yesterday"]), 2);
    assert.match(printed(), /--since must be a duration such as 15m, 1h or 2d, got "yesterday"/);
    assert.equal(await run(["--stack", "nope"]), 2);
    assert.match(printed(), /No stack file Pulumi\.nope\.yaml/);
    assert.equal(standIn.received.length, 0);
  });
});
