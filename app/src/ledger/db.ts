/**
 * PostgreSQL access for the services: every statement runs inside one measured
 * `database.query` span whose resource is a short operation name (dd-trace's pg span
 * underneath carries the SQL text, so SQL stays parameterised). Each statement is its own
 * transaction; the transfer is one statement (the ledger's `transfer_funds` function), so
 * no connection is held across round trips.
 * Connection settings come from the standard PG* variables, which pg reads itself.
 */
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
}

export function createPool(settings: PoolSettings): Pool {
  return new Pool({
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
    // 08: connection exception; 57P0x: server shutting down; 57014: statement timeout; 53: resources.
    if (code.startsWith("08") || code.startsWith("57P") || code === "57014" || code.startsWith("53")) return true;
  }
  if (error instanceof AggregateError) return error.errors.some(isDatabaseUnavailable);
  // "Client has encountered a connection error and is not queryable": a statement sent on a
  // connection that was lost earlier in the same transaction.
  return /timeout exceeded when trying to connect|Connection terminated|connection error and is not queryable/i.test(
    error.message,
  );
}
