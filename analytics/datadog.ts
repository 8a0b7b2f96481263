/**
 * The Datadog reader: Spans API v2 through @datadog/datadog-api-client.
 *
 * - `POST /api/v2/spans/analytics/aggregate`: Datadog's own count, average, p95 and p99 of
 *   `@duration` per service and operation over every indexed span of the window (the
 *   totals the search below is checked against).
 * - `POST /api/v2/spans/events/search`: the spans themselves, page by page (`page.cursor` =
 *   the previous answer's `meta.page.after`), oldest first, up to `maxSpans`; they go
 *   through the same `analyzeSpans` as a capture file.
 *
 * Both filter on `env:<env> service:(payment-service OR fraud-service)` over an absolute
 * window (ISO 8601 `from`/`to`). Keys come from DD_API_KEY/DD_APP_KEY and are never printed.
 */
import type * as DatadogCommon from "@datadog/datadog-api-client/dist/packages/datadog-api-client-common";
import type { Span, SpansAggregateResponse, SpansListResponse } from "@datadog/datadog-api-client/dist/packages/datadog-api-client-v2";
import { SERVICES } from "../app/src/tracing/conventions";
import type { SpanRecord } from "./spans";

export class DatadogSpansError extends Error {
  override readonly name = "DatadogSpansError";
  constructor(
    message: string,
    /** 1: Datadog refused or failed; 2: nothing was asked (missing keys). */
    readonly exitCode: 1 | 2,
  ) {
    super(message);
  }
}

/** `30m`, `1h`, `2d`, `1w` → milliseconds. */
export function parseSince(since: string): number {
  const m = /^(\d+)\s*(s|m|h|d|w)$/.exec(since.trim());
  if (!m || Number(m[1]) === 0) throw new DatadogSpansError(`--since must be a duration such as 15m, 1h or 2d, got ${JSON.stringify(since)}`, 2);
  const unit = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 }[m[2] as "s" | "m" | "h" | "d" | "w"];
  return Number(m[1]) * unit;
}

/** The search query for a stack's spans: its env and the two services. */
export function spansQuery(env: string): string {
  return `env:${env} service:(${SERVICES.payment} OR ${SERVICES.fraud})`;
}

export interface DatadogTotal {
  readonly service: string;
  readonly operation: string;
  readonly count: number;
  readonly avgMs: number | null;
  readonly p95Ms: number | null;
  readonly p99Ms: number | null;
}

export interface DatadogFetch {
  readonly spans: SpanRecord[];
  /** Datadog's aggregate per service and operation over the whole window. */
  readonly totals: DatadogTotal[];
  /** The search stopped at `maxSpans` before the last page. */
  readonly truncated: boolean;
  /** Site and query, for the report's header. */
  readonly description: string;
}

export interface DatadogFetchOptions {
  readonly site: string;
  readonly env: string;
  readonly fromMs: number;
  readonly toMs: number;
  readonly apiKey: string | undefined;
  readonly appKey: string | undefined;
  /** Instead of https://api.<site> (a local stand-in in tests). */
  readonly baseUrl?: string;
  /** Stop searching after this many spans. */
  readonly maxSpans: number;
  /** Spans per search page (the API allows up to 1000). Default 1000. */
  readonly pageSize?: number;
  readonly timeoutMs?: number;
  readonly progress?: (line: string) => void;
}

