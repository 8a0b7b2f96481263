import * as assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as http from "node:http";
import * as path from "node:path";
import { encode } from "@msgpack/msgpack";
import { SERVICE_NODE } from "./support/services";
import { CapturedSpan, TraceIntake } from "./support/trace-intake";

/** The app workspace: `require('dd-trace')` resolves from here. */
const APP_DIR = path.resolve(__dirname, "..");
const TRACER_VERSION = (
  JSON.parse(fs.readFileSync(require.resolve("dd-trace/package.json", { paths: [APP_DIR] }), "utf8")) as { version: string }
).version;

/**
 * A traced process: a parent span (optionally continuing a propagated context given in
 * PROBE_PARENT) with one child carrying a tag. It prints the ids the tracer assigned and
 * the headers it would propagate, and exits on its own: with DD_TRACE_FLUSH_INTERVAL=0 the
 * finished trace is sent at once, and the tracer flushes again on beforeExit.
 */
const PROBE = `
const tracer = require("dd-trace").init();
const carrier = process.env.PROBE_PARENT ? JSON.parse(process.env.PROBE_PARENT) : undefined;
const childOf = carrier ? tracer.extract("http_headers", carrier) : undefined;
let out;
tracer.trace("probe.parent", { childOf }, (parent) => {
  const headers = {};
  tracer.inject(parent, "http_headers", headers);
  tracer.trace("probe.child", (child) => {
    child.setTag("probe.tag", "tag-value");
    out = {
      traceId: parent.context().toTraceId(),
      traceId128: parent.context().toTraceId(true),
      parentSpanId: parent.context().toSpanId(),
      childSpanId: child.context().toSpanId(),
      headers,
    };
  });
});
process.stdout.write(JSON.stringify(out));
`;

interface ProbeIds {
  traceId: string;
  traceId128: string;
  parentSpanId: string;
  childSpanId: string;
  headers: Record<string, string>;
}

interface ProbeRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ids(): ProbeIds;
}

/**
 * Tracer env for these tests: fixed service, env, version and global tags; each finished
 * trace sent at once; remote config and telemetry off unless a test turns them on.
 */
function probeEnv(intake: TraceIntake, extra: Record<string, string> = {}): Record<string, string> {
  return {
    DD_TRACE_AGENT_URL: intake.url,
    DD_TRACE_FLUSH_INTERVAL: "0",
    DD_SERVICE: "intake-probe",
    DD_ENV: "test",
    DD_VERSION: "1.2.3",
    DD_TAGS: "cluster:c1,region:r1",
    DD_REMOTE_CONFIGURATION_ENABLED: "false",
    DD_INSTRUMENTATION_TELEMETRY_ENABLED: "false",
    // dd-trace 6 prints its configuration at start by default: the tests read stderr for
    // what the tracer has to complain about.
    DD_TRACE_STARTUP_LOGS: "false",
    ...extra,
  };
}

/** Starts the probe; `exited` settles when its output is complete. Killed after `limitMs` as a guard. */
function startProbe(env: Record<string, string>, limitMs = 8000): { exited: Promise<ProbeRun>; running(): boolean } {
  // Only PATH/HOME from the parent: no inherited DD_* or NODE_OPTIONS.
  const child = spawn(SERVICE_NODE, ["-e", PROBE], {
    cwd: APP_DIR,
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", ...env },
    stdio: ["ignore", "pipe", "pipe"],
    timeout: limitMs,
  });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
  child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
  const exited = new Promise<ProbeRun>((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (code, signal) =>
      resolve({
        code,
        signal,
        stdout,
        stderr,
        ids: () => {
          try {
            return JSON.parse(stdout) as ProbeIds;
          } catch {
            throw new Error(`probe printed no ids (code ${code}, signal ${signal}); stdout: ${stdout}; stderr: ${stderr}`);
          }
        },
      }),
    );
  });
  return { exited, running: () => child.exitCode === null && child.signalCode === null };
}

