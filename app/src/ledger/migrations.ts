/**
 * The ledger's migration runner: applies app/migrations/*.sql in name order, each file once,
 * each in its own transaction, recorded in schema_migrations. Safe to run again and from
 * several pods at once (an advisory lock serialises runners). Connection from the PG*
 * variables unless given. No tracer here: the `migrate` entry (migrate.ts) traces each step.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { Client, type ClientConfig } from "pg";

/** Arbitrary, fixed: every runner takes the same advisory lock. */
const MIGRATION_LOCK_ID = 4_271_001;

/** The session setting the grants migration reads the services' role from. */
export const RUNTIME_ROLE_SETTING = "payments.runtime_role";
/** The session setting the worker grants migration reads the relay's and consumers' role from. */
export const WORKER_ROLE_SETTING = "payments.worker_role";

/** app/migrations, found from src/ledger (tsx) or dist/src/ledger (compiled). */
export function migrationsDir(from: string = __dirname): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, "migrations");
    if (existsSync(candidate)) return candidate;
    if (path.dirname(dir) === dir) throw new Error(`no migrations directory above ${from}`);
  }
}

export interface MigrationResult {
  readonly applied: readonly string[];
  readonly skipped: readonly string[];
}

export interface MigrateOptions {
  /**
   * The role the services connect as (payments-apm:database.user), granted what they need
   * by the grants migration. Default: none, nothing granted (the migrating role runs them).
   */
  readonly runtimeRole?: string;
  /**
   * The role the outbox relay and the consumers connect as (payments-apm:database.workerUser),
   * granted what they need by 010_worker_role_grants.sql. Default: none, nothing granted.
   */
  readonly workerRole?: string;
  /** Wraps the application of one file (e.g. in a span); must call `apply` and return its promise. */
  readonly around?: (file: string, apply: () => Promise<void>) => Promise<void>;
}

export async function migrate(config: ClientConfig = {}, dir: string = migrationsDir(), options: MigrateOptions = {}): Promise<MigrationResult> {
  const files = readdirSync(dir)
    .filter((name) => name.endsWith(".sql"))
    .sort();
  const around = options.around ?? ((_file, apply) => apply());
  const client = new Client(config);
  try {
    await client.connect();
  } catch (error) {
    throw new Error(`cannot connect to the ledger database: ${(error as Error).message}`);
  }
  try {
    if (options.runtimeRole) await client.query("SELECT set_config($1, $2, false)", [RUNTIME_ROLE_SETTING, options.runtimeRole]);
    if (options.workerRole) await client.query("SELECT set_config($1, $2, false)", [WORKER_ROLE_SETTING, options.workerRole]);
    await client.query("SELECT pg_advisory_lock($1)", [MIGRATION_LOCK_ID]);
    await client.query(
      `CREATE TABLE IF NOT EXISTS schema_migrations (
         version    TEXT        PRIMARY KEY,
         applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
       )`,
    );
    const done = new Set(
      (await client.query<{ version: string }>("SELECT version FROM schema_migrations")).rows.map((r) => r.version),
    );
    const applied: string[] = [];
    const skipped: string[] = [];
    for (const file of files) {
      if (done.has(file)) {
        skipped.push(file);
        continue;
      }
      await around(file, async () => {
        await client.query("BEGIN");
        try {
          await client.query(readFileSync(path.join(dir, file), "utf8"));
          await client.query("INSERT INTO schema_migrations (version) VALUES ($1)", [file]);
          await client.query("COMMIT");
        } catch (error) {
          await client.query("ROLLBACK");
          throw new Error(`migration ${file} failed: ${(error as Error).message}`);
        }
      });
      applied.push(file);
    }
    return { applied, skipped };
  } finally {
    await client.query("SELECT pg_advisory_unlock($1)", [MIGRATION_LOCK_ID]).catch(() => undefined);
    await client.end();
  }
}
