import * as pulumi from "@pulumi/pulumi";
import { z } from "zod";
import { imageTag, mutableTag, wellFormedDigest } from "./image-reference";

/**
 * The stack config: read once, validated once, returned typed and frozen.
 *
 * Every key lives under the project namespace (`payments-apm:<key>`), except the Datadog
 * keys, which use the Datadog provider's own namespace (`datadog:apiKey`, `datadog:appKey`)
 * so the provider and the Agent Secret read the same secret values.
 */
export const PROJECT = "payments-apm";

/** A config problem, worded for the person who typed the value. */
export class ConfigError extends pulumi.RunError {
  constructor(readonly problems: readonly string[]) {
    super(
      `Invalid stack configuration (${problems.length} problem${problems.length === 1 ? "" : "s"}):\n` +
        problems.map((p) => `  - ${p}`).join("\n"),
    );
    this.name = "ConfigError";
  }
}

// `pulumi config set --path a.b 0.5` stores the string "0.5": accept numeric and boolean
// strings wherever a number or a boolean is expected.
const numberLike = (v: unknown) => (typeof v === "string" && v.trim() !== "" && !isNaN(Number(v)) ? Number(v) : v);
const booleanLike = (v: unknown) => (v === "true" ? true : v === "false" ? false : v);

const rate = () =>
  z.preprocess(numberLike, z.number({ error: "must be a number between 0 and 1" }).min(0, "must be between 0 and 1").max(1, "must be between 0 and 1"));
const positiveNumber = () =>
  // z.number() refuses Infinity itself (as not a number).
  z.preprocess(numberLike, z.number({ error: "must be a number" }).positive("must be greater than 0"));
const count = (min: number, max: number) =>
  z.preprocess(
    numberLike,
    z
      // The one message for every check: a check without its own message takes the schema's.
      .number({ error: `must be a whole number between ${min} and ${max}` })
      .int()
      .min(min)
      .max(max),
  );
const flag = () => z.preprocess(booleanLike, z.boolean({ error: "must be true or false" }));

/** DNS-1123 label: what Kubernetes accepts as a namespace or a Service name. */
const dnsLabel = () =>
  z
    .string({ error: "must be a string" })
    .regex(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/, "must be a DNS-1123 label (lowercase letters, digits, '-'; at most 63)");

/**
 * A value that is both a Datadog tag value and a Kubernetes label value (the unified
 * service tagging labels carry env and version): lowercase, no ',' or ' ' (they split DD_TAGS).
 */
const tagValue = () =>
  z
    .string({ error: "must be a string" })
    .regex(/^[a-z0-9]([-_.a-z0-9]{0,61}[a-z0-9])?$/, "must be lowercase letters, digits, '-', '_' or '.', start and end with a letter or digit, at most 63 characters");

/**
 * An image reference pinned by digest (`name@sha256:<64 hex>`, with or without a tag) or by
 * a tag other than `latest` or a variant of it, with no blank anywhere. A tag holds no '/', so a registry port
 * (`registry:5000/name`) is not taken for one.
 */
const pinnedImage = () =>
  z
    .string({ error: "must be a string" })
    .refine((s) => !s.includes("@") || wellFormedDigest(s), {
      message: "has a digest that is not sha256: followed by 64 lowercase hex digits (repo/name@sha256:…)",
    })
    .refine((s) => s.includes("@") || imageTag(s) !== undefined, {
      message: "must be pinned by tag or digest (e.g. repo/name:1.2.3 or repo/name@sha256:…)",
    })
    .refine((s) => {
      // A digest pins whatever tag comes with it (imageTag finds none in a reference with a digest).
      const tag = imageTag(s);
      return tag === undefined || !mutableTag(tag);
    }, { message: "must not use the mutable tag 'latest' or a variant of it (latest-jmx)" });

/** An absolute https URL (an issuer, a key set): tokens and keys are never trusted over plain http. */
const httpsUrl = () =>
  z
    .string({ error: "must be a string" })
    // An https URL always has a host: it does not parse without one.
    .refine((s) => URL.canParse(s) && new URL(s).protocol === "https:", "must be an https:// URL");

const quantity = () =>
  z.string({ error: "must be a Kubernetes quantity string such as \"100m\" or \"256Mi\"" }).regex(/^\d+(\.\d+)?(m|Ki|Mi|Gi|Ti|k|M|G|T)?$/, "must be a Kubernetes quantity such as \"100m\" or \"256Mi\"");

const resources = (cpu: string, memory: string, memoryLimit: string) =>
  z
    .object({
      cpuRequest: quantity().default(cpu),
      memoryRequest: quantity().default(memory),
      memoryLimit: quantity().default(memoryLimit),
    })
    .strict()
    .prefault({});

