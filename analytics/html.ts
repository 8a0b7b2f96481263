/**
 * The report as one self-contained HTML page (inline CSS and SVG, no script, nothing
 * fetched): the payment flow's latency distribution with p95, p99 and the monitor
 * threshold drawn in, the waterfall of the slowest trace across both services, the error
 * patterns and the tables of the terminal report.
 */
import { formatSeconds, type TraceReport, type SlowestTrace } from "./analyze";
import type { HistogramBin } from "./stats";

const esc = (v: unknown) =>
  String(v).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);
const ms = (v: number | null) => (v === null ? "–" : v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));
const pct = (v: number | null) => (v === null ? "–" : `${(v * 100).toFixed(1)} %`);
const SERVICE_COLOURS = ["#3b6fd4", "#d4793b", "#3ba55c", "#9b59b6", "#7f8c8d"];

export function renderHtml(report: TraceReport): string {
  const { source, paymentFlow: flow } = report;
  const window = source.fromMs !== null && source.toMs !== null ? `${new Date(source.fromMs).toISOString()} → ${new Date(source.toMs).toISOString()}` : "no spans";
  const p95Threshold = report.thresholds.paymentLatencyP95Seconds * 1000;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title>Payment traces: ${esc(source.stack)} (${esc(source.env)})</title>
<style>
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;max-width:1100px;color:#1d2330;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}.muted{color:#667085}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin:14px 0}.card{border:1px solid #d0d5dd;border-radius:8px;padding:8px 14px;min-width:92px}
.card b{display:block;font-size:20px}.ok{color:#1a7f37}.bad{color:#c0262d;font-weight:600}
table{border-collapse:collapse;width:100%;font-size:13px}th,td{padding:4px 8px;border-bottom:1px solid #eaecf0;text-align:left}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}svg text{font:11px system-ui,sans-serif;fill:#344054}
.legend span{display:inline-block;margin-right:14px}.swatch{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:4px;vertical-align:middle}
</style></head><body>
<h1>Payment traces: stack ${esc(source.stack)}, env ${esc(source.env)}</h1>
<div class="muted">${source.kind === "datadog" ? "Datadog" : "Spans file"} ${esc(source.description)} · ${esc(window)} · ${report.spanCount} spans in ${report.traceCount} traces</div>
<div class="cards" id="payment-flow">
${card("payments", String(flow.count))}${card("average", `${ms(flow.avgMs)} ms`)}${card("p50", `${ms(flow.p50Ms)} ms`)}${card("p95", `${ms(flow.p95Ms)} ms`)}${card("p99", `${ms(flow.p99Ms)} ms`)}${card("error rate", pct(flow.errorRate))}
${Object.entries(flow.outcomes).sort((a, b) => b[1] - a[1]).map(([k, v]) => card(k, String(v))).join("")}
</div>
<h2>Against the stack's monitors</h2>
<ul id="checks">${report.checks.map((c) => `<li>${esc(c.monitor)}: ${esc(c.text)} — <span class="${c.breached === null ? "muted" : c.breached ? "bad" : "ok"}">${c.breached === null ? "no data" : c.breached ? "above threshold" : "within threshold"}</span></li>`).join("")}</ul>
<h2>Latency distribution of payment.process_payment</h2>
${distributionSvg(report.distribution, [
  { label: `p95 ${formatSeconds(flow.p95Ms)}`, ms: flow.p95Ms, colour: "#d4793b", dash: "" },
  { label: `p99 ${formatSeconds(flow.p99Ms)}`, ms: flow.p99Ms, colour: "#9b59b6", dash: "" },
  { label: `monitor threshold ${report.thresholds.paymentLatencyP95Seconds} s`, ms: p95Threshold, colour: "#c0262d", dash: "6 4" },
])}
<h2>Slowest trace</h2>
${report.slowestTrace ? waterfall(report.slowestTrace) : '<p class="muted">No trace.</p>'}
<h2>Error patterns (errors and declines)</h2>
${
  report.errorPatterns.length === 0
    ? '<p class="muted" id="error-patterns">None.</p>'
    : `<table id="error-patterns"><tr><th>operation</th><th>service</th><th>error.type</th><th>payment.failure_reason</th><th class="n">count</th><th class="n">of operation</th><th>share</th></tr>
${report.errorPatterns.map((e) => `<tr><td>${esc(e.operation)}</td><td>${esc(e.service)}</td><td>${esc(e.errorType ?? "–")}</td><td>${esc(e.failureReason ?? "–")}</td><td class="n">${e.count}</td><td class="n">${pct(e.shareOfOperation)}</td><td><svg width="120" height="10" role="img"><rect width="${Math.max(1, Math.round(e.shareOfOperation * 120))}" height="10" fill="#c0262d" rx="2"></rect></svg></td></tr>`).join("\n")}</table>`
}
<h2>Measured spans</h2>
<table id="operations"><tr><th>operation</th><th>service</th><th class="n">count</th><th class="n">avg ms</th><th class="n">p50 ms</th><th class="n">p95 ms</th><th class="n">p99 ms</th><th class="n">errors</th><th class="n">error rate</th></tr>
${report.operations.map((r) => `<tr><td>${esc(r.name)}</td><td>${esc(r.service || "–")}</td><td class="n">${r.count}</td><td class="n">${ms(r.avgMs)}</td><td class="n">${ms(r.p50Ms)}</td><td class="n">${ms(r.p95Ms)}</td><td class="n">${ms(r.p99Ms)}</td><td class="n">${r.errors}</td><td class="n">${pct(r.errorRate)}</td></tr>`).join("\n")}</table>
<h2>Performance annotations (measured per request)</h2>
<table id="annotations"><tr><th>tag</th><th>on</th><th class="n">spans</th><th class="n">avg</th><th class="n">p95</th></tr>
${report.annotations.map((a) => `<tr><td>${esc(a.tag)}</td><td>${esc(a.on)}</td><td class="n">${a.count}</td><td class="n">${ms(a.avg)}</td><td class="n">${ms(a.p95)}</td></tr>`).join("\n")}</table>
<h2>Slowest operations (by average)</h2>
<table id="slowest-operations"><tr><th>operation</th><th>service</th><th>resource</th><th class="n">count</th><th class="n">avg ms</th><th class="n">max ms</th></tr>
${report.slowestOperations.map((o) => `<tr><td>${esc(o.name)}</td><td>${esc(o.service)}</td><td>${esc(o.resource)}</td><td class="n">${o.count}</td><td class="n">${ms(o.avgMs)}</td><td class="n">${ms(o.maxMs)}</td></tr>`).join("\n")}</table>
</body></html>
`;
}

function card(label: string, value: string): string {
  return `<div class="card"><span class="muted">${esc(label)}</span><b>${esc(value)}</b></div>`;
}

interface Marker {
  readonly label: string;
  readonly ms: number | null;
  readonly colour: string;
  readonly dash: string;
}

/** Bars on a log-scaled time axis, with a vertical line per marker. */
function distributionSvg(bins: readonly HistogramBin[], markers: readonly Marker[]): string {
  if (bins.length === 0) return '<p class="muted" id="latency-distribution">No payment spans.</p>';
  const W = 1000, H = 260, left = 44, right = 16, top = 34, bottom = 34;
  const lo = Math.log10(bins[0].fromMs), hi = Math.log10(bins[bins.length - 1].toMs);
  const x = (v: number) => left + ((Math.log10(v) - lo) / (hi - lo)) * (W - left - right);
  const maxCount = Math.max(...bins.map((b) => b.count));
  const y = (c: number) => top + (1 - c / maxCount) * (H - top - bottom);
  const bars = bins
    .filter((b) => b.count > 0)
    .map((b) => `<rect class="bar" x="${x(b.fromMs).toFixed(1)}" y="${y(b.count).toFixed(1)}" width="${Math.max(1, x(b.toMs) - x(b.fromMs) - 1).toFixed(1)}" height="${(H - bottom - y(b.count)).toFixed(1)}" fill="#3b6fd4"><title>${ms(b.fromMs)}–${ms(b.toMs)} ms: ${b.count}</title></rect>`)
    .join("");
  const ticks: string[] = [];
  for (let e = Math.ceil(lo); e <= Math.floor(hi); e++) {
    for (const m of [1, 2, 5]) {
      const v = m * 10 ** e;
      if (Math.log10(v) < lo || Math.log10(v) > hi) continue;
      const label = v >= 1000 ? `${v / 1000} s` : `${v} ms`;
      ticks.push(`<line x1="${x(v).toFixed(1)}" x2="${x(v).toFixed(1)}" y1="${H - bottom}" y2="${H - bottom + 4}" stroke="#98a2b3"/><text x="${x(v).toFixed(1)}" y="${H - bottom + 16}" text-anchor="middle">${label}</text>`);
    }
  }
  const lines = markers
    .filter((m): m is Marker & { ms: number } => m.ms !== null && m.ms > 0)
    .map((m, i) => {
      // Labels near the right edge run leftwards so they stay inside the picture.
      const leftwards = x(m.ms) > W * 0.7;
      const tx = leftwards ? x(m.ms) - 4 : x(m.ms) + 4;
      return `<g class="marker" data-marker="${esc(m.label.split(" ")[0])}"><line x1="${x(m.ms).toFixed(1)}" x2="${x(m.ms).toFixed(1)}" y1="${top - 4}" y2="${H - bottom}" stroke="${m.colour}" stroke-width="2" stroke-dasharray="${m.dash}"/><text x="${tx.toFixed(1)}" y="${top - 20 + i * 12}" text-anchor="${leftwards ? "end" : "start"}" style="fill:${m.colour}">${esc(m.label)}</text></g>`;
    })
    .join("");
  return `<svg id="latency-distribution" viewBox="0 0 ${W} ${H}" width="100%" role="img" aria-label="latency distribution">
<line x1="${left}" x2="${W - right}" y1="${H - bottom}" y2="${H - bottom}" stroke="#98a2b3"/>
<text x="${left - 6}" y="${top + 4}" text-anchor="end">${maxCount}</text><text x="${left}" y="${top - 22}">payments per bin</text><text x="${left - 6}" y="${H - bottom}" text-anchor="end">0</text>
${bars}${ticks.join("")}${lines}</svg>`;
}

function waterfall(trace: SlowestTrace): string {
  const colours = new Map(trace.services.map((s, i) => [s, SERVICE_COLOURS[i % SERVICE_COLOURS.length]]));
  const rowH = 20, labelW = 380, W = 1000, top = 22;
  const scale = (W - labelW - 70) / Math.max(trace.durationMs, 1e-6);
  const rows = trace.spans
    .map((s, i) => {
      const y = top + i * rowH;
      const label = `${"  ".repeat(s.depth)}${s.name}${s.resource && s.resource !== s.name ? ` · ${s.resource}` : ""}`;
      const bx = labelW + s.offsetMs * scale;
      const bw = Math.max(1.5, s.durationMs * scale);
      return `<g class="span-row"><text x="${4 + s.depth * 10}" y="${y + 14}">${esc(label.trim().slice(0, 60))}</text><rect class="span-bar" x="${bx.toFixed(1)}" y="${y + 3}" width="${bw.toFixed(1)}" height="${rowH - 6}" rx="2" fill="${colours.get(s.service)}"${s.error ? ' stroke="#c0262d" stroke-width="2"' : ""}><title>${esc(s.service)} ${esc(s.name)} ${esc(s.resource)}: ${ms(s.durationMs)} ms at +${ms(s.offsetMs)} ms${s.error ? " (error)" : ""}</title></rect><text x="${(bx + bw + 4).toFixed(1)}" y="${y + 14}">${ms(s.durationMs)} ms</text></g>`;
    })
    .join("\n");
  const H = top + trace.spans.length * rowH + 8;
  return `<div class="legend">${trace.services.map((s) => `<span><i class="swatch" style="background:${colours.get(s)}"></i>${esc(s)}</span>`).join("")}<span class="muted">trace ${esc(trace.traceId)}, ${ms(trace.durationMs)} ms, ${trace.spans.length} spans</span></div>
<svg id="waterfall" viewBox="0 0 ${W} ${H}" width="100%" role="img" aria-label="waterfall of the slowest trace">
<text x="${labelW}" y="14">0 ms</text><text x="${W - 70}" y="14" text-anchor="end">${ms(trace.durationMs)} ms</text>
${rows}</svg>`;
}
