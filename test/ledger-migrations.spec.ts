/**
 * The ledger migration Job under the mocks: what it runs, as whom, with which pod security,
 * its name from the migration set, and payment-service waiting for it.
 */
import * as assert from "node:assert/strict";
import { cpSync, mkdtempSync, renameSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { SERVICES } from "../app/src/tracing/conventions";
import { parseStackSettings } from "../components/config";
import {
  ledgerMigrationsArgsProblems,
  MIGRATE_COMMAND,
  migrationJobName,
  migrationSetHash,
  MIGRATIONS_DIR,
  type LedgerMigrationsArgs,
} from "../components/ledger-migrations";
import { validateKubernetesObject } from "../scripts/k8s-schema";
import { kubernetesObjects, type KubernetesObject } from "../scripts/manifests";
import { PROGRAM, runUnderMocks, stackConfigFromFile, type ProgramRun } from "../scripts/mock-engine";
import { rawSettings, withValue } from "./support/stack-settings";

const PASSWORD_SENTINEL = "migration-password-sentinel-7f3a";

/** The prod program, recording each resource's explicit dependsOn (the mocks see no dependencies). */
async function runRecordingDependencies(): Promise<{ run: ProgramRun; dependsOn: Map<string, string[]> }> {
  const dependsOn = new Map<string, string[]>();
  const input = stackConfigFromFile("prod", { secrets: { "payments-apm:databaseMigrationPassword": PASSWORD_SENTINEL } });
  const run = await runUnderMocks("prod", input, () => {
    pulumi.runtime.registerStackTransformation((args) => {
      const deps = ([] as unknown[]).concat((args.opts.dependsOn as unknown) ?? []) as pulumi.Resource[];
      dependsOn.set(`${args.type}::${args.name}`, deps.map((d) => (d as unknown as { __name?: string }).__name ?? "?"));
      return undefined;
    });
    return require(PROGRAM);
  });
  return { run, dependsOn };
}

describe("LedgerMigrations", () => {
  let run: ProgramRun;
  let dependsOn: Map<string, string[]>;
  const objects = () => kubernetesObjects(run).map((o) => o.object);
  const job = (): KubernetesObject => {
    const jobs = objects().filter((o) => o.kind === "Job");
    assert.equal(jobs.length, 1);
    return jobs[0];
  };
  const podSpec = () => (job().spec as any).template.spec;
  const envOf = () => Object.fromEntries((podSpec().containers[0].env as any[]).map((e) => [e.name, e.value ?? e.valueFrom]));

  before(async function () {
    this.timeout(60_000);
    ({ run, dependsOn } = await runRecordingDependencies());
  });

  it("runs the compiled migrate entry of payment-service's own image and tag", () => {
    const deployment = objects().find((o) => o.kind === "Deployment" && o.metadata.name === SERVICES.payment)!;
    const c = podSpec().containers[0];
    assert.equal(c.image, (deployment.spec as any).template.spec.containers[0].image);
    assert.deepEqual(c.command, MIGRATE_COMMAND);
    assert.deepEqual(MIGRATE_COMMAND, ["node", "dist/src/ledger/migrate.js"]);
    assert.equal(job().metadata.namespace, "payments");
  });

  it("connects as the migration role, its password from a Secret, and names the runtime and worker roles to grant", () => {
    const env = envOf();
    assert.equal(env.PGUSER, "payments_migrations");
    assert.equal(env.LEDGER_RUNTIME_ROLE, "payment_service");
    assert.equal(env.LEDGER_WORKER_ROLE, "payments_worker");
    assert.equal(env.PGHOST, "payments-ledger.cluster-abc123.us-east-1.rds.amazonaws.com");
    assert.equal(env.PGDATABASE, "payments");
    assert.deepEqual(env.PGPASSWORD, { secretKeyRef: { name: "ledger-migrations-secrets", key: "PGPASSWORD" } });
    const secret = run.resources.find((r) => r.type === "kubernetes:core/v1:Secret" && r.inputs.metadata.name === "ledger-migrations-secrets")!;
    assert.equal(secret.inputs.stringData.PGPASSWORD, PASSWORD_SENTINEL);
    assert.ok(secret.secretPaths.some((p) => p.startsWith("stringData")), "marked secret");
    const holders = run.resources.filter((r) => JSON.stringify(r.inputs).includes(PASSWORD_SENTINEL)).map((r) => r.name);
    assert.deepEqual(holders, ["ledger-migrations-secrets"], "the password is nowhere else");
  });

  it("connects with TLS verify-full against the CA bundle from config, mounted read-only from a ConfigMap of its own", () => {
    const env = envOf();
    assert.equal(env.PGSSLMODE, "verify-full");
    assert.equal(env.PGSSLROOTCERT, "/etc/payments/ledger-ca/ca.pem");
    const pod = podSpec();
    assert.deepEqual(pod.containers[0].volumeMounts.find((m: any) => m.name === "ledger-ca"), { name: "ledger-ca", mountPath: "/etc/payments/ledger-ca", readOnly: true });
    assert.deepEqual(pod.volumes.find((v: any) => v.name === "ledger-ca"), { name: "ledger-ca", configMap: { name: "ledger-migrations-ledger-ca", defaultMode: 0o444 } });
    const cm = objects().find((o) => o.kind === "ConfigMap" && o.metadata.name === "ledger-migrations-ledger-ca") as any;
    assert.ok(cm, "no CA ConfigMap for the Job");
    assert.equal(cm.metadata.namespace, "payments");
    assert.equal(cm.data["ca.pem"], rawSettings("prod").database.caBundle, "the bundle from payments-apm:database.caBundle");
    assert.deepEqual(validateKubernetesObject(cm), []);
    const jobDeps = dependsOn.get(`kubernetes:batch/v1:Job::ledger-migrations-${migrationSetHash().slice(0, 10)}`) ?? assert.fail("no Job");
    assert.deepEqual(jobDeps.sort(), ["ledger-migrations-ledger-ca", "ledger-migrations-secrets"], "the Job waits for its CA bundle and its Secret");
  });

  it("traces like the services: unified service tagging, the agent address, every trace kept", () => {
    const env = envOf();
    const labels = (job().spec as any).template.metadata.labels;
    assert.equal(labels["tags.datadoghq.com/service"], "ledger-migrations");
    assert.equal(labels["tags.datadoghq.com/env"], "prod");
    assert.equal(labels["tags.datadoghq.com/version"], "1.4.2");
    assert.deepEqual(env.DD_SERVICE, { fieldRef: { fieldPath: "metadata.labels['tags.datadoghq.com/service']" } });
    // The services namespace enforces Pod Security restricted: the Agent's hostPort, no hostPath.
    assert.deepEqual(env.DD_AGENT_HOST, { fieldRef: { fieldPath: "status.hostIP" } });
    assert.equal(env.DD_TRACE_AGENT_PORT, "8126");
    assert.equal(env.DD_TRACE_SAMPLE_RATE, "1");
    assert.ok(!podSpec().volumes.some((v: any) => v.hostPath), "no host directory mounted");
  });

  it("runs with the services' pod security: non-root, read-only root, no privilege, no capabilities, RuntimeDefault seccomp", () => {
    const pod = podSpec();
    assert.deepEqual(pod.containers[0].securityContext, { runAsNonRoot: true, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, privileged: false, capabilities: { drop: ["ALL"] } });
    assert.equal(pod.securityContext.runAsNonRoot, true);
    assert.deepEqual(pod.securityContext.seccompProfile, { type: "RuntimeDefault" });
    assert.equal(pod.automountServiceAccountToken, false);
    assert.equal(pod.restartPolicy, "Never");
    assert.ok(pod.containers[0].resources.limits.memory);
  });

  it("is bounded in retries and time, keeps no TTL, and is labelled for network policies", () => {
    const spec = job().spec as any;
    assert.equal(spec.backoffLimit, 2);
    assert.equal(spec.activeDeadlineSeconds, 600);
    assert.equal(spec.ttlSecondsAfterFinished, undefined, "deliberately none: see components/ledger-migrations.ts");
    assert.deepEqual(
      Object.fromEntries(Object.entries(spec.template.metadata.labels).filter(([k]) => k.startsWith("app.kubernetes.io/"))),
      { "app.kubernetes.io/name": "ledger-migrations", "app.kubernetes.io/component": "migrations", "app.kubernetes.io/part-of": "payments" },
    );
    const annotations = job().metadata.annotations as Record<string, string>;
    assert.equal(annotations["pulumi.com/replaceUnready"], "true");
    assert.equal(annotations["payments-apm/logs"], `kubectl -n payments logs job/${job().metadata.name} --all-containers`);
  });

  it("is named after the migration set, and validates against the Kubernetes schemas", () => {
    assert.equal(job().metadata.name, migrationJobName(migrationSetHash()));
    assert.match(job().metadata.name!, /^ledger-migrations-[0-9a-f]{10}$/);
    const resource = run.resources.find((r) => r.type === "kubernetes:batch/v1:Job")!;
    assert.equal(resource.name, `ledger-migrations-${migrationSetHash().slice(0, 10)}`, "a new set is a new resource");
    assert.deepEqual(objects().flatMap((o) => validateKubernetesObject(o)), []);
  });

  it("makes payment-service's Deployment wait for the Job (and the Agent); fraud-service only for the Agent", () => {
    const deps = (name: string) => dependsOn.get(name) ?? assert.fail(`no ${name}`);
    assert.deepEqual(deps("kubernetes:apps/v1:Deployment::payment-service-deployment").sort(), ["datadog-agent", "ledger-migrations"]);
    assert.deepEqual(deps("kubernetes:apps/v1:Deployment::fraud-service-deployment"), ["datadog-agent"]);
    assert.deepEqual(deps("payments-apm:app:LedgerMigrations::ledger-migrations"), ["datadog-agent"]);
  });

  describe("the migration set's hash", () => {
    let dir: string;
    beforeEach(() => {
      dir = mkdtempSync(path.join(tmpdir(), "migrations-"));
      cpSync(MIGRATIONS_DIR, dir, { recursive: true });
    });
    afterEach(() => rmSync(dir, { recursive: true, force: true }));

    it("is the same for the same files, whatever their timestamps or the other files", () => {
      const original = migrationSetHash(dir);
      assert.equal(migrationSetHash(MIGRATIONS_DIR), original);
      utimesSync(path.join(dir, "001_wallets.sql"), new Date(2001, 1, 1), new Date(2001, 1, 1));
      writeFileSync(path.join(dir, "README.md"), "notes");
      assert.equal(migrationSetHash(dir), original);
    });

    for (const [change, apply] of [
      ["a new migration", (d: string) => writeFileSync(path.join(d, "900_new.sql"), "CREATE TABLE x (id INT);")],
      ["an edited migration", (d: string) => writeFileSync(path.join(d, "001_wallets.sql"), "-- edited\n", { flag: "a" })],
      ["a renamed migration", (d: string) => renameSync(path.join(d, "004_outbox.sql"), path.join(d, "004_events.sql"))],
      ["a removed migration", (d: string) => rmSync(path.join(d, "004_outbox.sql"))],
    ] as const) {
      it(`changes with ${change}, and so does the Job's name`, () => {
        const original = migrationSetHash(dir);
        apply(dir);
        const changed = migrationSetHash(dir);
        assert.notEqual(changed, original);
        assert.notEqual(migrationJobName(changed), migrationJobName(original));
      });
    }
  });

  describe("bad settings", () => {
    it("fails at preview when the migration user is the runtime user, naming the key", () => {
      const raw = withValue(rawSettings("prod"), "database.migrationUser", "payment_service");
      assert.throws(() => parseStackSettings(raw), /payments-apm:database\.migrationUser must differ from database\.user \("payment_service"\)/);
    });

    for (const [other, role] of [["database.user", "payment_service"], ["database.migrationUser", "payments_migrations"]] as const) {
      it(`fails at preview when the worker user is ${other}, naming the key`, () => {
        const raw = withValue(rawSettings("prod"), "database.workerUser", role);
        assert.throws(
          () => parseStackSettings(raw),
          new RegExp(`payments-apm:database\\.workerUser must differ from ${other.replace(".", "\\.")} \\("${role}"\\)`),
        );
      });
    }

    it("the component refuses them too, and an unpinned image", () => {
      const args = {
        database: { host: "db", port: 5432, name: "payments", migrationUser: "svc", runtimeUser: "svc", workerUser: "svc" },
        image: "repo/payment-service:latest",
      } as LedgerMigrationsArgs;
      assert.deepEqual(ledgerMigrationsArgsProblems(args).map((p) => p.propertyPath), ["database.migrationUser", "database.workerUser", "database.workerUser", "image"]);
    });
  });
});
