/**
 * A local stand-in for the Datadog Agent's trace intake, for tests.
 *
 * It listens on 127.0.0.1 (a free port) and speaks what dd-trace sends to the agent:
 * msgpack traces on `/v0.4/traces` and `/v0.5/traces`, plus quiet answers on the side
 * endpoints (`/info`, `/v0.7/config`, `/telemetry/proxy/…`, `/dogstatsd/v2/proxy`,
 * `/profiling/…`, `/evp_proxy/…`, `/v0.6/stats`). Point a tracer at it with
 * `DD_TRACE_AGENT_URL=<intake.url>` and assert on the spans it really sent.
 *
 * `captureFile` also appends every captured span to a file, one JSON object per line
 * (the format `npm run traces:analyze -- --spans FILE` reads; see `captureLine`).
 *
 * `mode` simulates a broken agent: `"refuse"` answers 503 to everything, `"blackhole"`
 * accepts connections and reads requests but never answers. `close()` destroys every
 * socket, held ones included.
 */
import * as fs from "node:fs";
import * as http from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { decode } from "@msgpack/msgpack";

export type IntakeMode = "ok" | "refuse" | "blackhole";

/** One span as the tracer sent it, normalised across protocol versions. */
export interface CapturedSpan {
  /** Low 64 bits of the trace id, unsigned decimal (the upper half of a 128-bit id is hex in `meta["_dd.p.tid"]`). */
  traceId: string;
  /** Unsigned decimal. */
  spanId: string;
  /** Unsigned decimal; `"0"` for a root span. */
  parentId: string;
  name: string;
  resource: string;
  service: string;
  /** Absent when the tracer sent no type (v0.4) or an empty one (v0.5). */
  type?: string;
  /** Start, nanoseconds since the Unix epoch. */
  start: bigint;
  /** Nanoseconds. */
  duration: number;
  /** 0 or 1. */
  error: number;
  meta: Record<string, string>;
  metrics: Record<string, number>;
  /** Native span events (v0.4 only, when the tracer sends them outside `meta.events`). */
  spanEvents?: unknown[];
  /** `meta_struct` entries, each msgpack-decoded (v0.4 only). */
  metaStruct?: Record<string, unknown>;
}

/** One decoded trace submission. */
export interface CapturedPayload {
  version: "0.4" | "0.5";
  method: string;
  path: string;
  /** Request headers, lower-cased (e.g. `datadog-meta-tracer-version`, `x-datadog-trace-count`). */
  headers: http.IncomingHttpHeaders;
  receivedAt: number;
  /** The traces exactly as grouped in this payload. */
  traces: CapturedSpan[][];
}

/** Every request the intake saw, whatever the path or mode. */
export interface IntakeRequest {
  method: string;
  /** Path with query string. */
  path: string;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  receivedAt: number;
  /** Status answered; `"blackholed"` when no answer will ever come; `"abandoned"` when the sender left before a delayed answer. */
  status: number | "blackholed" | "abandoned";
}

export interface TraceIntakeOptions {
  /** Initial mode; `setMode` changes it at runtime. Default `"ok"`. */
  mode?: IntakeMode;
  /** Returned as `rate_by_service` after each trace submission. Default `{}`. */
  rateByService?: Record<string, number>;
  /** Default timeout of the `waitFor…` methods. Default 5000 ms. */
  defaultTimeoutMs?: number;
  /**
   * `false`: trace submissions are answered as usual but neither decoded nor kept (nor
   * any request body), for load runs where the spans do not matter. Default `true`.
   */
  capture?: boolean;
  /**
   * Appends each captured span to this file as one JSON line (`captureLine`), as soon as
   * its payload is decoded; the file is created (or truncated) at start. Default: none.
   */
  captureFile?: string;
  /**
   * A slow Agent: each trace submission is decoded, kept and answered this many ms after it
   * arrived. One whose sender went away in the meantime (a process that exited) is dropped
   * unanswered, status `"abandoned"`: what the sender did not wait for is not delivered.
   * Default 0 (at once).
   */
  traceAnswerDelayMs?: number;
}

const TRACE_PATHS: Record<string, CapturedPayload["version"]> = {
  "/v0.4/traces": "0.4",
  "/v0.5/traces": "0.5",
};

