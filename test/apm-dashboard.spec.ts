import * as assert from "node:assert/strict";
import * as pulumi from "@pulumi/pulumi";
import { MEASURED_SPANS, SERVICES, SPANS } from "../app/src/tracing/conventions";
import { ApmDashboard, paymentDashboardWidgets, SPAN_PANELS, spanQueries } from "../components/apm-dashboard";
import { datadogObjects } from "../scripts/manifests";
import { runUnderMocks } from "../scripts/mock-engine";
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

  describe("widgets of one environment (paymentDashboardWidgets)", () => {
    const thresholds = { paymentLatencyP95Seconds: 2.5, paymentErrorRate: 0.02, databaseLatencyP95Seconds: 0.75, postProcessingLagP95Seconds: 45 };
    const availability = { title: "[qa] Payment availability", id: "slo-availability", timeframe: "7d" };
    const widgets = paymentDashboardWidgets("qa", thresholds, [availability]) as any[];
    const payments = {
      queryValueDefinition: {
        title: "Payments",
        requests: [
          {
            queries: [{ metricQuery: { name: "hits", query: "sum:trace.payment.process_payment.hits{env:qa,service:payment-service}.as_count()", aggregator: "sum" } }],
            formulas: [{ formulaExpression: "hits" }],
          },
        ],
        autoscale: true,
        precision: 0,
      },
    };
    const errorRate = {
      queryValueDefinition: {
        title: "Payment error rate",
        customUnit: "%",
        precision: 2,
        requests: [
          {
            queries: [
              { metricQuery: { name: "errors", query: "sum:trace.payment.process_payment.errors{env:qa,service:payment-service}.as_count()", aggregator: "sum" } },
              { metricQuery: { name: "hits", query: "sum:trace.payment.process_payment.hits{env:qa,service:payment-service}.as_count()", aggregator: "sum" } },
            ],
            formulas: [
              {
                formulaExpression: "100 * errors / hits",
                conditionalFormats: [
                  { comparator: ">", value: 2, palette: "white_on_red" },
                  { comparator: "<=", value: 2, palette: "white_on_green" },
                ],
              },
            ],
          },
        ],
      },
    };
    const latency = {
      queryValueDefinition: {
        title: "Payment p95 latency (s)",
        precision: 3,
        requests: [
          {
            queries: [{ metricQuery: { name: "p95", query: "p95:trace.payment.process_payment{env:qa,service:payment-service}", aggregator: "avg" } }],
            formulas: [
              {
                formulaExpression: "p95",
                conditionalFormats: [
                  { comparator: ">", value: 2.5, palette: "white_on_red" },
                  { comparator: "<=", value: 2.5, palette: "white_on_green" },
                ],
              },
            ],
          },
        ],
      },
    };

    it("opens with payment count, error rate in % (red over the monitor's 2 %) and p95 latency (red over 2.5 s), then each SLO with its error budget", () => {
      assert.deepEqual(widgets[0], {
        groupDefinition: {
          title: "Payment flow · qa",
          layoutType: "ordered",
          widgets: [
            payments,
            errorRate,
            latency,
            {
              serviceLevelObjectiveDefinition: {
                title: "[qa] Payment availability",
                sloId: "slo-availability",
                viewType: "detail",
                viewMode: "overall",
                timeWindows: ["7d"],
                showErrorBudget: true,
              },
            },
          ],
        },
      });
    });

    it("shows no SLO widget when there are no SLOs", () => {
      assert.deepEqual((paymentDashboardWidgets("qa", thresholds) as any[])[0].groupDefinition.widgets, [payments, errorRate, latency]);
    });

    it("has one group per span and service, in flow order, between the overview and the fraud decisions", () => {
      assert.deepEqual(
        widgets.map((w) => w.groupDefinition.title),
        [
          "Payment flow · qa",
          "user.authentication · payment-service",
          "payment.process_payment · payment-service",
          "payment.validation · payment-service",
          "fraud.detection · payment-service",
          "payment.processing · payment-service",
          "database.query · payment-service",
          "service.authentication · fraud-service",
          "fraud.detection · fraud-service",
          "fraud.risk_scoring · fraud-service",
          "payment.post_processing · outbox-relay",
          "payment.post_processing · post-processing",
          "payment.post_processing.lag · post-processing",
          "Fraud decisions · qa",
        ],
      );
    });

    it("charts a span's hits and errors as bars and its p50/p95/p99 in seconds as lines, with the p95 alert threshold marked", () => {
      assert.deepEqual(widgets[2], {
        groupDefinition: {
          title: "payment.process_payment · payment-service",
          layoutType: "ordered",
          widgets: [
            {
              timeseriesDefinition: {
                title: "payment.process_payment: hits and errors",
                showLegend: true,
                requests: [
                  {
                    displayType: "bars",
                    queries: [
                      { metricQuery: { name: "hits", query: "sum:trace.payment.process_payment.hits{env:qa,service:payment-service}.as_count()" } },
                      { metricQuery: { name: "errors", query: "sum:trace.payment.process_payment.errors{env:qa,service:payment-service}.as_count()" } },
                    ],
                    formulas: [
                      { formulaExpression: "hits", alias: "hits" },
                      { formulaExpression: "errors", alias: "errors" },
                    ],
                  },
                ],
              },
            },
            {
              timeseriesDefinition: {
                title: "payment.process_payment: latency p50 / p95 / p99 (s)",
                showLegend: true,
                requests: [
                  {
                    displayType: "line",
                    queries: [
                      { metricQuery: { name: "p50", query: "p50:trace.payment.process_payment{env:qa,service:payment-service}" } },
                      { metricQuery: { name: "p95", query: "p95:trace.payment.process_payment{env:qa,service:payment-service}" } },
                      { metricQuery: { name: "p99", query: "p99:trace.payment.process_payment{env:qa,service:payment-service}" } },
                    ],
                    formulas: [
                      { formulaExpression: "p50", alias: "p50" },
                      { formulaExpression: "p95", alias: "p95" },
                      { formulaExpression: "p99", alias: "p99" },
                    ],
                  },
                ],
                markers: [{ value: "y = 2.5", displayType: "error dashed", label: "p95 alert threshold (2.5 s)" }],
                yaxis: { includeZero: true, label: "seconds" },
              },
            },
          ],
        },
      });
    });

    it("marks a threshold only on the spans a latency monitor watches: payment 2.5 s, database 0.75 s, post-processing lag 45 s", () => {
      const markers = widgets.slice(1, -1).map((w) => [w.groupDefinition.title, w.groupDefinition.widgets[1].timeseriesDefinition.markers]);
      const threshold = (seconds: number) => [{ value: `y = ${seconds}`, displayType: "error dashed", label: `p95 alert threshold (${seconds} s)` }];
      assert.deepEqual(markers, [
        ["user.authentication · payment-service", []],
        ["payment.process_payment · payment-service", threshold(2.5)],
        ["payment.validation · payment-service", []],
        ["fraud.detection · payment-service", []],
        ["payment.processing · payment-service", []],
        ["database.query · payment-service", threshold(0.75)],
        ["service.authentication · fraud-service", []],
        ["fraud.detection · fraud-service", []],
        ["fraud.risk_scoring · fraud-service", []],
        ["payment.post_processing · outbox-relay", []],
        ["payment.post_processing · post-processing", []],
        ["payment.post_processing.lag · post-processing", threshold(45)],
      ]);
    });

    it("ends with fraud-service's decisions by outcome from indexed spans, and a note on reading them", () => {
      assert.deepEqual(widgets[widgets.length - 1], {
        groupDefinition: {
          title: "Fraud decisions · qa",
          layoutType: "ordered",
          widgets: [
            {
              timeseriesDefinition: {
                title: "Fraud decisions by outcome (indexed spans)",
                showLegend: true,
                requests: [
                  {
                    displayType: "bars",
                    queries: [
                      {
                        eventQuery: {
                          name: "decisions",
                          dataSource: "spans",
                          search: { query: "env:qa service:fraud-service operation_name:fraud.detection" },
                          computes: [{ aggregation: "count" }],
                          groupBies: [{ facet: "@fraud.decision", limit: 10, sort: { aggregation: "count", order: "desc" } }],
                        },
                      },
                    ],
                    formulas: [{ formulaExpression: "decisions" }],
                  },
                ],
              },
            },
            {
              noteDefinition: {
                content:
                  "Counts of `fraud.detection` spans of fraud-service by `fraud.decision` (allow / review / block). " +
                  "They come from indexed spans, so retention filters decide how many are counted: read the mix of decisions, not absolute volumes. " +
                  "`fraud.decision` is a span tag and trace metrics carry no span tags; exact counts need a span-based metric grouped by `@fraud.decision`.",
                backgroundColor: "yellow",
                fontSize: "14",
                showTick: true,
                tickEdge: "left",
              },
            },
          ],
        },
      });
    });
  });

  describe("ApmDashboard (rendered under the mock engine)", () => {
    const thresholds = { paymentLatencyP95Seconds: 2.5, paymentErrorRate: 0.02, databaseLatencyP95Seconds: 0.75, postProcessingLagP95Seconds: 45 };

    it("creates one ordered, auto-reflowing dashboard titled and described for its environment, and exports its id and URL", async function () {
      this.timeout(60_000);
      let dashboard: ApmDashboard | undefined;
      const parents: [string, pulumi.Resource | undefined][] = [];
      const run = await runUnderMocks("qa", { config: {}, secretKeys: [] }, () => {
        pulumi.runtime.registerStackTransformation(({ name, opts }) => {
          parents.push([name, opts.parent]);
          return undefined;
        });
        dashboard = new ApmDashboard("dash", { env: "qa", thresholds });
        return { dashboardId: dashboard.dashboardId, dashboardUrl: dashboard.dashboardUrl };
      });
      const dashboards = run.resources.filter((r) => r.type === "datadog:index/dashboard:Dashboard");
      assert.deepEqual(
        dashboards.map((d) => d.name),
        ["dash-dashboard"],
      );
      // A child of the component: shown under it, and given the component's options.
      assert.deepEqual(
        parents.map(([name, parent]) => [name, parent === dashboard ? "the ApmDashboard" : parent]),
        [
          ["dash", undefined],
          ["dash-dashboard", "the ApmDashboard"],
        ],
      );
      const { widgets, ...rest } = dashboards[0].inputs;
      assert.deepEqual(rest, {
        title: "Payments APM · qa",
        description:
          "Payment and fraud flow in qa: hits, errors and latency percentiles of the measured spans (trace metrics, 100 % of traffic), SLOs and fraud decisions. Managed by Pulumi (payments-apm).",
        layoutType: "ordered",
        reflowType: "auto",
        tags: ["team:payments"],
      });
      // Without SLOs the overview holds the three payment values only.
      assert.deepEqual(
        widgets[0].groupDefinition.widgets.map((w: any) => w.queryValueDefinition.title),
        ["Payments", "Payment error rate", "Payment p95 latency (s)"],
      );
      assert.equal(widgets.length, 14);
      // The URL is known once Datadog has created the dashboard.
      assert.deepEqual(run.outputs, { dashboardId: "dash-dashboard-id", dashboardUrl: "[unknown until applied]" });
      // Registered as the component's outputs, so the engine records it complete with them.
      assert.deepEqual(run.componentOutputs["payments-apm:monitoring:ApmDashboard::dash"], ["dashboardId", "dashboardUrl"]);
    });

    for (const env of ["", "  "]) {
      it(`refuses an empty env (${JSON.stringify(env)}) before creating the dashboard`, async function () {
        this.timeout(60_000);
        let created: string[] = [];
        await assert.rejects(
          async () => {
            const run = await runUnderMocks("qa", { config: {}, secretKeys: [] }, () => {
              new ApmDashboard("dash", { env, thresholds });
            });
            created = run.resources.map((r) => r.type);
          },
          (e: any) => {
            assert.equal(e.propertyPath, "env");
            assert.equal(e.reason, "must not be empty");
            return true;
          },
        );
        assert.deepEqual(created, []);
      });
    }
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
