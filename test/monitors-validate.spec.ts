import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import * as path from "node:path";
import { monitorRequestBody, validateStackMonitors } from "../scripts/monitors-validate";
import { REPO_ROOT } from "../scripts/mock-engine";
import { stackRun } from "./support/rendered-env";

const KEYS = { DD_API_KEY: "a1b2c3d4e5f60718293a4b5c6d7e8f90", DD_APP_KEY: "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c" };

interface Received {
  readonly method: string;
  readonly url: string;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: any;
}
type Answer = (request: Received) => { status: number; body: unknown };

/** A stand-in for Datadog's monitor-validation endpoint on 127.0.0.1 that records each request. */
class ValidationStandIn {
  readonly received: Received[] = [];
  answer: Answer = () => ({ status: 200, body: {} });
  private server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const text = Buffer.concat(chunks).toString("utf8");
      const request = { method: req.method ?? "", url: req.url ?? "", headers: req.headers, body: text ? JSON.parse(text) : undefined };
      this.received.push(request);
      const { status, body } = this.answer(request);
      res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
    });
  });

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }
  stop(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

describe("monitors:validate (scripts/monitors-validate.ts)", () => {
  const standIn = new ValidationStandIn();
  let baseUrl: string;
  let lines: string[];
  const validate = (env: Record<string, string | undefined> = KEYS) =>
    validateStackMonitors({ stack: "prod", env, baseUrl, log: (l) => lines.push(l), render: stackRun, timeoutMs: 5_000 });
  const printed = () => lines.join("\n");
  const assertNoKeyPrinted = () => {
    for (const key of Object.values(KEYS)) assert.ok(!printed().includes(key), "a key was printed");
  };

  before(async function () {
    this.timeout(60_000);
    baseUrl = await standIn.start();
    await stackRun("prod");
  });
  after(() => standIn.stop());
  beforeEach(() => {
    standIn.received.length = 0;
    standIn.answer = () => ({ status: 200, body: {} });
    lines = [];
  });

  it("posts every monitor of the stack to /api/v1/monitor/validate with both keys, and exits 0 when Datadog accepts them", async () => {
    assert.equal(await validate(), 0);
    assert.equal(standIn.received.length, 4);
    for (const r of standIn.received) {
      assert.equal(r.method, "POST");
      assert.equal(r.url, "/api/v1/monitor/validate");
      assert.equal(r.headers["dd-api-key"], KEYS.DD_API_KEY);
      assert.equal(r.headers["dd-application-key"], KEYS.DD_APP_KEY);
      assert.match(String(r.headers["content-type"]), /^application\/json/);
      assert.equal(r.body.type, "query alert");
      assert.match(r.body.query, /\{env:prod,service:(payment-service|post-processing)\}/);
      assert.match(r.body.message, /@slack-payments-alerts/);
      // Thresholds travel as numbers, equal to the one in the query.
      assert.equal(typeof r.body.options.thresholds.critical, "number");
      assert.ok(r.body.query.endsWith(` > ${r.body.options.thresholds.critical}`), r.body.query);
      assert.equal(r.body.options.notify_no_data, false);
      assert.equal(r.body.options.require_full_window, false);
      assert.ok(r.body.tags.includes("env:prod"));
    }
    assert.deepEqual(
      standIn.received.map((r) => r.body.name).sort(),
      [
        "[prod] Ledger database p95 latency above threshold",
        "[prod] Payment error rate above threshold",
        "[prod] Payment p95 latency above threshold",
        "[prod] Post-processing lag p95 above threshold",
      ],
    );
    assert.equal(lines.filter((l) => /^\s+OK\s/.test(l)).length, 4);
    assert.match(printed(), /all 4 monitor\(s\) valid/);
    assertNoKeyPrinted();
  });

  it("prints Datadog's error for a rejected monitor and exits 1", async () => {
    standIn.answer = (r) =>
      /error rate/.test(r.body.name) ? { status: 400, body: { errors: ["The value provided for parameter 'query' is invalid: unknown metric"] } } : { status: 200, body: {} };
    assert.equal(await validate(), 1);
    const rejected = lines.filter((l) => /REJECTED/.test(l));
    assert.equal(rejected.length, 1);
    assert.match(rejected[0], /REJECTED\s+apm-monitors-payment-error-rate \(\[prod\] Payment error rate above threshold\): HTTP 400: The value provided for parameter 'query' is invalid: unknown metric/);
    assert.equal(lines.filter((l) => /^\s+OK\s/.test(l)).length, 3);
    assert.match(printed(), /1 of 4 monitor\(s\) not validated/);
    assertNoKeyPrinted();
  });

  it("exits 1 when Datadog refuses the keys, without printing them even if the answer echoes them", async () => {
    standIn.answer = (r) => ({ status: 403, body: { errors: [`Forbidden for key ${r.headers["dd-api-key"]} / ${r.headers["dd-application-key"]}`] } });
    assert.equal(await validate(), 1);
    assert.equal(lines.filter((l) => /ERROR\s+.*HTTP 403: Forbidden for key \[redacted\] \/ \[redacted\]/.test(l)).length, 4);
    assertNoKeyPrinted();
  });

  it("exits 1 when Datadog cannot be reached", async () => {
    const closed = new ValidationStandIn();
    const url = await closed.start();
    await closed.stop();
    const code = await validateStackMonitors({ stack: "prod", env: KEYS, baseUrl: url, log: (l) => lines.push(l), render: stackRun, timeoutMs: 5_000 });
    assert.equal(code, 1);
    assert.equal(lines.filter((l) => /ERROR\s+.*request failed/.test(l)).length, 4);
    assertNoKeyPrinted();
  });

  it("skips, says so and exits 0 when a key is missing, without calling Datadog", async () => {
    assert.equal(await validate({ DD_API_KEY: KEYS.DD_API_KEY }), 0);
    assert.equal(standIn.received.length, 0);
    assert.match(printed(), /SKIPPED for stack prod: DD_APP_KEY not set/);
    assertNoKeyPrinted();
  });

  it("runs as `npm run monitors:validate -- --stack prod` and skips with exit 0 where no keys are set", function () {
    this.timeout(30_000);
    const pkg = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, "package.json"), "utf8"));
    assert.equal(pkg.scripts["monitors:validate"], "tsx scripts/monitors-validate.ts");
    const env = { ...process.env, DD_API_KEY: "", DD_APP_KEY: "", DD_SITE: "" };
    const skipped = spawnSync(process.execPath, ["--import", "tsx", "scripts/monitors-validate.ts", "--stack", "prod"], { cwd: REPO_ROOT, env, encoding: "utf8", timeout: 30_000 });
    assert.equal(skipped.status, 0, skipped.stderr);
    assert.match(skipped.stdout, /SKIPPED for stack prod: DD_API_KEY and DD_APP_KEY not set/);
  });

  it("refuses an unknown stack with exit 2, naming the stacks there are", async () => {
    const code = await validateStackMonitors({ stack: "nope", env: KEYS, baseUrl, log: (l) => lines.push(l) });
    assert.equal(code, 2);
    assert.match(printed(), /No stack file Pulumi\.nope\.yaml \(stacks here: .*prod/);
    assert.equal(standIn.received.length, 0);
  });

  it("turns the provider's monitor inputs into the API's Monitor: string thresholds to numbers, options grouped", () => {
    const { body, unplaced } = monitorRequestBody({
      name: "m",
      type: "query alert",
      query: "avg(last_5m):avg:x{*} > 2",
      message: "@team",
      tags: ["env:prod"],
      monitorThresholds: { critical: "2", warning: "1.5" },
      notifyNoData: false,
      renotifyInterval: 60,
      validate: true,
      somethingNew: 1,
    });
    assert.deepEqual(body, {
      name: "m",
      type: "query alert",
      query: "avg(last_5m):avg:x{*} > 2",
      message: "@team",
      tags: ["env:prod"],
      options: { notifyNoData: false, renotifyInterval: 60, thresholds: { critical: 2, warning: 1.5 } },
    });
    assert.deepEqual(unplaced, ["somethingNew"]);
  });
});