/** Endpoints advertised on `/info`: the ones this intake answers. */
const ENDPOINTS = [
  "/v0.4/traces",
  "/v0.5/traces",
  "/v0.6/stats",
  "/v0.7/config",
  "/telemetry/proxy/",
  "/dogstatsd/v2/proxy",
  "/profiling/v1/input",
  "/evp_proxy/v2/",
  "/evp_proxy/v4/",
];

interface Waiter {
  check(): boolean;
  fail(error: Error): void;
}

export class TraceIntake {
  readonly url: string;
  readonly port: number;

  private currentMode: IntakeMode;
  private readonly rateByService: Record<string, number>;
  private readonly defaultTimeoutMs: number;
  private readonly capture: boolean;
  private readonly captureFd: number | undefined;
  private readonly traceAnswerDelayMs: number;
  private readonly sockets = new Set<Socket>();
  private readonly waiters = new Set<Waiter>();
  private capturedPayloads: CapturedPayload[] = [];
  private seenRequests: IntakeRequest[] = [];
  private decodeErrors: string[] = [];
  private closed = false;

  private constructor(
    private readonly server: http.Server,
    opts: TraceIntakeOptions,
  ) {
    this.port = (server.address() as AddressInfo).port;
    this.url = `http://127.0.0.1:${this.port}`;
    this.currentMode = opts.mode ?? "ok";
    this.rateByService = opts.rateByService ?? {};
    this.defaultTimeoutMs = opts.defaultTimeoutMs ?? 5000;
    this.capture = opts.capture ?? true;
    this.traceAnswerDelayMs = opts.traceAnswerDelayMs ?? 0;
    this.captureFd = opts.captureFile === undefined ? undefined : fs.openSync(opts.captureFile, "w");
    server.on("connection", (socket) => {
      this.sockets.add(socket);
      socket.once("close", () => this.sockets.delete(socket));
    });
    server.on("request", (req, res) => this.onRequest(req, res));
  }

