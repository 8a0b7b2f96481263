import * as assert from "node:assert/strict";
import { DEFAULT_PORT, ROUTES, SERVICES, TAGS } from "../app/src/tracing/conventions";
import { parseStackSettings } from "../components/config";
import { podSecurityLabels } from "../components/service-namespace";
import { validateKubernetesObject } from "../scripts/k8s-schema";
import { datadogObjects, deploymentEnv, kubernetesObjects, type KubernetesObject } from "../scripts/manifests";
import { runStack, type ProgramRun } from "../scripts/mock-engine";
import { rawSettings } from "./support/stack-settings";

const SENTINELS = {
  "datadog:apiKey": "dd-api-key-sentinel-0123456789abcdef",
  "datadog:appKey": "dd-app-key-sentinel-fedcba9876543210",
  "payments-apm:databasePassword": "db-password-sentinel-s3cr3t",
  "payments-apm:databaseMigrationPassword": "db-migration-password-sentinel-9q",
  "payments-apm:databaseWorkerPassword": "db-worker-password-sentinel-w0",
  "payments-apm:brokerPassword": "broker-password-sentinel-4mqp",
};

const runs: Record<string, ProgramRun> = {};
const objects = (stack: string) => kubernetesObjects(runs[stack]).map((o) => o.object);
const find = (stack: string, kind: string, name: string): KubernetesObject => {
  const o = objects(stack).find((x) => x.kind === kind && x.metadata.name === name);
  assert.ok(o, `${stack} renders no ${kind} ${name}`);
  return o;
};
const container = (o: KubernetesObject, name: string) => ((o.spec as any).template.spec.containers as any[]).find((c) => c.name === name);
const envOf = (o: KubernetesObject, name: string) => Object.fromEntries(deploymentEnv(o)[name].map((e) => [e.name, e.value ?? e.valueFrom]));

