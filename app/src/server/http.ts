/**
 * The fastify instance both services start from: JSON error answers, body limit, probes,
 * and the hook that labels the HTTP root span with its business flow.
 */
import { STATUS_CODES, type IncomingMessage } from "node:http";
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
import { matchedRoutes, tracer, type Span } from "../tracing/tracer";

declare module "fastify" {
  interface FastifyRequest {
    /** The `fastify.request` span dd-trace opened for this request. */
    rootSpan: Span | null;
  }
}

/** Payment bodies are a few hundred bytes; anything near this is not a payment. */
export const BODY_LIMIT_BYTES = 16 * 1024;

/** Timeouts and caps of the HTTP server (env HTTP_*; see server/env.ts for the defaults). */
export interface ServerLimits {
  /** The whole request, headers and body, must arrive within it; else 408 and the connection closes. */
  readonly requestTimeoutMs: number;
  /** The request headers must arrive within it; else 408. */
  readonly headersTimeoutMs: number;
  /** An idle keep-alive connection is closed after it. */
  readonly keepAliveTimeoutMs: number;
  /** Requests on one connection before it is closed (`Connection: close` on the last). */
  readonly maxRequestsPerSocket: number;
  /** Connections open at once; one more is closed at accept. */
  readonly maxConnections: number;
}

/** The defaults of server/env.ts, for servers built without parsed env. */
export const DEFAULT_SERVER_LIMITS: ServerLimits = {
  requestTimeoutMs: 10_000,
  headersTimeoutMs: 5_000,
  keepAliveTimeoutMs: 72_000,
  maxRequestsPerSocket: 1_000,
  maxConnections: 1_024,
};

/**
 * How often Node checks requests against requestTimeout and headersTimeout (its default,
 * 30 s, would let a slow client outlive a 10 s timeout by up to 30 s).
 */
const TIMEOUT_CHECK_INTERVAL_MS = 500;

export interface HttpServerOptions {
  readonly logger: Logger;
  /** Default DEFAULT_SERVER_LIMITS. */
  readonly limits?: ServerLimits;
  /** Throws when a dependency the service needs is unreachable. */
  readonly readiness: () => Promise<void>;
  /** Counts the readiness check's handler too: shutdown waits for it before closing the pools. */
  readonly inFlight: InFlightHandlers;
}

export function createHttpServer({ logger, readiness, inFlight, limits = DEFAULT_SERVER_LIMITS }: HttpServerOptions): FastifyInstance {
  const app = Fastify({
    loggerInstance: logger,
    bodyLimit: BODY_LIMIT_BYTES,
    // A client that trickles its headers or body gets 408 and loses the connection once its
    // time is up, so it can neither tie up the server nor hold shutdown past its deadline.
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    maxRequestsPerSocket: limits.maxRequestsPerSocket,
    http: {
      requestTimeout: limits.requestTimeoutMs,
      headersTimeout: limits.headersTimeoutMs,
      keepAliveTimeout: limits.keepAliveTimeoutMs,
      connectionsCheckingInterval: TIMEOUT_CHECK_INTERVAL_MS,
    },
    return503OnClosing: true,
    clientErrorHandler,
    logController: new AccessLog(),
  }) as unknown as FastifyInstance;

  app.server.maxConnections = limits.maxConnections;
  cutSlowRequestsWhileClosing(app, limits.requestTimeoutMs);
  app.decorateRequest("rootSpan", null);
  app.decorateRequest("principal", null);
  // No API takes a query string: one can only carry what must not be sent in a URL (card
  // data, tokens), which proxies, access logs and traces would keep. Refused before any
  // other hook or handler runs; the route pattern is kept for the server span's http.url.
  app.addHook("onRequest", (request, reply, done) => {
    if (request.routeOptions.url) matchedRoutes.set(request.raw, request.routeOptions.url);
    if (request.raw.url?.includes("?")) {
      reply.code(400).send({ error: "query_not_allowed", details: [] });
      return;
    }
    done();
  });
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
 * Node stops checking requestTimeout once the server closes, so a client still trickling
 * its body when SIGTERM comes would hold close() until the shutdown deadline. From then on
 * this checks instead: a request whose body has not fully arrived within requestTimeoutMs
 * of its start gets the same 408 and loses its connection. Requests received in full are
 * left to finish.
 */
function cutSlowRequestsWhileClosing(app: FastifyInstance, requestTimeoutMs: number): void {
  const started = new Map<IncomingMessage, number>();
  app.server.on("request", (req: IncomingMessage) => {
    started.set(req, Date.now());
    req.once("close", () => started.delete(req));
  });
  app.addHook("preClose", (done) => {
    const sweep = setInterval(() => {
      const now = Date.now();
      for (const [req, at] of started) {
        if (req.complete || now - at < requestTimeoutMs) continue;
        started.delete(req);
        clientErrorHandler(Object.assign(new Error("request timeout"), { code: "ERR_HTTP_REQUEST_TIMEOUT" }), req.socket);
      }
    }, TIMEOUT_CHECK_INTERVAL_MS);
    sweep.unref();
    app.server.once("close", () => clearInterval(sweep));
    done();
  });
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