export async function fetchDatadogSpans(options: DatadogFetchOptions): Promise<DatadogFetch> {
  const apiKey = options.apiKey?.trim();
  const appKey = options.appKey?.trim();
  const missing = [apiKey ? undefined : "DD_API_KEY", appKey ? undefined : "DD_APP_KEY"].filter(Boolean);
  if (missing.length > 0) {
    throw new DatadogSpansError(`${missing.join(" and ")} not set: the Spans API needs an API key and an application key with apm_read (or give --spans FILE for a capture of the local intake)`, 2);
  }
  const secrets = [apiKey!, appKey!];
  const redact = (text: string) => secrets.filter((k) => k.length >= 4).reduce((t, k) => t.split(k).join("[redacted]"), text);

  const [common, v2, log] = await Promise.all([
    import("@datadog/datadog-api-client/dist/packages/datadog-api-client-common"),
    import("@datadog/datadog-api-client/dist/packages/datadog-api-client-v2"),
    import("@datadog/datadog-api-client/dist/logger"),
  ]);
  // The client logs failed requests itself, with stack traces: this reader reports them.
  log.logger.setLevel("silent");
  const baseServer = options.baseUrl ? new common.BaseServerConfiguration(options.baseUrl.replace(/\/$/, ""), {}) : undefined;
  const configuration = () => {
    const c = common.createConfiguration({
      authMethods: { apiKeyAuth: apiKey, appKeyAuth: appKey },
      fetch: globalThis.fetch,
      baseServer,
      httpConfig: { signal: AbortSignal.timeout(options.timeoutMs ?? 60_000) },
    });
    if (!baseServer) c.setServerVariables({ site: options.site });
    return c;
  };
  const api = () => new v2.SpansApi(configuration());
  const filter = { from: new Date(options.fromMs).toISOString(), to: new Date(options.toMs).toISOString(), query: spansQuery(options.env) };
  const target = options.baseUrl ?? `https://api.${options.site}`;
  const call = async <T>(what: string, send: () => Promise<T>): Promise<T> => {
    try {
      return await send();
    } catch (error) {
      throw new DatadogSpansError(redact(describeFailure(common, error, what, target)), 1);
    }
  };

  const aggregate: SpansAggregateResponse = await call("aggregate", () =>
    api().aggregateSpans({
      body: {
        data: {
          type: "aggregate_request",
          attributes: {
            filter,
            compute: [
              { aggregation: "count", type: "total" },
              { aggregation: "avg", metric: "@duration", type: "total" },
              { aggregation: "pc95", metric: "@duration", type: "total" },
              { aggregation: "pc99", metric: "@duration", type: "total" },
            ],
            groupBy: [
              { facet: "service", limit: 10 },
              { facet: "operation_name", limit: 100 },
            ],
          },
        },
      },
    }),
  );
  const totals = (aggregate.data ?? []).map((bucket): DatadogTotal => {
    const by = bucket.attributes?.by ?? {};
    const c = (bucket.attributes?.computes ?? {}) as Record<string, unknown>;
    const nsToMs = (v: unknown) => (typeof v === "number" ? v / 1e6 : null);
    return {
      service: String(by.service ?? ""),
      operation: String(by.operation_name ?? ""),
      count: typeof c.c0 === "number" ? c.c0 : 0,
      avgMs: nsToMs(c.c1),
      p95Ms: nsToMs(c.c2),
      p99Ms: nsToMs(c.c3),
    };
  });

  const spans: SpanRecord[] = [];
  const pageSize = Math.min(options.pageSize ?? 1000, options.maxSpans);
  let cursor: string | undefined;
  let truncated = false;
  for (let page = 1; ; page++) {
    const answer: SpansListResponse = await call("search", () =>
      api().listSpans({
        body: {
          data: {
            type: "search_request",
            attributes: { filter, sort: "timestamp", page: { limit: pageSize, ...(cursor ? { cursor } : {}) } },
          },
        },
      }),
    );
    for (const span of answer.data ?? []) spans.push(spanFromDatadog(span));
    cursor = answer.meta?.page?.after;
    options.progress?.(`traces:analyze: search page ${page}: ${spans.length} spans`);
    if (!cursor || (answer.data ?? []).length === 0) break;
    if (spans.length >= options.maxSpans) {
      truncated = true;
      break;
    }
  }
  return { spans: spans.slice(0, options.maxSpans), totals, truncated, description: `${target} "${filter.query}"` };
}

