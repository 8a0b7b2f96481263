/**
 * payments-apm: Datadog distributed tracing for the payments system on Amazon EKS.
 * cluster → Datadog Agent → ledger migrations → payment-service + fraud-service → outbox relay +
 * consumers → sampling → monitors → SLOs, dashboard.
 */
import { MIGRATIONS_SERVICE, SERVICES } from "./app/src/tracing/conventions";
import { ApmDashboard } from "./components/apm-dashboard";
import { ApmMonitors } from "./components/apm-monitors";
import { ApmSlos } from "./components/apm-slos";
import { EksCluster } from "./components/cluster";
import { loadConfig } from "./components/config";
import { DatadogAgent } from "./components/datadog-agent";
import { LEDGER_CA_DIR, LEDGER_CA_FILE, LedgerMigrations } from "./components/ledger-migrations";
import { agentSamplers, TraceRetention } from "./components/sampling";
import { paymentPolicyEnv, serviceAuthEnv, userAuthEnv } from "./components/auth";
import { agentPodSelector, databaseClientWorkload, NetworkPolicies, paymentPathWorkloads, postProcessingWorkloads } from "./components/network-policies";
import { ServiceNamespace } from "./components/service-namespace";
import { agentConnectionOf, SERVICE_TOKEN_PATH, viaHostPort, TracedService } from "./components/traced-service";

const config = loadConfig();
const { environment: env, globalTags } = config;

const cluster = new EksCluster("eks", { clusterName: config.cluster.name, region: config.cluster.region });
const k8s = { provider: cluster.provider };

// With deployAgent false the cluster's own Agent (Helm chart or Operator) takes the traces.
const agent = config.datadog.deployAgent
  ? new DatadogAgent(
      "datadog-agent",
      {
        namespace: config.datadog.namespace,
        clusterName: config.cluster.name,
        site: config.datadog.site,
        env,
        globalTags,
        image: config.datadog.agentImage,
        apiKey: config.secrets.datadogApiKey,
        checksumKey: config.secrets.rolloutChecksumKey,
        apm: config.datadog.apm,
        kubeletTlsVerify: config.datadog.kubeletTlsVerify,
        tolerations: config.datadog.tolerations,
        agentResources: config.datadog.agentResources,
        traceAgentResources: config.datadog.traceAgentResources,
        samplers: agentSamplers(config.sampling),
        priorityClass: config.datadog.priorityClass,
        criSocketPath: config.datadog.criSocketPath,
        useHostnameFromFile: config.datadog.useHostnameFromFile,
      },
      k8s,
    )
  : undefined;
const afterAgent = agent ? [agent] : [];

const namespace = new ServiceNamespace(
  "payments",
  { name: config.services.namespace, enforceRestricted: config.services.enforceRestricted },
  k8s,
);
// Pod Security restricted forbids the socket's hostPath: the hostPort then (config.ts checks there is one).
const agentConnection = config.services.enforceRestricted ? viaHostPort(agentConnectionOf(config.datadog)) : agentConnectionOf(config.datadog);
const common = {
  namespace: namespace.name,
  env,
  globalTags,
  sampling: config.sampling,
  agent: agentConnection,
};

// rediss:// with the AUTH token when redis.tls; the HMAC key of the key names either way.
const redisUrl = `${config.redis.tls ? "rediss" : "redis"}://${config.redis.host}:${config.redis.port}`;
const redisSecretEnv = {
  // Keys the velocity and device key names: reading Redis tells no sender's keys.
  REDIS_KEY_SECRET: config.secrets.redisKeySecret,
  ...(config.redis.tls && config.secrets.redisAuthToken ? { REDIS_PASSWORD: config.secrets.redisAuthToken } : {}),
};