describe("the program (index.ts) under the mock engine", () => {
  before(async function () {
    this.timeout(60_000);
    for (const stack of ["prod", "staging"]) runs[stack] = await runStack(stack, { secrets: SENTINELS });
  });

  for (const stack of ["prod", "staging"]) {
    describe(`stack ${stack}`, () => {
      it("registers the Agent, both services, the outbox relay and consumers, the monitors and the retention filters", () => {
        const count = (type: string) => runs[stack].resources.filter((r) => r.type === type).length;
        assert.deepEqual(
          {
            namespaces: count("kubernetes:core/v1:Namespace"),
            daemonSets: count("kubernetes:apps/v1:DaemonSet"),
            deployments: count("kubernetes:apps/v1:Deployment"),
            services: count("kubernetes:core/v1:Service"),
            pdbs: count("kubernetes:policy/v1:PodDisruptionBudget"),
            monitors: count("datadog:index/monitor:Monitor"),
            retentionFilters: count("datadog:index/apmRetentionFilter:ApmRetentionFilter"),
            k8sProviders: count("pulumi:providers:kubernetes"),
          },
          // The relay and the consumers serve nothing: Deployments and budgets, no Service.
          { namespaces: 2, daemonSets: 1, deployments: 4, services: 2, pdbs: 4, monitors: 4, retentionFilters: 2, k8sProviders: 1 },
        );
      });

      it("looks up the existing EKS cluster named in config", () => {
        const lookups = runs[stack].invokes.filter((i) => i.token === "aws:eks/getCluster:getCluster");
        assert.deepEqual(lookups.map((l) => [l.inputs.name, l.inputs.region]), [[`payments-${stack}`, "us-east-1"]]);
      });

      it("builds the Kubernetes provider from the cluster with `aws eks get-token` exec auth", () => {
        const provider = runs[stack].resources.find((r) => r.type === "pulumi:providers:kubernetes")!;
        const kubeconfig = JSON.parse(provider.inputs.kubeconfig);
        assert.equal(kubeconfig.clusters[0].cluster.server, `https://MOCKED-ENDPOINT.payments-${stack}.eks.amazonaws.com`);
        assert.ok(kubeconfig.clusters[0].cluster["certificate-authority-data"]);
        const exec = kubeconfig.users[0].user.exec;
        assert.equal(exec.command, "aws");
        assert.deepEqual(exec.args, ["eks", "get-token", "--cluster-name", `payments-${stack}`, "--region", "us-east-1", "--output", "json"]);
      });

      it("creates every Kubernetes object with the cluster's provider", () => {
        const k8sResources = runs[stack].resources.filter((r) => r.type.startsWith("kubernetes:"));
        assert.ok(k8sResources.length >= 10);
        for (const r of k8sResources) assert.match(r.provider ?? "", /pulumi:providers:kubernetes::eks-k8s::/, `${r.type} ${r.name}`);
      });

      it("renders only Kubernetes objects that validate against the Kubernetes schemas", () => {
        const problems = objects(stack).flatMap((o) => validateKubernetesObject(o));
        assert.deepEqual(problems, []);
      });

      it("keeps the secrets out of every input but their own Secret's data, marked secret there", () => {
        const placesOf = (value: string) =>
          runs[stack].resources.flatMap((r) => (JSON.stringify(r.inputs).includes(value) ? [`${r.type}::${r.name}`] : []));
        assert.deepEqual(placesOf(SENTINELS["datadog:apiKey"]), ["kubernetes:core/v1:Secret::datadog-agent-api-key"]);
        assert.deepEqual(placesOf(SENTINELS["payments-apm:databasePassword"]), ["kubernetes:core/v1:Secret::payment-service-secrets"]);
        // The workers' own role: its password in their Secrets, the services' one not.
        assert.deepEqual(placesOf(SENTINELS["payments-apm:databaseWorkerPassword"]).sort(), [
          "kubernetes:core/v1:Secret::outbox-relay-secrets",
          "kubernetes:core/v1:Secret::post-processing-secrets",
        ]);
        assert.deepEqual(placesOf(SENTINELS["payments-apm:brokerPassword"]).sort(), [
          "kubernetes:core/v1:Secret::outbox-relay-secrets",
          "kubernetes:core/v1:Secret::post-processing-secrets",
        ]);
        assert.deepEqual(placesOf(SENTINELS["payments-apm:databaseMigrationPassword"]), ["kubernetes:core/v1:Secret::ledger-migrations-secrets"]);
        assert.deepEqual(placesOf(SENTINELS["datadog:appKey"]), []);
        for (const r of runs[stack].resources.filter((x) => x.type === "kubernetes:core/v1:Secret")) assert.ok(r.secretPaths.length > 0, `${r.name} data is secret`);
        const outputs = JSON.stringify(runs[stack].outputs);
        for (const s of Object.values(SENTINELS)) assert.ok(!outputs.includes(s), "no secret in the stack outputs");
      });

      for (const service of [SERVICES.payment, SERVICES.fraud]) {
        it(`deploys ${service} with unified service tagging from labels`, () => {
          const d = find(stack, "Deployment", service);
          const expected = { "tags.datadoghq.com/env": stack, "tags.datadoghq.com/service": service, "tags.datadoghq.com/version": "1.4.2" };
          for (const labels of [d.metadata.labels, (d.spec as any).template.metadata.labels]) {
            for (const [k, v] of Object.entries(expected)) assert.equal((labels as any)[k], v, k);
          }
          const env = envOf(d, service);
          assert.deepEqual(env.DD_ENV, { fieldRef: { fieldPath: "metadata.labels['tags.datadoghq.com/env']" } });
          assert.deepEqual(env.DD_SERVICE, { fieldRef: { fieldPath: "metadata.labels['tags.datadoghq.com/service']" } });
          assert.deepEqual(env.DD_VERSION, { fieldRef: { fieldPath: "metadata.labels['tags.datadoghq.com/version']" } });
          assert.equal(env.DD_TAGS, `cluster:payments-${stack},region:us-east-1,deployment:payments-${stack}-use1`);
          assert.equal(env.DD_LOGS_INJECTION, "true");
          assert.equal(env.DD_RUNTIME_METRICS_ENABLED, "true");
          assert.equal(env.DD_TRACE_PROPAGATION_STYLE, "datadog,tracecontext");
          assert.equal(env.DD_TRACE_SAMPLE_RATE, stack === "prod" ? "0.1" : "0.5");
          assert.ok(JSON.parse(env.DD_TRACE_SAMPLING_RULES as string).length > 0);
          assert.equal(env.DD_TRACE_RATE_LIMIT, "500");
        });

        it(`renders ${service} a query-string obfuscation that hides every parameter, card data and secrets included`, () => {
          const regexp = envOf(find(stack, "Deployment", service), service).DD_TRACE_OBFUSCATION_QUERY_STRING_REGEXP as string;
          // dd-trace (plugins/util/url.js obfuscateQs): the query after '?' is
          // qs.replace(new RegExp(value, "gi"), "<redacted>"); '.*' and '' are special cases.
          assert.ok(regexp !== ".*" && regexp !== "", "a regular expression, not a special value");
          const obfuscate = (qs: string) => qs.replace(new RegExp(regexp, "gi"), "<redacted>");
          const pan = "4916338506082832";
          const cvv = "8305";
          for (const name of ["card_number", "cardNumber", "PAN", "cvv", "CVC", "cvv2", "token", "access_token", "password", "secret", "client_secret"]) {
            for (const value of [pan, cvv, "4916%203385%200608%202832", "s3cr3t-value"]) {
              const out = obfuscate(`a=1&${name}=${value}&b=2`);
              assert.equal(out, "<redacted>&<redacted>&<redacted>", `${name}=${value}`);
            }
          }
          assert.equal(obfuscate(`${pan}&${cvv}`), "<redacted>&<redacted>", "bare values without a name");
        });

        it(`leaves ${service}'s always-keep peak its share of DD_TRACE_RATE_LIMIT whatever the other traffic`, () => {
          const env = envOf(find(stack, "Deployment", service), service);
          const { alwaysKeep, alwaysKeepPeakPerSecond } = parseStackSettings(rawSettings(stack)).sampling;
          const rules: { name?: string; tags?: Record<string, string>; sample_rate: number; max_per_second?: number }[] = JSON.parse(env.DD_TRACE_SAMPLING_RULES as string);
          const sampled = rules.filter((r) => !r.tags?.[TAGS.flow] && !r.tags?.[TAGS.rootAuth] && !alwaysKeep.includes(r.name ?? ""));
          assert.ok(sampled.length > 0 && sampled.every((r) => r.max_per_second! > 0), "every sampled rule has a cap");
          const othersAtMost = sampled.filter((r) => r.sample_rate > 0).reduce((sum, r) => sum + r.max_per_second!, 0);
          const left = Number(env.DD_TRACE_RATE_LIMIT) - othersAtMost;
          assert.ok(left >= alwaysKeepPeakPerSecond, `DD_TRACE_RATE_LIMIT leaves ${left}/s, the always-keep peak is ${alwaysKeepPeakPerSecond}/s`);
        });

        it(`runs ${service} non-root on a read-only root filesystem with probes on its health routes`, () => {
          const d = find(stack, "Deployment", service);
          const c = container(d, service);
          assert.deepEqual(c.securityContext, { runAsNonRoot: true, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, privileged: false, capabilities: { drop: ["ALL"] } });
          assert.equal((d.spec as any).template.spec.securityContext.runAsNonRoot, true);
          assert.equal(c.readinessProbe.httpGet.path, ROUTES.readiness);
          assert.equal(c.livenessProbe.httpGet.path, ROUTES.liveness);
          assert.deepEqual(c.ports, [{ name: "http", containerPort: DEFAULT_PORT, protocol: "TCP" }]);
          assert.ok(c.resources.requests.cpu && c.resources.requests.memory && c.resources.limits.memory);
          assert.match(c.image, /^123456789012\.dkr\.ecr\.us-east-1\.amazonaws\.com\/.+:1\.4\.2$/);
          const svc = find(stack, "Service", service);
          assert.deepEqual((svc.spec as any).selector, (d.spec as any).selector.matchLabels);
          const pdb = find(stack, "PodDisruptionBudget", service);
          assert.ok((pdb.spec as any).minAvailable < (d.spec as any).replicas);
        });
      }

      it("points the payment service at the fraud service, the ledger and its password Secret", () => {
        const env = envOf(find(stack, "Deployment", SERVICES.payment), SERVICES.payment);
        assert.equal(env.FRAUD_SERVICE_URL, "http://fraud-service.payments.svc.cluster.local");
        assert.equal(env.FRAUD_TIMEOUT_MS, "800");
        assert.deepEqual(env.PGPASSWORD, { secretKeyRef: { name: "payment-service-secrets", key: "PGPASSWORD" } });
        assert.equal(env.PGDATABASE, "payments");
        const fraudEnv = envOf(find(stack, "Deployment", SERVICES.fraud), SERVICES.fraud);
        assert.match(fraudEnv.REDIS_URL as string, /^rediss:\/\/payments-velocity\..+:6379$/);
      });

      it("gives each service its own ServiceAccount, no API token, and payment-service a 1 h token for fraud-service", () => {
        for (const service of [SERVICES.payment, SERVICES.fraud]) {
          const account = find(stack, "ServiceAccount", service);
          assert.equal((account as any).automountServiceAccountToken, false);
          assert.equal(account.metadata.namespace, "payments");
          const pod = (find(stack, "Deployment", service).spec as any).template.spec;
          assert.equal(pod.serviceAccountName, service);
          assert.equal(pod.automountServiceAccountToken, false);
        }
        const pod = (find(stack, "Deployment", SERVICES.payment).spec as any).template.spec;
        const volume = pod.volumes.find((v: any) => v.projected);
        assert.deepEqual(volume.projected.sources, [
          { serviceAccountToken: { audience: "fraud-service", expirationSeconds: 3600, path: "token" } },
        ]);
        const mount = container(find(stack, "Deployment", SERVICES.payment), SERVICES.payment).volumeMounts.find((m: any) => m.name === volume.name);
        assert.equal(mount.readOnly, true);
        const env = envOf(find(stack, "Deployment", SERVICES.payment), SERVICES.payment);
        assert.equal(env.SERVICE_TOKEN_FILE, `${mount.mountPath}/token`);
        const fraudPod = (find(stack, "Deployment", SERVICES.fraud).spec as any).template.spec;
        assert.ok(!fraudPod.volumes.some((v: any) => v.projected), "fraud-service calls nobody: no token");
      });

      it("has fraud-service trust only payment-service's tokens from the cluster's OIDC issuer", () => {
        const env = envOf(find(stack, "Deployment", SERVICES.fraud), SERVICES.fraud);
        const name = stack === "prod" ? "PAYMENTSPROD" : "PAYMENTSSTAGING";
        assert.equal(env.SERVICE_AUTH_ISSUER, `https://oidc.eks.us-east-1.amazonaws.com/id/MOCKED${name}`);
        assert.equal(env.SERVICE_AUTH_JWKS_URL, `${env.SERVICE_AUTH_ISSUER}/keys`);
        assert.equal(env.SERVICE_AUTH_AUDIENCE, "fraud-service");
        assert.equal(env.SERVICE_AUTH_SUBJECTS, "system:serviceaccount:payments:payment-service");
      });

      it("gives the payment service its callers' identity provider from payments-apm:auth", () => {
        const env = envOf(find(stack, "Deployment", SERVICES.payment), SERVICES.payment);
        const host = stack === "prod" ? "login.payments.example.com" : "login.staging.payments.example.com";
        assert.equal(env.AUTH_ISSUER, `https://${host}/`);
        assert.equal(env.AUTH_JWKS_URL, `https://${host}/.well-known/jwks.json`);
        assert.match(env.AUTH_AUDIENCE as string, /^https:\/\/api\.(staging\.)?payments\.example\.com$/);
        assert.equal(env.AUTH_CLOCK_TOLERANCE_SECONDS, "30");
        assert.equal(env.IDEMPOTENCY_WINDOW_SECONDS, "86400", "keys kept 24 h by default");
        assert.equal(env.RATE_LIMIT_PER_MINUTE, "60");
        assert.equal(env.RATE_LIMIT_BURST, "10");
        const fraudEnv = envOf(find(stack, "Deployment", SERVICES.fraud), SERVICES.fraud);
        assert.equal(fraudEnv.AUTH_ISSUER, undefined, "fraud-service does not take user tokens");
      });

      it("creates the monitors with notification handles, env/service tags and thresholds equal to the query", () => {
        const monitors = datadogObjects(runs[stack]).filter((d) => d.kind === "Monitor");
        for (const m of monitors) {
          const i = m.inputs as any;
          assert.equal(i.type, "query alert");
          assert.ok(i.query.includes(`env:${stack}`), i.query);
          assert.ok(i.query.endsWith(` > ${i.monitorThresholds.critical}`), i.query);
          const service = /service:([\w-]+)/.exec(i.query)![1];
          assert.ok(i.tags.includes(`env:${stack}`) && i.tags.includes(`service:${service}`) && i.tags.includes("source:apm"), i.tags);
          assert.match(i.message, /@slack-payments/);
        }
      });

      it("exports the namespaces, service names and monitor ids", () => {
        const o = runs[stack].outputs as any;
        assert.equal(o.datadogNamespace, "datadog");
        assert.equal(o.servicesNamespace, "payments");
        assert.deepEqual(o.services, { payment: "payment-service", fraud: "fraud-service" });
        assert.deepEqual(o.workers, { relay: "outbox-relay", postProcessing: "post-processing" });
        assert.deepEqual(Object.keys(o.monitorIds).sort(), ["database-latency", "payment-error-rate", "payment-latency", "post-processing-lag"]);
      });

      for (const worker of [SERVICES.relay, SERVICES.postProcessing]) {
        it(`deploys ${worker} as a worker: traced like the services, no port, no probes, no Service`, () => {
          const d = find(stack, "Deployment", worker);
          const c = container(d, worker);
          assert.equal(c.ports, undefined);
          assert.equal(c.readinessProbe, undefined);
          assert.equal(c.livenessProbe, undefined);
          assert.ok(!objects(stack).some((o) => o.kind === "Service" && o.metadata.name === worker), `no Service ${worker}`);
          assert.deepEqual(c.securityContext, { runAsNonRoot: true, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, privileged: false, capabilities: { drop: ["ALL"] } });
          assert.match(c.image, new RegExp(`^123456789012\\.dkr\\.ecr\\.us-east-1\\.amazonaws\\.com/${worker}:1\\.4\\.2$`));
          const env = envOf(d, worker);
          assert.equal(env.PORT, undefined);
          assert.deepEqual(env.DD_SERVICE, { fieldRef: { fieldPath: "metadata.labels['tags.datadoghq.com/service']" } });
          assert.equal((d.metadata.labels as any)["tags.datadoghq.com/service"], worker);
          assert.match(env.BROKER_HOST as string, /^b-[0-9a-f-]+\.mq\.us-east-1\.amazonaws\.com$/);
          assert.equal(env.BROKER_PORT, "5671");
          assert.equal(env.BROKER_TLS, "true", "amqps:// to Amazon MQ");
          assert.equal(env.BROKER_USER, "payments");
          assert.equal(env.BROKER_EXCHANGE, "payments.events");
          assert.deepEqual(env.BROKER_PASSWORD, { secretKeyRef: { name: `${worker}-secrets`, key: "BROKER_PASSWORD" } });
          assert.deepEqual(env.PGPASSWORD, { secretKeyRef: { name: `${worker}-secrets`, key: "PGPASSWORD" } });
          assert.equal(env.PGDATABASE, "payments");
          const secret = find(stack, "Secret", `${worker}-secrets`) as any;
          // The consumers write the fraud history: keyed and authenticated like fraud-service's.
          const redisSecrets = worker === SERVICES.postProcessing ? ["REDIS_KEY_SECRET", "REDIS_PASSWORD"] : [];
          assert.deepEqual(Object.keys(secret.stringData).sort(), ["BROKER_PASSWORD", "PGPASSWORD", ...redisSecrets]);
          assert.equal(env.PGSSLMODE, "verify-full", "TLS to the ledger database, like payment-service");
          assert.equal(env.PGSSLROOTCERT, "/etc/payments/ledger-ca/ca.pem");
          const pod = (d.spec as any).template;
          assert.deepEqual(c.volumeMounts.find((m: any) => m.name === "ledger-ca"), { name: "ledger-ca", mountPath: "/etc/payments/ledger-ca", readOnly: true });
          assert.deepEqual(pod.spec.volumes.find((v: any) => v.name === "ledger-ca")?.configMap?.name, `${worker}-ledger-ca`);
          // Their own role, not payment-service's: granted only outbox and receipts.
          assert.equal(env.PGUSER, "payments_worker");
          assert.notEqual(env.PGUSER, envOf(find(stack, "Deployment", SERVICES.payment), SERVICES.payment).PGUSER);
          assert.match(pod.metadata.annotations[`checksum/${worker}-secrets`], /^[0-9a-f]{64}$/, "a new worker password rolls the pods");
        });
      }

      it("keeps published outbox events for the configured retention and gives the consumers the fraud history's Redis", () => {
        const relay = envOf(find(stack, "Deployment", SERVICES.relay), SERVICES.relay);
        assert.equal(relay.RELAY_RETENTION_SECONDS, String(168 * 3600));
        assert.equal(relay.BROKER_VHOST, stack === "prod" ? "payments" : "/");
        const consumers = envOf(find(stack, "Deployment", SERVICES.postProcessing), SERVICES.postProcessing);
        const fraud = envOf(find(stack, "Deployment", SERVICES.fraud), SERVICES.fraud);
        assert.equal(consumers.REDIS_URL, fraud.REDIS_URL);
      });
    });
  }

  it("reaches the trace-agent through its hostPort in prod, where the Agent also serves the socket: restricted pods mount no hostPath", () => {
    for (const service of [SERVICES.payment, SERVICES.fraud]) {
      const env = envOf(find("prod", "Deployment", service), service);
      assert.deepEqual(env.DD_AGENT_HOST, { fieldRef: { fieldPath: "status.hostIP" } });
      assert.equal(env.DD_TRACE_AGENT_URL, undefined);
      const pod = (find("prod", "Deployment", service).spec as any).template.spec;
      assert.ok(!pod.volumes.some((v: any) => v.hostPath), `${service} mounts no host directory`);
    }
    const ds = objects("prod").find((o) => o.kind === "DaemonSet")!;
    const ports = ((ds.spec as any).template.spec.containers as any[]).flatMap((c) => c.ports ?? []);
    assert.ok(ports.some((p) => p.hostPort === 8126), "hostPort 8126 on the trace-agent");
    const agentEnv = Object.fromEntries(deploymentEnv(ds)["trace-agent"].map((e) => [e.name, e.value]));
    assert.equal(agentEnv.DD_APM_RECEIVER_SOCKET, "/var/run/datadog/apm.socket", "the socket stays on for other namespaces");
  });

  it("enforces Pod Security restricted on the services namespace, and only warns when told not to", () => {
    for (const stack of ["prod", "staging"]) {
      const ns = find(stack, "Namespace", "payments") as { metadata: { labels?: Record<string, string> } };
      assert.equal(ns.metadata.labels?.["pod-security.kubernetes.io/enforce"], "restricted", stack);
      assert.equal(ns.metadata.labels?.["pod-security.kubernetes.io/enforce-version"], "v1.33", stack);
    }
    assert.deepEqual(podSecurityLabels(false), {
      "pod-security.kubernetes.io/audit": "restricted",
      "pod-security.kubernetes.io/warn": "restricted",
    });
  });

  it("reaches the trace-agent through hostPort 8126 on the node's IP in staging (port only)", () => {
    const env = envOf(find("staging", "Deployment", SERVICES.payment), SERVICES.payment);
    assert.deepEqual(env.DD_AGENT_HOST, { fieldRef: { fieldPath: "status.hostIP" } });
    assert.equal(env.DD_TRACE_AGENT_PORT, "8126");
    assert.equal(env.DD_TRACE_AGENT_URL, undefined);
    const ds = objects("staging").find((o) => o.kind === "DaemonSet")!;
    const ports = ((ds.spec as any).template.spec.containers as any[]).flatMap((c) => c.ports ?? []);
    assert.ok(ports.some((p) => p.hostPort === 8126), "hostPort 8126 on the trace-agent");
  });
});
