/**
 * The HTTP call to fraud-service. Global fetch: dd-trace's fetch integration opens the
 * client span and injects the Datadog and W3C trace headers.
 */
import { ROUTES } from "../tracing/conventions";
import { scoreResponseSchema, type ScoreRequest, type ScoreResponse } from "../fraud-service/api";
import { FraudServiceUnavailable } from "./outcomes";

export interface FraudClient {
  score(request: ScoreRequest): Promise<ScoreResponse>;
}

/** Any failure (refused, timed out, non-2xx, malformed answer) is FraudServiceUnavailable. */
export function createFraudClient(baseUrl: string, timeoutMs: number): FraudClient {
  const url = new URL(ROUTES.score, baseUrl).toString();
  return {
    async score(request) {
      let response: Response;
      try {
        response = await fetch(url, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify(request),
          signal: AbortSignal.timeout(timeoutMs),
        });
      } catch (error) {
        const timedOut = error instanceof Error && error.name === "TimeoutError";
        throw new FraudServiceUnavailable(
          timedOut ? `fraud-service did not answer within ${timeoutMs} ms` : "fraud-service unreachable",
          { cause: error },
        );
      }
      if (!response.ok) {
        await response.body?.cancel();
        throw new FraudServiceUnavailable(`fraud-service answered ${response.status}`);
      }
      const parsed = scoreResponseSchema.safeParse(await response.json().catch(() => undefined));
      if (!parsed.success) throw new FraudServiceUnavailable("fraud-service answered an unexpected body");
      return parsed.data;
    },
  };
}