/** Requests and limits with a CPU limit too (the trace-agent's CPU budget derives from it). */
const resourcesWithCpuLimit = (cpu: string, memory: string, memoryLimit: string, cpuLimit: string) =>
  z
    .object({
      cpuRequest: quantity().default(cpu),
      memoryRequest: quantity().default(memory),
      memoryLimit: quantity().default(memoryLimit),
      cpuLimit: quantity().default(cpuLimit),
    })
    .strict()
    .prefault({});

/** An absolute path on the node, e.g. /var/run/containerd/containerd.sock. */
const hostPath = () =>
  z
    .string({ error: "must be a string" })
    .regex(/^\/[A-Za-z0-9._/-]*[A-Za-z0-9._-]$/, "must be an absolute path on the node such as /var/run/containerd/containerd.sock")
    .refine((s) => !s.split("/").includes(".."), { message: "must not contain '..'" });

const toleration = z
  .object({
    key: z.string().optional(),
    operator: z.enum(["Exists", "Equal"], { error: "must be Exists or Equal" }).default("Equal"),
    value: z.string().optional(),
    effect: z.enum(["NoSchedule", "PreferNoSchedule", "NoExecute"], { error: "must be NoSchedule, PreferNoSchedule or NoExecute" }).optional(),
  })
  .strict();

/** An IPv4 CIDR, e.g. 10.20.64.0/20. */
const ipv4Cidr = () =>
  z
    .string({ error: "must be a string" })
    // Each check stops the next: a bad CIDR gets one problem, not the same one twice.
    .regex(/^(\d{1,3})(\.\d{1,3}){3}\/(\d|[12]\d|3[0-2])$/, { message: "must be an IPv4 CIDR such as 10.20.64.0/20", abort: true })
    .refine((c) => c.split("/")[0].split(".").every((o) => Number(o) <= 255), { message: "must be an IPv4 CIDR such as 10.20.64.0/20", abort: true })
    .refine((c) => !c.endsWith("/0"), { message: "must not be 0.0.0.0/0 (the internet at large): name the range the endpoint is in" });

/** One or more PEM certificates and nothing else. */
const pemBundle = () =>
  z
    .string({ error: "must be a string holding PEM certificates" })
    .refine((s) => /^\s*(-----BEGIN CERTIFICATE-----\s[A-Za-z0-9+/=\s]+?-----END CERTIFICATE-----\s*)+$/.test(s), {
      message: "must be a PEM bundle: one or more -----BEGIN CERTIFICATE----- blocks and nothing else",
    });

// Keys of a parsed object are always strings: only the values are checked.
const labelMap = () => z.record(z.string(), z.string({ error: "must be a string" }));

/** Who may reach payment-service: pods by namespace and/or pod labels, at least one label in all. */
const peerSelector = z
  .object({ namespaceSelector: labelMap().optional(), podSelector: labelMap().optional() })
  .strict()
  .refine((p) => Object.keys(p.namespaceSelector ?? {}).length + Object.keys(p.podSelector ?? {}).length > 0, {
    message: "needs a namespaceSelector or a podSelector with at least one label (an empty selector lets every pod in)",
  });

const notifyHandle = z
  .string({ error: "must be a string" })
  .regex(/^@[\w.+-]+(@[\w.-]+)?$/, "must be a Datadog notification handle such as @slack-payments-alerts or @pagerduty-payments");

const service = (defaults: { replicas: number }) =>
  z
    .object({
      image: pinnedImage(),
      /** DD_VERSION and tags.datadoghq.com/version. */
      version: tagValue(),
      replicas: count(1, 100).default(defaults.replicas),
      minAvailable: count(0, 100).default(1),
      resources: resources("250m", "256Mi", "512Mi"),
    })
    .strict()
    // A budget that allows no disruption blocks every node drain.
    .refine((s) => s.minAvailable < s.replicas, { message: "must be less than replicas", path: ["minAvailable"] });

const percent = () =>
  z.preprocess(
    numberLike,
    z.number({ error: "must be a percentage strictly between 0 and 100" }).gt(0).lt(100),
  );

/** `payments-apm:slos`: targets of the payment SLOs. Every key has a default. */
export const sloSettingsSchema = z
  .object({
    /** Rolling window the targets apply to. */
    timeframe: z.enum(["7d", "30d", "90d"], { error: "must be 7d, 30d or 90d" }).default("30d"),
    /** % of payments that must complete without an error. */
    availabilityTarget: percent().default(99.9),
    /** % of 5-minute slices whose payment p95 must stay within the latency threshold. */
    latencyTarget: percent().default(99.5),
    /** p95 latency threshold in seconds. Default: payments-apm:monitors.paymentLatencyP95Seconds. */
    latencyThresholdSeconds: z
      .preprocess(numberLike, z.number({ error: "must be a number of seconds" }).positive("must be greater than 0"))
      .optional(),
  })
  .strict()
  .prefault({});

