/**
 * The configurations one run alternates between: this build and the previous runtime, traced
 * (the prod env as rendered) and untraced, then variants of this build traced with one
 * change each. A `cost` variant turns a feature off, to measure what it costs (traced −
 * variant); a `cut` is a candidate cut of the tracing overhead (variant − traced). A code
 * change is a text replacement in the compiled app as it loads (source-patch.cjs: `file`
 * under app/dist/src/), so app/ stays as it is.
 */
export interface BenchConfig {
  readonly id: string;
  readonly title: string;
  readonly build: "this" | "previous";
  readonly traced: boolean;
  /** TLS to PostgreSQL (verify-full) and Redis (rediss://), as prod; the previous runtime has none. */
  readonly tls: boolean;
  /** On top of the rendered prod env, both services; undefined removes a variable. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  readonly patches?: readonly { file: string; find: string; replace: string }[];
  /** A variant of `traced`: what it changes, and what keeping it would take. */
  readonly variant?: { readonly kind: "cost" | "cut"; readonly note: string };
}

/** The previous runtime: the last commit on Node 22 with dd-trace 5.132.0 (lib/previous.ts builds it). */
export const PREVIOUS = { commit: "f12a067", title: "Node 22.23.0 + dd-trace 5.132.0" };

const untraced = { DD_TRACE_ENABLED: "false" };
type Change = Pick<BenchConfig, "env" | "patches"> & { tls?: boolean };
const variant = (id: string, title: string, kind: "cost" | "cut", note: string, change: Change): BenchConfig =>
  ({ id, title, build: "this", traced: true, tls: true, variant: { kind, note }, ...change });
const PERF = "tracing/performance.js";
const noop = (file: string, fn: string, body = "return;") => ({ file, find: `function ${fn} {`, replace: `function ${fn} {\n    ${body}` });

export const CONFIGS: readonly BenchConfig[] = [
  { id: "untraced", title: "this build, untraced", build: "this", traced: false, tls: true, env: untraced },
  { id: "traced", title: "this build, traced (prod sampling)", build: "this", traced: true, tls: true },
  { id: "prev-untraced", title: "previous runtime, untraced", build: "previous", traced: false, tls: false, env: untraced },
  { id: "prev-traced", title: "previous runtime, traced (prod sampling)", build: "previous", traced: true, tls: false },
  variant("no-verify", "token verification", "cost",
    "jose's jwtVerify (signature, algorithm, iss, aud, exp, nbf) replaced by decodeJwt in both services: the ES256 " +
    "user token payment-service verifies and the RS256 ServiceAccount token fraud-service verifies, once per payment " +
    "each. The claims checks and the authentication spans stay.",
    { patches: [{ file: "auth/keys.js", find: "(0, jose_1.jwtVerify)(token,", replace: "((t) => ({ payload: (0, jose_1.decodeJwt)(t) }))(token," }] }),
  variant("no-tls", "TLS to PostgreSQL and Redis", "cost",
    "PGSSLMODE=disable to the same PostgreSQL, and a redis-server with the same AUTH token without TLS. The " +
    "connections are pooled, so this is encryption per statement and command; the handshakes happen at start-up.",
    { tls: false }),
  variant("no-annotations", "performance annotations", "cost",
    "The performance.* tags off: no AsyncLocalStorage counters per payment, no timers around statements, the fraud " +
    "call and the Redis read, no tags set.",
    { patches: [
      noop(PERF, "measuringPayment(fn)", "return fn({ dbQueryCount: 0, dbTotalMs: 0, fraudCallMs: 0 });"),
      noop(PERF, "annotatePerformance(span, p)"),
      noop(PERF, "annotateCacheTime(span, ms)"),
      noop(PERF, "startTimer()", "return 0n;"),
      noop(PERF, "elapsedMs(start)", "return 0;"),
    ] }),
  variant("cut-stats", "client-side stats", "cut",
    "DD_TRACE_STATS_COMPUTATION_ENABLED=true: the tracer computes the trace metrics and drops sampled-out traces " +
    "unserialised (payment traces are all kept by rule); the agent then skips its own (Datadog-Client-Computed-Stats).",
    { env: { DD_TRACE_STATS_COMPUTATION_ENABLED: "true" } }),
  variant("cut-integrations", "net and dns integrations off", "cut",
    "DD_TRACE_{NET,DNS}_ENABLED=false: no tcp.connect / dns.lookup spans or hooks; no business or monitored span " +
    "depends on them (a slow connect still shows as a gap in pg.query).",
    { env: { DD_TRACE_NET_ENABLED: "false", DD_TRACE_DNS_ENABLED: "false" } }),
  variant("cut-encoder", "v0.5 encoder", "cut",
    "DD_TRACE_AGENT_PROTOCOL_VERSION=0.5: the agent's string-table format, fewer bytes to encode and send.",
    { env: { DD_TRACE_AGENT_PROTOCOL_VERSION: "0.5" } }),
  variant("cut-db-wrapper", "no database.query wrapper spans", "cut",
    "Statements go straight to pg.query (3 spans fewer per payment); kept, the database p95 monitor would query " +
    "the pg.query spans' trace metrics instead of trace.database.query, without the short operation name.",
    { patches: [noop("ledger/db.js", "dbQuery(pool, operation, text, values = [])", "return pool.query(text, values);")] }),
  variant("cut-tags", "no detail tags", "cut",
    "DETAIL_TAGS (scores, validation results, db.operation / db.row_count; ~19 keys) not set; the business tags " +
    "the dashboard and the sampling rules use stay.",
    { patches: [noop("tracing/spans.js", "setTags(span, tags)",
      "const detail = (globalThis.benchDetail ??= new Set(Object.values(require(\"./conventions\").DETAIL_TAGS)));\n" +
      "    tags = Object.fromEntries(Object.entries(tags).filter(([k]) => !detail.has(k)));")] }),
];

export function configById(id: string): BenchConfig {
  const found = CONFIGS.find((c) => c.id === id);
  if (!found) throw new Error(`unknown configuration ${id} (known: ${CONFIGS.map((c) => c.id).join(", ")})`);
  return found;
}