  /** Starts an intake on 127.0.0.1 and a free port. */
  static async start(opts: TraceIntakeOptions = {}): Promise<TraceIntake> {
    const server = http.createServer();
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => {
        server.off("error", reject);
        resolve();
      });
    });
    return new TraceIntake(server, opts);
  }

  get mode(): IntakeMode {
    return this.currentMode;
  }

  /** Takes effect for the next request; requests already black-holed stay held. */
  setMode(mode: IntakeMode): void {
    this.currentMode = mode;
  }

  /**
   * All spans captured so far, in arrival order. Not de-duplicated: dd-trace resends a
   * payload whose request timed out (2 s), so an intake that answers late sees it twice.
   */
  spans(): CapturedSpan[] {
    return this.capturedPayloads.flatMap((p) => p.traces.flat());
  }

  /** Spans grouped by trace id across payloads (and processes), in arrival order. */
  traces(): CapturedSpan[][] {
    const byId = new Map<string, CapturedSpan[]>();
    for (const span of this.spans()) {
      const trace = byId.get(span.traceId);
      if (trace) trace.push(span);
      else byId.set(span.traceId, [span]);
    }
    return [...byId.values()];
  }

  /** Decoded trace submissions, with their headers. */
  payloads(): CapturedPayload[] {
    return [...this.capturedPayloads];
  }

  /** Every request seen, trace submissions and side endpoints alike. */
  requests(): IntakeRequest[] {
    return [...this.seenRequests];
  }

  /** Trace submissions that could not be decoded (answered 400). */
  errors(): string[] {
    return [...this.decodeErrors];
  }

  /** Forgets everything captured so far. */
  clear(): void {
    this.capturedPayloads = [];
    this.seenRequests = [];
    this.decodeErrors = [];
  }

  /**
   * Resolves with all spans so far once `pred` holds for them. Checked now and after
   * each request; rejects after `timeoutMs` with what was captured.
   */
  waitForSpans(pred: (spans: CapturedSpan[]) => boolean, timeoutMs?: number): Promise<CapturedSpan[]> {
    return this.waitFor("spans", () => {
      const spans = this.spans();
      return pred(spans) ? spans : undefined;
    }, timeoutMs);
  }

  /** Resolves with the first trace (merged across payloads) for which `pred` holds. */
  waitForTrace(pred: (trace: CapturedSpan[]) => boolean, timeoutMs?: number): Promise<CapturedSpan[]> {
    return this.waitFor("a trace", () => this.traces().find(pred), timeoutMs);
  }

  /** Resolves with the first request seen for which `pred` holds (any path, any mode). */
  waitForRequest(pred: (req: IntakeRequest) => boolean, timeoutMs?: number): Promise<IntakeRequest> {
    return this.waitFor("a request", () => this.seenRequests.find(pred), timeoutMs);
  }

  /** Stops listening and destroys every connection, black-holed ones included. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const waiter of [...this.waiters]) waiter.fail(new Error("TraceIntake closed while waiting"));
    const done = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    for (const socket of this.sockets) socket.destroy();
    await done;
    if (this.captureFd !== undefined) fs.closeSync(this.captureFd);
  }

  /** A readable summary of what was captured, for failure messages. */
  describe(): string {
    const lines: string[] = [];
    const traces = this.traces();
    const spanCount = traces.reduce((n, t) => n + t.length, 0);
    lines.push(`${spanCount} span(s) in ${traces.length} trace(s), ${this.capturedPayloads.length} payload(s)`);
    for (const trace of traces.slice(0, 20)) {
      lines.push(`  trace ${trace[0].traceId}`);
      for (const s of trace.slice(0, 30)) {
        lines.push(
          `    ${s.name} [service=${s.service} resource=${JSON.stringify(s.resource)}] ` +
            `span=${s.spanId} parent=${s.parentId}${s.error ? " error" : ""}`,
        );
      }
      if (trace.length > 30) lines.push(`    … ${trace.length - 30} more`);
    }
    if (traces.length > 20) lines.push(`  … ${traces.length - 20} more trace(s)`);
    const requests = this.seenRequests;
    lines.push(`${requests.length} request(s):`);
    for (const r of requests.slice(-20)) lines.push(`  ${r.method} ${r.path} -> ${r.status}`);
    for (const e of this.decodeErrors) lines.push(`decode error: ${e}`);
    return lines.join("\n");
  }

  private waitFor<T>(what: string, select: () => T | undefined, timeoutMs = this.defaultTimeoutMs): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const waiter: Waiter = {
        check: () => {
          const found = select();
          if (found === undefined) return false;
          settle();
          resolve(found);
          return true;
        },
        fail: (error) => {
          settle();
          reject(error);
        },
      };
      const settle = () => {
        clearTimeout(timer);
        this.waiters.delete(waiter);
      };
      if (this.closed) return reject(new Error("TraceIntake is closed"));
      try {
        if (waiter.check()) return;
      } catch (error) {
        return reject(error);
      }
      this.waiters.add(waiter);
      timer = setTimeout(() => {
        waiter.fail(new Error(`TraceIntake: timed out after ${timeoutMs} ms waiting for ${what}; captured ${this.describe()}`));
      }, timeoutMs);
    });
  }

  private notify(): void {
    for (const waiter of [...this.waiters]) {
      try {
        waiter.check();
      } catch (error) {
        waiter.fail(error instanceof Error ? error : new Error(String(error)));
      }
    }
  }

  private onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("error", () => undefined);
    req.on("end", () => {
      const body = this.capture ? Buffer.concat(chunks) : Buffer.alloc(0);
      const record: IntakeRequest = {
        method: req.method ?? "",
        path: req.url ?? "",
        headers: req.headers,
        body,
        receivedAt: Date.now(),
        status: "blackholed",
      };
      if (this.currentMode === "blackhole") {
        this.seenRequests.push(record);
        this.notify();
        return; // hold the request: the socket is only ever destroyed by close()
      }
      const answer = () => {
        if (this.closed) return;
        if (res.destroyed || req.socket.destroyed) {
          record.status = "abandoned";
          this.seenRequests.push(record);
          this.notify();
          return;
        }
        const { status, type, payload } = this.currentMode === "refuse" ? refused() : this.route(record);
        record.status = status;
        this.seenRequests.push(record);
        res.writeHead(status, { "Content-Type": type, "Content-Length": Buffer.byteLength(payload) });
        res.end(payload);
        this.notify();
      };
      const isTrace = TRACE_PATHS[record.path.split("?")[0]] !== undefined;
      if (isTrace && this.traceAnswerDelayMs > 0) setTimeout(answer, this.traceAnswerDelayMs);
      else answer();
    });
  }

  private route(req: IntakeRequest): { status: number; type: string; payload: string } {
    const pathname = req.path.split("?")[0];
    const version = TRACE_PATHS[pathname];
    if (version) {
      if (req.method !== "PUT" && req.method !== "POST") return text(405, "method not allowed");
      if (!this.capture) return json(200, { rate_by_service: this.rateByService });
      let traces: CapturedSpan[][];
      try {
        traces = decodeTraces(version, req.body);
      } catch (error) {
        const message = `${req.method} ${pathname}: ${error instanceof Error ? error.message : String(error)}`;
        this.decodeErrors.push(message);
        return text(400, message);
      }
      if (this.captureFd !== undefined) {
        const lines = traces.flat().map((span) => `${captureLine(span)}\n`).join("");
        fs.writeSync(this.captureFd, lines);
      }
      this.capturedPayloads.push({
        version,
        method: req.method,
        path: pathname,
        headers: req.headers,
        receivedAt: req.receivedAt,
        traces,
      });
      return json(200, { rate_by_service: this.rateByService });
    }
    if (pathname === "/info" && req.method === "GET") return json(200, agentInfo());
    // 404 on /v0.7/config is how an agent says remote configuration is off; the tracer stays quiet.
    if (pathname === "/v0.7/config") return text(404, "404 page not found");
    if (pathname.startsWith("/telemetry/proxy/")) return json(202, {});
    if (pathname === "/dogstatsd/v2/proxy" || pathname === "/dogstatsd/v1/proxy") return text(200, "");
    if (pathname === "/v0.6/stats") return text(200, "OK");
    if (pathname.startsWith("/profiling/")) return json(200, {});
    if (pathname.startsWith("/evp_proxy/")) return json(200, {});
    return text(404, "404 page not found");
  }
}

