/**
 * The fastify instance both services start from: JSON error answers, body limit, probes,
 * and the hook that labels the HTTP root span with its business flow.
 */
import { STATUS_CODES } from "node:http";
import type { Socket } from "node:net";
import Fastify, {
  LogController,
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  type onRequestHookHandler,
} from "fastify";
import type { z } from "zod";
import { ROUTES, TAGS } from "../tracing/conventions";
import type { Logger } from "../tracing/logger";
import type { InFlightHandlers } from "./in-flight";
import { setTags } from "../tracing/spans";
import { tracer, type Span } from "../tracing/tracer";

declare module "fastify" {
  interface FastifyRequest {
    /** The `fastify.request` span dd-trace opened for this request. */
    rootSpan: Span | null;
  }
}

/** Payment bodies are a few hundred bytes; anything near this is not a payment. */
export const BODY_LIMIT_BYTES = 16 * 1024;

export interface HttpServerOptions {
  readonly logger: Logger;
  /** Throws when a dependency the service needs is unreachable. */
  readonly readiness: () => Promise<void>;
  /** Counts the readiness check's handler too: shutdown waits for it before closing the pools. */
  readonly inFlight: InFlightHandlers;
}

export function createHttpServer({ logger, readiness, inFlight }: HttpServerOptions): FastifyInstance {
  const app = Fastify({
    loggerInstance: logger,
    bodyLimit: BODY_LIMIT_BYTES,
    return503OnClosing: true,
    clientErrorHandler,
    logController: new AccessLog(),
  }) as unknown as FastifyInstance;

  app.decorateRequest("rootSpan", null);
  app.decorateRequest("principal", null);
  // JSON only: anything else is 415, not a string body that fails validation later.
  app.removeContentTypeParser("text/plain");

  // Once closing, answer what is in flight with `Connection: close`: otherwise a keep-alive
  // connection that turns idle after close() began stays open and holds shutdown.
  let draining = false;
  app.addHook("preClose", (done) => {
    draining = true;
    done();
  });
  app.addHook("onSend", (_request, reply, payload, done) => {
    if (draining) reply.header("connection", "close");
    done(null, payload);
  });

  app.setErrorHandler((error: FastifyError, request, reply) => {
    const status = error.statusCode ?? 500;
    if (status === 413) return reply.code(413).send({ error: "payload_too_large", details: [] });
    if (status === 415) return reply.code(415).send({ error: "unsupported_media_type", details: [] });
    if (status === 400) return reply.code(400).send({ error: "invalid_json", details: [] });
    request.log.error({ err: error }, "unhandled error");
    return reply.code(500).send({ error: "internal_error" });
  });
  app.setNotFoundHandler((_request, reply) => reply.code(404).send({ error: "not_found" }));

  app.get(ROUTES.liveness, async () => ({ status: "ok" }));
  app.get(
    ROUTES.readiness,
    inFlight.track(async (request, reply) => {
      try {
        await readiness();
        return { status: "ready" };
      } catch (error) {
        request.log.warn({ err: error }, "not ready");
        return reply.code(503).send({ status: "not_ready" });
      }
    }),
  );

  return app;
}

/**
 * One access line per request, written when it completes, with the request's method, path
 * and route next to the status and time, instead of fastify's two lines ("incoming
 * request", then "request completed"): at a payment's handful of log lines, each line is
 * measurable CPU (bench/results/experiments.md as of commit 1915bba). Error lines are fastify's own.
 */
class AccessLog extends LogController {
  override incomingRequest(): void {}

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    if (error) {
      reply.log.error({ req: request, res: reply, err: error, responseTime: reply.elapsedTime }, "request errored");
    } else {
      reply.log.info({ req: request, res: reply, responseTime: reply.elapsedTime }, "request completed");
    }
  }
}

/**
 * Requests Node's HTTP parser rejects before fastify sees them (headers over 16 KiB, bytes
 * not allowed in a header, a malformed request line) would get fastify's default answer,
 * whose `error` is an HTTP reason phrase ("Request Header Fields Too Large") instead of a
 * code like every other error answer. Same statuses and behaviour, the API's body shape.
 */
function clientErrorHandler(error: Error & { code?: string }, socket: Socket): void {
  if (error.code === "ECONNRESET" || socket.destroyed) return;
  const [status, code] =
    error.code === "ERR_HTTP_REQUEST_TIMEOUT"
      ? [408, "request_timeout"]
      : error.code === "HPE_HEADER_OVERFLOW"
        ? [431, "headers_too_large"]
        : [400, "bad_request"];
  const body = JSON.stringify({ error: code, details: [] });
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
        `Content-Type: application/json\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy(error);
}

/**
 * A route's onRequest hook: keeps the request's root span and tags it with the flow.
 * Head-based sampling decides at the first outgoing call by looking at the root span, so
 * a rule on `payments.flow` only works if the tag is there before the handler runs.
 */
export function labelFlow(flow: string): onRequestHookHandler {
  return (request, _reply, done) => {
    const root = tracer.scope().active();
    request.rootSpan = root;
    setTags(root, { [TAGS.flow]: flow });
    done();
  };
}

export interface ValidationIssue {
  readonly path: string;
  readonly code: string;
  readonly message: string;
}

/** Validation problems as answered in `details`: where and what, never the offending value. */
export function describeIssues(error: z.ZodError, prefix = ""): ValidationIssue[] {
  return error.issues.map((issue) => ({
    path: prefix + issue.path.map(String).join("."),
    code: issue.code,
    message: issue.message,
  }));
}