const fraud = new TracedService(
  "fraud-service",
  {
    ...common,
    service: SERVICES.fraud,
    ...config.services.fraud,
    appEnv: {
      REDIS_URL: redisUrl,
      // Only payment-service may call it, proven by its ServiceAccount token.
      ...serviceAuthEnv({ issuer: cluster.oidcIssuer, audience: SERVICES.fraud, namespace: config.services.namespace, callers: [SERVICES.payment] }),
    },
    secretEnv: redisSecretEnv,
    checksumKey: config.secrets.rolloutChecksumKey,
  },
  { ...k8s, dependsOn: afterAgent },
);

// The ledger schema, applied before payment-service rolls: a failed migration fails the up here.
const migrations = new LedgerMigrations(
  "ledger-migrations",
  {
    namespace: namespace.name,
    image: config.services.payment.image,
    version: config.services.payment.version,
    env,
    globalTags,
    agent: common.agent,
    database: {
      host: config.database.host,
      port: config.database.port,
      name: config.database.name,
      migrationUser: config.database.migrationUser,
      runtimeUser: config.database.user,
      workerUser: config.database.workerUser,
    },
    caBundle: config.database.caBundle,
    migrationPassword: config.secrets.databaseMigrationPassword,
    backoffLimit: config.database.migrations.backoffLimit,
    activeDeadlineSeconds: config.database.migrations.activeDeadlineSeconds,
  },
  { ...k8s, dependsOn: afterAgent },
);

const payment = new TracedService(
  "payment-service",
  {
    ...common,
    service: SERVICES.payment,
    ...config.services.payment,
    appEnv: {
      PGHOST: config.database.host,
      PGPORT: String(config.database.port),
      PGDATABASE: config.database.name,
      PGUSER: config.database.user,
      PG_POOL_MAX: String(config.database.poolMax),
      // TLS only, the certificate checked against the CA bundle and the host name.
      PGSSLMODE: "verify-full",
      PGSSLROOTCERT: `${LEDGER_CA_DIR}/${LEDGER_CA_FILE}`,
      FRAUD_SERVICE_URL: `http://${SERVICES.fraud}.${config.services.namespace}.svc.cluster.local`,
      FRAUD_TIMEOUT_MS: String(config.services.fraudTimeoutMs),
      ...userAuthEnv(config.auth),
      ...paymentPolicyEnv(config.payments),
      SERVICE_TOKEN_FILE: SERVICE_TOKEN_PATH,
    },
    serviceTokenAudience: SERVICES.fraud,
    secretEnv: { PGPASSWORD: config.secrets.databasePassword },
    configFiles: [{ name: "ledger-ca", mountPath: LEDGER_CA_DIR, data: { [LEDGER_CA_FILE]: config.database.caBundle } }],
    checksumKey: config.secrets.rolloutChecksumKey,
  },
  { ...k8s, dependsOn: [...afterAgent, migrations] },
);

