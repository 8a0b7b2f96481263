/**
 * The `migrate` entry: applies the ledger migrations (migrations.ts), one span per
 * migration, then flushes the tracer and exits 0, or 1 naming the file that failed. The
 * deploy runs it as a Kubernetes Job from the payment-service image; locally:
 *
 *   npm run -w app migrate
 *
 * Connection from the PG* variables (the migration role), TLS as the services connect:
 * PGSSLMODE=verify-full with the CA bundle PGSSLROOTCERT (the certificate must chain to it and
 * name PGHOST; a server without TLS is refused, never used in cleartext), or disable (local
 * development; the default). Any other mode is refused. LEDGER_RUNTIME_ROLE names the
 * services' role for the grants migration and LEDGER_WORKER_ROLE the outbox relay's and the
 * consumers' (unset: nothing granted, the migrating role runs them, as in local development).
 * Tracing from the DD_* variables.
 */
import { flushTracer } from "../tracing/tracer";
import { DETAIL_TAGS, SPANS } from "../tracing/conventions";
import { setTags, traced } from "../tracing/spans";
import { sslOptions, type PoolSettings } from "./db";
import { migrate, migrationsDir } from "./migrations";

const log = (level: string, msg: string, fields: object = {}) =>
  (level === "info" ? process.stdout : process.stderr).write(`${JSON.stringify({ level, msg, ...fields })}\n`);

/** The connection's TLS from PGSSLMODE and PGSSLROOTCERT, as the services read them. */
function ledgerTls(env: NodeJS.ProcessEnv): PoolSettings["tls"] {
  const mode = env.PGSSLMODE || "disable";
  if (mode === "disable") return { mode: "disable" };
  if (mode !== "verify-full") throw new Error(`invalid environment: PGSSLMODE must be verify-full or disable, got ${JSON.stringify(mode)}`);
  if (!env.PGSSLROOTCERT) throw new Error("invalid environment: PGSSLROOTCERT: required with PGSSLMODE=verify-full");
  return { mode: "verify-full", caFile: env.PGSSLROOTCERT };
}

async function main(): Promise<number> {
  const dir = migrationsDir();
  const runtimeRole = process.env.LEDGER_RUNTIME_ROLE || undefined;
  const workerRole = process.env.LEDGER_WORKER_ROLE || undefined;
  try {
    // pg would read PGSSLMODE=verify-full as "TLS against the system CAs" and ignore PGSSLROOTCERT: the options are explicit.
    const ssl = sslOptions(ledgerTls(process.env));
    const result = await traced(SPANS.ledgerMigrate, async (span) => {
      const outcome = await migrate({ ssl }, dir, {
        runtimeRole,
        workerRole,
        around: (file, apply) => traced(SPANS.ledgerMigration, apply, { [DETAIL_TAGS.migrationFile]: file }, { resource: file }),
      });
      setTags(span, { [DETAIL_TAGS.migrationsApplied]: outcome.applied.length, [DETAIL_TAGS.migrationsSkipped]: outcome.skipped.length });
      return outcome;
    });
    log("info", "migrations done", { applied: result.applied, skipped: result.skipped });
    return 0;
  } catch (error) {
    log("fatal", (error as Error).message);
    return 1;
  } finally {
    await flushTracer(5_000);
  }
}

main().then((code) => process.exit(code));
