import * as datadog from "@pulumi/datadog";
import * as pulumi from "@pulumi/pulumi";
import { FLOWS, HTTP_SERVER_SPAN, ROOT_AUTH, SERVICES, SPANS, TAGS, type ServiceName } from "../app/src/tracing/conventions";
import type { StackSettings } from "./config";

/**
 * The sampling policy of the original design (its TraceSampler), made real in three places:
 *
 * | policy                         | where it acts                         | what renders it                  |
 * |--------------------------------|---------------------------------------|----------------------------------|
 * | base rate, always-kept flows,  | the tracer, on the local root span    | DD_TRACE_SAMPLE_RATE,            |
 * | customer tiers, rate limits    | (head-based)                          | DD_TRACE_SAMPLING_RULES,         |
 * |                                |                                       | DD_TRACE_RATE_LIMIT              |
 * | errors, rare traces            | the Agent (head sampling can't know)  | DD_APM_ERROR_TPS, rare sampler   |
 * | errors 50 %, slow > 1 s 80 %   | Datadog indexing (retention filters)  | datadog.ApmRetentionFilter       |
 *
 * Rate limits, as dd-trace 5.132.0 applies them (priority_sampler.js, sampling_rule.js), per
 * process: a trace a rule keeps must then pass the rule's own `max_per_second`, if it has
 * one, and always the one DD_TRACE_RATE_LIMIT limiter, always-keep rules included (a
 * `max_per_second` adds a limit, it never lifts that one). So the always-keep rules get no
 * `max_per_second`, every sampled rule (tiers, base rate) gets one, and DD_TRACE_RATE_LIMIT
 * covers the always-keep peak plus those caps (checked in config.ts): a flood of other
 * traffic stops at its rules' caps instead of taking the payments' tokens.
 */
export type SamplingPolicy = StackSettings["sampling"];

/** One rule of DD_TRACE_SAMPLING_RULES, in the shape dd-trace documents. */
export interface TracerSamplingRule {
  readonly service?: string;
  readonly name?: string;
  readonly resource?: string;
  readonly tags?: Readonly<Record<string, string>>;
  readonly sample_rate: number;
  readonly max_per_second?: number;
}

/**
 * Business operations whose traces start at an HTTP request: the tracer decides on the
 * local root span, which is the HTTP server span (`fastify.request`), not the business
 * span. The app tags that root with `payments.flow` in its first request hook, before any
 * outgoing call, so the rule sees it when the decision is taken.
 */
const HTTP_FLOWS: Readonly<Record<string, { service: ServiceName; flow: string }>> = {
  [SPANS.processPayment]: { service: SERVICES.payment, flow: FLOWS.payment },
  [SPANS.fraudDetection]: { service: SERVICES.fraud, flow: FLOWS.fraudScore },
};

/** Spans of the authentication hook (app/src/auth/hook.ts), in both services. */
const AUTHENTICATION_SPANS: ReadonlySet<string> = new Set([SPANS.userAuthentication, SPANS.serviceAuthentication]);

/**
 * DD_TRACE_SAMPLING_RULES for one service. First match wins; the last rule matches every
 * root at the base rate. It stands in for the rule dd-trace adds for DD_TRACE_SAMPLE_RATE,
 * whose `max_per_second` is DD_TRACE_RATE_LIMIT itself: too high a cap for other traffic.
 */
