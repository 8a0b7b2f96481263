/**
 * The HTML report as a reader sees it: opened in headless Chromium (Debian's `chromium`,
 * driven by playwright-core), with every network request refused, the distribution and
 * the waterfall measured on screen, a screenshot kept in test/artifacts/ (gitignored).
 */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { chromium, type BrowserContext } from "playwright-core";
import { analyzeSpans } from "../../analytics/analyze";
import { renderHtml } from "../../analytics/html";
import type { SpanRecord } from "../../analytics/spans";

export const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
export const ARTIFACTS = path.resolve(__dirname, "../artifacts");
/** playwright-core adds --headless and --user-data-dir itself. */
const FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"];

/** Opens `file` in a fresh headless Chromium profile; fails on any request that leaves the file. */
export async function openInChromium(file: string, screenshot: string): Promise<{ sizes: Record<string, { width: number; height: number } | null>; counts: Record<string, number>; external: string[] }> {
  assert.ok(fs.existsSync(CHROMIUM), `${CHROMIUM} missing: install Debian's chromium (apt-get install chromium; .ci/run does)`);
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "report-chromium-"));
  let context: BrowserContext | undefined;
  try {
    // A persistent context on a fresh directory: Chromium's --user-data-dir, nothing shared with another run.
    context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: FLAGS, viewport: { width: 1200, height: 900 } });
    const page = context.pages()[0] ?? (await context.newPage());
    const external: string[] = [];
    await page.route("**/*", (route) => {
      const url = route.request().url();
      if (url.startsWith("file://")) return route.continue();
      external.push(url);
      return route.abort();
    });
    await page.goto(`file://${file}`);
    const sizes: Record<string, { width: number; height: number } | null> = {};
    for (const selector of ["#latency-distribution", "#waterfall", "#error-patterns", "#latency-distribution rect.bar", "#waterfall rect.span-bar"]) {
      sizes[selector] = await page.locator(selector).first().boundingBox();
    }
    const counts: Record<string, number> = {};
    for (const selector of ["#latency-distribution rect.bar", "#latency-distribution g.marker", "#waterfall rect.span-bar", "#error-patterns tr"]) {
      counts[selector] = await page.locator(selector).count();
    }
    fs.mkdirSync(path.dirname(screenshot), { recursive: true });
    await page.screenshot({ path: screenshot, fullPage: true });
    return { sizes, counts, external };
  } finally {
    await context?.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
}

function syntheticSpans(): SpanRecord[] {
  const spans: SpanRecord[] = [];
  for (let i = 0; i < 60; i++) {
    const traceId = String(1000 + i);
    const duration = 5 + ((i * 37) % 50);
    const failed = i % 10 === 0;
    const common = { traceId, resource: "", error: false, metrics: {} };
    spans.push({ ...common, spanId: `${i}1`, parentId: "0", service: "payment-service", name: "fastify.request", resource: "POST /v1/payments", startMs: 1e12 + i * 100, durationMs: duration + 1, meta: {} });
    spans.push({ ...common, spanId: `${i}2`, parentId: `${i}1`, service: "payment-service", name: "payment.process_payment", startMs: 1e12 + i * 100 + 0.2, durationMs: duration, error: failed, meta: failed ? { "payment.final_status": "failed", "payment.failure_reason": "fraud_unavailable", "error.type": "FraudServiceUnavailable" } : { "payment.final_status": "completed" } });
    spans.push({ ...common, spanId: `${i}3`, parentId: `${i}2`, service: "fraud-service", name: "fastify.request", resource: "POST /v1/score", startMs: 1e12 + i * 100 + 1, durationMs: duration / 2, meta: {} });
  }
  return spans;
}

describe("analytics: the HTML report in headless Chromium", function () {
  this.timeout(60_000);

  it("draws the latency distribution with p95, p99 and the threshold, the waterfall across both services and the error patterns, fetching nothing", async () => {
    const report = analyzeSpans(syntheticSpans(), {
      source: { kind: "spans-file", description: "synthetic", stack: "prod", env: "prod", fromMs: 1e12, toMs: 1e12 + 6000 },
      thresholds: { paymentLatencyP95Seconds: 2, paymentErrorRate: 0.05, databaseLatencyP95Seconds: 1 },
    });
    const html = renderHtml(report);
    assert.doesNotMatch(html, /(src|href)=["']?(https?:)?\/\//, "no external resource referenced");
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "report-")), "report.html");
    fs.writeFileSync(file, html);
    const shown = await openInChromium(file, path.join(ARTIFACTS, "html-report.png"));
    assert.deepEqual(shown.external, []);
    for (const [selector, box] of Object.entries(shown.sizes)) {
      assert.ok(box && box.width > 0 && box.height > 0, `${selector} drawn with a non-zero size: ${JSON.stringify(box)}`);
    }
    assert.ok(shown.counts["#latency-distribution rect.bar"] >= 5, "several distribution bars");
    assert.equal(shown.counts["#latency-distribution g.marker"], 3, "p95, p99 and the monitor threshold");
    assert.equal(shown.counts["#waterfall rect.span-bar"], 3, "the slowest trace's three spans");
    assert.equal(shown.counts["#error-patterns tr"], 2, "header and one pattern");
    assert.ok(fs.statSync(path.join(ARTIFACTS, "html-report.png")).size > 10_000);
  });
});
