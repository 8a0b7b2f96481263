/**
 * The ledger migration Job rendered by the component alone (components/ledger-migrations.ts),
 * from args written out here: what it runs and with which env, its limits and defaults, the
 * options that keep it from running twice, and the args it refuses. No whole-program run:
 * test/ledger-migrations.spec.ts checks the prod stack's Job.
 */
import * as assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import {
  LedgerMigrations,
  ledgerMigrationsArgsProblems,
  migrationEnv,
  migrationJobName,
  migrationLogsCommand,
  migrationSetHash,
  type LedgerMigrationsArgs,
} from "../components/ledger-migrations";
import { runUnderMocks, type ProgramRun, type RecordedResource } from "../scripts/mock-engine";

const HASH = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const CA = "-----BEGIN CERTIFICATE-----\nMIIB-test-ca\n-----END CERTIFICATE-----\n";
const viaPort = { socketEnabled: false, portEnabled: true, port: 9126 };
const viaSocket = { socketEnabled: true, portEnabled: false, port: 8126, socketPath: "/run/dd/trace.sock" };

const args = (overrides: Partial<LedgerMigrationsArgs> = {}): LedgerMigrationsArgs => ({
  namespace: "ledger-ns",
  image: "registry.example.com/payment-service:1.4.2",
  version: "1.4.2",
  env: "staging",
  globalTags: { cluster: "payments-staging", region: "eu-west-1" },
  agent: viaPort,
  database: { host: "ledger.db.internal", port: 6432, name: "ledger", migrationUser: "ledger_owner", runtimeUser: "ledger_app", workerUser: "ledger_worker" },
  caBundle: CA,
  migrationPassword: pulumi.secret("migration-password-sentinel"),
  migrationsHash: HASH,
  backoffLimit: 3,
  activeDeadlineSeconds: 900,
  resources: { cpuRequest: "250m", memoryRequest: "200Mi", memoryLimit: "400Mi" },
  ...overrides,
});

const fromLabel = (key: string) => ({ valueFrom: { fieldRef: { fieldPath: `metadata.labels['tags.datadoghq.com/${key}']` } } });

interface Rendered {
  readonly run: ProgramRun;
  /** Resource options by logical name. */
  readonly opts: Map<string, pulumi.CustomResourceOptions>;
  /** What the component logged (pulumi.log without an engine writes to the console). */
  readonly logged: string[];
}

/** The component alone under the mocks, at preview or during an update. */
async function render(a: LedgerMigrationsArgs, { preview = true } = {}): Promise<Rendered> {
  const opts = new Map<string, pulumi.CustomResourceOptions>();
  const logged: string[] = [];
  const { log } = console;
  console.log = (...line: unknown[]) => void logged.push(line.map(String).join(" "));
  try {
    const run = await runUnderMocks("test", { config: {}, secretKeys: [] }, () => {
      pulumi.runtime.registerStackTransformation((t) => {
        opts.set(t.name, t.opts as pulumi.CustomResourceOptions);
        return undefined;
      });
      const m = new LedgerMigrations("ledger-migrations", a);
      return { jobName: m.jobName };
    }, { preview });
    // Let the log's apply run.
    await new Promise((resolve) => setImmediate(resolve));
    return { run, opts, logged };
  } finally {
    console.log = log;
  }
}

function only(run: ProgramRun, type: string): RecordedResource {
  const found = run.resources.filter((r) => r.type === type);
  assert.equal(found.length, 1, `one ${type}`);
  return found[0];
}

