import type { FastifyInstance, onRequestHookHandler } from "fastify";
import { authenticate } from "../auth/hook";
import { PAYMENTS_WRITE_SCOPE, type UserTokenVerifier } from "../auth/user-tokens";
import { dbQuery } from "../ledger/db";
import { createHttpServer, describeIssues, labelFlow } from "../server/http";
import type { InFlightHandlers } from "../server/in-flight";
import { AUTH_FAILURES, AUTH_TAGS, FAILURE_REASONS, FLOWS, ROOT_AUTH, ROUTES, SERVICES, SPANS, TAGS } from "../tracing/conventions";
import { setTags } from "../tracing/spans";
import { failureOutcome } from "./outcomes";
import { failureReasonOf, processPayment, type PaymentDeps } from "./payment-flow";
import type { PerUserRateLimiter } from "./rate-limit";
import { idempotencyKeySchema, paymentRequestSchema } from "./request";

export interface PaymentServerDeps extends PaymentDeps {
  /** Verifies a caller's access token. */
  readonly verifyUser: UserTokenVerifier;
  readonly rateLimiter: PerUserRateLimiter;
}

/**
 * 429 with Retry-After once the authenticated user is over the rate: before the body is
 * read, before any ledger or fraud work.
 */
function limitPerUser(limiter: PerUserRateLimiter): onRequestHookHandler {
  return (request, reply, done) => {
    const retryAfter = request.principal ? limiter.take(request.principal.id) : 0;
    if (retryAfter === 0) {
      done();
      return;
    }
    setTags(request.rootSpan, { [TAGS.rootRateLimited]: true });
    reply
      .code(429)
      .header("retry-after", String(retryAfter))
      .send({ error: "rate_limited", message: `too many payments; retry in ${retryAfter} s` });
  };
}

export function buildPaymentServer(deps: PaymentServerDeps, inFlight: InFlightHandlers): FastifyInstance {
  const authenticateUser = authenticate({
    spanName: SPANS.userAuthentication,
    realm: SERVICES.payment,
    requiredScope: PAYMENTS_WRITE_SCOPE,
    verify: deps.verifyUser,
    identify: (user) => ({ [AUTH_TAGS.userId]: user.id }),
  });

  const app = createHttpServer({
    logger: deps.logger,
    inFlight,
    readiness: async () => {
      await dbQuery(deps.pool, "readiness_check", "SELECT 1");
    },
  });

  // Authentication runs before the body is read: a refused request costs a signature check.
  const hooks = { onRequest: [labelFlow(FLOWS.payment), authenticateUser, limitPerUser(deps.rateLimiter)] };
  app.post(ROUTES.payments, hooks, inFlight.track(async (request, reply) => {
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
    // A token moves only its own user's money.
    if (body.data.sender_id !== request.principal?.id) {
      setTags(request.rootSpan, { [TAGS.rootAuth]: ROOT_AUTH.failed, [AUTH_TAGS.failureReason]: AUTH_FAILURES.senderMismatch });
      return reply.code(403).send({ error: AUTH_FAILURES.senderMismatch, message: "sender_id must be the authenticated user" });
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
