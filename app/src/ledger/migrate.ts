/**
 * Applies app/migrations/*.sql in name order, each file once, each in its own
 * transaction, recorded in schema_migrations. Safe to run again and from several pods at
 * once (an advisory lock serialises runners). Connection from the PG* variables.
 *
 *   npm run -w app migrate
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { Client, type ClientConfig } from "pg";

/** Arbitrary, fixed: every runner takes the same advisory lock. */
const MIGRATION_LOCK_ID = 4_271_001;

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

export async function migrate(config: ClientConfig = {}, dir: string = migrationsDir()): Promise<MigrationResult> {
  const files = readdirSync(dir)
    .filter((name) => name.endsWith(".sql"))
    .sort();
  const client = new Client(config);
  await client.connect();
  try {
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
      await client.query("BEGIN");
      try {
        await client.query(readFileSync(path.join(dir, file), "utf8"));
        await client.query("INSERT INTO schema_migrations (version) VALUES ($1)", [file]);
        await client.query("COMMIT");
      } catch (error) {
        await client.query("ROLLBACK");
        throw new Error(`migration ${file} failed: ${(error as Error).message}`);
      }
      applied.push(file);
    }
    return { applied, skipped };
  } finally {
    await client.query("SELECT pg_advisory_unlock($1)", [MIGRATION_LOCK_ID]).catch(() => undefined);
    await client.end();
  }
}

if (require.main === module) {
  migrate().then(
    ({ applied, skipped }) => {
      process.stdout.write(`${JSON.stringify({ level: "info", msg: "migrations done", applied, skipped })}\n`);
    },
    (error: Error) => {
      process.stderr.write(`${JSON.stringify({ level: "fatal", msg: error.message })}\n`);
      process.exit(1);
    },
  );
}
