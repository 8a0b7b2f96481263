/**
 * JSON logs on stdout. With DD_LOGS_INJECTION=true dd-trace's pino integration appends
 * `"dd":{"trace_id","span_id","service","env","version"}` to every line written inside a
 * span, which is how Datadog links a log line to its trace. Import after ./tracer.
 */
import pino, { type Logger } from "pino";
import { REDACTED, scrubText } from "./redaction";

/** Paths pino censors wherever they appear in a log object (request bodies are never logged). */
const REDACT_PATHS = [
  "card",
  "*.card",
  "cvv",
  "*.cvv",
  "password",
  "*.password",
  "ssn",
  "*.ssn",
  "token",
  "*.token",
  "authorization",
  "*.authorization",
  "req.headers",
  "headers.authorization",
  "headers.cookie",
];

interface LoggedRequest {
  method?: string;
  routeOptions?: { url?: string };
  ip?: string;
}

export function createLogger(level: string): Logger {
  return pino({
    level,
    redact: { paths: REDACT_PATHS, censor: REDACTED },
    formatters: { level: (label) => ({ level: label }) },
    timestamp: pino.stdTimeFunctions.isoTime,
    serializers: {
      // The route pattern, never the raw path or query: a client can put a card number in
      // either. A request that matched no route (404) is logged with route null.
      req: (req: LoggedRequest) => ({
        method: req.method,
        route: req.routeOptions?.url ?? null,
        remoteAddress: req.ip,
      }),
      err: (error: Error) => {
        const logged = pino.stdSerializers.err(error);
        return { ...logged, message: scrubText(logged.message), stack: scrubText(logged.stack) };
      },
    },
  });
}

export type { Logger };
