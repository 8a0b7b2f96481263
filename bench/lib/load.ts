/**
 * Closed-loop POST /v1/payments load: `connections` clients on keep-alive sockets (the
 * reliability specs' HttpClient), each sending the next payment when the previous one is
 * answered. Every payment has its own Idempotency-Key (`<keyPrefix>-<n>`), a random sender
 * with its owner's access token, a different random receiver among the seeded wallets and a
 * small amount. Failed: any answer but 2xx, and requests that got no answer.
 */
import { HttpClient, percentile } from "../../app/test/support/load";
import { authorizations, walletId } from "./stand";

const pick = (n: number) => 1 + Math.floor(Math.random() * n);

export async function runPaymentLoad(plan: { url: string; connections: number; seconds: number; wallets: number; keyPrefix: string }) {
  const client = new HttpClient(plan.url, plan.connections);
  const latencies: number[] = [];
  let sequence = 0;
  const started = performance.now();
  const loop = async () => {
    while (performance.now() - started < plan.seconds * 1000) {
      const sender = pick(plan.wallets);
      const receiver = ((sender - 1 + pick(plan.wallets - 1)) % plan.wallets) + 1;
      const answer = await client.request({
        path: "/v1/payments",
        headers: { "content-type": "application/json", "idempotency-key": `${plan.keyPrefix}-${++sequence}`, authorization: authorizations[sender] },
        body: {
          sender_id: walletId(sender),
          receiver_id: walletId(receiver),
          amount: 100 + Math.floor(Math.random() * 4900),
          currency: "USD",
          payment_method_type: "wallet",
          device: { id: `device-${sender}`, fingerprint: `fp-${sender.toString(36)}-web` },
        },
      }).catch(() => undefined);
      if (answer && answer.status >= 200 && answer.status < 300) latencies.push(answer.ms);
    }
  };
  await Promise.all(Array.from({ length: plan.connections }, loop));
  client.close();
  const seconds = (performance.now() - started) / 1000;
  const ok2xx = latencies.length;
  const at = (p: number) => (ok2xx ? percentile(latencies, p) : Number.NaN);
  return { seconds, ok2xx, failed: sequence - ok2xx, throughput: ok2xx / seconds, p50: at(50), p99: at(99) };
}
