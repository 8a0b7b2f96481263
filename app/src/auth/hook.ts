/**
 * The one fastify hook both servers authenticate with: reads the bearer token, verifies it
 * inside a measured authentication span, labels the local root span with the outcome and
 * answers a refusal before the body is read, so a refused request costs a signature check
 * at most and reaches nothing else.
 */
import type { onRequestHookHandler } from "fastify";
import { AUTH_FAILURES, AUTH_TAGS, ROOT_AUTH, TAGS, type AuthFailure } from "../tracing/conventions";
import { errorTags, setTags, traced, type Tags } from "../tracing/spans";
import { tracer, type Span } from "../tracing/tracer";
import { AuthRefused, bearerToken, failureOf, refusalFor } from "./refusals";

/** Who a request was authenticated as: a user id, or a service account. */
export interface Principal {
  readonly id: string;
}

declare module "fastify" {
  interface FastifyRequest {
    /** Set by the authentication hook; null on routes without one. */
    principal: Principal | null;
  }
}

export interface AuthenticateOptions<P extends Principal> {
  /** The span each verification runs in (user.authentication, service.authentication). */
  readonly spanName: string;
  /** The `realm` of the WWW-Authenticate challenge. */
  readonly realm: string;
  /** Named in the `insufficient_scope` challenge. */
  readonly requiredScope?: string;
  readonly verify: (token: string) => Promise<P>;
  /** The tags that say who was authenticated (never the token, never other claims). */
  readonly identify: (principal: P) => Tags;
}

type Outcome<P> = { readonly principal: P } | { readonly failure: AuthFailure };

export function authenticate<P extends Principal>(options: AuthenticateOptions<P>): onRequestHookHandler {
  return (request, reply, done) => {
    const root: Span | null = request.rootSpan ?? tracer.scope().active();
    check(options, request.headers.authorization).then((outcome) => {
      if ("principal" in outcome) {
        setTags(root, { [TAGS.rootAuth]: ROOT_AUTH.ok });
        request.principal = outcome.principal;
        done();
        return;
      }
      setTags(root, { [TAGS.rootAuth]: ROOT_AUTH.failed, [AUTH_TAGS.failureReason]: outcome.failure });
      request.log.warn({ reason: outcome.failure }, "authentication failed");
      const refusal = refusalFor(outcome.failure, options.realm, options.requiredScope);
      if (refusal.challenge) reply.header("www-authenticate", refusal.challenge);
      reply.code(refusal.status).send({ error: refusal.error });
    }, done);
  };
}

function check<P extends Principal>(options: AuthenticateOptions<P>, header: string | undefined): Promise<Outcome<P>> {
  return traced(options.spanName, async (span) => {
    let outcome: Outcome<P>;
    try {
      const token = bearerToken(header);
      if (token === undefined) throw new AuthRefused(AUTH_FAILURES.missingToken);
      // Outside the request's trace: a key set fetch is shared by every request waiting on
      // it, and its outgoing call must not take the sampling decision before the root span
      // knows the outcome.
      outcome = { principal: await tracer.scope().activate(null as unknown as Span, () => options.verify(token)) };
    } catch (error) {
      outcome = { failure: failureOf(error) };
      if (outcome.failure === AUTH_FAILURES.keysUnavailable) setTags(span, errorTags(error));
    }
    if ("principal" in outcome) {
      setTags(span, { [AUTH_TAGS.result]: "success", ...options.identify(outcome.principal) });
    } else {
      setTags(span, { [AUTH_TAGS.result]: "failure", [AUTH_TAGS.failureReason]: outcome.failure });
    }
    return outcome;
  });
}