async function runProbe(env: Record<string, string>): Promise<ProbeRun> {
  const run = await startProbe(env).exited;
  assert.equal(run.code, 0, `probe failed (signal ${run.signal}): ${run.stderr}`);
  return run;
}

function byName(spans: CapturedSpan[], name: string, service = "intake-probe"): CapturedSpan {
  const found = spans.find((s) => s.name === name && s.service === service);
  assert.ok(found, `no ${name} span from ${service} among ${spans.map((s) => `${s.name}/${s.service}`).join(", ")}`);
  return found;
}

/** The assertions shared by the v0.4 and v0.5 runs. */
function assertProbeTrace(spans: CapturedSpan[], ids: ProbeIds): void {
  assert.equal(spans.length, 2);
  const parent = byName(spans, "probe.parent");
  const child = byName(spans, "probe.child");

  // Exact uint64s: the tracer's own decimal ids, not rounded doubles.
  assert.equal(parent.traceId, ids.traceId);
  assert.equal(child.traceId, ids.traceId);
  assert.equal(parent.spanId, ids.parentSpanId);
  assert.equal(child.spanId, ids.childSpanId);
  assert.equal(parent.parentId, "0");
  assert.equal(child.parentId, ids.parentSpanId);
  // 128-bit trace id: the low half on the wire, the high half on the root as _dd.p.tid.
  assert.equal(parent.meta["_dd.p.tid"] + BigInt(parent.traceId).toString(16).padStart(16, "0"), ids.traceId128);

  for (const span of [parent, child]) {
    assert.equal(span.service, "intake-probe");
    assert.equal(span.resource, span.name);
    assert.equal(span.meta.env, "test");
    assert.equal(span.meta.version, "1.2.3");
    assert.equal(span.meta.cluster, "c1");
    assert.equal(span.meta.region, "r1");
    assert.equal(span.error, 0);
    assert.equal(span.metrics._sampling_priority_v1, 1);
    assert.equal(typeof span.start, "bigint");
    assert.ok(span.start > 1_600_000_000_000_000_000n, `start ${span.start} is not epoch nanoseconds`);
    assert.ok(span.duration > 0);
  }
  assert.equal(child.meta["probe.tag"], "tag-value");
  assert.equal(parent.meta["probe.tag"], undefined);
  assert.ok(child.start >= parent.start);
}

