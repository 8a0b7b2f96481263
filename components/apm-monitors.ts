import * as datadog from "@pulumi/datadog";
import * as pulumi from "@pulumi/pulumi";
import { SERVICES, SPANS } from "../app/src/tracing/conventions";

/**
 * The original design's three trace alerts as Datadog monitors on APM trace metrics, and
 * the post-processing lag (a payment's commit to its event's consumption).
 * `trace.<span>` (distribution, the only one with percentiles), `.hits` and `.errors`
 * exist for service-entry spans and measured spans: every span queried here is in
 * MEASURED_SPANS, which the app marks measured (test/apm-monitors.spec.ts checks the spans).
 */
export interface MonitorSpec {
  readonly key: string;
  readonly name: string;
  readonly query: string;
  /** Equal to the threshold in the query (Datadog rejects a mismatch). */
  readonly critical: string;
  readonly message: string;
  readonly tags: readonly string[];
  readonly span: string;
  readonly service: string;
}

export interface MonitorThresholds {
  readonly paymentLatencyP95Seconds: number;
  readonly paymentErrorRate: number;
  readonly databaseLatencyP95Seconds: number;
  /** p95 of the time from a payment's commit to its event's consumption, in seconds. */
  readonly postProcessingLagP95Seconds: number;
}

const scope = (env: string, service: string) => `{env:${env},service:${service}}`;

/** `percentile(last_<window>):p95:trace.<span>{env,service} > <seconds>` */
export function p95LatencyQuery(span: string, env: string, service: string, window: string, seconds: number): string {
  return `percentile(last_${window}):p95:trace.${span}${scope(env, service)} > ${seconds}`;
}

/** Errors ÷ hits of a span over a window, as counts. */
export function errorRateQuery(span: string, env: string, service: string, window: string, ratio: number): string {
  const s = scope(env, service);
  return `sum(last_${window}):( sum:trace.${span}.errors${s}.as_count() / sum:trace.${span}.hits${s}.as_count() ) > ${ratio}`;
}

/** The monitors for one environment. */
export function apmMonitorSpecs(env: string, thresholds: MonitorThresholds, notify: readonly string[]): MonitorSpec[] {
  const handles = notify.join(" ");
  const spec = (
    key: string,
    span: string,
    service: string,
    name: string,
    query: string,
    critical: number,
    what: string,
  ): MonitorSpec => ({
    key,
    span,
    service,
    name: `[${env}] ${name}`,
    query,
    critical: String(critical),
    message: [
      `{{#is_alert}}${what} for ${service} in ${env}: {{value}} (threshold ${critical}).{{/is_alert}}`,
      `{{#is_recovery}}${service} in ${env} is back under ${critical}.{{/is_recovery}}`,
      handles,
    ].join("\n"),
    tags: ["source:apm", `env:${env}`, `service:${service}`, "team:payments"],
  });
  const pay = SERVICES.payment;
  return [
    spec(
      "payment-latency",
      SPANS.processPayment,
      pay,
      "Payment p95 latency above threshold",
      p95LatencyQuery(SPANS.processPayment, env, pay, "5m", thresholds.paymentLatencyP95Seconds),
      thresholds.paymentLatencyP95Seconds,
      "Payment p95 latency over 5 minutes is high",
    ),
    spec(
      "payment-error-rate",
      SPANS.processPayment,
      pay,
      "Payment error rate above threshold",
      errorRateQuery(SPANS.processPayment, env, pay, "10m", thresholds.paymentErrorRate),
      thresholds.paymentErrorRate,
      "Payment error rate over 10 minutes is high",
    ),
    spec(
      "database-latency",
      SPANS.databaseQuery,
      pay,
      "Ledger database p95 latency above threshold",
      p95LatencyQuery(SPANS.databaseQuery, env, pay, "5m", thresholds.databaseLatencyP95Seconds),
      thresholds.databaseLatencyP95Seconds,
      "Ledger database p95 latency over 5 minutes is high",
    ),
    spec(
      "post-processing-lag",
      SPANS.postProcessingLag,
      SERVICES.postProcessing,
      "Post-processing lag p95 above threshold",
      p95LatencyQuery(SPANS.postProcessingLag, env, SERVICES.postProcessing, "5m", thresholds.postProcessingLagP95Seconds),
      thresholds.postProcessingLagP95Seconds,
      "Post-processing lag p95 (payment commit to consumption) over 5 minutes is high: the relay, the broker or a consumer is behind or down",
    ),
  ];
}

export interface ApmMonitorsArgs {
  readonly env: string;
  readonly thresholds: MonitorThresholds;
  /** Notification handles, e.g. @slack-payments-alerts. */
  readonly notify: readonly string[];
}

/** `datadog.Monitor`s for payment latency, payment error rate, ledger database latency and post-processing lag. */
export class ApmMonitors extends pulumi.ComponentResource {
  /** Monitor ids by key (payment-latency, payment-error-rate, database-latency, post-processing-lag). */
  public readonly monitorIds: pulumi.Output<Record<string, string>>;

  constructor(name: string, args: ApmMonitorsArgs, opts?: pulumi.ComponentResourceOptions) {
    super("payments-apm:monitoring:ApmMonitors", name, {}, opts);
    const monitors = apmMonitorSpecs(args.env, args.thresholds, args.notify).map(
      (spec) =>
        [
          spec.key,
          new datadog.Monitor(
            `${name}-${spec.key}`,
            {
              name: spec.name,
              type: "query alert",
              query: spec.query,
              message: spec.message,
              monitorThresholds: { critical: spec.critical },
              tags: [...spec.tags],
              notifyNoData: false,
              requireFullWindow: false,
              includeTags: true,
              renotifyInterval: 60,
            },
            { parent: this },
          ),
        ] as const,
    );
    this.monitorIds = pulumi.all(Object.fromEntries(monitors.map(([k, m]) => [k, m.id])));
    this.registerOutputs({ monitorIds: this.monitorIds });
  }
}
