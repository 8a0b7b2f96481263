/** The report as terminal tables. */
import { formatSeconds, type TraceReport } from "./analyze";

const ms = (v: number | null) => (v === null ? "–" : v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));
const pct = (v: number | null) => (v === null ? "–" : `${(v * 100).toFixed(v > 0 && v < 0.001 ? 3 : 1)} %`);

/** Left-aligns text columns, right-aligns the rest. */
export function table(header: readonly string[], rows: readonly (readonly string[])[], rightAligned: ReadonlySet<number> = new Set()): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: readonly string[]) =>
    cells.map((c, i) => (rightAligned.has(i) ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join("  ").trimEnd();
  return [line(header), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n");
}

const statColumns = ["count", "avg ms", "p50 ms", "p95 ms", "p99 ms", "errors", "error rate"];
const numeric = (from: number, n: number) => new Set(Array.from({ length: n }, (_, i) => from + i));

export function renderText(report: TraceReport): string {
  const { source, paymentFlow: flow } = report;
  const window =
    source.fromMs !== null && source.toMs !== null
      ? `${new Date(source.fromMs).toISOString()} → ${new Date(source.toMs).toISOString()}`
      : "no spans";
  const out: string[] = [];
  out.push(`Trace analysis: stack ${source.stack} (env ${source.env}), ${source.kind === "datadog" ? "Datadog" : "spans file"} ${source.description}`);
  out.push(`${window}; ${report.spanCount} spans in ${report.traceCount} traces`);
  out.push("");
  out.push("Payment flow (payment.process_payment on payment-service)");
  out.push(
    table(
      statColumns,
      [[String(flow.count), ms(flow.avgMs), ms(flow.p50Ms), ms(flow.p95Ms), ms(flow.p99Ms), String(flow.errors), pct(flow.errorRate)]],
      numeric(0, 7),
    ),
  );
  const outcomes = Object.entries(flow.outcomes).sort((a, b) => b[1] - a[1]);
  out.push(`outcomes: ${outcomes.length ? outcomes.map(([k, v]) => `${k} ${v}`).join(", ") : "none"}`);
  out.push("");
  out.push("Against the stack's monitors");
  for (const check of report.checks) {
    const verdict = check.breached === null ? "no data" : check.breached ? "ABOVE THRESHOLD" : "ok";
    out.push(`  ${check.monitor.padEnd(20)} ${check.text}: ${verdict}`);
  }
  out.push("");
  out.push("Measured spans");
  out.push(
    table(
      ["operation", "service", ...statColumns],
      report.operations.map((r) => [r.name, r.service || "–", String(r.count), ms(r.avgMs), ms(r.p50Ms), ms(r.p95Ms), ms(r.p99Ms), String(r.errors), pct(r.errorRate)]),
      numeric(2, 7),
    ),
  );
  out.push("");
  out.push("Slowest operations (by average)");
  out.push(
    table(
      ["operation", "service", "resource", "count", "avg ms", "max ms"],
      report.slowestOperations.map((o) => [o.name, o.service, truncate(o.resource, 48), String(o.count), ms(o.avgMs), ms(o.maxMs)]),
      numeric(3, 3),
    ),
  );
  out.push("");
  out.push("Error patterns (errors and declines)");
  out.push(
    report.errorPatterns.length === 0
      ? "  none"
      : table(
          ["operation", "service", "error.type", "payment.failure_reason", "count", "of operation"],
          report.errorPatterns.map((e) => [e.operation, e.service, e.errorType ?? "–", e.failureReason ?? "–", String(e.count), pct(e.shareOfOperation)]),
          numeric(4, 2),
        ),
  );
  if (report.annotations.some((a) => a.count > 0)) {
    out.push("");
    out.push("Performance annotations (measured per request)");
    out.push(
      table(
        ["tag", "on", "spans", "avg", "p95"],
        report.annotations.map((a) => [a.tag, a.on, String(a.count), ms(a.avg), ms(a.p95)]),
        numeric(2, 3),
      ),
    );
  }
  if (report.datadog) {
    out.push("");
    out.push("Datadog's aggregate over the whole window (every indexed span)");
    out.push(
      table(
        ["operation", "service", "count", "avg ms", "p95 ms", "p99 ms"],
        report.datadog.totals.map((t) => [t.operation, t.service, String(t.count), ms(t.avgMs), ms(t.p95Ms), ms(t.p99Ms)]),
        numeric(2, 4),
      ),
    );
    if (report.datadog.truncated) out.push(`The search stopped at ${report.spanCount} spans (--max-spans): the figures above the aggregate cover the window's oldest spans only.`);
  }
  if (report.slowestTrace) {
    const t = report.slowestTrace;
    out.push("");
    out.push(`Slowest trace ${t.traceId}: ${formatSeconds(t.durationMs)} across ${t.services.join(", ")} (${t.spans.length} spans)`);
  }
  return out.join("\n");
}

function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}
