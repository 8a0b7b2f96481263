import * as assert from "node:assert/strict";
import { MEASURED_SPANS, SERVICES, SPANS } from "../app/src/tracing/conventions";
import { apmMonitorSpecs } from "../components/apm-monitors";

const thresholds = { paymentLatencyP95Seconds: 2, paymentErrorRate: 0.05, databaseLatencyP95Seconds: 1, postProcessingLagP95Seconds: 60 };

describe("APM monitor queries", () => {
  const specs = apmMonitorSpecs("prod", thresholds, ["@slack-payments-alerts", "@pagerduty-payments"]);
  const byKey = Object.fromEntries(specs.map((s) => [s.key, s]));

  it("alerts when payment p95 latency exceeds 2 s over 5 minutes", () => {
    assert.equal(byKey["payment-latency"].query, "percentile(last_5m):p95:trace.payment.process_payment{env:prod,service:payment-service} > 2");
  });

  it("alerts when the payment error rate exceeds 5 % over 10 minutes", () => {
    assert.equal(
      byKey["payment-error-rate"].query,
      "sum(last_10m):( sum:trace.payment.process_payment.errors{env:prod,service:payment-service}.as_count() / sum:trace.payment.process_payment.hits{env:prod,service:payment-service}.as_count() ) > 0.05",
    );
  });

  it("alerts when ledger database p95 latency exceeds 1 s over 5 minutes", () => {
    assert.equal(byKey["database-latency"].query, "percentile(last_5m):p95:trace.database.query{env:prod,service:payment-service} > 1");
  });

  it("alerts when post-processing lag p95 exceeds the threshold over 5 minutes, on the lag span the consumers send", () => {
    const lag = byKey["post-processing-lag"];
    assert.equal(lag.query, "percentile(last_5m):p95:trace.payment.post_processing.lag{env:prod,service:post-processing} > 60");
    assert.equal(lag.span, SPANS.postProcessingLag);
    assert.equal(lag.service, SERVICES.postProcessing);
    assert.equal(lag.name, "[prod] Post-processing lag p95 above threshold");
  });

  it("sets the critical threshold equal to the query's threshold", () => {
    for (const s of specs) assert.ok(s.query.endsWith(` > ${s.critical}`), `${s.key}: ${s.query} vs ${s.critical}`);
  });

  it("notifies every handle and tags source, env and service", () => {
    for (const s of specs) {
      assert.match(s.message, /@slack-payments-alerts @pagerduty-payments/);
      for (const tag of ["source:apm", "env:prod", `service:${s.service}`]) assert.ok(s.tags.includes(tag), `${s.key} lacks ${tag}`);
    }
  });

  it("queries only spans the app marks measured", () => {
    for (const s of specs) assert.ok((MEASURED_SPANS as readonly string[]).includes(s.span), s.span);
  });

  it("follows every threshold of payments-apm:monitors, in the query and the critical value", () => {
    const custom = apmMonitorSpecs("staging", { paymentLatencyP95Seconds: 3.5, paymentErrorRate: 0.1, databaseLatencyP95Seconds: 0.25, postProcessingLagP95Seconds: 12.5 }, ["@slack-x"]);
    assert.deepEqual(
      custom.map((s) => [s.key, s.query, s.critical]),
      [
        ["payment-latency", "percentile(last_5m):p95:trace.payment.process_payment{env:staging,service:payment-service} > 3.5", "3.5"],
        [
          "payment-error-rate",
          "sum(last_10m):( sum:trace.payment.process_payment.errors{env:staging,service:payment-service}.as_count() / sum:trace.payment.process_payment.hits{env:staging,service:payment-service}.as_count() ) > 0.1",
          "0.1",
        ],
        ["database-latency", "percentile(last_5m):p95:trace.database.query{env:staging,service:payment-service} > 0.25", "0.25"],
        ["post-processing-lag", "percentile(last_5m):p95:trace.payment.post_processing.lag{env:staging,service:post-processing} > 12.5", "12.5"],
      ],
    );
  });
});
