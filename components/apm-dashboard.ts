import * as datadog from "@pulumi/datadog";
import * as pulumi from "@pulumi/pulumi";
import { MEASURED_SPANS, SERVICES, SPANS, TAGS, type ServiceName } from "../app/src/tracing/conventions";
import type { MonitorThresholds } from "./apm-monitors";

type Widget = datadog.types.input.DashboardWidget;
type GroupWidget = datadog.types.input.DashboardWidgetGroupDefinitionWidget;
type MeasuredSpan = (typeof MEASURED_SPANS)[number];

/**
 * Where each measured span is produced, in flow order. fraud.detection exists on both
 * sides: payment-service times the call (network included), fraud-service the decision.
 * payment.post_processing too: the relay's publish, the consumers' work. The lag panel
 * (commit to consumption) carries the lag monitor's threshold.
 */
export const SPAN_PANELS: readonly { readonly span: MeasuredSpan; readonly service: ServiceName }[] = [
  { span: SPANS.userAuthentication, service: SERVICES.payment },
  { span: SPANS.processPayment, service: SERVICES.payment },
  { span: SPANS.validation, service: SERVICES.payment },
  { span: SPANS.fraudDetection, service: SERVICES.payment },
  { span: SPANS.processing, service: SERVICES.payment },
  { span: SPANS.databaseQuery, service: SERVICES.payment },
  { span: SPANS.serviceAuthentication, service: SERVICES.fraud },
  { span: SPANS.fraudDetection, service: SERVICES.fraud },
  { span: SPANS.riskScoring, service: SERVICES.fraud },
  { span: SPANS.postProcessing, service: SERVICES.relay },
  { span: SPANS.postProcessing, service: SERVICES.postProcessing },
  { span: SPANS.postProcessingLag, service: SERVICES.postProcessing },
];

const scope = (env: string, service: string) => `{env:${env},service:${service}}`;

/** The trace-metric queries of one span in one service and environment. */
export function spanQueries(span: string, env: string, service: string) {
  const s = scope(env, service);
  return {
    hits: `sum:trace.${span}.hits${s}.as_count()`,
    errors: `sum:trace.${span}.errors${s}.as_count()`,
    p50: `p50:trace.${span}${s}`,
    p95: `p95:trace.${span}${s}`,
    p99: `p99:trace.${span}${s}`,
  };
}

/**
 * Span search for the fraud decisions. `fraud.decision` is a span tag, not a tag of the
 * trace metrics (those only carry env, service, version, resource, http.status_code, host),
 * so the count comes from indexed spans.
 */
export function fraudDecisionSearch(env: string): string {
  return `env:${env} service:${SERVICES.fraud} operation_name:${SPANS.fraudDetection}`;
}

/** An SLO to show at the top of the dashboard. */
export interface DashboardSlo {
  readonly title: string;
  readonly id: pulumi.Input<string>;
  /** The SLO's window, e.g. "30d". */
  readonly timeframe: string;
}

function latencyThresholdOf(span: string, thresholds: MonitorThresholds): number | undefined {
  if (span === SPANS.processPayment) return thresholds.paymentLatencyP95Seconds;
  if (span === SPANS.databaseQuery) return thresholds.databaseLatencyP95Seconds;
  if (span === SPANS.postProcessingLag) return thresholds.postProcessingLagP95Seconds;
  return undefined;
}

function overview(env: string, thresholds: MonitorThresholds, slos: readonly DashboardSlo[]): Widget {
  const q = spanQueries(SPANS.processPayment, env, SERVICES.payment);
  const errorRatePercent = thresholds.paymentErrorRate * 100;
  const widgets: GroupWidget[] = [
    {
      queryValueDefinition: {
        title: "Payments",
        requests: [{ queries: [{ metricQuery: { name: "hits", query: q.hits, aggregator: "sum" } }], formulas: [{ formulaExpression: "hits" }] }],
        autoscale: true,
        precision: 0,
      },
    },
    {
      queryValueDefinition: {
        title: "Payment error rate",
        customUnit: "%",
        precision: 2,
        requests: [
          {
            queries: [
              { metricQuery: { name: "errors", query: q.errors, aggregator: "sum" } },
              { metricQuery: { name: "hits", query: q.hits, aggregator: "sum" } },
            ],
            formulas: [
              {
                formulaExpression: "100 * errors / hits",
                conditionalFormats: [
                  { comparator: ">", value: errorRatePercent, palette: "white_on_red" },
                  { comparator: "<=", value: errorRatePercent, palette: "white_on_green" },
                ],
              },
            ],
          },
        ],
      },
    },
    {
      queryValueDefinition: {
        title: "Payment p95 latency (s)",
        precision: 3,
        requests: [
          {
            queries: [{ metricQuery: { name: "p95", query: q.p95, aggregator: "avg" } }],
            formulas: [
              {
                formulaExpression: "p95",
                conditionalFormats: [
                  { comparator: ">", value: thresholds.paymentLatencyP95Seconds, palette: "white_on_red" },
                  { comparator: "<=", value: thresholds.paymentLatencyP95Seconds, palette: "white_on_green" },
                ],
              },
            ],
          },
        ],
      },
    },
    ...slos.map(
      (slo): GroupWidget => ({
        serviceLevelObjectiveDefinition: {
          title: slo.title,
          sloId: slo.id,
          viewType: "detail",
          viewMode: "overall",
          timeWindows: [slo.timeframe],
          showErrorBudget: true,
        },
      }),
    ),
  ];
  return { groupDefinition: { title: `Payment flow · ${env}`, layoutType: "ordered", widgets } };
}

