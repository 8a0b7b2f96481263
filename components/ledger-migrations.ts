/**
 * The ledger schema, applied by the deploy: a Kubernetes Job that runs the compiled
 * `migrate` entry of the payment-service image (the same image and tag as its Deployment)
 * as the migration role, before payment-service rolls (its Deployment depends on this
 * component). The Kubernetes provider waits for a Job to complete and fails the `up` when it
 * fails, so a failed migration stops the deploy before any pod runs code the schema lacks.
 *
 * The Job's name carries a hash of the migration files: a release with a new migration gets
 * a new Job (and the previous one is deleted), a release with the same set changes nothing.
 */
import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import * as path from "node:path";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { MIGRATIONS_SERVICE } from "../app/src/tracing/conventions";
import type { ResourceSettings } from "./datadog-agent";
import { imagePinned } from "./image-reference";
import { agentAddressEnv, agentSocketVolume, type AgentConnection } from "./traced-service";

/** app/migrations, the files the payment-service image carries in /app/migrations. */
export const MIGRATIONS_DIR = path.resolve(__dirname, "../app/migrations");
/** The compiled entry in the image (WORKDIR /app; `npm run -w app migrate` runs the same file). */
export const MIGRATE_COMMAND = ["node", "dist/src/ledger/migrate.js"];
/** Where a pod finds the database's CA bundle: a ConfigMap mounted read-only (the Job's and the services'). */
export const LEDGER_CA_DIR = "/etc/payments/ledger-ca";
export const LEDGER_CA_FILE = "ca.pem";
/** Labels of the Job's pods: what a NetworkPolicy selects to let them reach the database. */
export const MIGRATION_POD_LABELS = {
  "app.kubernetes.io/name": MIGRATIONS_SERVICE,
  "app.kubernetes.io/component": "migrations",
  "app.kubernetes.io/part-of": "payments",
} as const;

export interface LedgerDatabase {
  readonly host: string;
  readonly port: number;
  readonly name: string;
  /** The role the migrations run as (owner of the ledger's tables). */
  readonly migrationUser: string;
  /** The services' role: the grants migration gives it only the DML they issue. */
  readonly runtimeUser: string;
  /** The outbox relay's and the consumers' role: 010_worker_role_grants.sql gives it only outbox and receipts. */
  readonly workerUser: string;
}

export interface LedgerMigrationsArgs {
  /** Namespace of the Job and its Secret (the services' namespace). */
  readonly namespace: pulumi.Input<string>;
  /** The payment-service image, pinned: the same image and tag as its Deployment. */
  readonly image: string;
  /** DD_VERSION of the migration spans (the payment-service version). */
  readonly version: string;
  /** DD_ENV. */
  readonly env: string;
  /** Global tags (cluster, region, deployment) for DD_TAGS. */
  readonly globalTags: Readonly<Record<string, string>>;
  /** Where the node's trace-agent listens (as for the services). */
  readonly agent: AgentConnection;
  readonly database: LedgerDatabase;
  /**
   * PEM bundle of the CAs the database's certificate chains to (payments-apm:database.caBundle):
   * a ConfigMap mounted read-only; the Job connects with TLS verify-full against it, as the
   * services do, never in cleartext.
   */
  readonly caBundle: string;
  /** The migration role's password, a secret Output: it only goes into the Job's Secret. */
  readonly migrationPassword: pulumi.Input<string>;
  /** Hash of the migration files. Default: {@link migrationSetHash} of app/migrations. */
  readonly migrationsHash?: string;
  /** Pods retried after a failed run before the Job fails. Default 2 (a lost connection is retried; a bad migration fails fast). */
  readonly backoffLimit?: number;
  /** Seconds the whole Job may take, retries included. Default 600. */
  readonly activeDeadlineSeconds?: number;
  /** The migrate container's requests and memory limit. Default 100m / 128Mi, limit 256Mi. */
  readonly resources?: ResourceSettings;
}

export const DEFAULT_BACKOFF_LIMIT = 2;
export const DEFAULT_ACTIVE_DEADLINE_SECONDS = 600;
const DEFAULT_RESOURCES: ResourceSettings = { cpuRequest: "100m", memoryRequest: "128Mi", memoryLimit: "256Mi" };

/**
 * SHA-256 of the migration set: every `*.sql` file's name and bytes, in name order (the
 * order the runner applies them). A new, changed, renamed or removed file changes it;
 * anything else in the directory, timestamps and listing order do not.
 */
export function migrationSetHash(dir: string = MIGRATIONS_DIR): string {
  const hash = createHash("sha256");
  for (const file of readdirSync(dir).filter((f) => f.endsWith(".sql")).sort()) {
    hash.update(`${file}\0`).update(readFileSync(path.join(dir, file))).update("\0");
  }
  return hash.digest("hex");
}