function describeFailure(client: typeof DatadogCommon, error: unknown, what: string, target: string): string {
  if (error instanceof client.ApiException) {
    // Errors come as strings (APIErrorResponse) or as JSON:API objects with title/detail.
    const body = error.body as { errors?: unknown[] } | string | undefined;
    const one = (e: unknown) => (typeof e === "string" ? e : [(e as { title?: string }).title, (e as { detail?: string }).detail].filter(Boolean).join(": ") || JSON.stringify(e));
    const detail = typeof body === "object" && body && Array.isArray(body.errors) ? body.errors.map(one).join("; ") : typeof body === "string" ? body : JSON.stringify(body);
    if (error.code === 403 || error.code === 401) {
      return `Datadog refused the ${what} request (HTTP ${error.code}: ${detail}): check that DD_API_KEY and DD_APP_KEY belong to the stack's site (${target}) and that the application key has the apm_read scope`;
    }
    if (error.code === 429) {
      return `Datadog rate-limited the ${what} request (HTTP 429: ${detail}): the Spans API allows 300 requests per hour; wait and retry, or narrow --since / --max-spans`;
    }
    return `Datadog answered the ${what} request with HTTP ${error.code}: ${detail}`;
  }
  const e = error as { name?: string; message?: string; cause?: { message?: string } };
  if (e.name === "TimeoutError" || e.name === "AbortError") return `the ${what} request to ${target} timed out`;
  return `the ${what} request to ${target} failed: ${e.message ?? String(error)}${e.cause?.message ? ` (${e.cause.message})` : ""}`;
}

/**
 * A span of the search answer as a SpanRecord. The reserved fields come from
 * `attributes` (ids, service, resource_name, timestamps); the operation name, `duration`
 * (ns), `error.*` and the span's tags from `attributes.custom` (nested objects, flattened
 * back to dotted keys: `{payment: {final_status: …}}` → `payment.final_status`).
 */
export function spanFromDatadog(span: Span): SpanRecord {
  const a = span.attributes ?? {};
  const flat: Record<string, unknown> = {};
  flatten(a.custom ?? {}, "", flat);
  flatten(a.attributes ?? {}, "", flat);
  const start = a.startTimestamp instanceof Date ? a.startTimestamp.getTime() : Date.parse(String(a.startTimestamp ?? ""));
  const end = a.endTimestamp instanceof Date ? a.endTimestamp.getTime() : Date.parse(String(a.endTimestamp ?? ""));
  const durationNs = typeof flat.duration === "number" ? flat.duration : (end - start) * 1e6;
  const meta: Record<string, string> = {};
  const metrics: Record<string, number> = {};
  for (const [key, value] of Object.entries(flat)) {
    if (key === "duration" || key === "operation_name") continue;
    if (typeof value === "number") metrics[key] = value;
    else if (typeof value === "string") meta[key] = value;
    else if (typeof value === "boolean") meta[key] = String(value);
  }
  const error = flat.status === "error" || flat["error.type"] !== undefined || flat["error.message"] !== undefined || (a.tags ?? []).includes("status:error");
  return {
    traceId: a.traceId ?? "",
    spanId: a.spanId ?? span.id ?? "",
    parentId: a.parentId ?? "0",
    service: a.service ?? "",
    name: String(flat.operation_name ?? (span.additionalProperties as Record<string, unknown> | undefined)?.operation_name ?? ""),
    resource: a.resourceName ?? "",
    startMs: start,
    durationMs: durationNs / 1e6,
    error,
    meta,
    metrics,
  };
}

function flatten(value: unknown, prefix: string, into: Record<string, unknown>): void {
  if (value !== null && typeof value === "object" && !Array.isArray(value) && !(value instanceof Date)) {
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) flatten(v, prefix ? `${prefix}.${k}` : k, into);
  } else if (prefix && into[prefix] === undefined) {
    into[prefix] = Array.isArray(value) ? value.join(",") : value;
  }
}
