import * as assert from "node:assert/strict";
import { MEASURED_SPANS, SERVICES, SPANS } from "../app/src/tracing/conventions";
import { ApmMonitors, apmMonitorSpecs } from "../components/apm-monitors";
import { runUnderMocks, type ProgramRun } from "../scripts/mock-engine";

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

describe("ApmMonitors (rendered under the mock engine)", () => {
  let run: ProgramRun;
  before(async function () {
    this.timeout(60_000);
    run = await runUnderMocks("staging", { config: {}, secretKeys: [] }, () => {
      const monitors = new ApmMonitors("mon", {
        env: "staging",
        thresholds: { paymentLatencyP95Seconds: 3.5, paymentErrorRate: 0.1, databaseLatencyP95Seconds: 0.25, postProcessingLagP95Seconds: 12.5 },
        notify: ["@slack-x", "@pagerduty-y"],
      });
      return { monitorIds: monitors.monitorIds };
    });
  });

  it("creates one query alert per monitor, alerting on data only, re-notifying hourly, with the query's tags", () => {
    const monitors = run.resources.filter((r) => r.type === "datadog:index/monitor:Monitor");
    assert.deepEqual(
      monitors.map((m) => m.name),
      ["mon-payment-latency", "mon-payment-error-rate", "mon-database-latency", "mon-post-processing-lag"],
    );
    const latency = monitors[0].inputs;
    assert.deepEqual(latency, {
      name: "[staging] Payment p95 latency above threshold",
      type: "query alert",
      query: "percentile(last_5m):p95:trace.payment.process_payment{env:staging,service:payment-service} > 3.5",
      message:
        "{{#is_alert}}Payment p95 latency over 5 minutes is high for payment-service in staging: {{value}} (threshold 3.5).{{/is_alert}}\n" +
        "{{#is_recovery}}payment-service in staging is back under 3.5.{{/is_recovery}}\n" +
        "@slack-x @pagerduty-y",
      monitorThresholds: { critical: "3.5" },
      tags: ["source:apm", "env:staging", "service:payment-service", "team:payments"],
      notifyNoData: false,
      requireFullWindow: false,
      includeTags: true,
      renotifyInterval: 60,
    });
    for (const m of monitors) assert.equal(m.inputs.renotifyInterval, 60, m.name);
    assert.equal(monitors[3].inputs.name, "[staging] Post-processing lag p95 above threshold");
    assert.deepEqual(monitors[3].inputs.tags, ["source:apm", "env:staging", "service:post-processing", "team:payments"]);
  });

  it("groups the monitors under one component and exports their ids by key", () => {
    const component = run.resources.find((r) => r.type === "payments-apm:monitoring:ApmMonitors");
    assert.ok(component, "an ApmMonitors component");
    assert.equal(component.name, "mon");
    assert.deepEqual(run.outputs.monitorIds, {
      "payment-latency": "mon-payment-latency-id",
      "payment-error-rate": "mon-payment-error-rate-id",
      "database-latency": "mon-database-latency-id",
      "post-processing-lag": "mon-post-processing-lag-id",
    });
  });

  it("registers the monitor ids as the component's outputs, so the engine records it complete", () => {
    assert.deepEqual(run.componentOutputs["payments-apm:monitoring:ApmMonitors::mon"], ["monitorIds"]);
  });

  it("watches each span in the service that sends it", () => {
    assert.deepEqual(
      apmMonitorSpecs("prod", thresholds, ["@x"]).map((s) => [s.key, s.span, s.service]),
      [
        ["payment-latency", "payment.process_payment", "payment-service"],
        ["payment-error-rate", "payment.process_payment", "payment-service"],
        ["database-latency", "database.query", "payment-service"],
        ["post-processing-lag", "payment.post_processing.lag", "post-processing"],
      ],
    );
  });
});

describe("APM monitor names and messages", () => {
  it("names each monitor and says what is high, for whom, in which env, against which threshold", () => {
    const specs = apmMonitorSpecs("prod", thresholds, ["@slack-payments-alerts"]);
    assert.deepEqual(
      specs.map((s) => [s.name, s.message.split("\n")[0]]),
      [
        ["[prod] Payment p95 latency above threshold", "{{#is_alert}}Payment p95 latency over 5 minutes is high for payment-service in prod: {{value}} (threshold 2).{{/is_alert}}"],
        ["[prod] Payment error rate above threshold", "{{#is_alert}}Payment error rate over 10 minutes is high for payment-service in prod: {{value}} (threshold 0.05).{{/is_alert}}"],
        ["[prod] Ledger database p95 latency above threshold", "{{#is_alert}}Ledger database p95 latency over 5 minutes is high for payment-service in prod: {{value}} (threshold 1).{{/is_alert}}"],
        [
          "[prod] Post-processing lag p95 above threshold",
          "{{#is_alert}}Post-processing lag p95 (payment commit to consumption) over 5 minutes is high: the relay, the broker or a consumer is behind or down for post-processing in prod: {{value}} (threshold 60).{{/is_alert}}",
        ],
      ],
    );
  });
});
