import type { FastifyInstance } from "fastify";
import { dbQuery } from "../ledger/db";
import { createHttpServer, describeIssues, labelFlow, type ServerLimits } from "../server/http";
import type { InFlightHandlers } from "../server/in-flight";
import { FAILURE_REASONS, FLOWS, ROUTES } from "../tracing/conventions";
import { failureOutcome } from "./outcomes";
import { failureReasonOf, processPayment, type PaymentDeps } from "./payment-flow";
import { idempotencyKeySchema, paymentRequestSchema } from "./request";

export function buildPaymentServer(deps: PaymentDeps, inFlight: InFlightHandlers, limits?: ServerLimits): FastifyInstance {
  const app = createHttpServer({
    logger: deps.logger,
    inFlight,
    limits,
    readiness: async () => {
      await dbQuery(deps.pool, "readiness_check", "SELECT 1");
    },
  });

  app.post(ROUTES.payments, { onRequest: labelFlow(FLOWS.payment) }, inFlight.track(async (request, reply) => {
    const key = idempotencyKeySchema.safeParse(request.headers["idempotency-key"]);
    if (!key.success) {
      return reply
        .code(400)
        .send({ error: "idempotency_key_required", details: describeIssues(key.error, "headers.idempotency-key") });
    }
    const body = paymentRequestSchema.safeParse(request.body);
    if (!body.success) {
      return reply.code(400).send({ error: "invalid_request", details: describeIssues(body.error) });
    }

    try {
      const outcome = await processPayment(deps, body.data, key.data, request.rootSpan);
      return reply.code(outcome.status).send(outcome.body);
    } catch (error) {
      const reason = failureReasonOf(error);
      request.log.error({ err: error, reason }, "payment failed");
      // A connection lost during COMMIT hides whether the transfer committed (seen when
      // PostgreSQL restarts under load): only a retry with the same key can tell the client.
      const message =
        reason === FAILURE_REASONS.databaseUnavailable
          ? "the payment may not have been made; retry with the same Idempotency-Key to get its outcome"
          : "the payment was not made; retry with the same Idempotency-Key";
      const outcome = failureOutcome(reason, message);
      return reply.code(outcome.status).send(outcome.body);
    }
  }));

  return app;
}