// Post-processing: the outbox relay publishes payment events to RabbitMQ, the consumers
// write receipts and the fraud history. Workers: no port, no Service.
const broker = config.broker;
const brokerEnv = {
  BROKER_HOST: broker.host,
  BROKER_PORT: String(broker.port),
  BROKER_VHOST: broker.vhost,
  BROKER_USER: broker.user,
  BROKER_TLS: String(broker.tls),
  BROKER_EXCHANGE: broker.exchange,
};
// The workers' own role: granted only outbox and receipts (app/migrations/010_worker_role_grants.sql).
const ledgerEnv = {
  PGHOST: config.database.host,
  PGPORT: String(config.database.port),
  PGDATABASE: config.database.name,
  PGUSER: config.database.workerUser,
  // TLS only, the certificate checked against the CA bundle and the host name.
  PGSSLMODE: "verify-full",
  PGSSLROOTCERT: `${LEDGER_CA_DIR}/${LEDGER_CA_FILE}`,
};
const ledgerCaFiles = [{ name: "ledger-ca", mountPath: LEDGER_CA_DIR, data: { [LEDGER_CA_FILE]: config.database.caBundle } }];
const relay = new TracedService(
  "outbox-relay",
  {
    ...common,
    service: SERVICES.relay,
    ...config.services.relay,
    listens: false,
    appEnv: { ...brokerEnv, ...ledgerEnv, RELAY_RETENTION_SECONDS: String(broker.outboxRetentionHours * 3600) },
    secretEnv: { PGPASSWORD: config.secrets.databaseWorkerPassword, BROKER_PASSWORD: config.secrets.brokerPassword },
    configFiles: ledgerCaFiles,
    checksumKey: config.secrets.rolloutChecksumKey,
  },
  { ...k8s, dependsOn: afterAgent },
);
const postProcessing = new TracedService(
  "post-processing",
  {
    ...common,
    service: SERVICES.postProcessing,
    ...config.services.postProcessing,
    listens: false,
    appEnv: { ...brokerEnv, ...ledgerEnv, REDIS_URL: redisUrl },
    // The fraud history it writes is keyed like the one fraud-service reads.
    secretEnv: { PGPASSWORD: config.secrets.databaseWorkerPassword, BROKER_PASSWORD: config.secrets.brokerPassword, ...redisSecretEnv },
    configFiles: ledgerCaFiles,
    checksumKey: config.secrets.rolloutChecksumKey,
  },
  { ...k8s, dependsOn: afterAgent },
);

// Only the flows of the payment path and post-processing: default deny, then each workload's own calls.
const networkSettings = {
  paymentIngressFrom: config.network.paymentIngressFrom,
  database: { cidrs: config.network.databaseCidrs, port: config.database.port },
  redis: { cidrs: config.network.redisCidrs, port: config.redis.port },
  broker: { cidrs: config.network.brokerCidrs, port: config.broker.port },
  jwksCidrs: config.network.jwksCidrs,
  nodeCidrs: config.network.nodeCidrs,
  agentHostPort: agentConnection.socketEnabled ? undefined : agentConnection.port,
  agentPods: config.datadog.deployAgent ? agentPodSelector(config.datadog.namespace) : undefined,
};
new NetworkPolicies(
  "network-policies",
  {
    namespace: namespace.name,
    namespaceName: config.services.namespace,
    clusterEnforces: config.network.clusterEnforces,
    workloads: [
      ...paymentPathWorkloads(SERVICES, networkSettings),
      ...postProcessingWorkloads(SERVICES, networkSettings),
      databaseClientWorkload(MIGRATIONS_SERVICE, networkSettings),
    ],
  },
  k8s,
);

const retention = new TraceRetention("trace-retention", { policy: config.sampling, env, services: [SERVICES.payment, SERVICES.fraud, SERVICES.relay, SERVICES.postProcessing] });

const monitors = new ApmMonitors("apm-monitors", {
  env,
  thresholds: config.monitors,
  notify: config.monitors.notify,
});

export const datadogNamespace = agent?.namespace;
export const servicesNamespace = namespace.name;
export const services = { payment: payment.serviceName, fraud: fraud.serviceName };
export const workers = { relay: relay.deploymentName, postProcessing: postProcessing.deploymentName };
export const fraudServiceUrl = fraud.url;
export const ledgerMigrationJob = migrations.jobName;
export const monitorIds = monitors.monitorIds;
export const retentionFilterIds = retention.filterIds;

// Payment SLOs and the flow's dashboard, after the monitors they complement.
const slos = new ApmSlos("apm-slos", {
  env,
  settings: config.slos,
  latencyThresholdSeconds: config.monitors.paymentLatencyP95Seconds,
});
const dashboard = new ApmDashboard("apm-dashboard", {
  env,
  thresholds: config.monitors,
  slos: slos.objectives.map((o) => ({ title: o.name, id: o.id, timeframe: o.timeframe })),
});

export const sloIds = slos.sloIds;
export const dashboardId = dashboard.dashboardId;
export const dashboardUrl = dashboard.dashboardUrl;
