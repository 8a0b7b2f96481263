/**
 * The HTTP call to fraud-service: node:http (or https) on a keep-alive Agent, so payments reuse warm
 * connections. dd-trace's http integration opens the client span and injects the Datadog
 * and W3C trace headers. (Global fetch did the same work with about 10 % more CPU per
 * payment: bench/results/experiments.md as of commit ab3d20e.)
 */
import { Agent, request as httpRequest, type IncomingMessage } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import { ROUTES } from "../tracing/conventions";
import { scoreResponseSchema, type ScoreRequest, type ScoreResponse } from "../fraud-service/api";
import { FraudServiceUnavailable } from "./outcomes";

export interface FraudClient {
  score(request: ScoreRequest): Promise<ScoreResponse>;
}

/** Below fastify's default keep-alive timeout (72 s), above the longest fraud deadline. */
const IDLE_SOCKET_TIMEOUT_MS = 60_000;

/** A score answer is a few hundred bytes; anything this big is not one. */
const MAX_RESPONSE_BYTES = 64 * 1024;

/**
 * Any failure (refused, reset, timed out, non-2xx, malformed or oversized answer, no
 * service token to present) is FraudServiceUnavailable. `timeoutMs` bounds the whole
 * exchange, connect to last byte. `serviceToken` gives the bearer token fraud-service
 * authenticates payment-service by (its ServiceAccount token, re-read as the kubelet rotates it).
 */
export function createFraudClient(baseUrl: string, timeoutMs: number, serviceToken: () => string): FraudClient {
  const url = new URL(ROUTES.score, baseUrl);
  const secure = url.protocol === "https:";
  // Idle sockets are unref'd by the Agent: they never hold the process open at shutdown. The
  // socket timeout closes an idle socket before the server's keep-alive timeout would (Node
  // also honours a shorter `Keep-Alive: timeout=` hint, but only when this is set), so a
  // payment is not sent on a connection the server is closing. It is longer than any fraud
  // deadline (FRAUD_TIMEOUT_MS ≤ 30 s), which bounds requests in flight.
  const options = { keepAlive: true, timeout: IDLE_SOCKET_TIMEOUT_MS };
  const agent = secure ? new HttpsAgent(options) : new Agent(options);
  const send = secure ? httpsRequest : httpRequest;

  return {
    score(request) {
      const body = JSON.stringify(request);
      let authorization: string;
      try {
        authorization = `Bearer ${serviceToken()}`;
      } catch (cause) {
        return Promise.reject(new FraudServiceUnavailable("no service token to present to fraud-service", { cause }));
      }
      return new Promise<ScoreResponse>((resolve, reject) => {
        let settled = false;
        const settle = (error: FraudServiceUnavailable | undefined, value?: ScoreResponse) => {
          if (settled) return;
          settled = true;
          clearTimeout(deadline);
          if (error) reject(error);
          else resolve(value as ScoreResponse);
        };
        const unreachable = (cause: unknown) =>
          settle(new FraudServiceUnavailable("fraud-service unreachable", { cause }));

        const req = send(
          url,
          {
            method: "POST",
            agent,
            headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body), authorization },
          },
          (res) => readAnswer(res, settle, unreachable),
        );
        const deadline = setTimeout(() => {
          settle(new FraudServiceUnavailable(`fraud-service did not answer within ${timeoutMs} ms`));
          req.destroy();
        }, timeoutMs);
        req.on("error", unreachable);
        req.end(body);
      });
    },
  };
}

function readAnswer(
  res: IncomingMessage,
  settle: (error: FraudServiceUnavailable | undefined, value?: ScoreResponse) => void,
  unreachable: (cause: unknown) => void,
): void {
  const status = res.statusCode ?? 0;
  if (status < 200 || status > 299) {
    res.resume();
    settle(new FraudServiceUnavailable(`fraud-service answered ${status}`));
    return;
  }
  const chunks: Buffer[] = [];
  let size = 0;
  res.on("data", (chunk: Buffer) => {
    size += chunk.length;
    if (size > MAX_RESPONSE_BYTES) {
      settle(new FraudServiceUnavailable("fraud-service answered an unexpected body"));
      res.destroy();
      return;
    }
    chunks.push(chunk);
  });
  res.on("error", unreachable);
  // The connection ended before the whole answer arrived.
  res.on("close", () => {
    if (!res.complete) unreachable(new Error("fraud-service closed the connection mid-answer"));
  });
  res.on("end", () => {
    let json: unknown;
    try {
      json = JSON.parse(Buffer.concat(chunks).toString("utf8"));
    } catch {
      json = undefined;
    }
    const parsed = scoreResponseSchema.safeParse(json);
    if (!parsed.success) settle(new FraudServiceUnavailable("fraud-service answered an unexpected body"));
    else settle(undefined, parsed.data);
  });
}