/** What `payments-apm:sampling.rateLimit` is checked against. */
export interface RateLimitBudget {
  readonly rateLimit: number;
  readonly baseRate: number;
  readonly tierRates: Readonly<Record<string, number>>;
  readonly sampledRuleMaxPerSecond: number;
  readonly alwaysKeepPeakPerSecond: number;
}

/**
 * Why rateLimit is too low for the always-keep rules, or undefined. In dd-trace
 * (priority_sampler.js) a trace a rule keeps takes a token from the process's one
 * DD_TRACE_RATE_LIMIT limiter, whatever the rule; a sampled rule (base rate, tiers) lets
 * at most its max_per_second through to it, a rule at rate 0 none. What those rules can
 * take, plus the always-keep peak, must fit.
 */
export function rateLimitProblem(b: RateLimitBudget): string | undefined {
  const rates: [string, number][] = [["base rate", b.baseRate], ...Object.entries(b.tierRates)];
  const sampled = rates.filter(([, rate]) => rate > 0).map(([name]) => name);
  const minimum = b.alwaysKeepPeakPerSecond + sampled.length * b.sampledRuleMaxPerSecond;
  if (b.rateLimit >= minimum) return undefined;
  return (
    `must be at least ${minimum} (traces/s per service instance): dd-trace counts always-kept traces against it too, ` +
    `so it must cover alwaysKeepPeakPerSecond (${b.alwaysKeepPeakPerSecond}) plus sampledRuleMaxPerSecond ` +
    `(${b.sampledRuleMaxPerSecond}) for each sampled rule (${sampled.join(", ") || "none"})`
  );
}

