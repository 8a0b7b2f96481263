/**
 * Load for the reliability specs: a keep-alive HTTP client (node:http, so many requests
 * share a few sockets and the client stays cheap next to the services), a bounded
 * concurrency pool, a seeded random generator and percentiles.
 */
import http from "node:http";
import { identity } from "./identity";

export interface HttpAnswer {
  readonly status: number;
  /** The body parsed as JSON, or undefined when it is not JSON. */
  readonly body: Record<string, unknown> | undefined;
  readonly raw: string;
  /** Time from sending the request to the end of the answer. */
  readonly ms: number;
}

export interface HttpRequest {
  readonly method?: string;
  readonly path: string;
  readonly headers?: Record<string, string | undefined>;
  /** Sent as is (a string or bytes); objects are JSON-encoded. */
  readonly body?: unknown;
}

/** A keep-alive client for one base URL. `close()` destroys its sockets. */
export class HttpClient {
  private readonly agent: http.Agent;
  private readonly host: string;
  private readonly port: number;

  constructor(baseUrl: string, maxSockets = 64) {
    const url = new URL(baseUrl);
    this.host = url.hostname;
    this.port = Number(url.port);
    this.agent = new http.Agent({ keepAlive: true, maxSockets, maxFreeSockets: maxSockets });
  }

  request({ method = "POST", path, headers = {}, body }: HttpRequest): Promise<HttpAnswer> {
    const payload =
      body === undefined ? undefined : typeof body === "string" || Buffer.isBuffer(body) ? body : JSON.stringify(body);
    const sent: Record<string, string> = {};
    for (const [k, v] of Object.entries(headers)) if (v !== undefined) sent[k] = v;
    if (payload !== undefined) sent["content-length"] = String(Buffer.byteLength(payload));
    return new Promise((resolve, reject) => {
      const started = process.hrtime.bigint();
      const req = http.request(
        { host: this.host, port: this.port, method, path, headers: sent, agent: this.agent },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("error", reject);
          res.on("end", () => {
            const raw = Buffer.concat(chunks).toString("utf8");
            let parsed: Record<string, unknown> | undefined;
            try {
              const value: unknown = JSON.parse(raw);
              if (value && typeof value === "object" && !Array.isArray(value)) parsed = value as Record<string, unknown>;
            } catch {
              parsed = undefined;
            }
            const ms = Number(process.hrtime.bigint() - started) / 1e6;
            resolve({ status: res.statusCode ?? 0, body: parsed, raw, ms });
          });
        },
      );
      req.on("error", reject);
      req.end(payload);
    });
  }

  /** POST /v1/payments with a JSON body, the given Idempotency-Key and an access token for the body's sender. */
  async pay(body: { readonly sender_id: string; readonly [field: string]: unknown }, idempotencyKey: string): Promise<HttpAnswer> {
    const authorization = await (await identity()).bearer(body.sender_id);
    return this.request({
      path: "/v1/payments",
      headers: { "content-type": "application/json", "idempotency-key": idempotencyKey, authorization },
      body,
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

/**
 * Runs `jobs` with at most `concurrency` of them in flight; resolves when all settled, in
 * job order. A job that throws rejects the whole run once the others have settled.
 */
export async function runPool<T>(jobs: ReadonlyArray<() => Promise<T>>, concurrency: number): Promise<T[]> {
  const results: T[] = new Array(jobs.length);
  const errors: unknown[] = [];
  let next = 0;
  const worker = async () => {
    while (next < jobs.length) {
      const index = next++;
      try {
        results[index] = await jobs[index]();
      } catch (error) {
        errors.push(error);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, jobs.length) }, worker));
  if (errors.length) throw errors[0];
  return results;
}

/** mulberry32: a small seeded generator, so a failing run can be replayed with its seed. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/** The seed from `RELIABILITY_SEED` when set (to replay a failure), else `fallback`. */
export function fixedSeed(fallback: number): number {
  const fromEnv = process.env.RELIABILITY_SEED;
  if (fromEnv === undefined || fromEnv === "") return fallback;
  const seed = Number(fromEnv);
  if (!Number.isSafeInteger(seed)) throw new Error(`RELIABILITY_SEED must be an integer, got ${fromEnv}`);
  return seed;
}

/** Nearest-rank percentile (p in 0..100) of `values`. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) throw new Error("percentile of no values");
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1];
}

export function median(values: readonly number[]): number {
  return percentile(values, 50);
}

/** `{ "201": 10, "503 database_unavailable": 3 }`: answers counted by status and error code. */
export function tally(answers: ReadonlyArray<Pick<HttpAnswer, "status" | "body">>): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const a of answers) {
    const error = a.body?.error;
    const key = typeof error === "string" ? `${a.status} ${error}` : String(a.status);
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}
