import * as assert from "node:assert/strict";
import { MEASURED_SPANS, SERVICES, SPANS } from "../app/src/tracing/conventions";
import { SPAN_PANELS, spanQueries } from "../components/apm-dashboard";
import { datadogObjects } from "../scripts/manifests";
import { stackRun } from "./support/rendered-env";
import { rawSettings } from "./support/stack-settings";

/** Every value under a key named `key`, anywhere in `value`. */
function collect(value: unknown, key: string): unknown[] {
  if (Array.isArray(value)) return value.flatMap((v) => collect(v, key));
  if (value && typeof value === "object") {
    return Object.entries(value).flatMap(([k, v]) => (k === key ? [v, ...collect(v, key)] : collect(v, key)));
  }
  return [];
}
const metricQueries = (widget: unknown) => collect(widget, "metricQuery").map((q: any) => q.query as string);

describe("payment and fraud dashboard (components/apm-dashboard.ts)", () => {
  it("queries hits, errors and p50/p95/p99 of a span from its trace metrics", () => {
    assert.deepEqual(spanQueries(SPANS.riskScoring, "prod", SERVICES.fraud), {
      hits: "sum:trace.fraud.risk_scoring.hits{env:prod,service:fraud-service}.as_count()",
      errors: "sum:trace.fraud.risk_scoring.errors{env:prod,service:fraud-service}.as_count()",
      p50: "p50:trace.fraud.risk_scoring{env:prod,service:fraud-service}",
      p95: "p95:trace.fraud.risk_scoring{env:prod,service:fraud-service}",
      p99: "p99:trace.fraud.risk_scoring{env:prod,service:fraud-service}",
    });
  });

  it("has a panel for every measured span", () => {
    assert.deepEqual([...new Set(SPAN_PANELS.map((p) => p.span))].sort(), [...MEASURED_SPANS].sort());
  });

  for (const stack of ["prod", "staging"]) {
    describe(`stack ${stack} under the mock engine`, () => {
      let dashboard: any;
      before(async function () {
        this.timeout(60_000);
        const dashboards = datadogObjects(await stackRun(stack)).filter((d) => d.kind === "Dashboard");
        assert.equal(dashboards.length, 1);
        dashboard = dashboards[0].inputs;
      });

      it("is one ordered dashboard for the environment, tagged with its team only", () => {
        assert.equal(dashboard.title, `Payments APM · ${stack}`);
        assert.equal(dashboard.layoutType, "ordered");
        assert.deepEqual(dashboard.tags, ["team:payments"]);
      });

      it("lays out overview, one group per span and service in flow order, then fraud decisions", () => {
        const titles = dashboard.widgets.map((w: any) => w.groupDefinition.title);
        assert.deepEqual(titles, [`Payment flow · ${stack}`, ...SPAN_PANELS.map((p) => `${p.span} · ${p.service}`), `Fraud decisions · ${stack}`]);
      });

      it("scopes every query to its environment", () => {
        const queries = [...metricQueries(dashboard.widgets), ...collect(dashboard.widgets, "search").map((s: any) => s.query as string)];
        assert.ok(queries.length >= 7 * 5, `${queries.length} queries`);
        for (const q of queries) {
          assert.match(q, new RegExp(`env:${stack}[,} ]`), q);
          assert.ok(!/env:(?!\w)/.test(q) && (q.match(/env:/g) ?? []).length === 1, q);
        }
      });

      it("charts hits, errors and p50/p95/p99 for each span in its own service", () => {
        for (const [i, { span, service }] of SPAN_PANELS.entries()) {
          const panel = dashboard.widgets[i + 1];
          assert.deepEqual(metricQueries(panel).sort(), Object.values(spanQueries(span, stack, service)).sort(), `${span} · ${service}`);
        }
      });

      it("marks the monitors' p95 thresholds on the payment and database latency charts", () => {
        const monitors = rawSettings(stack).monitors;
        const markersOf = (span: string) => {
          const i = SPAN_PANELS.findIndex((p) => p.span === span);
          return collect(dashboard.widgets[i + 1], "markers").flat() as any[];
        };
        assert.deepEqual(markersOf(SPANS.processPayment).map((m) => m.value), [`y = ${monitors.paymentLatencyP95Seconds ?? 2}`]);
        assert.deepEqual(markersOf(SPANS.databaseQuery).map((m) => m.value), [`y = ${monitors.databaseLatencyP95Seconds ?? 1}`]);
        assert.deepEqual(markersOf(SPANS.riskScoring), []);
      });

      it("charts the post-processing lag of the consumers with the lag monitor's threshold", () => {
        const i = SPAN_PANELS.findIndex((p) => p.span === SPANS.postProcessingLag);
        const panel = dashboard.widgets[i + 1];
        assert.equal(panel.groupDefinition.title, `payment.post_processing.lag · post-processing`);
        assert.ok(metricQueries(panel).includes(`p95:trace.payment.post_processing.lag{env:${stack},service:post-processing}`));
        const markers = collect(panel, "markers").flat() as any[];
        assert.deepEqual(markers.map((m) => m.value), [`y = ${rawSettings(stack).monitors.postProcessingLagP95Seconds ?? 60}`]);
        // The relay's publish and the consumers' work have panels of their own.
        assert.deepEqual(
          SPAN_PANELS.filter((p) => p.span === SPANS.postProcessing).map((p) => p.service),
          [SERVICES.relay, SERVICES.postProcessing],
        );
      });

      it("colours the payment error rate against the monitor's threshold, in percent", () => {
        const errorRate = dashboard.widgets[0].groupDefinition.widgets.find((w: any) => w.queryValueDefinition?.title === "Payment error rate").queryValueDefinition;
        const formula = errorRate.requests[0].formulas[0];
        assert.equal(formula.formulaExpression, "100 * errors / hits");
        const percent = Number(rawSettings(stack).monitors.paymentErrorRate ?? 0.05) * 100;
        assert.deepEqual(formula.conditionalFormats.map((c: any) => [c.comparator, c.value]), [[">", percent], ["<=", percent]]);
      });

      it("shows both payment SLOs by id", () => {
        const slos = collect(dashboard.widgets, "serviceLevelObjectiveDefinition") as any[];
        assert.deepEqual(slos.map((s) => s.sloId), ["apm-slos-payment-availability-id", "apm-slos-payment-latency-id"]);
        for (const s of slos) assert.deepEqual(s.timeWindows, ["30d"]);
      });

      it("counts fraud decisions from fraud-service's fraud.detection spans, grouped by fraud.decision", () => {
        const fraud = dashboard.widgets[dashboard.widgets.length - 1].groupDefinition.widgets;
        const [eventQuery] = collect(fraud, "eventQuery") as any[];
        assert.equal(eventQuery.dataSource, "spans");
        assert.equal(eventQuery.search.query, `env:${stack} service:fraud-service operation_name:fraud.detection`);
        assert.deepEqual(eventQuery.groupBies.map((g: any) => g.facet), ["@fraud.decision"]);
        assert.deepEqual(eventQuery.computes, [{ aggregation: "count" }]);
        assert.match(fraud[1].noteDefinition.content, /indexed spans/);
      });
    });
  }
});
