/**
 * The configurations one benchmark run alternates between: this build and the previous
 * runtime, traced (the prod env as rendered) and untraced, then candidate cuts, each the
 * traced build plus one change. A code change is a text replacement in the compiled app as
 * it loads (source-patch.cjs: `file` under app/dist/src/), so app/ stays as it is.
 */
export interface BenchConfig {
  readonly id: string;
  readonly title: string;
  readonly build: "this" | "previous";
  readonly traced: boolean;
  /** On top of the rendered prod env, both services; undefined removes a variable. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  readonly patches?: readonly { file: string; find: string; replace: string }[];
  /** For a candidate cut: what it changes, and what it would take to keep it. */
  readonly cut?: string;
}

/** The previous runtime: the last commit on Node 22 with dd-trace 5.132.0 (lib/previous.ts builds it). */
export const PREVIOUS = {
  commit: "f12a067",
  title: "Node 22.23.0 + dd-trace 5.132.0",
};

const untraced = { DD_TRACE_ENABLED: "false" };

export const CONFIGS: readonly BenchConfig[] = [
  { id: "untraced", title: "this build, untraced", build: "this", traced: false, env: untraced },
  { id: "traced", title: "this build, traced (prod sampling)", build: "this", traced: true },
  { id: "prev-untraced", title: "previous runtime, untraced", build: "previous", traced: false, env: untraced },
  { id: "prev-traced", title: "previous runtime, traced (prod sampling)", build: "previous", traced: true },
  {
    id: "cut-stats",
    title: "cut: client-side stats",
    build: "this",
    traced: true,
    env: { DD_TRACE_STATS_COMPUTATION_ENABLED: "true" },
    cut:
      "DD_TRACE_STATS_COMPUTATION_ENABLED=true: the tracer computes the trace metrics itself and drops sampled-out " +
      "traces instead of serialising them. Payment traces are all kept by rule, so only other traces could be saved; " +
      "the agent must then be told not to compute the stats again (it honours the Datadog-Client-Computed-Stats header).",
  },
  {
    id: "cut-integrations",
    title: "cut: net and dns integrations off",
    build: "this",
    traced: true,
    env: { DD_TRACE_NET_ENABLED: "false", DD_TRACE_DNS_ENABLED: "false" },
    cut:
      "DD_TRACE_{NET,DNS}_ENABLED=false: no tcp.connect / dns.lookup spans and no hooks on those modules (fs is off " +
      "by default); " +
      "no business span or monitored span depends on them (a slow connect still shows as a gap in pg.query).",
  },
  {
    id: "cut-encoder",
    title: "cut: v0.5 encoder",
    build: "this",
    traced: true,
    env: { DD_TRACE_AGENT_PROTOCOL_VERSION: "0.5" },
    cut: "DD_TRACE_AGENT_PROTOCOL_VERSION=0.5: the agent's string-table format, fewer bytes to encode and send.",
  },
  {
    id: "cut-db-wrapper",
    title: "cut: no database.query wrapper spans",
    build: "this",
    traced: true,
    patches: [
      {
        file: "ledger/db.js",
        find: "function dbQuery(pool, operation, text, values = []) {",
        replace: "function dbQuery(pool, operation, text, values = []) {\n    return pool.query(text, values);",
      },
    ],
    cut:
      "Statements go straight to pg.query (3 spans fewer per payment). The database p95 monitor queries " +
      "trace.database.query; kept, it would have to query the pg.query spans' trace metrics (service-entry spans of " +
      "payment-service-postgres) instead, and lose the short operation name as resource.",
  },
  {
    id: "cut-tags",
    title: "cut: no detail tags",
    build: "this",
    traced: true,
    patches: [
      {
        file: "tracing/spans.js",
        find: "function setTags(span, tags) {",
        replace:
          "const BENCH_DETAIL = new Set(Object.values(require(\"./conventions\").DETAIL_TAGS));\n" +
          "function setTags(span, tags) {\n    tags = Object.fromEntries(Object.entries(tags).filter(([k]) => !BENCH_DETAIL.has(k)));",
      },
    ],
    cut:
      "The app's detail tags (DETAIL_TAGS: scores, validation results, db.operation / db.row_count; ~19 keys) not set; " +
      "business tags the dashboard and the sampling rules use stay.",
  },
];

export function configById(id: string): BenchConfig {
  const found = CONFIGS.find((c) => c.id === id);
  if (!found) throw new Error(`unknown configuration ${id} (known: ${CONFIGS.map((c) => c.id).join(", ")})`);
  return found;
}
