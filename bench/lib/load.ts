/**
 * Closed-loop POST /v1/payments load with autocannon: `connections` clients, each sending
 * the next payment when the previous one is answered. Every payment has its own
 * Idempotency-Key, a random sender (with its owner's access token) and a different random receiver among the seeded
 * wallets, and a small amount. Latencies come from autocannon's per-response event
 * (sub-millisecond) for 2xx answers.
 */
import autocannon from "autocannon";
import { authorizationFor, walletId } from "./stand";

export interface LoadResult {
  readonly seconds: number;
  readonly ok2xx: number;
  /** Non-2xx answers, errors and timeouts, with the status codes seen. */
  readonly failed: number;
  readonly statusCodes: Record<string, number>;
  /** 2xx answers per second. */
  readonly throughput: number;
  readonly p50: number;
  readonly p99: number;
}

export interface LoadPlan {
  readonly url: string;
  readonly connections: number;
  readonly seconds: number;
  readonly wallets: number;
  /** Keys are `<keyPrefix>-<n>`: unique across rounds and runs. */
  readonly keyPrefix: string;
  /** Extra request headers (e.g. authorization). */
  readonly headers?: Record<string, string>;
}

const pick = (n: number) => 1 + Math.floor(Math.random() * n);

export async function runPaymentLoad(plan: LoadPlan): Promise<LoadResult> {
  let sequence = 0;
  const latencies: number[] = [];
  const instance = autocannon({
    url: plan.url,
    connections: plan.connections,
    duration: plan.seconds,
    timeout: 10,
    requests: [
      {
        method: "POST",
        path: "/v1/payments",
        setupRequest: (request) => {
          const sender = pick(plan.wallets);
          const receiver = ((sender - 1 + pick(plan.wallets - 1)) % plan.wallets) + 1;
          sequence += 1;
          return {
            ...request,
            headers: {
              "content-type": "application/json",
              "idempotency-key": `${plan.keyPrefix}-${sequence}`,
              // The sender's own access token: payment-service binds sender_id to the token's sub.
              authorization: authorizationFor(sender),
              ...plan.headers,
            },
            body: JSON.stringify({
              sender_id: walletId(sender),
              receiver_id: walletId(receiver),
              amount: 100 + Math.floor(Math.random() * 4900),
              currency: "USD",
              payment_method_type: "wallet",
              device: { id: `device-${sender}`, fingerprint: `fp-${sender.toString(36)}-web` },
            }),
          };
        },
      },
    ],
  });
  instance.on("response", (_client: unknown, status: number, _bytes: number, ms: number) => {
    if (status >= 200 && status < 300) latencies.push(ms);
  });
  const result = await instance;
  const statusCodes: Record<string, number> = {};
  for (const [code, { count }] of Object.entries(result.statusCodeStats ?? {})) statusCodes[code] = count;
  latencies.sort((a, b) => a - b);
  const at = (q: number) => (latencies.length ? latencies[Math.min(latencies.length - 1, Math.ceil(q * latencies.length) - 1)] : Number.NaN);
  return {
    seconds: result.duration,
    ok2xx: result["2xx"],
    failed: result.non2xx + result.errors,
    statusCodes,
    throughput: result["2xx"] / result.duration,
    p50: at(0.5),
    p99: at(0.99),
  };
}
