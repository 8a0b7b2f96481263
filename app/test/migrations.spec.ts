/**
 * The deploy's migration Job, for real: the compiled `migrate` entry with the env the program
 * renders for the Job, as the migration role on an empty database, then payment-service as
 * the runtime role and the outbox relay and the consumers as the worker role the grants
 * migrations name. Roles and databases are unique per process.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Client, Pool } from "pg";
import { DETAIL_TAGS, MIGRATIONS_SERVICE, SPANS } from "../src/tracing/conventions";
import { migrate } from "../src/ledger/migrations";
import { balanceOf, createWallet, PG } from "./support/database";
import { e2e, newKey, postPayment, startPaymentService, type E2E } from "./support/e2e";
import { deleteTopology, eventually, fraudHistoryOf, receiptsOf, startConsumers, startRelay, uniqueExchange } from "./support/post-processing";
import { type CertificateAuthority, CertificateFactory } from "./support/certificates";
import { PrivatePostgres, serverOwner } from "./support/private-servers";
import { ensureBuilt, SERVICE_NODE, type RunningService } from "./support/services";

const APP_DIR = path.resolve(__dirname, "..");
const REPO_DIR = path.resolve(APP_DIR, "..");
const MIGRATION_FILES = readdirSync(path.join(APP_DIR, "migrations")).filter((f) => f.endsWith(".sql")).sort();

const MIGRATOR = `payments_migrator_${process.pid}`;
const RUNTIME = `payments_runtime_${process.pid}`;
const WORKER = `payments_worker_${process.pid}`;
const databases: string[] = [];

async function admin<T>(work: (c: Client) => Promise<T>, database = "postgres"): Promise<T> {
  const client = new Client({ ...PG, database });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/** An empty database owned by the migration role (the DBA's one-time set-up, README "Deploy"). */
async function emptyDatabase(label: string): Promise<string> {
  const name = `payments_${label}_${process.pid}`;
  databases.push(name);
  await admin(async (c) => {
    await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await c.query(`CREATE DATABASE ${name} OWNER ${MIGRATOR}`);
  });
  return name;
}

/**
 * The Job's container env as the program renders it for prod, fields resolved, addresses on
 * loopback. The shared server speaks no TLS: the rendered verify-full is replaced by name,
 * unless `server` says where a TLS server and its CA bundle are.
 */
async function jobEnv(
  intakeUrl: string,
  database: string,
  server: { host: string; port: number; caFile?: string } = PG,
): Promise<Record<string, string>> {
  const { renderedMigrationEnv } = require(path.join(REPO_DIR, "test/support/rendered-job-env")) as {
    renderedMigrationEnv: (stack: string) => Promise<Record<string, string>>;
  };
  const rendered = await renderedMigrationEnv("prod");
  assert.equal(rendered.PGUSER, "payments_migrations", "the prod Job connects as the migration role");
  assert.equal(rendered.LEDGER_RUNTIME_ROLE, "payment_service", "…and grants to the services' role");
  assert.equal(rendered.LEDGER_WORKER_ROLE, "payments_worker", "…and to the workers' role");
  assert.equal(rendered.PGSSLMODE, "verify-full", "…over TLS, the certificate checked");
  assert.equal(rendered.PGSSLROOTCERT, "/etc/payments/ledger-ca/ca.pem", "…against the mounted CA bundle");
  const env: Record<string, string | undefined> = {
    ...rendered,
    PATH: process.env.PATH,
    DD_TRACE_AGENT_URL: intakeUrl,
    DD_AGENT_HOST: undefined,
    DD_TRACE_AGENT_PORT: undefined,
    DD_REMOTE_CONFIGURATION_ENABLED: "false",
    DD_INSTRUMENTATION_TELEMETRY_ENABLED: "false",
    PGHOST: server.host,
    PGPORT: String(server.port),
    ...(server.caFile ? { PGSSLROOTCERT: server.caFile } : { PGSSLMODE: "disable" }),
    PGDATABASE: database,
    PGUSER: MIGRATOR,
    LEDGER_RUNTIME_ROLE: RUNTIME,
    LEDGER_WORKER_ROLE: WORKER,
  };
  return Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined));
}