/**
 * One span of the capture file: the v0.4 protocol's field names, ids and `start`
 * (nanoseconds since the epoch) as unsigned decimal strings, `duration` in nanoseconds,
 * `error` 0 or 1, `type` only when the tracer sent one. Read by analytics/spans-file.ts.
 */
export function captureLine(span: CapturedSpan): string {
  return JSON.stringify({
    trace_id: span.traceId,
    span_id: span.spanId,
    parent_id: span.parentId,
    service: span.service,
    name: span.name,
    resource: span.resource,
    ...(span.type === undefined ? {} : { type: span.type }),
    start: span.start.toString(),
    duration: span.duration,
    error: span.error,
    meta: span.meta,
    metrics: span.metrics,
  });
}

function text(status: number, payload: string) {
  return { status, type: "text/plain; charset=utf-8", payload };
}

function json(status: number, value: unknown) {
  return { status, type: "application/json", payload: JSON.stringify(value) };
}

function refused() {
  return text(503, "service unavailable");
}

function agentInfo() {
  return {
    version: "7.81.1",
    git_commit: "local",
    endpoints: ENDPOINTS,
    client_drop_p0s: false,
    span_meta_structs: true,
    long_running_spans: true,
    span_events: true,
    evp_proxy_allowed_headers: ["Content-Type", "Accept-Encoding", "Content-Encoding", "User-Agent"],
    config: {
      default_env: "none",
      statsd_port: 8125,
      receiver_port: 8126,
      receiver_socket: "",
      connection_limit: 0,
      receiver_timeout: 0,
      max_request_bytes: 26214400,
      analyzed_spans_by_service: {},
    },
    peer_tags: null,
  };
}

// ---------------------------------------------------------------------------------------
// Decoding

type Raw = unknown;

function decodeTraces(version: CapturedPayload["version"], body: Buffer): CapturedSpan[][] {
  const decoded = decode(body, { useBigInt64: true }) as Raw;
  return version === "0.4" ? decodeV04(decoded) : decodeV05(decoded);
}

function decodeV04(decoded: Raw): CapturedSpan[][] {
  return asArray(decoded, "payload").map((trace, t) =>
    asArray(trace, `trace ${t}`).map((raw, s) => {
      const where = `trace ${t} span ${s}`;
      const span = asObject(raw, where);
      const out: CapturedSpan = {
        traceId: uint64(span.trace_id, `${where} trace_id`),
        spanId: uint64(span.span_id, `${where} span_id`),
        parentId: span.parent_id === undefined ? "0" : uint64(span.parent_id, `${where} parent_id`),
        name: str(span.name, `${where} name`),
        resource: str(span.resource ?? "", `${where} resource`),
        service: str(span.service ?? "", `${where} service`),
        start: BigInt(int(span.start ?? 0, `${where} start`)),
        duration: num(span.duration ?? 0, `${where} duration`),
        error: num(span.error ?? 0, `${where} error`),
        meta: stringMap(span.meta ?? {}, `${where} meta`),
        metrics: numberMap(span.metrics ?? {}, `${where} metrics`),
      };
      if (typeof span.type === "string" && span.type !== "") out.type = span.type;
      if (span.span_events !== undefined) out.spanEvents = asArray(span.span_events, `${where} span_events`);
      if (span.meta_struct !== undefined) {
        out.metaStruct = {};
        for (const [key, value] of Object.entries(asObject(span.meta_struct, `${where} meta_struct`))) {
          out.metaStruct[key] = value instanceof Uint8Array ? decode(value, { useBigInt64: true }) : value;
        }
      }
      return out;
    }),
  );
}

