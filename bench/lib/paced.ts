/**
 * Open-loop load at a fixed rate with evenly spaced arrivals, for latency below capacity.
 * autocannon's rate option sends each connection's quota for the second in one burst at
 * the start of the second (10 req/s over 32 connections = 10 payments at once, every
 * second), which measures queueing behind the burst rather than a payment's latency.
 * Latency is from the moment the request was due, so a late send counts against it.
 */
import http from "node:http";
import { paymentBody, summarize, type PhaseResult } from "./load";
import { authorizationFor } from "./stand";

export interface PacedLoad {
  readonly url: string;
  readonly rate: number;
  readonly durationSec: number;
  readonly wallets: number;
  readonly keyPrefix: string;
}

const pick = (n: number) => 1 + Math.floor(Math.random() * n);

export interface PacedResult extends PhaseResult {
  /** Every 2xx answer's latency, ms, in arrival order: rounds are pooled for the percentiles. */
  readonly samplesMs: number[];
}

export async function runPacedLoad(load: PacedLoad): Promise<PacedResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  const target = new URL("/v1/payments", load.url);
  const total = Math.max(1, Math.round(load.rate * load.durationSec));
  const interval = 1000 / load.rate;
  const latencies: number[] = [];
  const statusCodes: Record<string, number> = {};
  let ok2xx = 0;
  let non2xx = 0;
  let errors = 0;
  let timeouts = 0;

  const send = (sequence: number, due: number) =>
    new Promise<void>((resolve) => {
      const sender = pick(load.wallets);
      const receiver = ((sender - 1 + pick(load.wallets - 1)) % load.wallets) + 1;
      const body = paymentBody(sender, receiver, 100 + Math.floor(Math.random() * 4900));
      const req = http.request(
        target,
        {
          method: "POST",
          agent,
          headers: {
            "content-type": "application/json",
            "content-length": Buffer.byteLength(body),
            "idempotency-key": `${load.keyPrefix}-${sequence}`,
            authorization: authorizationFor(sender),
          },
          timeout: 10_000,
        },
        (res) => {
          res.resume();
          res.on("end", () => {
            const code = res.statusCode ?? 0;
            statusCodes[code] = (statusCodes[code] ?? 0) + 1;
            if (code >= 200 && code < 300) {
              ok2xx += 1;
              latencies.push(performance.now() - due);
            } else {
              non2xx += 1;
            }
            resolve();
          });
        },
      );
      req.on("timeout", () => {
        timeouts += 1;
        req.destroy(new Error("timeout"));
      });
      req.on("error", () => {
        errors += 1;
        resolve();
      });
      req.end(body);
    });

  const started = performance.now();
  const inFlight: Promise<void>[] = [];
  for (let i = 0; i < total; i++) {
    const due = started + i * interval;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    inFlight.push(send(i + 1, due));
  }
  await Promise.all(inFlight);
  agent.destroy();
  const durationSec = (performance.now() - started) / 1000;
  return {
    durationSec,
    requests: ok2xx + non2xx + errors,
    ok2xx,
    non2xx,
    errors,
    timeouts,
    statusCodes,
    throughput: ok2xx / durationSec,
    latencyMs: summarize(latencies),
    samplesMs: latencies.map((ms) => Math.round(ms * 1000) / 1000),
  };
}
