/**
 * Closed-loop POST /v1/payments load: `connections` clients on keep-alive sockets (the
 * reliability specs' HttpClient), each sending the next payment when the previous one is
 * answered. Every payment has its own Idempotency-Key, a random sender with its owner's
 * access token, a different random receiver among the seeded wallets and a small amount.
 */
import { HttpClient, percentile } from "../../app/test/support/load";
import { authorizationFor, walletId } from "./stand";

export interface LoadResult {
  readonly seconds: number;
  readonly ok2xx: number;
  /** Other answers and errors, by status ("error": no answer). */
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
}

const pick = (n: number) => 1 + Math.floor(Math.random() * n);

export async function runPaymentLoad(plan: LoadPlan): Promise<LoadResult> {
  const client = new HttpClient(plan.url, plan.connections);
  const latencies: number[] = [];
  const statusCodes: Record<string, number> = {};
  let sequence = 0;
  const started = performance.now();
  const loop = async () => {
    while (performance.now() - started < plan.seconds * 1000) {
      const sender = pick(plan.wallets);
      const receiver = ((sender - 1 + pick(plan.wallets - 1)) % plan.wallets) + 1;
      const status = await client
        .request({
          path: "/v1/payments",
          headers: { "content-type": "application/json", "idempotency-key": `${plan.keyPrefix}-${++sequence}`, authorization: authorizationFor(sender) },
          body: {
            sender_id: walletId(sender),
            receiver_id: walletId(receiver),
            amount: 100 + Math.floor(Math.random() * 4900),
            currency: "USD",
            payment_method_type: "wallet",
            device: { id: `device-${sender}`, fingerprint: `fp-${sender.toString(36)}-web` },
          },
        })
        .then(
          (answer) => (answer.status >= 200 && answer.status < 300 && latencies.push(answer.ms), String(answer.status)),
          () => "error",
        );
      statusCodes[status] = (statusCodes[status] ?? 0) + 1;
    }
  };
  await Promise.all(Array.from({ length: plan.connections }, loop));
  client.close();
  const seconds = (performance.now() - started) / 1000;
  const ok2xx = latencies.length;
  const at = (p: number) => (ok2xx ? percentile(latencies, p) : Number.NaN);
  return { seconds, ok2xx, failed: sequence - ok2xx, statusCodes, throughput: ok2xx / seconds, p50: at(50), p99: at(99) };
}