/** The compiled app as the image lays it out (/app/dist/src, /app/migrations), with `extra` migrations added. */
function appImageWith(extra: Record<string, string>): string {
  const image = mkdtempSync(path.join(tmpdir(), "migrate-image-"));
  cpSync(path.join(APP_DIR, "dist/src"), path.join(image, "dist/src"), { recursive: true });
  cpSync(path.join(APP_DIR, "migrations"), path.join(image, "migrations"), { recursive: true });
  symlinkSync(path.join(REPO_DIR, "node_modules"), path.join(image, "node_modules"), "dir");
  for (const [file, sql] of Object.entries(extra)) writeFileSync(path.join(image, "migrations", file), sql);
  return image;
}

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `node dist/src/ledger/migrate.js` (of `appDir`) to its exit, as the image's Job does. */
function runMigrate(env: Record<string, string>, appDir = APP_DIR): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(SERVICE_NODE, ["dist/src/ledger/migrate.js"], { cwd: appDir, env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
    child.once("error", reject);
    child.once("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

const appliedBy = (run: Run): string[] => {
  const done = run.stdout.split("\n").filter(Boolean).map((l) => JSON.parse(l)).find((l) => l.msg === "migrations done");
  assert.ok(done, `no "migrations done" line:\n${run.stdout}\n${run.stderr}`);
  return done.applied;
};

async function versions(database: string): Promise<string[]> {
  return admin(async (c) => (await c.query<{ version: string }>("SELECT version FROM schema_migrations ORDER BY version")).rows.map((r) => r.version), database);
}

/** Tables, columns, functions and grants of the public schema: what a failed migration must leave as it was. */
async function schemaSnapshot(database: string): Promise<unknown> {
  return admin(async (c) => {
    const q = async (sql: string) => (await c.query(sql)).rows;
    return {
      columns: await q(`SELECT table_name, column_name, data_type FROM information_schema.columns WHERE table_schema = 'public' ORDER BY 1, 2`),
      functions: await q(`SELECT p.proname, p.prosecdef, p.proconfig FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'public' ORDER BY 1`),
      grants: await q(`SELECT grantee, table_name, privilege_type FROM information_schema.role_table_grants WHERE table_schema = 'public' ORDER BY 1, 2, 3`),
      indexes: await q(`SELECT indexname FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1`),
    };
  }, database);
}

describe("ledger migrations as the deploy runs them (migration role, runtime role, worker role)", function () {
  this.timeout(60_000);
  let env: E2E;

  before(async function () {
    await Promise.all([ensureBuilt(), (async () => (env = await e2e()))()]);
    await admin(async (c) => {
      for (const role of [MIGRATOR, RUNTIME, WORKER]) {
        await c.query(`DROP ROLE IF EXISTS ${role}`);
        await c.query(`CREATE ROLE ${role} LOGIN`);
      }
    });
  });

  after(async function () {
    await admin(async (c) => {
      for (const db of databases) await c.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
      for (const role of [WORKER, RUNTIME, MIGRATOR]) await c.query(`DROP ROLE IF EXISTS ${role}`);
    });
  });

  describe("on an empty database", () => {
    let database: string;
    let first: Run;

    before(async () => {
      database = await emptyDatabase("migrated");
      first = await runMigrate(await jobEnv(env.intake.url, database));
    });

    it("applies every migration once, as the migration role, and exits 0", async () => {
      assert.equal(first.code, 0, first.stderr);
      assert.deepEqual(appliedBy(first), MIGRATION_FILES);
      assert.deepEqual(await versions(database), MIGRATION_FILES);
      const owners = await admin((c) => c.query(`SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'`), database);
      assert.deepEqual(owners.rows.map((r) => r.tableowner), [MIGRATOR]);
      const again = await runMigrate(await jobEnv(env.intake.url, database));
      assert.equal(again.code, 0, again.stderr);
      assert.deepEqual(appliedBy(again), [], "a second run applies nothing");
    });

    it("traces one span per migration with its file and how long it took, under the ledger-migrations service", async () => {
      const trace = await env.intake.waitForTrace((t) => t.some((s) => s.name === SPANS.ledgerMigrate && s.metrics[DETAIL_TAGS.migrationsApplied] === MIGRATION_FILES.length));
      const root = trace.find((s) => s.name === SPANS.ledgerMigrate)!;
      assert.equal(root.service, MIGRATIONS_SERVICE);
      assert.equal(root.error, 0);
      const steps = trace.filter((s) => s.name === SPANS.ledgerMigration);
      assert.deepEqual(steps.map((s) => s.meta[DETAIL_TAGS.migrationFile]), MIGRATION_FILES);
      assert.deepEqual(steps.map((s) => s.resource), MIGRATION_FILES);
      for (const s of steps) {
        assert.equal(s.parentId, root.spanId);
        assert.ok(s.duration > 0, `${s.resource} has a duration`);
      }
      assert.ok(root.duration >= steps.reduce((sum, s) => sum + s.duration, 0));
    });

    it("lets payment-service, as the runtime role, make payments", async () => {
      const pool = new Pool({ ...PG, user: MIGRATOR, database, max: 2 });
      try {
        const sender = await createWallet(pool, "rt_sender", { balance: 10_000 });
        const receiver = await createWallet(pool, "rt_receiver", { balance: 0 });
        const payment = await startPaymentService(env, { PGDATABASE: database, PGUSER: RUNTIME, FRAUD_SERVICE_URL: env.fraud.url });
        const body = { sender_id: sender, receiver_id: receiver, amount: 2_500, currency: "USD", payment_method_type: "wallet" };
        const key = newKey();
        const paid = await postPayment(payment, body, { "idempotency-key": key });
        assert.equal(paid.status, 201, JSON.stringify(paid.body));
        assert.deepEqual(await postPayment(payment, body, { "idempotency-key": key }), paid, "a replay reads its stored answer");
        const declined = await postPayment(payment, { ...body, amount: 9_000 });
        assert.equal(declined.status, 402, JSON.stringify(declined.body));
        assert.equal(await balanceOf(pool, sender), 7_500n);
        assert.equal(await balanceOf(pool, receiver), 2_500n);
        const { rows } = await pool.query(`SELECT status, count(*)::int AS n FROM transactions GROUP BY status ORDER BY status`);
        assert.deepEqual(rows, [{ status: "completed", n: 1 }, { status: "declined", n: 1 }]);
        await payment.stop();
      } finally {
        await pool.end();
      }
    });

    it("refuses the runtime role every statement the service does not issue", async () => {
      const runtime = new Client({ ...PG, user: RUNTIME, database });
      await runtime.connect();
      try {
        const refused = async (sql: string) => {
          await assert.rejects(runtime.query(sql), (e: { code?: string }) => e.code === "42501", sql);
        };
        for (const table of ["wallets", "transactions", "ledger_entries", "outbox", "schema_migrations"]) {
          await refused(`DELETE FROM ${table}`);
          await refused(`TRUNCATE ${table}`);
          await refused(`DROP TABLE ${table}`);
          await refused(`ALTER TABLE ${table} ADD COLUMN sneaky INTEGER`);
        }
        await refused(`UPDATE wallets SET balance = balance + 1000000`);
        await refused(`UPDATE transactions SET idempotency_key = NULL`);
        await refused(`INSERT INTO user_profiles (user_id, segment, kyc_level, customer_since) VALUES ('x', 'consumer', 'none', now())`);
        await refused(`INSERT INTO ledger_entries (transaction_id, user_id, currency, direction, amount) VALUES (gen_random_uuid(), 'x', 'USD', 'credit', 1)`);
        await refused(`INSERT INTO outbox (aggregate_id, event_type, payload) VALUES (gen_random_uuid(), 'x', '{}')`);
        await refused(`SELECT * FROM ledger_entries`);
        const { rows: functions } = await runtime.query<{ signature: string }>(`SELECT oid::regprocedure::text AS signature FROM pg_proc WHERE proname = 'transfer_funds'`);
        assert.equal(functions.length, 1);
        await refused(`DROP FUNCTION ${functions[0].signature}`);
        await refused(`ALTER FUNCTION ${functions[0].signature} SECURITY INVOKER`);
        await refused(`CREATE FUNCTION public.evil() RETURNS TEXT LANGUAGE sql AS $$ SELECT 'x' $$`);
        // What it may do is what the service does.
        await runtime.query(`SELECT user_id FROM wallets LIMIT 1`);
        await runtime.query(`SELECT id FROM transactions LIMIT 1`);
        await runtime.query(`SELECT user_id FROM user_profiles LIMIT 1`);
        await runtime.query(`SELECT prune_expired_idempotency_keys(86400, 10)`);
      } finally {
        await runtime.end();
      }
      const owner = await admin((c) => c.query(`SELECT count(*)::int AS n FROM wallets`), database);
      assert.ok(owner.rows[0].n >= 2, "nothing was deleted");
    });

    it("lets the outbox relay and the consumers, as the worker role, publish, mark, prune and write receipts (real RabbitMQ)", async function () {
      const exchange = uniqueExchange();
      const asWorker = { PGDATABASE: database, PGUSER: WORKER };
      const pool = new Pool({ ...PG, user: MIGRATOR, database, max: 2 });
      const started: RunningService[] = [];
      try {
        const sender = await createWallet(pool, "wk_sender", { balance: 10_000 });
        const receiver = await createWallet(pool, "wk_receiver", { balance: 0 });
        const payment = await startPaymentService(env, { PGDATABASE: database, PGUSER: RUNTIME, FRAUD_SERVICE_URL: env.fraud.url });
        started.push(payment);
        // Published rows older than a second are pruned, every 200 ms.
        const relay = await startRelay({ env, exchange }, { ...asWorker, RELAY_RETENTION_SECONDS: "1", RELAY_PRUNE_INTERVAL_MS: "200" });
        started.push(relay);
        // Keys of their own: this database's event ids start at 1 like the shared one's, and the fraud history remembers applied ids.
        const redisPrefix = `${env.redisPrefix}worker:`;
        const consumers = await startConsumers({ env, exchange }, { ...asWorker, REDIS_KEY_PREFIX: redisPrefix });
        started.push(consumers);
        const logs = () => started.map((p) => p.tail()).join("\n");

        const paid = await postPayment(payment, { sender_id: sender, receiver_id: receiver, amount: 1_500, currency: "USD", payment_method_type: "wallet" });
        assert.equal(paid.status, 201, JSON.stringify(paid.body));
        const id = String(paid.body.transaction_id);
        await eventually(async () => (await receiptsOf(pool, [id])).get(id)?.length === 2, logs);
        assert.deepEqual((await receiptsOf(pool, [id])).get(id), ["receiver", "sender"]);
        await eventually(async () => (await fraudHistoryOf(redisPrefix, sender)).payments === 1, logs);

        // Replayed (at least once): the worker's ON CONFLICT finds the receipts, writes nothing more.
        await pool.query(`UPDATE outbox SET published_at = NULL WHERE aggregate_id = $1`, [id]);
        await eventually(async () => (await pool.query(`SELECT 1 FROM outbox WHERE aggregate_id = $1 AND published_at IS NULL`, [id])).rowCount === 0, logs);
        // …and the published row is pruned past the retention window.
        await eventually(async () => (await pool.query(`SELECT 1 FROM outbox WHERE aggregate_id = $1`, [id])).rowCount === 0, logs);
        const { rows } = await pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM receipts WHERE transaction_id = $1`, [id]);
        assert.equal(rows[0].n, 2, "the replay wrote no receipt");
        assert.equal((await fraudHistoryOf(redisPrefix, sender)).payments, 1, "nor a second history update");
        assert.doesNotMatch(logs(), /permission denied|pruning the outbox failed|dead-lettered/);
        const { rows: sessions } = await pool.query<{ application_name: string }>(
          `SELECT DISTINCT application_name FROM pg_stat_activity WHERE datname = $1 AND usename = $2 ORDER BY 1`,
          [database, WORKER],
        );
        assert.deepEqual(sessions.map((r) => r.application_name), ["outbox-relay", "post-processing"], "both connect as the worker role");
      } finally {
        await Promise.all(started.map((p) => p.stop()));
        await pool.end();
        await deleteTopology(exchange).catch(() => undefined);
      }
    });

    it("refuses the worker role the ledger, and the runtime role the outbox and the receipts", async function () {
      const refusedTo = async (role: string, statements: readonly string[]) => {
        const client = new Client({ ...PG, user: role, database });
        await client.connect();
        try {
          for (const sql of statements) await assert.rejects(client.query(sql), (e: { code?: string }) => e.code === "42501", `${role}: ${sql}`);
        } finally {
          await client.end();
        }
      };
      const before = await admin(async (c) => (await c.query(`SELECT user_id, balance::text FROM wallets ORDER BY 1`)).rows, database);
      await refusedTo(WORKER, [
        `UPDATE wallets SET balance = balance + 1000000`,
        `DELETE FROM wallets`,
        `SELECT balance FROM wallets`,
        `UPDATE transactions SET status = 'declined'`,
        `DELETE FROM transactions`,
        `SELECT id FROM transactions`,
        `INSERT INTO ledger_entries (transaction_id, user_id, currency, direction, amount) VALUES (gen_random_uuid(), 'x', 'USD', 'credit', 1)`,
        `SELECT id FROM ledger_entries`,
        `SELECT user_id FROM user_profiles`,
        `SELECT version FROM schema_migrations`,
        `INSERT INTO outbox (aggregate_id, event_type, payload) VALUES (gen_random_uuid(), 'payment.completed', '{}')`,
        `UPDATE outbox SET payload = '{}'`,
        `UPDATE receipts SET amount = 1`,
        `DELETE FROM receipts`,
        `SELECT amount FROM receipts`,
        `TRUNCATE outbox`,
        `SELECT prune_expired_idempotency_keys(0, 1000)`,
        `SELECT transfer_funds(gen_random_uuid(), 'k', 'h', 'a', 'b', 1::bigint, 'USD', 'wallet', 201, '{}'::jsonb, 'payment.completed', '{}'::jsonb)`,
      ]);
      await refusedTo(RUNTIME, [
        `SELECT id FROM outbox`,
        `SELECT id FROM outbox WHERE published_at IS NULL ORDER BY id LIMIT 10 FOR UPDATE SKIP LOCKED`,
        `UPDATE outbox SET published_at = now()`,
        `DELETE FROM outbox`,
        `INSERT INTO receipts (event_id, transaction_id, role, user_id, counterparty_id, amount, currency, completed_at) VALUES (1, gen_random_uuid(), 'sender', 'a', 'b', 1, 'USD', now())`,
        `SELECT id FROM receipts`,
      ]);
      const after = await admin(async (c) => (await c.query(`SELECT user_id, balance::text FROM wallets ORDER BY 1`)).rows, database);
      assert.deepEqual(after, before, "no balance changed");
    });
  });

  it("grants the worker role the same when its grants migration runs again (idempotent)", async () => {
    const database = await emptyDatabase("worker_again");
    await migrate({ ...PG, user: MIGRATOR, database }, undefined, { runtimeRole: RUNTIME, workerRole: WORKER });
    const grants = () =>
      admin(async (c) => {
        const q = async (sql: string) => (await c.query(sql, [[WORKER, RUNTIME]])).rows;
        return {
          tables: await q(`SELECT grantee, table_name, privilege_type FROM information_schema.role_table_grants WHERE grantee = ANY($1) ORDER BY 1, 2, 3`),
          columns: await q(`SELECT grantee, table_name, column_name, privilege_type FROM information_schema.role_column_grants WHERE grantee = ANY($1) ORDER BY 1, 2, 3, 4`),
          sequences: await q(`SELECT grantee, object_name, privilege_type FROM information_schema.role_usage_grants WHERE grantee = ANY($1) ORDER BY 1, 2, 3`),
        };
      }, database);
    const first = await grants();
    assert.deepEqual(first.tables.filter((g) => g.grantee === WORKER).map((g) => `${g.table_name}:${g.privilege_type}`), ["outbox:DELETE", "outbox:SELECT", "receipts:INSERT"]);
    // Column grants beyond the table-level ones (information_schema lists those per column too).
    const tableLevel = new Set(first.tables.filter((g) => g.grantee === WORKER).map((g) => `${g.table_name}:${g.privilege_type}`));
    const columnOnly = first.columns.filter((g) => g.grantee === WORKER && !tableLevel.has(`${g.table_name}:${g.privilege_type}`));
    assert.deepEqual(columnOnly.map((g) => `${g.table_name}.${g.column_name}:${g.privilege_type}`), [
      "outbox.published_at:UPDATE",
      "receipts.role:SELECT",
      "receipts.transaction_id:SELECT",
    ]);
    assert.deepEqual(first.sequences.filter((g) => g.grantee === WORKER).map((g) => `${g.object_name}:${g.privilege_type}`), ["receipts_id_seq:USAGE"]);
    assert.deepEqual(first.tables.filter((g) => g.grantee === RUNTIME && ["outbox", "receipts"].includes(g.table_name)), [], "the runtime role: nothing on outbox or receipts");
    const migrator = new Client({ ...PG, user: MIGRATOR, database });
    await migrator.connect();
    try {
      await migrator.query(`SELECT set_config('payments.runtime_role', $1, false), set_config('payments.worker_role', $2, false)`, [RUNTIME, WORKER]);
      await migrator.query(readFileSync(path.join(APP_DIR, "migrations/010_worker_role_grants.sql"), "utf8"));
    } finally {
      await migrator.end();
    }
    assert.deepEqual(await grants(), first);
  });

  it("refuses a worker role that does not exist, is the runtime role or the migrating role, naming it", async () => {
    for (const [label, workerRole, reason] of [
      ["missing", `payments_no_such_worker_${process.pid}`, /the worker role payments_no_such_worker_\d+ does not exist: create it/],
      ["runtime", RUNTIME, /the worker role payments_runtime_\d+ must not be the runtime role/],
      ["migrator", MIGRATOR, /the worker role payments_migrator_\d+ must not be the migrating role/],
    ] as const) {
      const database = await emptyDatabase(`worker_${label}`);
      await assert.rejects(
        migrate({ ...PG, user: MIGRATOR, database }, undefined, { runtimeRole: RUNTIME, workerRole }),
        (e: Error) => /migration 010_worker_role_grants\.sql failed/.test(e.message) && reason.test(e.message),
      );
      assert.ok(!(await versions(database)).includes("010_worker_role_grants.sql"), "rolled back, not recorded");
    }
  });

  it("applies each migration once when two runs start at once", async () => {
    const database = await emptyDatabase("concurrent");
    const jobs = await Promise.all([runMigrate(await jobEnv(env.intake.url, database)), runMigrate(await jobEnv(env.intake.url, database))]);
    for (const run of jobs) assert.equal(run.code, 0, run.stderr);
    const [a, b] = jobs.map(appliedBy);
    assert.deepEqual([...a, ...b].sort(), MIGRATION_FILES, "every file applied by exactly one of them");
    assert.ok(a.length === 0 || b.length === 0, "the second waits for the first's lock, then finds everything applied");
    assert.deepEqual(await versions(database), MIGRATION_FILES);
  });

  it("exits non-zero naming a failing migration's file, and leaves the schema as it was", async () => {
    const database = await emptyDatabase("failing");
    assert.equal((await runMigrate(await jobEnv(env.intake.url, database))).code, 0);
    const before = await schemaSnapshot(database);

    // One more migration that fails halfway.
    const broken = "900_broken.sql";
    const image = appImageWith({ [broken]: `CREATE TABLE half_done (id INTEGER);\nALTER TABLE wallets ADD COLUMN half_done INTEGER;\nSELECT 1 / 0;\n` });
    try {
      const run = await runMigrate(await jobEnv(env.intake.url, database), image);
      assert.equal(run.code, 1, run.stdout);
      assert.match(run.stderr, /migration 900_broken\.sql failed: division by zero/);
      assert.deepEqual(await schemaSnapshot(database), before);
      assert.deepEqual(await versions(database), MIGRATION_FILES);
      const trace = await env.intake.waitForTrace((t) => t.some((s) => s.name === SPANS.ledgerMigration && s.resource === broken));
      const step = trace.find((s) => s.resource === broken)!;
      assert.equal(step.error, 1);
      assert.match(step.meta["error.message"], /900_broken\.sql|division by zero/);
      assert.equal(trace.find((s) => s.name === SPANS.ledgerMigrate)!.error, 1);
    } finally {
      rmSync(image, { recursive: true, force: true });
    }
  });

  it("refuses a PGSSLMODE other than verify-full or disable, naming the variable", async () => {
    const run = await runMigrate({ ...(await jobEnv(env.intake.url, "postgres")), PGSSLMODE: "prefer" });
    assert.equal(run.code, 1, run.stdout);
    assert.match(run.stderr, /PGSSLMODE must be verify-full or disable, got \\?"prefer\\?"/);
  });

  /**
   * The Job's connection over TLS: a private PostgreSQL with ssl=on and certificates made
   * here, the rendered env pointed at it and at the test CA. verify-full migrates, over TLS
   * (a migration added to the image records its own session's pg_stat_ssl); another host
   * name, an untrusted CA or a server without TLS are refused before anything is applied.
   */
  describe("over TLS verify-full (a private PostgreSQL with ssl=on)", function () {
    this.timeout(120_000);
    const database = `payments_tls_migrated_${process.pid}`;
    let pg: PrivatePostgres;
    let certs: CertificateFactory;
    let ca: CertificateAuthority;
    let otherCa: CertificateAuthority;
    let image: string;

    const onServer = async <T>(work: (c: Client) => Promise<T>, db = "postgres"): Promise<T> => {
      const client = new Client({ ...pg.server, database: db });
      await client.connect();
      try {
        return await work(client);
      } finally {
        await client.end();
      }
    };
    const applied = () =>
      onServer(async (c) => (await c.query<{ n: string }>(`SELECT count(*) AS n FROM pg_tables WHERE tablename = 'schema_migrations'`)).rows[0].n === "1", database);
    const run = async () => runMigrate(await jobEnv(env.intake.url, database, { ...pg.server, caFile: ca.certFile }), image);

    before(async function () {
      certs = new CertificateFactory();
      ca = certs.ca("ledger-ca");
      otherCa = certs.ca("other-ca");
      pg = await PrivatePostgres.start();
      await onServer(async (c) => {
        for (const role of [MIGRATOR, RUNTIME, WORKER]) await c.query(`CREATE ROLE ${role} LOGIN`);
        await c.query(`CREATE DATABASE ${database} OWNER ${MIGRATOR}`);
      });
      image = appImageWith({ "900_tls_probe.sql": `CREATE TABLE tls_probe AS SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid();\n` });
    });

    after(async function () {
      await pg?.destroy();
      if (image) rmSync(image, { recursive: true, force: true });
    });

    const refusals: Array<[string, () => Promise<void>, RegExp]> = [
      ["a certificate for another host name", () => pg.useTls(certs.server(ca, ["ledger.other.internal"], serverOwner())), /does not match certificate's altnames/i],
      ["a certificate from an untrusted CA", () => pg.useTls(certs.server(otherCa, ["127.0.0.1"], serverOwner())), /self[- ]signed certificate in certificate chain|unable to (verify|get local issuer)/i],
      ["a server without TLS (no fallback to cleartext)", () => pg.useTls(undefined), /does not support SSL/i],
    ];
    for (const [what, arrange, reason] of refusals) {
      it(`refuses ${what}: exits 1 with a clear error, nothing applied`, async function () {
        await arrange();
        const result = await run();
        assert.equal(result.code, 1, result.stdout);
        const fatal = result.stderr.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l)).find((l) => l.level === "fatal");
        assert.match(fatal?.msg ?? "", /^cannot connect to the ledger database: /, result.stderr);
        assert.match(fatal.msg, reason);
        assert.equal(await applied(), false, "no migration ran");
      });
    }

    it("applies the migrations over TLS when the certificate chains to the CA bundle and names the host", async function () {
      await pg.useTls(certs.server(ca, ["127.0.0.1"], serverOwner()));
      const result = await run();
      assert.equal(result.code, 0, result.stderr);
      assert.deepEqual(appliedBy(result), [...MIGRATION_FILES, "900_tls_probe.sql"]);
      const { rows } = await onServer((c) => c.query<{ ssl: boolean; version: string }>(`SELECT ssl, version FROM tls_probe`), database);
      assert.equal(rows.length, 1);
      assert.equal(rows[0].ssl, true, "the migrating session is encrypted");
      assert.match(rows[0].version, /^TLSv1\.[23]$/);
    });
  });
});