describe("the ledger migration Job (components/ledger-migrations.ts)", () => {
  describe("its env", () => {
    it("tags from the pod's labels, sends spans to the node's hostPort, keeps every trace and connects as the migration role over verify-full TLS", () => {
      assert.deepEqual(migrationEnv(args()), [
        { name: "DD_ENV", ...fromLabel("env") },
        { name: "DD_SERVICE", ...fromLabel("service") },
        { name: "DD_VERSION", ...fromLabel("version") },
        { name: "DD_AGENT_HOST", valueFrom: { fieldRef: { fieldPath: "status.hostIP" } } },
        { name: "DD_TRACE_AGENT_PORT", value: "9126" },
        { name: "DD_TAGS", value: "cluster:payments-staging,region:eu-west-1" },
        { name: "DD_TRACE_SAMPLE_RATE", value: "1" },
        { name: "DD_LOGS_INJECTION", value: "true" },
        { name: "PGHOST", value: "ledger.db.internal" },
        { name: "PGPORT", value: "6432" },
        { name: "PGDATABASE", value: "ledger" },
        { name: "PGUSER", value: "ledger_owner" },
        { name: "PGAPPNAME", value: "ledger-migrations" },
        { name: "PGCONNECT_TIMEOUT", value: "10" },
        { name: "PGSSLMODE", value: "verify-full" },
        { name: "PGSSLROOTCERT", value: "/etc/payments/ledger-ca/ca.pem" },
        { name: "LEDGER_RUNTIME_ROLE", value: "ledger_app" },
        { name: "LEDGER_WORKER_ROLE", value: "ledger_worker" },
        { name: "PGPASSWORD", valueFrom: { secretKeyRef: { name: "ledger-migrations-secrets", key: "PGPASSWORD" } } },
      ]);
    });

    it("sends spans to the Agent's socket when the services use it", () => {
      const env = migrationEnv(args({ agent: viaSocket }));
      assert.deepEqual(env.slice(3, 5), [
        { name: "DD_TRACE_AGENT_URL", value: "unix:///run/dd/trace.sock" },
        { name: "DD_TAGS", value: "cluster:payments-staging,region:eu-west-1" },
      ]);
    });
  });

  describe("its names", () => {
    it("names the Job after the first ten hex digits of the migration set's hash", () => {
      assert.equal(migrationJobName(HASH), "ledger-migrations-0123456789");
    });

    it("tells how to read a Job's logs with kubectl", () => {
      assert.equal(migrationLogsCommand("payments", "ledger-migrations-0123456789"), "kubectl -n payments logs job/ledger-migrations-0123456789 --all-containers");
    });

    it("hashes each .sql file's name and bytes, NUL-separated, in name order: the same set keeps the same Job on every machine", () => {
      const dir = mkdtempSync(path.join(tmpdir(), "migrations-"));
      try {
        writeFileSync(path.join(dir, "002_entries.sql"), "CREATE TABLE entries (id INT);\n");
        writeFileSync(path.join(dir, "001_wallets.sql"), "CREATE TABLE wallets (id INT);\n");
        writeFileSync(path.join(dir, "notes.txt"), "not a migration");
        // printf '001_wallets.sql\x00CREATE TABLE wallets (id INT);\n\x00002_entries.sql\x00CREATE TABLE entries (id INT);\n\x00' | sha256sum
        assert.equal(migrationSetHash(dir), "e1818d80c0a8fb02c92886e9d4c22ff1aef707dd354fc2c9c0a95d83a2781a2e");
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });

  describe("what it refuses", () => {
    const paths = (a: LedgerMigrationsArgs) => ledgerMigrationsArgsProblems(a).map((p) => p.propertyPath);

    it("accepts three distinct roles, a pinned image and limits in range", () => {
      assert.deepEqual(ledgerMigrationsArgsProblems(args()), []);
    });

    it("explains each refused role, naming the role it clashes with", () => {
      const db = args().database;
      assert.deepEqual(ledgerMigrationsArgsProblems(args({ database: { ...db, migrationUser: "ledger_app" } })), [
        { propertyPath: "database.migrationUser", reason: 'must differ from the runtime role "ledger_app": the services must not own the ledger\'s tables' },
      ]);
      assert.deepEqual(ledgerMigrationsArgsProblems(args({ database: { ...db, workerUser: "ledger_app" } })), [
        { propertyPath: "database.workerUser", reason: 'must differ from database.user ("ledger_app"): the outbox relay and the consumers get a role of their own' },
      ]);
      assert.deepEqual(ledgerMigrationsArgsProblems(args({ database: { ...db, workerUser: "ledger_owner" } })), [
        { propertyPath: "database.workerUser", reason: 'must differ from database.migrationUser ("ledger_owner"): the outbox relay and the consumers get a role of their own' },
      ]);
    });

    for (const image of [
      "registry.example.com/payment-service:1.4.2",
      "registry.example.com:5000/payment-service:2024.06.01-rc_1",
      `registry.example.com/payment-service@sha256:${"0a".repeat(32)}`,
      `registry.example.com/payment-service:1.4.2@sha256:${"f9".repeat(32)}`,
      `payment-service:v${"1".repeat(127)}`,
    ]) {
      it(`runs an image pinned by tag or digest: ${image}`, () => assert.deepEqual(paths(args({ image })), []));
    }

    for (const image of [
      "registry.example.com/payment-service:latest",
      "payment-service:latest-1.4.2",
      "registry.example.com/payment-service",
      "registry.example.com:5000/payment-service",
      "registry.example.com/payment-service:1.4.2/extra",
      "registry.example.com/payment-service:-rc",
      `registry.example.com/payment-service@sha256:${"0a".repeat(31)}0`,
      `registry.example.com/payment-service@sha256:${"g".repeat(64)}`,
      `registry.example.com/payment-service@sha256:${"0A".repeat(32)}`,
      `registry.example.com/payment-service@sha256:${"0a".repeat(32)}0`,
      `registry.example.com/payment-service@sha512:${"0a".repeat(32)}`,
      "registry.example.com/payment-service:",
      "registry.example.com/pay ment-service:1.4.2",
      "registry.example.com/payment-service:1.4.2 ",
      `payment-service:v${"1".repeat(128)}`,
      `registry.example.com/pay ment-service@sha256:${"0a".repeat(32)}`,
      `registry.example.com/payment-service@v1@sha256:${"0a".repeat(32)}`,
    ]) {
      it(`refuses an image not pinned by tag or digest: ${image}`, () => {
        assert.deepEqual(ledgerMigrationsArgsProblems(args({ image })), [
          { propertyPath: "image", reason: `must be pinned by tag or digest (not latest), got ${JSON.stringify(image)}` },
        ]);
      });
    }

    it("takes 0 to 10 retries, whole", () => {
      for (const backoffLimit of [0, 10]) assert.deepEqual(paths(args({ backoffLimit })), [], String(backoffLimit));
      for (const backoffLimit of [-1, 11, 1.5]) {
        assert.deepEqual(ledgerMigrationsArgsProblems(args({ backoffLimit })), [
          { propertyPath: "backoffLimit", reason: `must be a whole number between 0 and 10, got ${backoffLimit}` },
        ]);
      }
    });

    it("takes 30 to 3600 seconds for the whole Job, whole", () => {
      for (const activeDeadlineSeconds of [30, 3600]) assert.deepEqual(paths(args({ activeDeadlineSeconds })), [], String(activeDeadlineSeconds));
      for (const activeDeadlineSeconds of [29, 3601, 60.5]) {
        assert.deepEqual(ledgerMigrationsArgsProblems(args({ activeDeadlineSeconds })), [
          { propertyPath: "activeDeadlineSeconds", reason: `must be a whole number of seconds between 30 and 3600, got ${activeDeadlineSeconds}` },
        ]);
      }
    });

    it("refuses before creating anything: one problem as an InputPropertyError, several as an InputPropertiesError", async function () {
      this.timeout(30_000);
      await assert.rejects(render(args({ backoffLimit: 11 })), (e: any) => {
        assert.ok(pulumi.InputPropertyError.isInstance(e), String(e));
        assert.equal(e.propertyPath, "backoffLimit");
        return true;
      });
      await assert.rejects(render(args({ backoffLimit: 11, image: "payment-service" })), (e: any) => {
        assert.ok(pulumi.InputPropertiesError.isInstance(e), String(e));
        assert.equal(e.message, 'Invalid LedgerMigrations "ledger-migrations" arguments');
        assert.deepEqual(e.errors.map((p: pulumi.InputPropertyErrorDetails) => p.propertyPath), ["image", "backoffLimit"]);
        return true;
      });
    });
  });

  describe("the component", () => {
    let rendered: Rendered;
    before(async function () {
      this.timeout(30_000);
      rendered = await render(args());
    });
    const labels = {
      "app.kubernetes.io/name": "ledger-migrations",
      "app.kubernetes.io/component": "migrations",
      "app.kubernetes.io/part-of": "payments",
      "tags.datadoghq.com/env": "staging",
      "tags.datadoghq.com/service": "ledger-migrations",
      "tags.datadoghq.com/version": "1.4.2",
    };
    const podLabels = { "app.kubernetes.io/name": "ledger-migrations", "app.kubernetes.io/component": "migrations", "app.kubernetes.io/part-of": "payments" };

    it("creates its Secret, its ConfigMap and its Job as its own children", () => {
      for (const child of ["ledger-migrations-secrets", "ledger-migrations-ledger-ca", "ledger-migrations-0123456789"]) {
        const parent = rendered.opts.get(child)?.parent as unknown as { __name?: string } | undefined;
        assert.equal(parent?.__name, "ledger-migrations", child);
      }
    });

    it("creates a Secret with only the migration role's password, marked secret", () => {
      const secret = only(rendered.run, "kubernetes:core/v1:Secret");
      assert.equal(secret.name, "ledger-migrations-secrets");
      assert.deepEqual(secret.inputs, {
        apiVersion: "v1",
        kind: "Secret",
        metadata: { name: "ledger-migrations-secrets", namespace: "ledger-ns", labels: podLabels },
        type: "Opaque",
        stringData: { PGPASSWORD: "migration-password-sentinel" },
      });
      assert.deepEqual(secret.secretPaths, ["stringData"]);
    });

    it("creates a ConfigMap holding the database's CA bundle as ca.pem", () => {
      const ca = only(rendered.run, "kubernetes:core/v1:ConfigMap");
      assert.equal(ca.name, "ledger-migrations-ledger-ca");
      assert.deepEqual(ca.inputs, { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "ledger-migrations-ledger-ca", namespace: "ledger-ns", labels: podLabels }, data: { "ca.pem": CA } });
    });

    it("runs migrate once in a restricted pod of the pinned image, with its limits, a writable /tmp and the CA bundle read-only", () => {
      const job = only(rendered.run, "kubernetes:batch/v1:Job");
      assert.equal(job.name, "ledger-migrations-0123456789", "a new migration set is a new resource");
      assert.deepEqual(job.inputs.metadata, {
        name: "ledger-migrations-0123456789",
        namespace: "ledger-ns",
        labels,
        annotations: {
          "pulumi.com/replaceUnready": "true",
          "payments-apm/logs": "kubectl -n ledger-ns logs job/ledger-migrations-0123456789 --all-containers",
          "payments-apm/migrations-sha256": HASH,
        },
      });
      const { template, ...spec } = job.inputs.spec;
      assert.deepEqual(spec, { backoffLimit: 3, activeDeadlineSeconds: 900 });
      assert.deepEqual(template.metadata, { labels });
      const { containers, ...pod } = template.spec;
      assert.deepEqual(pod, {
        restartPolicy: "Never",
        automountServiceAccountToken: false,
        securityContext: { runAsNonRoot: true, runAsUser: 1000, runAsGroup: 1000, fsGroup: 1000, seccompProfile: { type: "RuntimeDefault" } },
        volumes: [
          { name: "tmp", emptyDir: { sizeLimit: "16Mi" } },
          { name: "ledger-ca", configMap: { name: "ledger-migrations-ledger-ca", defaultMode: 0o444 } },
        ],
      });
      assert.equal(containers.length, 1);
      const { env, ...container } = containers[0];
      assert.deepEqual(container, {
        name: "migrate",
        image: "registry.example.com/payment-service:1.4.2",
        command: ["node", "dist/src/ledger/migrate.js"],
        resources: { requests: { cpu: "250m", memory: "200Mi" }, limits: { memory: "400Mi" } },
        securityContext: { runAsNonRoot: true, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, privileged: false, capabilities: { drop: ["ALL"] } },
        volumeMounts: [
          { name: "tmp", mountPath: "/tmp" },
          { name: "ledger-ca", mountPath: "/etc/payments/ledger-ca", readOnly: true },
        ],
      });
      assert.deepEqual(
        env.filter((e: any) => ["PGUSER", "DD_TRACE_AGENT_PORT"].includes(e.name)),
        [
          { name: "DD_TRACE_AGENT_PORT", value: "9126" },
          { name: "PGUSER", value: "ledger_owner" },
        ],
      );
    });

    it("is never replaced for a new image or label, only when unready (deleted first), waits for its Secret and CA, and for longer than it may run", () => {
      const o = rendered.opts.get("ledger-migrations-0123456789") ?? assert.fail("no Job options");
      assert.deepEqual(o.ignoreChanges, ["spec", "metadata.labels"]);
      assert.equal(o.deleteBeforeReplace, true);
      assert.deepEqual(o.customTimeouts, { create: "1020s", update: "1020s" });
      assert.deepEqual(((o.dependsOn as pulumi.Resource[]) ?? []).map((d: any) => d.__name).sort(), ["ledger-migrations-ledger-ca", "ledger-migrations-secrets"]);
    });

    it("exports the Job's name", () => {
      assert.equal(rendered.run.outputs.jobName, "ledger-migrations-0123456789");
      assert.deepEqual(rendered.run.componentOutputs["payments-apm:app:LedgerMigrations::ledger-migrations"], ["jobName"]);
    });

    it("logs nothing at preview", () => {
      assert.deepEqual(rendered.logged.filter((l) => l.includes("ledger migrations")), []);
    });

    it("tells during an update which Job runs the migrations and how to read its logs", async function () {
      this.timeout(30_000);
      const { logged } = await render(args(), { preview: false });
      assert.deepEqual(logged.filter((l) => l.includes("ledger migrations")), [
        "info: [runtime] ledger migrations run as Job ledger-migrations-0123456789; if it fails, read why with: kubectl -n ledger-ns logs job/ledger-migrations-0123456789 --all-containers",
      ]);
    });

    it("mounts the Agent's socket directory read-only when the services use the socket", async function () {
      this.timeout(30_000);
      const { run } = await render(args({ agent: viaSocket }));
      const pod = only(run, "kubernetes:batch/v1:Job").inputs.spec.template.spec;
      assert.deepEqual(pod.volumes.slice(2), [{ name: "apm-socket", hostPath: { path: "/run/dd", type: "DirectoryOrCreate" } }]);
      assert.deepEqual(pod.containers[0].volumeMounts.slice(2), [{ name: "apm-socket", mountPath: "/run/dd", readOnly: true }]);
    });

    it("retries a failed pod twice within 600 s with 100m / 128Mi requests and a 256Mi limit by default", async function () {
      this.timeout(30_000);
      const { run, opts } = await render(args({ backoffLimit: undefined, activeDeadlineSeconds: undefined, resources: undefined }));
      const job = only(run, "kubernetes:batch/v1:Job");
      assert.equal(job.inputs.spec.backoffLimit, 2);
      assert.equal(job.inputs.spec.activeDeadlineSeconds, 600);
      assert.deepEqual(job.inputs.spec.template.spec.containers[0].resources, { requests: { cpu: "100m", memory: "128Mi" }, limits: { memory: "256Mi" } });
      assert.deepEqual(opts.get("ledger-migrations-0123456789")?.customTimeouts, { create: "720s", update: "720s" });
    });
  });
});