/** The schema of `payments-apm:*`. Defaults are the original tracing design's values unless a comment says otherwise. */
export const stackConfigSchema = z
  .object({
    /** DD_ENV and the `env:` tag of every monitor. */
    environment: tagValue(),
    /** The global `deployment` tag. */
    deployment: tagValue(),
    cluster: z
      .object({
        /** Name of the existing EKS cluster (also the `cluster` tag and DD_CLUSTER_NAME). */
        name: z
          .string({ error: "must be a string" })
          .regex(/^[a-z0-9]([a-z0-9.-]{0,78}[a-z0-9])?$/, "must be lowercase letters, digits, '.' or '-', at most 80 characters (Datadog cluster name rules)"),
        /** AWS region of the cluster (also the `region` tag). */
        region: z.string({ error: "must be a string" }).regex(/^[a-z]{2}(-gov)?-[a-z]+-\d$/, "must be an AWS region such as us-east-1"),
      })
      .strict(),
    datadog: z
      .object({
        site: z
          .enum(["datadoghq.com", "us3.datadoghq.com", "us5.datadoghq.com", "datadoghq.eu", "ap1.datadoghq.com", "ap2.datadoghq.com", "ddog-gov.com"], {
            error: "must be a Datadog site such as datadoghq.com or datadoghq.eu",
          })
          .default("datadoghq.com"),
        /**
         * Deploy the node Agent (namespace, Secret, RBAC, priority class, DaemonSet). false: the
         * cluster already runs one (Helm chart or Operator) and the services send to it at
         * `existingAgent`; two Agents on one node break each other's socket and hostPort.
         */
        deployAgent: flag().default(true),
        /** Where the Agent already on every node listens (only with deployAgent: false): its Unix socket, its hostPort, or both. */
        existingAgent: z
          .object({
            /** The trace intake socket on the node, e.g. /var/run/datadog/apm.socket (the chart's and the Operator's default). */
            socketPath: hostPath().optional(),
            /** The trace-agent's hostPort on the node, reached at status.hostIP. */
            port: count(1, 65535).optional(),
          })
          .strict()
          .optional(),
        namespace: dnsLabel().default("datadog"),
        /** public.ecr.aws: the chart's advice on AWS, no dependency on gcr.io egress. */
        agentImage: pinnedImage().default("public.ecr.aws/datadog/agent:7.81.1"),
        /**
         * The Agent pods' priority class, so they preempt ordinary pods on a full node instead
         * of staying Pending (the Kubernetes provider waits for the DaemonSet). create: made
         * here like the chart's agents.priorityClassCreate; false: an existing one, by name.
         */
        priorityClass: z
          .object({
            create: flag().default(true),
            /** Default when created: `<datadog.namespace>-datadog-agent`. Required when create is false. */
            name: dnsLabel().optional(),
            /** The chart's default, the highest a user-defined class may have. */
            value: count(1, 1_000_000_000).default(1_000_000_000),
          })
          .strict()
          .prefault({})
          .superRefine((p, ctx) => {
            if (!p.create && p.name === undefined) {
              ctx.addIssue({ code: "custom", path: ["name"], message: "is required when create is false: name the existing priority class" });
            }
            if (p.create && p.name?.startsWith("system-")) {
              ctx.addIssue({ code: "custom", path: ["name"], message: "must not start with 'system-' (reserved by Kubernetes)", input: p.name });
            }
          }),
        /**
         * The container runtime socket on the node: containerd on AL2/AL2023
         * (/var/run/containerd/containerd.sock); Bottlerocket: /run/dockershim.sock.
         */
        criSocketPath: hostPath().default("/var/run/containerd/containerd.sock"),
        /**
         * The chart's providers.eks.ec2.useHostnameFromFile: read the hostname from the node's
         * cloud-init instance-id file, for nodes whose IMDSv2 hop limit of 1 keeps the Agent from IMDS.
         */
        useHostnameFromFile: flag().default(false),
        apm: z
          .object({
            /** Unix socket /var/run/datadog/apm.socket, shared with app pods by hostPath (Datadog's recommendation). */
            socketEnabled: flag().default(true),
            /**
             * hostPort 8126 on every node; app pods reach it at status.hostIP. On by default
             * (the chart's is off): the services' namespace enforces Pod Security restricted,
             * which forbids the socket's hostPath, so they use the port.
             */
            portEnabled: flag().default(true),
            port: count(1, 65535).default(8126),
          })
          .strict()
          .prefault({})
          .refine((a) => a.socketEnabled || a.portEnabled, { message: "needs socketEnabled or portEnabled (or both) so app pods can reach the trace intake" }),
        /** Verify the kubelet's serving certificate. EKS kubelets serve self-signed certificates, so the chart's EKS setting is false. */
        kubeletTlsVerify: flag().default(false),
        tolerations: z.array(toleration).default([]),
        agentResources: resources("200m", "256Mi", "512Mi"),
        /** Its limits are the trace-agent's budget too (DD_APM_MAX_MEMORY, DD_APM_MAX_CPU_PERCENT). */
        traceAgentResources: resourcesWithCpuLimit("100m", "200Mi", "400Mi", "1"),
      })
      .strict()
      .prefault({})
      .superRefine((d, ctx) => {
        const existing = d.existingAgent;
        if (!d.deployAgent && existing?.socketPath === undefined && existing?.port === undefined) {
          ctx.addIssue({
            code: "custom",
            path: ["existingAgent"],
            message: "is required when deployAgent is false: set existingAgent.socketPath (e.g. /var/run/datadog/apm.socket) or existingAgent.port (e.g. 8126) of the Agent already on the nodes",
          });
        }
        if (d.deployAgent && existing !== undefined) {
          ctx.addIssue({ code: "custom", path: ["existingAgent"], message: "is only read when deployAgent is false: remove it, or set deployAgent to false", input: existing });
        }
      }),
    services: z
      .object({
        namespace: dnsLabel().default("payments"),
        payment: service({ replicas: 3 }),
        fraud: service({ replicas: 2 }),
        /** The outbox relay (replicas share the outbox: FOR UPDATE SKIP LOCKED). */
        relay: service({ replicas: 2 }),
        /** The consumers of the outbox events (receipts, fraud history). */
        postProcessing: service({ replicas: 2 }),
        /** How long payment-service waits for a fraud score before failing closed. */
        fraudTimeoutMs: count(50, 30000).default(800),
        /**
         * Enforce the Pod Security `restricted` level on the namespace (else only warn and
         * audit). `restricted` forbids hostPath volumes, so the services then reach the
         * Agent by its hostPort, not its socket: it needs datadog.apm.portEnabled.
         */
        enforceRestricted: flag().default(true),
      })
      .strict(),
    database: z
      .object({
        host: z.string({ error: "must be a string" }).min(1, "must not be empty"),
        port: count(1, 65535).default(5432),
        name: z.string({ error: "must be a string" }).min(1, "must not be empty").default("payments"),
        /** The services' role (runtime): granted only the DML they issue, by a migration. */
        user: z.string({ error: "must be a string" }).min(1, "must not be empty").default("payments"),
        /** The role the migration Job runs as, owner of the ledger's tables (password: payments-apm:databaseMigrationPassword). */
        migrationUser: z.string({ error: "must be a string" }).min(1, "must not be empty").default("payments_migrations"),
        /**
         * The outbox relay's and the consumers' role (password: payments-apm:databaseWorkerPassword):
         * granted only what they issue on outbox and receipts, by a migration.
         */
        workerUser: z.string({ error: "must be a string" }).min(1, "must not be empty").default("payments_worker"),
        poolMax: count(1, 200).default(10),
        migrations: z
          .object({
            /** Pods retried after a failed run before the Job fails (a lost connection is retried; a bad migration fails fast). */
            backoffLimit: count(0, 10).default(2),
            /** Seconds the whole Job may take, retries included; `pulumi up` waits up to 2 minutes longer. */
            activeDeadlineSeconds: count(30, 3600).default(600),
          })
          .strict()
          .prefault({}),
        /**
         * PEM bundle of the CAs the database's certificate must chain to (for RDS, its
         * global bundle). payment-service connects with TLS verify-full against it, never in
         * cleartext; it reaches the pods as a read-only ConfigMap file.
         */
        caBundle: pemBundle(),
      })
      .strict()
      .superRefine((db, ctx) => {
        if (db.migrationUser === db.user) {
          ctx.addIssue({
            code: "custom",
            path: ["migrationUser"],
            message: `must differ from database.user (${JSON.stringify(db.user)}): the services must not own the ledger's tables`,
            input: db.migrationUser,
          });
        }
        for (const [other, role] of [["database.user", db.user], ["database.migrationUser", db.migrationUser]] as const) {
          if (db.workerUser !== role) continue;
          ctx.addIssue({
            code: "custom",
            path: ["workerUser"],
            message: `must differ from ${other} (${JSON.stringify(role)}): the outbox relay and the consumers get a role of their own, granted only outbox and receipts`,
            input: db.workerUser,
          });
        }
      }),
    redis: z
      .object({
        host: z.string({ error: "must be a string" }).min(1, "must not be empty"),
        port: count(1, 65535).default(6379),
        /**
         * rediss:// (ElastiCache in-transit encryption) with the AUTH token from the secret
         * payments-apm:redisAuthToken. False: redis:// without AUTH (a Redis without TLS).
         */
        tls: flag().default(true),
      })
      .strict(),
    /**
     * RabbitMQ for the outbox events (Amazon MQ for RabbitMQ in AWS). The password is the
     * secret payments-apm:brokerPassword.
     */
    broker: z
      .object({
        /** The broker's host name, e.g. b-1234abcd.mq.us-east-1.amazonaws.com. */
        host: z
          .string({ error: "must be a string" })
          .regex(/^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$/, "must be a host name such as b-1234abcd.mq.us-east-1.amazonaws.com"),
        /** 5671: AMQP over TLS, what Amazon MQ listens on. */
        port: count(1, 65535).default(5671),
        vhost: z.string({ error: "must be a string" }).min(1, "must not be empty").default("/"),
        user: z.string({ error: "must be a string" }).min(1, "must not be empty"),
        /** amqps://. Amazon MQ for RabbitMQ accepts only TLS. */
        tls: flag().default(true),
        /** The exchange the relay publishes to; queues are named after it. */
        exchange: z
          .string({ error: "must be a string" })
          .regex(/^[A-Za-z0-9_.:-]{1,200}$/, "must be letters, digits, '_', '.', ':' or '-'")
          .default("payments.events"),
        /** Published outbox events are kept this many hours, then pruned. */
        outboxRetentionHours: count(1, 8760).default(168),
      })
      .strict(),
    sampling: z
      .object({
        /** DD_TRACE_SAMPLE_RATE: share of traces kept when no rule matches. */
        baseRate: rate().default(0.1),
        /**
         * DD_TRACE_RATE_LIMIT, in traces per second per service instance (dd-trace keeps one
         * limiter per process; one Node process per pod). dd-trace checks every trace a rule
         * keeps against it, always-kept ones included, so it must cover alwaysKeepPeakPerSecond
         * plus sampledRuleMaxPerSecond for each sampled rule (rateLimitProblem checks it).
         * Default 500 = 200 + 3 × 100 (base rate, premium, enterprise).
         */
        rateLimit: count(1, 100000).default(500),
        /**
         * `max_per_second` of each rule that keeps only a share of traces (the base rate and
         * each customer tier), in traces/s per service instance: a flood of that traffic stops
         * at this cap. dd-trace checks it before rateLimit, and only what it lets through
         * counts against rateLimit. Default 100: dd-trace's own cap for the base rate
         * (its DD_TRACE_RATE_LIMIT default).
         */
        sampledRuleMaxPerSecond: count(1, 100000).default(100),
        /**
         * The most always-kept traces (alwaysKeep) one service instance starts in a second at
         * peak: the share of rateLimit the sampled rules can never take. Default 200: a traced
         * payment-service process served at most 128 payments/s in the benchmark
         * (bench/results/latest.md) and needs ~6.5 ms of CPU per payment, ~155/s on a whole core.
         */
        alwaysKeepPeakPerSecond: count(0, 100000).default(200),
        /** Operations whose traces are always kept. */
        alwaysKeep: z
          .array(z.string().regex(/^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$/, "must be a span name such as payment.process_payment"))
          .default(["payment.process_payment", "fraud.detection", "user.authentication"]),
        /** Per customer tier rates (tag payments.tier on the root span; see TAGS.rootTier). */
        tierRates: z
          .object({ premium: rate().default(0.3), enterprise: rate().default(0.5) })
          .strict()
          .prefault({}),
        /** Share of error traces indexed (retention filter); the Agent's error sampler keeps them ingested. */
        errorRate: rate().default(0.5),
        slowTraces: z
          .object({ thresholdMs: positiveNumber().default(1000), rate: rate().default(0.8) })
          .strict()
          .prefault({}),
        agent: z
          .object({
            /** DD_APM_TARGET_TPS: traces/s the Agent's priority sampler aims for per service/env. */
            targetTracesPerSecond: positiveNumber().default(10),
            /** DD_APM_ERROR_TPS: error traces/s the Agent's error sampler keeps. */
            errorTracesPerSecond: positiveNumber().default(10),
            /** DD_APM_ENABLE_RARE_SAMPLER: keep traces of rarely seen resources. */
            rareSamplerEnabled: flag().default(true),
          })
          .strict()
          .prefault({}),
      })
      .strict()
      .superRefine(
        (sampling, ctx) => {
          const problem = rateLimitProblem(sampling);
          if (problem) ctx.addIssue({ code: "custom", path: ["rateLimit"], message: problem });
        },
        // Only on valid values: a bad input is reported as such, not as a rateLimit problem.
        { when: (payload) => payload.issues.length === 0 },
      )
      .prefault({}),
    monitors: z
      .object({
        notify: z.array(notifyHandle).min(1, "must name at least one notification handle"),
        paymentLatencyP95Seconds: positiveNumber().default(2),
        paymentErrorRate: rate().default(0.05),
        databaseLatencyP95Seconds: positiveNumber().default(1),
        /** p95 of a payment's commit to its event's consumption, in seconds (payment.post_processing.lag). */
        postProcessingLagP95Seconds: positiveNumber().default(60),
      })
      .strict(),
    slos: sloSettingsSchema,
    /** Which flows the services namespace's NetworkPolicies allow (components/network-policies.ts). */
    network: z
      .object({
        /**
         * The cluster enforces NetworkPolicies (EKS: the vpc-cni add-on with its network
         * policy support on). False: they are still created, and preview warns that nothing
         * enforces them.
         */
        clusterEnforces: flag().default(true),
        /** Sources allowed to reach payment-service (the ingress controller or API gateway). */
        paymentIngressFrom: z.array(peerSelector).min(1, "must name at least one source (the ingress controller or API gateway)"),
        /** Where the ledger database is (port: database.port). */
        databaseCidrs: z.array(ipv4Cidr()).min(1, "must name at least one CIDR"),
        /** Where Redis is (port: redis.port). */
        redisCidrs: z.array(ipv4Cidr()).min(1, "must name at least one CIDR"),
        /** Where RabbitMQ is (port: broker.port): the outbox relay and the consumers reach it. */
        brokerCidrs: z.array(ipv4Cidr()).min(1, "must name at least one CIDR"),
        /** The nodes' addresses: the services reach the Agent on its hostPort there. */
        nodeCidrs: z.array(ipv4Cidr()).min(1, "must name at least one CIDR"),
        /**
         * HTTPS (443) endpoints of the identity provider's and the cluster issuer's JWKS (or the
         * egress proxy in front of them). Required: payment-service verifies every caller's token
         * against auth.jwksUrl and fraud-service payment-service's against the cluster issuer's
         * keys; the program has no other way to reach them, so without a CIDR every request fails.
         */
        jwksCidrs: z.array(ipv4Cidr()).min(1, "must name at least one CIDR: payment-service and fraud-service fetch the token signing keys (auth.jwksUrl, the cluster issuer's keys) over HTTPS, and authentication is mandatory"),
      })
      .strict(),
    /**
     * The identity provider whose OAuth 2.0 access tokens (RFC 9068 JWTs) payment-service
     * accepts: AUTH_ISSUER, AUTH_AUDIENCE, AUTH_JWKS_URL. No defaults: they name your provider.
     */
    auth: z
      .object({
        /** The `iss` every token must carry, exactly as the provider writes it. */
        issuer: httpsUrl(),
        /** The `aud` payment-service accepts (the API's identifier at the provider). */
        audience: z.string({ error: "must be a string" }).trim().min(1, "must not be empty"),
        /** Where the provider publishes its signing keys (JWKS). */
        jwksUrl: httpsUrl(),
        /** Accepted clock difference on exp/nbf, in seconds. */
        clockToleranceSeconds: count(0, 300).default(30),
      })
      .strict(),
    /** Per-user policies of POST /v1/payments. */
    payments: z
      .object({
        /** How long an Idempotency-Key replays its first answer; then its user may use it again (Stripe keeps keys 24 h). */
        idempotencyWindowHours: count(1, 720).default(24),
        rateLimit: z
          .object({
            /** Payments one user may start per minute, per payment-service pod (the limit is per pod: see README). */
            perUserPerMinute: count(1, 1_000_000).default(60),
            /** Payments one user may start at once before the rate applies. */
            burst: count(1, 1_000_000).default(10),
          })
          .strict()
          .prefault({}),
      })
      .strict()
      .prefault({}),
  })
  .strict()
  .superRefine(
    (settings, ctx) => {
      // Pod Security restricted forbids the hostPath mount of the Agent's socket: the services need its hostPort.
      const why = "while payments-apm:services.enforceRestricted is true: Pod Security restricted forbids the hostPath mount of the Agent's socket, so the services reach the Agent by its hostPort";
      if (!settings.services.enforceRestricted) return;
      if (settings.datadog.deployAgent && !settings.datadog.apm.portEnabled) {
        ctx.addIssue({ code: "custom", path: ["datadog", "apm", "portEnabled"], message: `must be true ${why}` });
      }
      if (!settings.datadog.deployAgent && settings.datadog.existingAgent?.port === undefined) {
        ctx.addIssue({ code: "custom", path: ["datadog", "existingAgent", "port"], message: `is required ${why}` });
      }
    },
    { when: (payload) => payload.issues.length === 0 },
  );

