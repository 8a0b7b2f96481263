/**
 * Drives POST /v1/payments with autocannon: a unique Idempotency-Key per request, a random
 * sender (with its owner's access token) and a different random receiver among the seeded
 * wallets, a small amount.
 * Latencies are taken from autocannon's per-response event (sub-millisecond; its own
 * histogram rounds to whole milliseconds) for 2xx answers only.
 */
import autocannon from "autocannon";
import { authorizationFor, walletId } from "./stand";

export interface PaymentLoad {
  readonly url: string;
  readonly connections: number;
  readonly durationSec: number;
  /** Seeded wallets bench_1 … bench_<wallets>. */
  readonly wallets: number;
  /** Makes keys unique across phases and runs: `<keyPrefix>-<n>`. */
  readonly keyPrefix: string;
  /** Fixed arrival rate (req/s over all connections); unset = as fast as answers come. */
  readonly overallRate?: number;
}

export interface LatencySummary {
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
  readonly mean: number;
}

export interface PhaseResult {
  readonly durationSec: number;
  readonly requests: number;
  readonly ok2xx: number;
  readonly non2xx: number;
  /** Connection errors and timeouts. */
  readonly errors: number;
  /** Of which timeouts. */
  readonly timeouts: number;
  readonly statusCodes: Record<string, number>;
  /** 2xx answers per second. */
  readonly throughput: number;
  /** Milliseconds, 2xx answers. */
  readonly latencyMs: LatencySummary;
}

export function paymentBody(sender: number, receiver: number, amount: number): string {
  return JSON.stringify({
    sender_id: walletId(sender),
    receiver_id: walletId(receiver),
    amount,
    currency: "USD",
    payment_method_type: "wallet",
    device: { id: `device-${sender}`, fingerprint: `fp-${sender.toString(36)}-web` },
  });
}

/** 1 … n */
function pick(n: number): number {
  return 1 + Math.floor(Math.random() * n);
}

export async function runPaymentLoad(load: PaymentLoad): Promise<PhaseResult> {
  let sequence = 0;
  const latencies: number[] = [];
  const instance = autocannon({
    url: load.url,
    connections: load.connections,
    duration: load.durationSec,
    timeout: 10,
    overallRate: load.overallRate,
    requests: [
      {
        method: "POST",
        path: "/v1/payments",
        setupRequest: (request) => {
          const sender = pick(load.wallets);
          // A different wallet, uniformly: shift by 1 … n-1 around the ring.
          const receiver = ((sender - 1 + pick(load.wallets - 1)) % load.wallets) + 1;
          sequence += 1;
          return {
            ...request,
            headers: {
              "content-type": "application/json",
              "idempotency-key": `${load.keyPrefix}-${sequence}`,
              authorization: authorizationFor(sender),
            },
            body: paymentBody(sender, receiver, 100 + Math.floor(Math.random() * 4900)),
          };
        },
      },
    ],
  });
  instance.on("response", (_client: unknown, statusCode: number, _bytes: number, responseTime: number) => {
    if (statusCode >= 200 && statusCode < 300) latencies.push(responseTime);
  });
  const result = await instance;
  const statusCodes: Record<string, number> = {};
  for (const [code, { count }] of Object.entries(result.statusCodeStats ?? {})) statusCodes[code] = count;
  const ok2xx = result["2xx"];
  return {
    durationSec: result.duration,
    // autocannon counts a timeout as an error too.
    requests: ok2xx + result.non2xx + result.errors,
    ok2xx,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    statusCodes,
    throughput: ok2xx / result.duration,
    latencyMs: summarize(latencies),
  };
}

export function summarize(values: number[]): LatencySummary {
  if (values.length === 0) return { p50: Number.NaN, p90: Number.NaN, p99: Number.NaN, max: Number.NaN, mean: Number.NaN };
  const sorted = Float64Array.from(values).sort();
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
  let sum = 0;
  for (const v of sorted) sum += v;
  return { p50: at(0.5), p90: at(0.9), p99: at(0.99), max: sorted[sorted.length - 1], mean: sum / sorted.length };
}

/** Requests that did not get a 2xx (errors, timeouts, other statuses). */
export function failures(phase: PhaseResult): number {
  return phase.non2xx + phase.errors;
}
