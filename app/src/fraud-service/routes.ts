import type { FastifyInstance } from "fastify";
import { createHttpServer, describeIssues, labelFlow, type ServerLimits } from "../server/http";
import type { InFlightHandlers } from "../server/in-flight";
import { FLOWS, ROUTES } from "../tracing/conventions";
import { scoreRequestSchema } from "./api";
import { detectFraud, type DetectionDeps } from "./detection";

export function buildFraudServer(deps: DetectionDeps, inFlight: InFlightHandlers, limits?: ServerLimits): FastifyInstance {
  const app = createHttpServer({
    logger: deps.logger,
    inFlight,
    limits,
    readiness: async () => {
      await deps.redis.ping();
    },
  });

  app.post(ROUTES.score, { onRequest: labelFlow(FLOWS.fraudScore) }, inFlight.track(async (request, reply) => {
    const parsed = scoreRequestSchema.safeParse(request.body);
    if (!parsed.success) {
      return reply.code(400).send({ error: "invalid_request", details: describeIssues(parsed.error) });
    }
    const result = await detectFraud(deps, parsed.data);
    request.log.info({ decision: result.decision, degraded: result.degraded }, "payment scored");
    return result;
  }));

  return app;
}