export type StackSettings = z.infer<typeof stackConfigSchema>;

/** Everything the program needs from the stack: settings plus the secrets, as secret Outputs. */
export interface StackConfig extends StackSettings {
  readonly secrets: {
    readonly datadogApiKey: pulumi.Output<string>;
    readonly datadogAppKey: pulumi.Output<string>;
    readonly databasePassword: pulumi.Output<string>;
    readonly brokerPassword: pulumi.Output<string>;
    readonly databaseMigrationPassword: pulumi.Output<string>;
    /** The password of database.workerUser (the outbox relay and the consumers). */
    readonly databaseWorkerPassword: pulumi.Output<string>;
    /** Key of the HMAC checksums that roll pods when a Secret changes (secret-checksum.ts). */
    readonly rolloutChecksumKey: pulumi.Output<string>;
    /** HMAC key of fraud-service's Redis key names (REDIS_KEY_SECRET). */
    readonly redisKeySecret: pulumi.Output<string>;
    /** The Redis AUTH token (REDIS_PASSWORD); present whenever redis.tls is true. */
    readonly redisAuthToken?: pulumi.Output<string>;
  };
  /** The global tags every span and the Agent carry. */
  readonly globalTags: Readonly<{ cluster: string; region: string; deployment: string }>;
}

/** Secret keys: `namespace:key`. Never read with `config.get` (that returns plain text). */
export const SECRET_KEYS = {
  datadogApiKey: "datadog:apiKey",
  datadogAppKey: "datadog:appKey",
  databasePassword: `${PROJECT}:databasePassword`,
  databaseMigrationPassword: `${PROJECT}:databaseMigrationPassword`,
  databaseWorkerPassword: `${PROJECT}:databaseWorkerPassword`,
  rolloutChecksumKey: `${PROJECT}:rolloutChecksumKey`,
  redisKeySecret: `${PROJECT}:redisKeySecret`,
  redisAuthToken: `${PROJECT}:redisAuthToken`,
  brokerPassword: `${PROJECT}:brokerPassword`,
} as const;