function spanPanel(span: MeasuredSpan, service: ServiceName, env: string, thresholds: MonitorThresholds): Widget {
  const q = spanQueries(span, env, service);
  const threshold = latencyThresholdOf(span, thresholds);
  const metric = (name: string, query: string) => ({ metricQuery: { name, query } });
  return {
    groupDefinition: {
      title: `${span} · ${service}`,
      layoutType: "ordered",
      widgets: [
        {
          timeseriesDefinition: {
            title: `${span}: hits and errors`,
            showLegend: true,
            requests: [
              {
                displayType: "bars",
                queries: [metric("hits", q.hits), metric("errors", q.errors)],
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
            title: `${span}: latency p50 / p95 / p99 (s)`,
            showLegend: true,
            requests: [
              {
                displayType: "line",
                queries: [metric("p50", q.p50), metric("p95", q.p95), metric("p99", q.p99)],
                formulas: [
                  { formulaExpression: "p50", alias: "p50" },
                  { formulaExpression: "p95", alias: "p95" },
                  { formulaExpression: "p99", alias: "p99" },
                ],
              },
            ],
            markers: threshold === undefined ? [] : [{ value: `y = ${threshold}`, displayType: "error dashed", label: `p95 alert threshold (${threshold} s)` }],
            yaxis: { includeZero: true, label: "seconds" },
          },
        },
      ],
    },
  };
}

function fraudDecisions(env: string): Widget {
  return {
    groupDefinition: {
      title: `Fraud decisions · ${env}`,
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
                      search: { query: fraudDecisionSearch(env) },
                      computes: [{ aggregation: "count" }],
                      groupBies: [{ facet: `@${TAGS.fraudDecision}`, limit: 10, sort: { aggregation: "count", order: "desc" } }],
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
              `Counts of \`${SPANS.fraudDetection}\` spans of ${SERVICES.fraud} by \`${TAGS.fraudDecision}\` (allow / review / block). ` +
              "They come from indexed spans, so retention filters decide how many are counted: read the mix of decisions, not absolute volumes. " +
              `\`${TAGS.fraudDecision}\` is a span tag and trace metrics carry no span tags; exact counts need a span-based metric grouped by \`@${TAGS.fraudDecision}\`.`,
            backgroundColor: "yellow",
            fontSize: "14",
            showTick: true,
            tickEdge: "left",
          },
        },
      ],
    },
  };
}

/** Every widget of the dashboard of one environment, in display order. */
export function paymentDashboardWidgets(env: string, thresholds: MonitorThresholds, slos: readonly DashboardSlo[] = []): Widget[] {
  return [overview(env, thresholds, slos), ...SPAN_PANELS.map(({ span, service }) => spanPanel(span, service, env, thresholds)), fraudDecisions(env)];
}

export interface ApmDashboardArgs {
  /** The `env` every query is scoped to. */
  readonly env: string;
  /** The monitors' thresholds, drawn as markers and colours. */
  readonly thresholds: MonitorThresholds;
  /** SLOs shown at the top. Default: none. */
  readonly slos?: readonly DashboardSlo[];
}

/** One `datadog.Dashboard` (ordered layout) of the payment and fraud flow in one environment. */
export class ApmDashboard extends pulumi.ComponentResource {
  public readonly dashboardId: pulumi.Output<string>;
  /** Path of the dashboard in the Datadog app, e.g. /dashboard/abc-def-ghi/… */
  public readonly dashboardUrl: pulumi.Output<string>;

  constructor(name: string, args: ApmDashboardArgs, opts?: pulumi.ComponentResourceOptions) {
    super("payments-apm:monitoring:ApmDashboard", name, {}, opts);
    if (args.env.trim() === "") throw new pulumi.InputPropertyError({ propertyPath: "env", reason: "must not be empty" });
    const dashboard = new datadog.Dashboard(
      `${name}-dashboard`,
      {
        title: `Payments APM · ${args.env}`,
        description: `Payment and fraud flow in ${args.env}: hits, errors and latency percentiles of the measured spans (trace metrics, 100 % of traffic), SLOs and fraud decisions. Managed by Pulumi (payments-apm).`,
        layoutType: "ordered",
        reflowType: "auto",
        // Datadog accepts only team: tags on dashboards.
        tags: ["team:payments"],
        widgets: paymentDashboardWidgets(args.env, args.thresholds, args.slos ?? []),
      },
      { parent: this },
    );
    this.dashboardId = dashboard.id;
    this.dashboardUrl = dashboard.url;
    this.registerOutputs({ dashboardId: this.dashboardId, dashboardUrl: this.dashboardUrl });
  }
}