/** The Job's name: `ledger-migrations-<first 10 hex digits of the set's hash>`. */
export const migrationJobName = (hash: string) => `${MIGRATIONS_SERVICE}-${hash.slice(0, 10)}`;
/** The Secret holding the migration role's password. */
export const MIGRATION_SECRET_NAME = `${MIGRATIONS_SERVICE}-secrets`;
/** The ConfigMap holding the database's CA bundle for the Job. */
export const MIGRATION_CA_CONFIGMAP_NAME = `${MIGRATIONS_SERVICE}-ledger-ca`;
/** How to read a migration Job's logs. */
export const migrationLogsCommand = (namespace: string, job: string) => `kubectl -n ${namespace} logs job/${job} --all-containers`;

type EnvVar = k8s.types.input.core.v1.EnvVar;

/**
 * The migrate container's env: unified service tagging from the pod's labels, the agent
 * address, every trace kept (a handful of spans per deploy), the connection as the
 * migration role over TLS verify-full (the CA bundle mounted at LEDGER_CA_DIR), and the
 * runtime and worker roles the grants migrations grant to.
 */
export function migrationEnv(args: Pick<LedgerMigrationsArgs, "agent" | "globalTags" | "database">): EnvVar[] {
  const fromLabel = (name: string, key: string): EnvVar => ({ name, valueFrom: { fieldRef: { fieldPath: `metadata.labels['tags.datadoghq.com/${key}']` } } });
  const literal = (env: Record<string, string>): EnvVar[] => Object.entries(env).map(([name, value]) => ({ name, value }));
  const db = args.database;
  return [
    fromLabel("DD_ENV", "env"),
    fromLabel("DD_SERVICE", "service"),
    fromLabel("DD_VERSION", "version"),
    ...agentAddressEnv(args.agent),
    ...literal({
      DD_TAGS: Object.entries(args.globalTags)
        .map(([k, v]) => `${k}:${v}`)
        .join(","),
      DD_TRACE_SAMPLE_RATE: "1",
      DD_LOGS_INJECTION: "true",
      PGHOST: db.host,
      PGPORT: String(db.port),
      PGDATABASE: db.name,
      PGUSER: db.migrationUser,
      PGAPPNAME: MIGRATIONS_SERVICE,
      PGCONNECT_TIMEOUT: "10",
      // TLS only, the certificate checked against the CA bundle and the host name.
      PGSSLMODE: "verify-full",
      PGSSLROOTCERT: `${LEDGER_CA_DIR}/${LEDGER_CA_FILE}`,
      LEDGER_RUNTIME_ROLE: db.runtimeUser,
      LEDGER_WORKER_ROLE: db.workerUser,
    }),
    { name: "PGPASSWORD", valueFrom: { secretKeyRef: { name: MIGRATION_SECRET_NAME, key: "PGPASSWORD" } } },
  ];
}

/** Every problem with the args, as property path + reason (pure; thrown before anything is registered). */
export function ledgerMigrationsArgsProblems(args: LedgerMigrationsArgs): pulumi.InputPropertyErrorDetails[] {
  const problems: pulumi.InputPropertyErrorDetails[] = [];
  const problem = (propertyPath: string, reason: string) => problems.push({ propertyPath, reason });
  if (args.database.migrationUser === args.database.runtimeUser) {
    problem("database.migrationUser", `must differ from the runtime role ${JSON.stringify(args.database.runtimeUser)}: the services must not own the ledger's tables`);
  }
  for (const [other, role] of [["database.user", args.database.runtimeUser], ["database.migrationUser", args.database.migrationUser]] as const) {
    if (args.database.workerUser === role) {
      problem("database.workerUser", `must differ from ${other} (${JSON.stringify(role)}): the outbox relay and the consumers get a role of their own`);
    }
  }
  if (!imagePinned(args.image)) {
    problem("image", `must be pinned by tag or digest (not latest), got ${JSON.stringify(args.image)}`);
  }
  const backoff = args.backoffLimit ?? DEFAULT_BACKOFF_LIMIT;
  if (!Number.isInteger(backoff) || backoff < 0 || backoff > 10) problem("backoffLimit", `must be a whole number between 0 and 10, got ${backoff}`);
  const deadline = args.activeDeadlineSeconds ?? DEFAULT_ACTIVE_DEADLINE_SECONDS;
  if (!Number.isInteger(deadline) || deadline < 30 || deadline > 3600) {
    problem("activeDeadlineSeconds", `must be a whole number of seconds between 30 and 3600, got ${deadline}`);
  }
  return problems;
}

/** The migration Job, its Secret, the CA bundle's ConfigMap, and nothing else. */
export class LedgerMigrations extends pulumi.ComponentResource {
  /** The Job's name, `ledger-migrations-<hash>`. */
  public readonly jobName: pulumi.Output<string>;