/** The project's secret keys, by their name under `payments-apm:`. */
const PROJECT_SECRET_NAMES = Object.values(SECRET_KEYS)
  .filter((k) => k.startsWith(`${PROJECT}:`))
  .map((k) => k.slice(PROJECT.length + 1));

const TOP_LEVEL_KEYS = new Set([...Object.keys(stackConfigSchema.shape), ...PROJECT_SECRET_NAMES]);

/**
 * Validates the raw `payments-apm:*` values (top-level key → parsed YAML value) and returns
 * the settings with defaults, or every problem at once, each naming the full key.
 */
export function parseStackSettings(raw: Readonly<Record<string, unknown>>): StackSettings {
  const problems: string[] = [];
  for (const key of Object.keys(raw)) {
    if (!TOP_LEVEL_KEYS.has(key)) problems.push(`${PROJECT}:${key} is not a known setting (known: ${[...TOP_LEVEL_KEYS].join(", ")})`);
  }
  const known = Object.fromEntries(Object.entries(raw).filter(([k]) => stackConfigSchema.shape[k as keyof StackSettings]));
  const result = stackConfigSchema.safeParse(known);
  if (result.success && problems.length === 0) return deepFreeze(result.data);
  if (!result.success) problems.push(...result.error.issues.flatMap((issue) => describeIssue(issue, known)));
  throw new ConfigError(problems);
}