export function samplingRulesFor(policy: SamplingPolicy, service: ServiceName): TracerSamplingRule[] {
  const rules: TracerSamplingRule[] = [];
  for (const operation of policy.alwaysKeep) {
    const http = HTTP_FLOWS[operation];
    if (AUTHENTICATION_SPANS.has(operation)) {
      // Authentication runs inside a request of either service, never as a root: the hook
      // tags the root `payments.auth: failed` before any outgoing call, so this rule keeps
      // every trace of a refused caller.
      if (!rules.some((r) => r.tags?.[TAGS.rootAuth])) {
        rules.push({ service, name: HTTP_SERVER_SPAN, tags: { [TAGS.rootAuth]: ROOT_AUTH.failed }, sample_rate: 1 });
      }
    } else if (http) {
      if (http.service === service) rules.push({ service, name: HTTP_SERVER_SPAN, tags: { [TAGS.flow]: http.flow }, sample_rate: 1 });
    } else {
      // An operation with no HTTP entry point here is kept when it is itself a local root
      // (a job, a consumer): the rule matches the span by name.
      rules.push({ service, name: operation, sample_rate: 1 });
    }
  }
  const cap = policy.sampledRuleMaxPerSecond;
  for (const [tier, rate] of Object.entries(policy.tierRates)) {
    rules.push({ service, tags: { [TAGS.rootTier]: tier }, sample_rate: rate, max_per_second: cap });
  }
  // Unscoped: roots of any other service name get the base rate too.
  rules.push({ sample_rate: policy.baseRate, max_per_second: cap });
  return rules;
}

/** The tracer's sampling env for one service. Rate limits are in traces/s per process. */
export function tracerSamplingEnv(policy: SamplingPolicy, service: ServiceName): Record<string, string> {
  return {
    // Also the tracer's reported sample rate; the last rule applies it first, with its cap.
    DD_TRACE_SAMPLE_RATE: String(policy.baseRate),
    DD_TRACE_SAMPLING_RULES: JSON.stringify(samplingRulesFor(policy, service)),
    DD_TRACE_RATE_LIMIT: String(policy.rateLimit),
  };
}

/** The Agent's samplers: what the tracers' head-based decision cannot know. */
export function agentSamplers(policy: SamplingPolicy) {
  return {
    targetTracesPerSecond: policy.agent.targetTracesPerSecond,
    errorTracesPerSecond: policy.agent.errorTracesPerSecond,
    rareSamplerEnabled: policy.agent.rareSamplerEnabled,
  };
}

/** A retention filter's rate: Datadog wants a decimal string between "0.0" and "1.0". */
export function retentionRate(rate: number): string {
  return Number.isInteger(rate) ? rate.toFixed(1) : String(rate);
}

export interface RetentionFilterSpec {
  readonly key: "errors" | "slow";
  readonly name: string;
  readonly query: string;
  readonly rate: string;
}

/** Retention filters for error and slow traces of the given services in one environment. */
export function retentionFilters(policy: SamplingPolicy, env: string, services: readonly string[]): RetentionFilterSpec[] {
  const scope = `env:${env} AND service:(${services.join(" OR ")})`;
  const slowNs = Math.round(policy.slowTraces.thresholdMs * 1_000_000);
  return [
    { key: "errors", name: `payments-apm ${env}: error spans`, query: `${scope} AND status:error`, rate: retentionRate(policy.errorRate) },
    { key: "slow", name: `payments-apm ${env}: spans slower than ${policy.slowTraces.thresholdMs} ms`, query: `${scope} AND @duration:>${slowNs}`, rate: retentionRate(policy.slowTraces.rate) },
  ];
}

export interface TraceRetentionArgs {
  readonly policy: SamplingPolicy;
  /** The `env` the filters are scoped to. */
  readonly env: string;
  /** Services whose spans the filters keep. */
  readonly services: readonly string[];
}

/** Datadog retention filters for error and slow spans (what gets indexed among ingested spans). */
export class TraceRetention extends pulumi.ComponentResource {
  public readonly filterIds: pulumi.Output<Record<string, string>>;

  constructor(name: string, args: TraceRetentionArgs, opts?: pulumi.ComponentResourceOptions) {
    super("payments-apm:sampling:TraceRetention", name, {}, opts);
    const filters = retentionFilters(args.policy, args.env, args.services).map(
      (spec) =>
        [
          spec.key,
          new datadog.ApmRetentionFilter(
            `${name}-${spec.key}`,
            { name: spec.name, enabled: true, filterType: "spans-sampling-processor", filter: { query: spec.query }, rate: spec.rate },
            { parent: this },
          ),
        ] as const,
    );
    this.filterIds = pulumi.all(Object.fromEntries(filters.map(([k, f]) => [k, f.id])));
    this.registerOutputs({ filterIds: this.filterIds });
  }
}
