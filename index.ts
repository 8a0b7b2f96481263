/**
 * payments-apm: Datadog distributed tracing for the payments system on Amazon EKS.
 * cluster → Datadog Agent → ledger migrations → payment-service + fraud-service → sampling → monitors → SLOs, dashboard.
 */
import { MIGRATIONS_SERVICE, SERVICES } from "./app/src/tracing/conventions";
import { ApmDashboard } from "./components/apm-dashboard";
import { ApmMonitors } from "./components/apm-monitors";
import { ApmSlos } from "./components/apm-slos";
import { EksCluster } from "./components/cluster";
import { loadConfig } from "./components/config";
import { DatadogAgent } from "./components/datadog-agent";
import { LedgerMigrations } from "./components/ledger-migrations";
import { agentSamplers, TraceRetention } from "./components/sampling";
import { agentPodSelector, databaseClientWorkload, NetworkPolicies, paymentPathWorkloads } from "./components/network-policies";
import { ServiceNamespace } from "./components/service-namespace";
import { agentConnectionOf, viaHostPort, TracedService } from "./components/traced-service";

const config = loadConfig();
/** Where payment-service finds the database's CA bundle (a read-only ConfigMap volume). */
const LEDGER_CA_DIR = "/etc/payments/ledger-ca";
const LEDGER_CA_FILE = "ca.pem";
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

const fraud = new TracedService(
  "fraud-service",
  {
    ...common,
    service: SERVICES.fraud,
    ...config.services.fraud,
    appEnv: { REDIS_URL: `${config.redis.tls ? "rediss" : "redis"}://${config.redis.host}:${config.redis.port}` },
    secretEnv: {
      // Keys the velocity and device key names: reading Redis tells no sender's keys.
      REDIS_KEY_SECRET: config.secrets.redisKeySecret,
      ...(config.redis.tls && config.secrets.redisAuthToken ? { REDIS_PASSWORD: config.secrets.redisAuthToken } : {}),
    },
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
    },
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
    },
    secretEnv: { PGPASSWORD: config.secrets.databasePassword },
    configFiles: [{ name: "ledger-ca", mountPath: LEDGER_CA_DIR, data: { [LEDGER_CA_FILE]: config.database.caBundle } }],
    checksumKey: config.secrets.rolloutChecksumKey,
  },
  { ...k8s, dependsOn: [...afterAgent, migrations] },
);

// Only the flows of the payment path: default deny, then each workload's own calls.
const networkSettings = {
  paymentIngressFrom: config.network.paymentIngressFrom,
  database: { cidrs: config.network.databaseCidrs, port: config.database.port },
  redis: { cidrs: config.network.redisCidrs, port: config.redis.port },
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
    workloads: [...paymentPathWorkloads(SERVICES, networkSettings), databaseClientWorkload(MIGRATIONS_SERVICE, networkSettings)],
  },
  k8s,
);

const retention = new TraceRetention("trace-retention", { policy: config.sampling, env, services: [SERVICES.payment, SERVICES.fraud] });

const monitors = new ApmMonitors("apm-monitors", {
  env,
  thresholds: config.monitors,
  notify: config.monitors.notify,
});

export const datadogNamespace = agent?.namespace;
export const servicesNamespace = namespace.name;
export const services = { payment: payment.serviceName, fraud: fraud.serviceName };
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