function describeIssue(issue: z.core.$ZodIssue, raw: Record<string, unknown>): string[] {
  const path = issue.path.map(String);
  const key = (p: string[]) => `${PROJECT}:${p.join(".")}`;
  if (issue.code === "unrecognized_keys") {
    return issue.keys.map((k) => `${key([...path, k])} is not a known setting`);
  }
  const value = valueAt(raw, path);
  // A check across settings may name a key left at its default.
  if (value === undefined) return [issue.code === "custom" ? `${key(path)} ${issue.message}` : `${key(path)} is required`];
  const message = issue.code === "invalid_type" && !issue.message.startsWith("must") ? `must be ${issue.expected}` : issue.message;
  return [`${key(path)} ${message}, got ${JSON.stringify(value)}`];
}

/** The raw value at an issue's path (undefined where the key is not set). */
function valueAt(root: unknown, path: readonly string[]): unknown {
  return path.reduce<unknown>((v, p) => (v as Record<string, unknown> | undefined)?.[p], root);
}

function deepFreeze<T>(o: T): T {
  // Primitives (and null) count as frozen already.
  if (!Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o as object)) deepFreeze(v);
  }
  return o;
}

/** Reads the raw project config of the running stack: `payments-apm:x` → parsed value. */
function readRawProjectConfig(): Record<string, unknown> {
  const raw: Record<string, unknown> = {};
  const prefix = `${PROJECT}:`;
  for (const [fullKey, value] of Object.entries(pulumi.runtime.allConfig())) {
    if (!fullKey.startsWith(prefix)) continue;
    const key = fullKey.slice(prefix.length);
    if (PROJECT_SECRET_NAMES.includes(key)) continue; // secret: read below, never as plain text
    raw[key] = parseConfigValue(value);
  }
  return raw;
}