/** Sends a raw request to the intake and resolves with status and body. */
function send(intake: TraceIntake, method: string, urlPath: string, body?: Buffer): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${intake.url}${urlPath}`, { method, agent: false }, (res) => {
      let text = "";
      res.setEncoding("utf8").on("data", (d: string) => (text += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

describe("trace intake (with dd-trace)", () => {
  let intake: TraceIntake;

  beforeEach(async () => {
    intake = await TraceIntake.start();
  });

  afterEach(async () => {
    await intake.close();
  });

  it("captures a parent and child span over /v0.4/traces with exact ids, service, env and tags", async () => {
    const run = await runProbe(probeEnv(intake));
    const spans = await intake.waitForSpans((s) => s.length >= 2);
    assertProbeTrace(spans, run.ids());

    const [payload] = intake.payloads();
    assert.equal(payload.version, "0.4");
    assert.equal(payload.method, "PUT");
    assert.equal(payload.headers["datadog-meta-tracer-version"], TRACER_VERSION);
    assert.equal(payload.headers["datadog-meta-lang"], "nodejs");
    assert.equal(payload.headers["content-type"], "application/msgpack");
    assert.equal(payload.headers["x-datadog-trace-count"], String(payload.traces.length));
    assert.equal(run.stderr, "");
  });

  it("decodes the same trace over /v0.5/traces (DD_TRACE_AGENT_PROTOCOL_VERSION=0.5)", async () => {
    const run = await runProbe(probeEnv(intake, { DD_TRACE_AGENT_PROTOCOL_VERSION: "0.5" }));
    const spans = await intake.waitForSpans((s) => s.length >= 2);
    assertProbeTrace(spans, run.ids());
    assert.deepEqual(
      intake.payloads().map((p) => `${p.method} ${p.path}`),
      ["PUT /v0.5/traces"],
    );
    assert.equal(run.stderr, "");
  });

  it("merges one trace sent by two processes", async () => {
    const first = await runProbe(probeEnv(intake));
    const upstream = first.ids();
    const second = await runProbe(
      probeEnv(intake, { DD_SERVICE: "intake-probe-downstream", PROBE_PARENT: JSON.stringify(upstream.headers) }),
    );

    const trace = await intake.waitForTrace((t) => t.length === 4);
    assert.equal(intake.traces().length, 1);
    assert.equal(intake.payloads().length, 2);
    const downstream = byName(trace, "probe.parent", "intake-probe-downstream");
    assert.equal(downstream.traceId, upstream.traceId);
    assert.equal(downstream.parentId, upstream.parentSpanId);
    assert.equal(byName(trace, "probe.child", "intake-probe-downstream").parentId, second.ids().parentSpanId);
    const runtimes = new Set(trace.map((s) => s.meta["runtime-id"]));
    assert.equal(runtimes.size, 2, "spans should come from two tracer processes");
  });

  it("answers remote config, telemetry and DogStatsD quietly", async () => {
    const run = await runProbe(
      probeEnv(intake, {
        DD_REMOTE_CONFIGURATION_ENABLED: "true",
        DD_INSTRUMENTATION_TELEMETRY_ENABLED: "true",
        DD_TRACE_DEBUG: "true",
        DD_TRACE_LOG_LEVEL: "warn",
      }),
    );
    await intake.waitForSpans((s) => s.length >= 2);
    const seen = intake.requests().map((r) => `${r.method} ${r.path.split("?")[0]} ${r.status}`);
    assert.ok(seen.includes("POST /v0.7/config 404"), seen.join("\n"));
    assert.ok(seen.includes("POST /telemetry/proxy/api/v2/apmtelemetry 202"), seen.join("\n"));
    assert.ok(seen.includes("POST /dogstatsd/v2/proxy 200"), seen.join("\n"));
    assert.equal(run.stderr, "");
    run.ids(); // stdout holds nothing but the probe's own line
  });

  it("refuses with 503 (the tracer reports it), then accepts after setMode('ok')", async () => {
    intake.setMode("refuse");
    const refused = await runProbe(probeEnv(intake, { DD_TRACE_DEBUG: "true", DD_TRACE_LOG_LEVEL: "warn" }));
    const attempt = await intake.waitForRequest((r) => r.path === "/v0.4/traces");
    assert.equal(attempt.status, 503);
    assert.equal(attempt.headers["x-datadog-trace-count"], "1");
    assert.equal(intake.spans().length, 0);
    assert.match(refused.stderr + refused.stdout, /Error sending payload to the agent \(status code: 503\)/);

    intake.setMode("ok");
    const run = await runProbe(probeEnv(intake));
    const spans = await intake.waitForSpans((s) => s.length >= 2);
    assertProbeTrace(spans, run.ids());
  });

  it("black-holes submissions, and close() releases the held tracer", async () => {
    intake.setMode("blackhole");
    const probe = startProbe(probeEnv(intake));
    const held = await intake.waitForRequest((r) => r.path === "/v0.4/traces");
    assert.equal(held.status, "blackholed");
    assert.equal(probe.running(), true, "the tracer should still be waiting for an answer");

    const closing = Date.now();
    await intake.close();
    assert.ok(Date.now() - closing < 1000, "close() should not wait for held requests");

    const run = await probe.exited;
    assert.equal(run.code, 0, run.stderr);
    assert.equal(intake.spans().length, 0);
  });

  it("waitForSpans rejects with what was captured when the time runs out", async () => {
    await runProbe(probeEnv(intake));
    await intake.waitForSpans((s) => s.length >= 2);
    await assert.rejects(
      intake.waitForSpans((s) => s.some((x) => x.name === "never.sent"), 50),
      (error: Error) => {
        assert.match(error.message, /timed out after 50 ms waiting for spans/);
        assert.match(error.message, /2 span\(s\) in 1 trace\(s\), 1 payload\(s\)/);
        assert.match(error.message, /probe\.parent \[service=intake-probe resource="probe\.parent"\]/);
        assert.match(error.message, /PUT \/v0\.4\/traces -> 200/);
        return true;
      },
    );
  });
});

describe("trace intake (protocol)", () => {
  let intake: TraceIntake;

  beforeEach(async () => {
    intake = await TraceIntake.start();
  });

  afterEach(async () => {
    await intake.close();
  });

  const span = (traceId: bigint, spanId: bigint, parentId: bigint, name: string) => ({
    trace_id: traceId,
    span_id: spanId,
    parent_id: parentId,
    name,
    resource: name,
    service: "svc",
    start: 1_700_000_000_000_000_000n,
    duration: 1000,
    error: 0,
    meta: { k: "v" },
    metrics: { m: 1.5 },
  });

  it("keeps ids above 2^53 exact and merges a trace split across payloads", async () => {
    const traceId = 18_446_744_073_709_551_615n; // 2^64 - 1
    const rootId = 9_007_199_254_740_993n; // 2^53 + 1: not representable as a double
    const first = encode([[span(traceId, rootId, 0n, "root")]], { useBigInt64: true });
    const second = encode([[span(traceId, rootId + 2n, rootId, "leaf")]], { useBigInt64: true });
    assert.equal((await send(intake, "PUT", "/v0.4/traces", Buffer.from(first))).body, '{"rate_by_service":{}}');
    assert.equal((await send(intake, "POST", "/v0.4/traces", Buffer.from(second))).status, 200);

    const trace = await intake.waitForTrace((t) => t.length === 2);
    assert.deepEqual(
      trace.map((s) => [s.name, s.traceId, s.spanId, s.parentId]),
      [
        ["root", "18446744073709551615", "9007199254740993", "0"],
        ["leaf", "18446744073709551615", "9007199254740995", "9007199254740993"],
      ],
    );
    assert.equal(trace[0].type, undefined);
    assert.deepEqual(trace[0].meta, { k: "v" });
    assert.deepEqual(trace[0].metrics, { m: 1.5 });
  });

  it("answers 400 to an undecodable payload and names it on timeout", async () => {
    const res = await send(intake, "PUT", "/v0.5/traces", Buffer.from(encode([["only-strings"]])));
    assert.equal(res.status, 400);
    assert.match(res.body, /expected \[strings, traces\]/);
    assert.equal(intake.errors().length, 1);
    await assert.rejects(intake.waitForSpans((s) => s.length > 0, 20), /decode error: PUT \/v0\.5\/traces/);
  });

  it("advertises its endpoints on /info and 404s the rest", async () => {
    const info = JSON.parse((await send(intake, "GET", "/info")).body) as { endpoints: string[]; client_drop_p0s: boolean };
    for (const endpoint of ["/v0.4/traces", "/v0.5/traces", "/v0.7/config", "/telemetry/proxy/", "/dogstatsd/v2/proxy"]) {
      assert.ok(info.endpoints.includes(endpoint), endpoint);
    }
    assert.equal(info.client_drop_p0s, false);
    assert.equal((await send(intake, "GET", "/no/such/path")).status, 404);
    assert.equal((await send(intake, "GET", "/v0.4/traces")).status, 405);
  });

  it("reports waiting on a closed intake", async () => {
    const waiting = intake.waitForSpans(() => false, 5000);
    await intake.close();
    await assert.rejects(waiting, /closed while waiting/);
  });
});
