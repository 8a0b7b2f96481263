import type { FastifyInstance } from "fastify";
import { authenticate } from "../auth/hook";
import type { ServiceTokenVerifier } from "../auth/service-tokens";
import { createHttpServer, describeIssues, labelFlow } from "../server/http";
import type { InFlightHandlers } from "../server/in-flight";
import { AUTH_TAGS, FLOWS, ROUTES, SERVICES, SPANS } from "../tracing/conventions";
import { scoreRequestSchema } from "./api";
import { detectFraud, type DetectionDeps } from "./detection";

export interface FraudServerDeps extends DetectionDeps {
  /** Verifies the calling service's ServiceAccount token. */
  readonly verifyService: ServiceTokenVerifier;
}

export function buildFraudServer(deps: FraudServerDeps, inFlight: InFlightHandlers): FastifyInstance {
  const authenticateService = authenticate({
    spanName: SPANS.serviceAuthentication,
    realm: SERVICES.fraud,
    verify: deps.verifyService,
    identify: (account) => ({ [AUTH_TAGS.serviceAccount]: account.id }),
  });
  const app = createHttpServer({
    logger: deps.logger,
    inFlight,
    readiness: async () => {
      await deps.redis.ping();
    },
  });

  // Only payment-service may score: checked before the body is read, before any Redis command.
  app.post(ROUTES.score, { onRequest: [labelFlow(FLOWS.fraudScore), authenticateService] }, inFlight.track(async (request, reply) => {
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