  constructor(name: string, args: LedgerMigrationsArgs, opts?: pulumi.ComponentResourceOptions) {
    const problems = ledgerMigrationsArgsProblems(args);
    if (problems.length) {
      throw problems.length === 1
        ? new pulumi.InputPropertyError(problems[0])
        : new pulumi.InputPropertiesError({ message: `Invalid LedgerMigrations ${JSON.stringify(name)} arguments`, errors: problems });
    }
    super("payments-apm:app:LedgerMigrations", name, {}, opts);

    const hash = args.migrationsHash ?? migrationSetHash();
    const jobName = migrationJobName(hash);
    const backoffLimit = args.backoffLimit ?? DEFAULT_BACKOFF_LIMIT;
    const activeDeadlineSeconds = args.activeDeadlineSeconds ?? DEFAULT_ACTIVE_DEADLINE_SECONDS;
    const r = args.resources ?? DEFAULT_RESOURCES;
    const labels = {
      ...MIGRATION_POD_LABELS,
      "tags.datadoghq.com/env": args.env,
      "tags.datadoghq.com/service": MIGRATIONS_SERVICE,
      "tags.datadoghq.com/version": args.version,
    };

    const secret = new k8s.core.v1.Secret(
      `${name}-secrets`,
      {
        metadata: { name: MIGRATION_SECRET_NAME, namespace: args.namespace, labels: MIGRATION_POD_LABELS },
        type: "Opaque",
        stringData: { PGPASSWORD: args.migrationPassword },
      },
      // The provider's Secret marks its data and stringData outputs secret itself.
      { parent: this },
    );

    const ca = new k8s.core.v1.ConfigMap(
      `${name}-ledger-ca`,
      {
        metadata: { name: MIGRATION_CA_CONFIGMAP_NAME, namespace: args.namespace, labels: MIGRATION_POD_LABELS },
        data: { [LEDGER_CA_FILE]: args.caBundle },
      },
      { parent: this },
    );

    const socket = agentSocketVolume(args.agent);
    const logs = pulumi.output(args.namespace).apply((ns) => migrationLogsCommand(ns, jobName));
    const job = new k8s.batch.v1.Job(
      // The hash in the logical name too: a new set is a new resource (created with this
      // release's image), and the old Job is deleted once it succeeded.
      `${name}-${hash.slice(0, 10)}`,
      {
        metadata: {
          name: jobName,
          namespace: args.namespace,
          labels,
          annotations: {
            // A Job that failed (database unreachable, say) is run again by the next `up`
            // instead of being waited on as it is.
            "pulumi.com/replaceUnready": "true",
            "payments-apm/logs": logs,
            "payments-apm/migrations-sha256": hash,
          },
        },
        spec: {
          backoffLimit,
          activeDeadlineSeconds,
          // No ttlSecondsAfterFinished, deliberately: a finished Job stays, so its logs stay
          // readable and the state matches the cluster. A Job deleted by a TTL would be missing
          // on the next `pulumi refresh`, and the `up` after it would create it again and run
          // the migrations once more (harmless, as each applies once, but a surprise). What
          // stays is one completed Job and its pod per migration set; the previous set's Job is
          // deleted when a new set's has succeeded.
          template: {
            metadata: { labels },
            spec: {
              restartPolicy: "Never",
              automountServiceAccountToken: false,
              securityContext: { runAsNonRoot: true, runAsUser: 1000, runAsGroup: 1000, fsGroup: 1000, seccompProfile: { type: "RuntimeDefault" } },
              containers: [
                {
                  name: "migrate",
                  image: args.image,
                  command: MIGRATE_COMMAND,
                  env: migrationEnv(args),
                  resources: { requests: { cpu: r.cpuRequest, memory: r.memoryRequest }, limits: { memory: r.memoryLimit } },
                  securityContext: {
                    runAsNonRoot: true,
                    readOnlyRootFilesystem: true,
                    allowPrivilegeEscalation: false,
                    privileged: false,
                    capabilities: { drop: ["ALL"] },
                  },
                  volumeMounts: [{ name: "tmp", mountPath: "/tmp" }, { name: "ledger-ca", mountPath: LEDGER_CA_DIR, readOnly: true }, ...socket.mounts],
                },
              ],
              volumes: [
                { name: "tmp", emptyDir: { sizeLimit: "16Mi" } },
                { name: "ledger-ca", configMap: { name: MIGRATION_CA_CONFIGMAP_NAME, defaultMode: 0o444 } },
                ...socket.volumes,
              ],
            },
          },
        },
      },
      {
        parent: this,
        dependsOn: [secret, ca],
        // A Job runs once and its spec is immutable: with the same migration set, a new image
        // tag or label must not replace it (that would run the migrations again).
        ignoreChanges: ["spec", "metadata.labels"],
        // Replaced only when it failed (replaceUnready), under the same name: delete it first.
        deleteBeforeReplace: true,
        // The provider waits for completion: longer than the Job may run.
        customTimeouts: { create: `${activeDeadlineSeconds + 120}s`, update: `${activeDeadlineSeconds + 120}s` },
      },
    );
    if (!pulumi.runtime.isDryRun()) {
      logs.apply((command) =>
        pulumi.log.info(`ledger migrations run as Job ${jobName}; if it fails, read why with: ${command}`, job),
      );
    }

    this.jobName = job.metadata.name;
    this.registerOutputs({ jobName: this.jobName });
  }
}