// Structured values reach the program as JSON text; scalars as plain strings.
function parseConfigValue(value: string): unknown {
  const trimmed = value.trim();
  if (trimmed.startsWith("{") || trimmed.startsWith("[")) {
    try {
      return JSON.parse(trimmed);
    } catch {
      // Not JSON after all: the text as typed.
    }
  }
  return value;
}

/**
 * The Datadog provider reads `datadog:apiUrl` itself (so the keys never become resource
 * inputs): it must point at the same site as the Agent.
 */
export function datadogProviderProblems(site: string, apiUrl: string | undefined): string[] {
  const expected = `https://api.${site}/`;
  const normalise = (u: string) => (u.endsWith("/") ? u : `${u}/`);
  if (apiUrl === undefined) {
    return site === "datadoghq.com" ? [] : [`datadog:apiUrl is required for site ${site}: set it to ${expected}`];
  }
  return normalise(apiUrl) === expected ? [] : [`datadog:apiUrl must be ${expected} to match ${PROJECT}:datadog.site ${site}, got ${JSON.stringify(apiUrl)}`];
}

/** Reads and validates the stack config. Throws one ConfigError listing every problem. */
export function loadConfig(): StackConfig {
  const problems: string[] = [];
  let settings: StackSettings | undefined;
  try {
    settings = parseStackSettings(readRawProjectConfig());
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    problems.push(...e.problems);
  }
  const secret = (fullKey: string, hint: string) => {
    const [ns, key] = fullKey.split(":");
    const value = new pulumi.Config(ns).getSecret(key);
    if (value === undefined) problems.push(`${fullKey} is required: set it with \`pulumi config set --secret ${fullKey} <${hint}>\``);
    return value;
  };
  if (settings) problems.push(...datadogProviderProblems(settings.datadog.site, new pulumi.Config("datadog").get("apiUrl")));
  const datadogApiKey = secret(SECRET_KEYS.datadogApiKey, "Datadog API key");
  const datadogAppKey = secret(SECRET_KEYS.datadogAppKey, "Datadog application key");
  const databasePassword = secret(SECRET_KEYS.databasePassword, "database password");
  const databaseMigrationPassword = secret(SECRET_KEYS.databaseMigrationPassword, "migration role's database password");
  const databaseWorkerPassword = secret(SECRET_KEYS.databaseWorkerPassword, "worker role's database password");
  const rolloutChecksumKey = secret(SECRET_KEYS.rolloutChecksumKey, "random key: $(openssl rand -hex 32)");
  const redisKeySecret = secret(SECRET_KEYS.redisKeySecret, "random key: $(openssl rand -hex 32)");
  // Needed with rediss:// only; read either way, never as plain text.
  const redisAuthToken = new pulumi.Config(PROJECT).getSecret("redisAuthToken");
  if (settings?.redis.tls && redisAuthToken === undefined) {
    problems.push(
      `${SECRET_KEYS.redisAuthToken} is required while ${PROJECT}:redis.tls is true (rediss:// with the ElastiCache AUTH token): ` +
        `set it with \`pulumi config set --secret ${SECRET_KEYS.redisAuthToken} <AUTH token>\``,
    );
  }
  const brokerPassword = secret(SECRET_KEYS.brokerPassword, "broker password");
  if (problems.length > 0 || !settings || !datadogApiKey || !datadogAppKey || !databasePassword || !databaseMigrationPassword || !databaseWorkerPassword || !rolloutChecksumKey || !redisKeySecret || !brokerPassword) {
    throw new ConfigError(problems);
  }
  return Object.freeze({
    ...settings,
    secrets: Object.freeze({ datadogApiKey, datadogAppKey, databasePassword, databaseMigrationPassword, databaseWorkerPassword, rolloutChecksumKey, redisKeySecret, redisAuthToken, brokerPassword }),
    globalTags: Object.freeze({ cluster: settings.cluster.name, region: settings.cluster.region, deployment: settings.deployment }),
  });
}
