/**
 * PostgreSQL access for the services: every statement runs inside one measured
 * `database.query` span whose resource is a short operation name (dd-trace's pg span
 * underneath carries the SQL text, so SQL stays parameterised). Each statement is its own
 * transaction; the transfer is one statement (the ledger's `transfer_funds` function), so
 * no connection is held across round trips.
 * Connection settings come from the standard PG* variables, which pg reads itself.
 */
import { readFileSync } from "node:fs";
import type { ConnectionOptions } from "node:tls";
import { Pool, type PoolClient, type QueryResult, type QueryResultRow } from "pg";
import { DETAIL_TAGS, SPANS } from "../tracing/conventions";
import { elapsedMs, recordDbQuery, startTimer } from "../tracing/performance";
import { setTags, traced } from "../tracing/spans";

export interface PoolSettings {
  readonly max: number;
  /** Server-side limit per statement, so a lock wait or a slow plan fails instead of hanging. */
  readonly statementTimeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly applicationName: string;
  /** TLS to the server: verify-full against `caFile`, or none. */
  readonly tls: { readonly mode: "verify-full"; readonly caFile: string } | { readonly mode: "disable" };
}

/** What a CA bundle must look like: at least one PEM certificate. */
const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/;

/**
 * pg's `ssl` for `tls`: verify-full is Node's default verification (chain to the given CAs,
 * the certificate names the host we connect to), and pg then never falls back to cleartext:
 * a server that does not speak TLS fails the connection. Throws, naming the file, when the
 * bundle cannot be read or holds no PEM certificate.
 */
export function sslOptions(tls: PoolSettings["tls"]): false | ConnectionOptions {
  if (tls.mode === "disable") return false;
  let bundle: string;
  try {
    bundle = readFileSync(tls.caFile, "utf8");
  } catch (error) {
    throw new Error(`PGSSLROOTCERT ${tls.caFile} cannot be read: ${(error as Error).message}`);
  }
  if (!PEM_CERTIFICATE.test(bundle)) throw new Error(`PGSSLROOTCERT ${tls.caFile} holds no PEM certificate`);
  return { ca: bundle, rejectUnauthorized: true };
}

export function createPool(settings: PoolSettings): Pool {
  return new Pool({
    ssl: sslOptions(settings.tls),
    max: settings.max,
    statement_timeout: settings.statementTimeoutMs,
    idle_in_transaction_session_timeout: settings.statementTimeoutMs * 2,
    connectionTimeoutMillis: settings.connectTimeoutMs,
    application_name: settings.applicationName,
  });
}

/** A pool, or one connection of it inside an explicit transaction. */
export type Queryable = Pool | PoolClient;

export function dbQuery<R extends QueryResultRow>(
  pool: Queryable,
  operation: string,
  text: string,
  values: readonly unknown[] = [],
): Promise<QueryResult<R>> {
  return traced(
    SPANS.databaseQuery,
    async (span) => {
      const started = startTimer();
      try {
        const result = await pool.query<R>(text, values as unknown[]);
        setTags(span, { [DETAIL_TAGS.dbRowCount]: result.rowCount ?? 0 });
        return result;
      } finally {
        recordDbQuery(elapsedMs(started));
      }
    },
    { [DETAIL_TAGS.dbOperation]: operation },
    { resource: operation },
  );
}

const CONNECTION_ERROR_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "ENOTFOUND", "ETIMEDOUT", "EPIPE"]);

/** OpenSSL's certificate verification failures, as Node reports them. */
const TLS_VERIFY_ERROR_CODES = new Set([
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "CERT_UNTRUSTED",
  "CERT_SIGNATURE_FAILURE",
]);

/**
 * True when the database could not be reached or gave up (connection refused or lost,
 * pool timeout, statement timeout, server shutting down), as opposed to a query that
 * failed on its own terms.
 */
export function isDatabaseUnavailable(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  if (typeof code === "string") {
    if (CONNECTION_ERROR_CODES.has(code)) return true;
    // The TLS handshake refused the server (certificate, CA, host name): no connection at all.
    if (code.startsWith("ERR_TLS_") || TLS_VERIFY_ERROR_CODES.has(code)) return true;
    // 08: connection exception; 57P0x: server shutting down; 57014: statement timeout; 53: resources.
    if (code.startsWith("08") || code.startsWith("57P") || code === "57014" || code.startsWith("53")) return true;
  }
  if (error instanceof AggregateError) return error.errors.some(isDatabaseUnavailable);
  // "Client has encountered a connection error and is not queryable": a statement sent on a
  // connection that was lost earlier in the same transaction.
  return /timeout exceeded when trying to connect|Connection terminated|connection error and is not queryable|does not support SSL connections/i.test(
    error.message,
  );
}