/** `[strings, traces]`; each span `[service, name, resource, trace_id, span_id, parent_id, start, duration, error, meta, metrics, type]`. */
function decodeV05(decoded: Raw): CapturedSpan[][] {
  const top = asArray(decoded, "payload");
  if (top.length !== 2) throw new Error(`payload: expected [strings, traces], got an array of ${top.length}`);
  const strings = asArray(top[0], "string table").map((s, i) => str(s, `string ${i}`));
  const at = (index: Raw, where: string): string => {
    const i = num(index, where);
    if (!Number.isInteger(i) || i < 0 || i >= strings.length) {
      throw new Error(`${where}: string index ${i} outside the table of ${strings.length}`);
    }
    return strings[i];
  };
  return asArray(top[1], "traces").map((trace, t) =>
    asArray(trace, `trace ${t}`).map((raw, s) => {
      const where = `trace ${t} span ${s}`;
      const f = asArray(raw, where);
      if (f.length !== 12) throw new Error(`${where}: expected 12 fields, got ${f.length}`);
      const meta: Record<string, string> = {};
      for (const [k, v] of mapEntries(f[9], `${where} meta`)) meta[at(k, `${where} meta key`)] = at(v, `${where} meta value`);
      const metrics: Record<string, number> = {};
      for (const [k, v] of mapEntries(f[10], `${where} metrics`)) metrics[at(k, `${where} metrics key`)] = num(v, `${where} metrics value`);
      const out: CapturedSpan = {
        service: at(f[0], `${where} service`),
        name: at(f[1], `${where} name`),
        resource: at(f[2], `${where} resource`),
        traceId: uint64(f[3], `${where} trace_id`),
        spanId: uint64(f[4], `${where} span_id`),
        parentId: uint64(f[5], `${where} parent_id`),
        start: BigInt(int(f[6], `${where} start`)),
        duration: num(f[7], `${where} duration`),
        error: num(f[8], `${where} error`),
        meta,
        metrics,
      };
      const type = at(f[11], `${where} type`);
      if (type !== "") out.type = type;
      return out;
    }),
  );
}

function asArray(value: Raw, where: string): Raw[] {
  if (!Array.isArray(value)) throw new Error(`${where}: expected an array, got ${typeof value}`);
  return value;
}

function asObject(value: Raw, where: string): Record<string, Raw> {
  if (value === null || typeof value !== "object" || Array.isArray(value) || value instanceof Uint8Array) {
    throw new Error(`${where}: expected a map, got ${value === null ? "null" : typeof value}`);
  }
  return value as Record<string, Raw>;
}

/** Map entries with the original key (msgpack maps with integer keys decode to numeric-string keys). */
function mapEntries(value: Raw, where: string): [number, Raw][] {
  return Object.entries(asObject(value, where)).map(([k, v]) => [Number(k), v]);
}

function str(value: Raw, where: string): string {
  if (typeof value !== "string") throw new Error(`${where}: expected a string, got ${typeof value}`);
  return value;
}

/** An integer, exact: bigint when the wire carried a 64-bit integer. */
function int(value: Raw, where: string): bigint | number {
  if (typeof value === "bigint") return value;
  if (typeof value === "number" && Number.isSafeInteger(value)) return value;
  throw new Error(`${where}: expected an integer, got ${String(value)}`);
}

function uint64(value: Raw, where: string): string {
  return BigInt.asUintN(64, BigInt(int(value, where))).toString();
}

function num(value: Raw, where: string): number {
  if (typeof value === "number") return value;
  if (typeof value === "bigint") return Number(value);
  throw new Error(`${where}: expected a number, got ${typeof value}`);
}

function stringMap(value: Raw, where: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(asObject(value, where))) out[k] = str(v, `${where}.${k}`);
  return out;
}

function numberMap(value: Raw, where: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(asObject(value, where))) out[k] = num(v, `${where}.${k}`);
  return out;
}
