import * as datadog from "@pulumi/datadog";
import * as pulumi from "@pulumi/pulumi";
import { sloSettingsSchema, type StackSettings } from "./config";
import { SERVICES, SPANS } from "../app/src/tracing/conventions";

/**
 * Service level objectives of the payment flow, on the trace metrics of
 * `payment.process_payment` (a measured span, so its metrics count 100 % of traffic
 * whatever the sampling):
 *
 * - availability, a metric SLO: good = hits − errors, total = hits. Declined payments
 *   (funds, limits, fraud) return normally from the span, so only failures count as bad.
 * - latency, a time-slice SLO: the share of 5-minute slices whose p95 stays at or under the
 *   threshold. Why time-slice: a metric (count-based) SLO would need the count of requests
 *   under the threshold, which Datadog only answers for distributions with threshold queries
 *   enabled, a setting of custom metrics that `trace.*` metrics do not offer; a monitor-based
 *   SLO would tie the objective to the alerting monitor (changing its window or threshold
 *   rewrites the SLO's meaning) and adds a monitor to maintain. Time-slice SLOs take the same
 *   percentile query as the latency monitor and are Datadog's documented way to express
 *   "p95 latency under X" as an SLO.
 */

export type SloSettings = StackSettings["slos"];

/** The defaults, for stacks whose config has no `slos` key. */
export const SLO_DEFAULTS: SloSettings = Object.freeze(sloSettingsSchema.parse(undefined));

export interface SloSpec {
  /** Stable key: the logical name suffix and the key of the exported ids. */
  readonly key: "payment-availability" | "payment-latency";
  readonly name: string;
  readonly description: string;
  readonly type: "metric" | "time_slice";
  readonly query?: { readonly numerator: string; readonly denominator: string };
  readonly timeSlice?: { readonly query: string; readonly comparator: "<="; readonly threshold: number; readonly queryIntervalSeconds: 300 };
  readonly timeframe: SloSettings["timeframe"];
  readonly target: number;
  readonly tags: readonly string[];
}

const scope = (env: string, service: string) => `{env:${env},service:${service}}`;

/** Good (hits − errors) and total (hits) events of a span, as counts. */
export function availabilityQuery(span: string, env: string, service: string): { numerator: string; denominator: string } {
  const s = scope(env, service);
  const hits = `sum:trace.${span}.hits${s}.as_count()`;
  return { numerator: `${hits} - sum:trace.${span}.errors${s}.as_count()`, denominator: hits };
}

/** The p95 of a span's duration distribution, in seconds (the latency monitor's metric). */
export function p95Query(span: string, env: string, service: string): string {
  return `p95:trace.${span}${scope(env, service)}`;
}

/** The payment flow's two SLOs in one environment. */
export function paymentSloSpecs(env: string, settings: SloSettings, latencyThresholdSeconds: number): SloSpec[] {
  const span = SPANS.processPayment;
  const service = SERVICES.payment;
  const threshold = settings.latencyThresholdSeconds ?? latencyThresholdSeconds;
  const tags = ["source:apm", `env:${env}`, `service:${service}`, "team:payments"];
  return [
    {
      key: "payment-availability",
      name: `[${env}] Payment availability`,
      description: `Share of ${span} spans of ${service} in ${env} that end without an error (declined payments are not errors).`,
      type: "metric",
      query: availabilityQuery(span, env, service),
      timeframe: settings.timeframe,
      target: settings.availabilityTarget,
      tags,
    },
    {
      key: "payment-latency",
      name: `[${env}] Payment latency p95 ≤ ${threshold} s`,
      description: `Share of 5-minute slices in which the p95 of ${span} for ${service} in ${env} is at most ${threshold} s.`,
      type: "time_slice",
      timeSlice: { query: p95Query(span, env, service), comparator: "<=", threshold, queryIntervalSeconds: 300 },
      timeframe: settings.timeframe,
      target: settings.latencyTarget,
      tags,
    },
  ];
}

export interface ApmSlosArgs {
  /** The `env` the SLOs are scoped to. */
  readonly env: string;
  /** Targets and window; {@link SLO_DEFAULTS} when the stack sets none. */
  readonly settings: SloSettings;
  /** The latency monitor's p95 threshold (seconds), used unless settings name another. */
  readonly latencyThresholdSeconds: number;
}

/** Problems with the args, as property path + reason (thrown before any child is created). */
export function apmSlosArgsProblems(args: ApmSlosArgs): pulumi.InputPropertyErrorDetails[] {
  const problems: pulumi.InputPropertyErrorDetails[] = [];
  if (args.env.trim() === "") problems.push({ propertyPath: "env", reason: "must not be empty" });
  const parsed = sloSettingsSchema.safeParse(args.settings);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) problems.push({ propertyPath: ["settings", ...issue.path.map(String)].join("."), reason: issue.message });
  }
  if (!(args.latencyThresholdSeconds > 0) || !Number.isFinite(args.latencyThresholdSeconds)) {
    problems.push({ propertyPath: "latencyThresholdSeconds", reason: `must be a number of seconds greater than 0, got ${args.latencyThresholdSeconds}` });
  }
  return problems;
}

/** `datadog.ServiceLevelObjective`s for the payment flow: availability and latency. */
export class ApmSlos extends pulumi.ComponentResource {
  /** SLO ids by key (payment-availability, payment-latency). */
  public readonly sloIds: pulumi.Output<Record<string, string>>;
  /** Each SLO with its name, window and id (what a dashboard shows). */
  public readonly objectives: readonly { readonly key: SloSpec["key"]; readonly name: string; readonly timeframe: string; readonly id: pulumi.Output<string> }[];

  constructor(name: string, args: ApmSlosArgs, opts?: pulumi.ComponentResourceOptions) {
    super("payments-apm:monitoring:ApmSlos", name, {}, opts);
    const problems = apmSlosArgsProblems(args);
    if (problems.length > 0) {
      throw problems.length === 1
        ? new pulumi.InputPropertyError(problems[0])
        : new pulumi.InputPropertiesError({ message: `Invalid ApmSlos ${JSON.stringify(name)} arguments`, errors: problems });
    }

    const specs = paymentSloSpecs(args.env, args.settings, args.latencyThresholdSeconds);
    const slos = specs.map(
      (spec) =>
        [
          spec.key,
          new datadog.ServiceLevelObjective(
            `${name}-${spec.key}`,
            {
              name: spec.name,
              description: spec.description,
              type: spec.type,
              query: spec.query,
              sliSpecification: spec.timeSlice && {
                timeSlice: {
                  query: { formula: { formulaExpression: "p95" }, queries: [{ metricQuery: { name: "p95", query: spec.timeSlice.query } }] },
                  comparator: spec.timeSlice.comparator,
                  threshold: spec.timeSlice.threshold,
                  queryIntervalSeconds: spec.timeSlice.queryIntervalSeconds,
                },
              },
              thresholds: [{ timeframe: spec.timeframe, target: spec.target }],
              timeframe: spec.timeframe,
              targetThreshold: spec.target,
              tags: [...spec.tags],
            },
            { parent: this },
          ),
        ] as const,
    );
    this.sloIds = pulumi.all(Object.fromEntries(slos.map(([k, slo]) => [k, slo.id])));
    this.objectives = specs.map((spec, i) => ({ key: spec.key, name: spec.name, timeframe: spec.timeframe, id: slos[i][1].id }));
    this.registerOutputs({ sloIds: this.sloIds });
  }
}
