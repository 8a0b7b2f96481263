import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import * as yaml from "js-yaml";
import type { ResourceValidationPolicy, StackValidationPolicy } from "@pulumi/policy";
import {
  appContainersNonRootReadOnly,
  containerImagesPinned,
  datadogAgentToleratesNodeTaints,
  datadogKeysNotInConfigMaps,
  datadogKeysNotInEnvLiterals,
  datadogKeysNotInStackOutputs,
  deploymentTraceAgentAddress,
  deploymentUnifiedServiceTagging,
  monitorHasEnvAndServiceTags,
  monitorHasNotificationHandle,
  policies,
} from "../policy/policies";
import { REPO_ROOT, runStack, type ProgramRun } from "../scripts/mock-engine";
import { checkResource, checkStack, type ResourceUnderTest } from "./support/policy-harness";

// Shaped like real Datadog keys (32 and 40 hex characters), so the key detectors would fire
// if the program put them anywhere but the Agent's Secret.
const SECRETS = {
  "datadog:apiKey": "0123456789abcdef0123456789abcdef",
  "datadog:appKey": "0123456789abcdef0123456789abcdef01234567",
  "payments-apm:databasePassword": "db-password-sentinel",
};
const API_KEY = SECRETS["datadog:apiKey"];
const APP_KEY = SECRETS["datadog:appKey"];

const STACKS = ["prod", "staging"] as const;
const runs: Record<string, ProgramRun> = {};

const resourcePolicies = policies.filter((p): p is ResourceValidationPolicy => "validateResource" in p);
const stackPolicies = policies.filter((p): p is StackValidationPolicy => "validateStack" in p);

/** The pack config CI passes for a stack (`--policy-pack-config policy/config/<stack>.json`). */
const packConfig = (stack: string): Record<string, Record<string, unknown>> => JSON.parse(fs.readFileSync(path.join(REPO_ROOT, "policy", "config", `${stack}.json`), "utf8"));
const configFor = (stack: string, policy: { name: string }) => packConfig(stack)[policy.name] ?? {};

/** The stack resource as a stack policy sees it after an update: its props are the outputs. */
const stackResource = (stack: string, outputs: Record<string, unknown>): ResourceUnderTest => ({ type: "pulumi:pulumi:Stack", name: `payments-apm-${stack}`, inputs: outputs });

/** A deep copy of the `type` resource named `name` that the real program registered in `stack`. */
function registered(stack: string, type: string, name: string): ResourceUnderTest {
  const r = runs[stack].resources.find((x) => x.type === type && x.name === name);
  assert.ok(r, `${stack} registers no ${type} ${name}`);
  return { type: r.type, name: r.name, inputs: structuredClone(r.inputs) };
}
const paymentDeployment = (stack = "prod") => registered(stack, "kubernetes:apps/v1:Deployment", "payment-service-deployment");
const agentDaemonSet = (stack = "prod") => registered(stack, "kubernetes:apps/v1:DaemonSet", "datadog-agent-daemonset");
const latencyMonitor = () => registered("prod", "datadog:index/monitor:Monitor", "apm-monitors-payment-latency");
const podSpec = (r: ResourceUnderTest) => r.inputs.spec.template.spec;
const firstContainer = (r: ResourceUnderTest) => podSpec(r).containers[0];
const withoutEnv = (r: ResourceUnderTest, name: string) => {
  for (const c of podSpec(r).containers) c.env = c.env.filter((e: any) => e.name !== name);
  return r;
};

/** Asserts the policy reports exactly one violation matching `expected`, and returns it. */
async function assertOneViolation(policy: ResourceValidationPolicy, r: ResourceUnderTest, expected: RegExp, config: Record<string, unknown> = {}): Promise<string> {
  const { violations } = await checkResource(policy, r, config);
  assert.equal(violations.length, 1, `expected one violation of ${policy.name}, got ${JSON.stringify(violations, null, 2)}`);
  assert.match(violations[0], expected);
  for (const key of [API_KEY, APP_KEY]) assert.ok(!violations[0].includes(key), "a violation message must never repeat a key");
  return violations[0];
}
async function assertNoViolation(policy: ResourceValidationPolicy, r: ResourceUnderTest, config: Record<string, unknown> = {}) {
  const { violations } = await checkResource(policy, r, config);
  assert.deepEqual(violations, []);
}

describe("policy pack (policy/policies.ts)", () => {
  before(async function () {
    this.timeout(60_000);
    for (const stack of STACKS) runs[stack] = await runStack(stack, { secrets: SECRETS });
  });

  describe("the pack", () => {
    it("has unique kebab-case names, mandatory enforcement and a description for every policy", () => {
      const names = policies.map((p) => p.name);
      assert.equal(new Set(names).size, names.length);
      for (const p of policies) {
        assert.match(p.name, /^[a-z0-9]+(-[a-z0-9]+)*$/);
        assert.equal(p.enforcementLevel, "mandatory", p.name);
        assert.ok(p.description.length > 20, p.name);
      }
    });

    it("is a policy pack Pulumi can load: PulumiPolicy.yaml, a versioned package.json pinned like the root's", () => {
      const manifest = yaml.load(fs.readFileSync(path.join(REPO_ROOT, "policy", "PulumiPolicy.yaml"), "utf8")) as Record<string, unknown>;
      assert.equal(manifest.runtime, "nodejs");
      const pack = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, "policy", "package.json"), "utf8"));
      const root = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, "package.json"), "utf8"));
      assert.match(pack.version, /^\d+\.\d+\.\d+$/);
      // The pack resolves its modules from the root node_modules: same versions on both sides.
      for (const [dep, version] of Object.entries(pack.dependencies)) {
        assert.equal(version, root.dependencies[dep] ?? root.devDependencies[dep], `${dep} pinned as in the root package.json`);
      }
      const index = fs.readFileSync(path.join(REPO_ROOT, "policy", "index.ts"), "utf8");
      assert.match(index, /new PolicyPack\(/);
      assert.match(index, /from "\.\/policies"/);
    });
  });

  for (const stack of STACKS) {
    describe(`the real program, stack ${stack}`, () => {
      it("passes every resource policy, each applying to at least one registered resource", async () => {
        const problems: string[] = [];
        const applied = new Set<string>();
        for (const r of runs[stack].resources.filter((x) => x.custom)) {
          for (const policy of resourcePolicies) {
            const result = await checkResource(policy, r, configFor(stack, policy));
            if (result.applicable) applied.add(policy.name);
            problems.push(...result.violations.map((v) => `${policy.name}: ${v}`));
          }
        }
        assert.deepEqual(problems, []);
        const neverApplied = resourcePolicies.map((p) => p.name).filter((n) => !applied.has(n) && n !== datadogKeysNotInConfigMaps.name);
        assert.deepEqual(neverApplied, [], "the program registers no ConfigMap; every other policy must see a resource");
      });

      it("passes the stack policies on its outputs", async () => {
        for (const policy of stackPolicies) {
          assert.deepEqual(await checkStack(policy, [stackResource(stack, runs[stack].outputs)], configFor(stack, policy)), []);
        }
      });
    });
  }

  describe("datadog-keys-not-in-configmaps", () => {
    const configMap = (data: Record<string, string>, binaryData?: Record<string, string>): ResourceUnderTest => ({
      type: "kubernetes:core/v1:ConfigMap",
      name: "agent-config",
      inputs: { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "agent-config", namespace: "datadog" }, data, ...(binaryData ? { binaryData } : {}) },
    });

    it("accepts a ConfigMap of ordinary settings", async () => {
      await assertNoViolation(datadogKeysNotInConfigMaps, configMap({ DD_SITE: "datadoghq.com", DD_ENV: "prod", "datadog.yaml": "api_key: ${DD_API_KEY}\nsite: datadoghq.com\n" }));
      await assertNoViolation(datadogKeysNotInConfigMaps, configMap({ "datadog.yaml": "api_key:\nsite: datadoghq.com\n" }));
    });

    it("rejects an api_key assigned in a config file, whatever its shape", async () => {
      await assertOneViolation(datadogKeysNotInConfigMaps, configMap({ "datadog.yaml": "site: datadoghq.com\napp_key: \"my-app-key\"\n" }), /data\["datadog\.yaml"\].*assigns an api_key\/app_key/);
    });

    it("rejects an entry named like a Datadog key", async () => {
      const m = await assertOneViolation(datadogKeysNotInConfigMaps, configMap({ DD_API_KEY: "not-hex-but-still-a-key" }), /ConfigMap datadog\/agent-config: data\["DD_API_KEY"\]/);
      assert.match(m, /pulumi config set --secret datadog:apiKey/);
      assert.match(m, /secretKeyRef/);
    });

    it("rejects an API key embedded in a config file", async () => {
      await assertOneViolation(datadogKeysNotInConfigMaps, configMap({ "datadog.yaml": `site: datadoghq.com\napi_key: ${API_KEY}\n` }), /data\["datadog\.yaml"\].*hex string/);
    });

    it("rejects an application key in binaryData", async () => {
      await assertOneViolation(datadogKeysNotInConfigMaps, configMap({}, { blob: Buffer.from(`key=${APP_KEY}`).toString("base64") }), /binaryData\["blob"\]/);
    });
  });

  describe("datadog-keys-not-in-env-literals", () => {
    it("rejects a literal DD_API_KEY on the Agent instead of its secretKeyRef", async () => {
      const ds = agentDaemonSet();
      const env = firstContainer(ds).env.find((e: any) => e.name === "DD_API_KEY");
      delete env.valueFrom;
      env.value = API_KEY;
      await assertOneViolation(datadogKeysNotInEnvLiterals, ds, /DaemonSet datadog\/datadog-agent: containers "agent" env DD_API_KEY is a literal value\..*valueFrom\.secretKeyRef/);
    });

    it("rejects any *_APP_KEY env with a literal value, whatever it looks like", async () => {
      const d = paymentDeployment();
      firstContainer(d).env.push({ name: "DATADOG_APP_KEY", value: "anything" });
      await assertOneViolation(datadogKeysNotInEnvLiterals, d, /Deployment payments\/payment-service: containers "payment-service" env DATADOG_APP_KEY is a literal/);
    });

    it("rejects a key-shaped literal under an innocent name", async () => {
      const d = paymentDeployment();
      firstContainer(d).env.push({ name: "SOME_TOKEN", value: APP_KEY });
      await assertOneViolation(datadogKeysNotInEnvLiterals, d, /env SOME_TOKEN holds a 32- or 40-character hex literal/);
    });

    it("checks init containers too", async () => {
      const ds = agentDaemonSet();
      podSpec(ds).initContainers[0].env = [{ name: "DD_API_KEY", value: API_KEY }];
      await assertOneViolation(datadogKeysNotInEnvLiterals, ds, /initContainers "init-volume" env DD_API_KEY/);
    });
  });

  describe("datadog-keys-not-in-stack-outputs", () => {
    it("rejects an output holding a key", async () => {
      const outputs = { ...runs.prod.outputs, agent: { apiKey: API_KEY } };
      const violations = await checkStack(datadogKeysNotInStackOutputs, [stackResource("prod", outputs)]);
      assert.equal(violations.length, 1);
      assert.match(violations[0], /Stack output "agent\.apiKey" holds .*export the name of the Secret/);
      assert.ok(!violations[0].includes(API_KEY));
    });

    it("accepts Datadog object ids, which can be 32 hex characters too (SLO ids)", async () => {
      const outputs = { ...runs.prod.outputs, sloIds: { availability: API_KEY } };
      assert.deepEqual(await checkStack(datadogKeysNotInStackOutputs, [stackResource("prod", outputs)]), []);
    });
  });

  describe("deployment-unified-service-tagging", () => {
    it("rejects a container without DD_VERSION", async () => {
      await assertOneViolation(deploymentUnifiedServiceTagging, withoutEnv(paymentDeployment(), "DD_VERSION"), /container "payment-service" has no DD_VERSION env\. Set it from the pod label: valueFrom\.fieldRef\.fieldPath: metadata\.labels\['tags\.datadoghq\.com\/version'\]/);
    });

    it("rejects a pod template without the version label", async () => {
      const d = paymentDeployment();
      delete d.inputs.spec.template.metadata.labels["tags.datadoghq.com/version"];
      await assertOneViolation(deploymentUnifiedServiceTagging, d, /spec\.template\.metadata\.labels has no "tags\.datadoghq\.com\/version" label/);
    });

    it("rejects a Deployment without the env label", async () => {
      const d = paymentDeployment();
      delete d.inputs.metadata.labels["tags.datadoghq.com/env"];
      await assertOneViolation(deploymentUnifiedServiceTagging, d, /Deployment payments\/payment-service: metadata\.labels has no "tags\.datadoghq\.com\/env" label/);
    });

    it("rejects Deployment and pod labels that disagree", async () => {
      const d = paymentDeployment();
      d.inputs.metadata.labels["tags.datadoghq.com/version"] = "1.4.1";
      await assertOneViolation(deploymentUnifiedServiceTagging, d, /label "tags\.datadoghq\.com\/version" is "1\.4\.1" on the Deployment but "1\.4\.2" on the pod template/);
    });

    it("rejects a literal DD_ENV that disagrees with the pod label", async () => {
      const d = paymentDeployment();
      const env = firstContainer(d).env.find((e: any) => e.name === "DD_ENV");
      delete env.valueFrom;
      env.value = "production";
      await assertOneViolation(deploymentUnifiedServiceTagging, d, /sets DD_ENV="production" but the pod label tags\.datadoghq\.com\/env is "prod"/);
    });
  });

  describe("deployment-trace-agent-address", () => {
    it("rejects a container with no agent address", async () => {
      const d = withoutEnv(withoutEnv(paymentDeployment(), "DD_TRACE_AGENT_URL"), "DD_AGENT_HOST");
      await assertOneViolation(deploymentTraceAgentAddress, d, /has neither DD_AGENT_HOST nor DD_TRACE_AGENT_URL.*status\.hostIP/);
    });

    it("rejects a socket address without the socket directory mounted", async () => {
      // prod reaches the Agent by hostPort (Pod Security restricted): point it at the socket instead.
      const d = withoutEnv(withoutEnv(paymentDeployment(), "DD_AGENT_HOST"), "DD_TRACE_AGENT_PORT");
      firstContainer(d).env.push({ name: "DD_TRACE_AGENT_URL", value: "unix:///var/run/datadog/apm.socket" });
      assert.ok(!firstContainer(d).volumeMounts.some((m: any) => m.mountPath === "/var/run/datadog"));
      await assertOneViolation(deploymentTraceAgentAddress, d, /sends traces to \/var\/run\/datadog\/apm\.socket but mounts nothing at \/var\/run\/datadog/);
    });

    it("accepts DD_AGENT_HOST from the node's IP (staging)", async () => {
      await assertNoViolation(deploymentTraceAgentAddress, paymentDeployment("staging"));
    });
  });

  describe("container-images-pinned", () => {
    const withImage = (image: string) => {
      const d = paymentDeployment();
      firstContainer(d).image = image;
      return d;
    };

    it("rejects :latest", async () => {
      await assertOneViolation(containerImagesPinned, withImage("123456789012.dkr.ecr.us-east-1.amazonaws.com/payment-service:latest"), /uses the mutable tag latest.*Pin the image by version tag/);
    });

    it("rejects an untagged image, even behind a registry port", async () => {
      await assertOneViolation(containerImagesPinned, withImage("registry.local:5000/payment-service"), /without a tag/);
    });

    it("accepts a digest", async () => {
      await assertNoViolation(containerImagesPinned, withImage(`registry.local:5000/payment-service@sha256:${"a".repeat(64)}`));
    });

    it("checks the Agent's init containers", async () => {
      const ds = agentDaemonSet();
      podSpec(ds).initContainers[1].image = "gcr.io/datadoghq/agent";
      await assertOneViolation(containerImagesPinned, ds, /DaemonSet datadog\/datadog-agent: initContainers "init-config" uses "gcr\.io\/datadoghq\/agent" without a tag/);
    });
  });

  describe("app-containers-non-root-read-only", () => {
    it("rejects a container that may run as root", async () => {
      const d = paymentDeployment();
      delete firstContainer(d).securityContext.runAsNonRoot;
      delete podSpec(d).securityContext.runAsNonRoot;
      await assertOneViolation(appContainersNonRootReadOnly, d, /container.*"payment-service" may run as root\. Set securityContext\.runAsNonRoot: true/);
    });

    it("rejects runAsUser 0", async () => {
      const d = paymentDeployment();
      firstContainer(d).securityContext.runAsUser = 0;
      await assertOneViolation(appContainersNonRootReadOnly, d, /sets runAsUser: 0 \(root\)/);
    });

    it("rejects a writable root filesystem", async () => {
      const d = paymentDeployment();
      firstContainer(d).securityContext.readOnlyRootFilesystem = false;
      await assertOneViolation(appContainersNonRootReadOnly, d, /has a writable root filesystem\. Set securityContext\.readOnlyRootFilesystem: true/);
    });

    it("leaves the Agent DaemonSet (root by necessity) alone", async () => {
      const result = await checkResource(appContainersNonRootReadOnly, agentDaemonSet());
      assert.deepEqual(result, { violations: [], applicable: false });
    });
  });

  describe("monitors", () => {
    it("rejects a monitor whose message notifies nobody", async () => {
      const m = latencyMonitor();
      m.inputs.message = m.inputs.message.replace(/@\S+/g, "");
      await assertOneViolation(monitorHasNotificationHandle, m, /Monitor "\[prod\] Payment p95 latency above threshold": its message mentions no @handle.*payments-apm:monitors\.notify/);
    });

    it("rejects a monitor without a service: tag", async () => {
      const m = latencyMonitor();
      m.inputs.tags = m.inputs.tags.filter((t: string) => !t.startsWith("service:"));
      await assertOneViolation(monitorHasEnvAndServiceTags, m, /no service: tag/);
    });

    it("rejects a monitor with an empty env: tag", async () => {
      const m = latencyMonitor();
      m.inputs.tags = m.inputs.tags.map((t: string) => (t.startsWith("env:") ? "env:" : t));
      await assertOneViolation(monitorHasEnvAndServiceTags, m, /no env: tag/);
    });
  });

  describe("datadog-agent-tolerates-node-taints", () => {
    const prodConfig = () => configFor("prod", datadogAgentToleratesNodeTaints);

    it("rejects the Agent when a configured taint is not tolerated", async () => {
      const ds = agentDaemonSet();
      podSpec(ds).tolerations = [];
      await assertOneViolation(
        datadogAgentToleratesNodeTaints,
        ds,
        /DaemonSet datadog\/datadog-agent: does not tolerate the node taint dedicated=payments:NoSchedule.*Add \{key: dedicated, operator: Equal, value: payments, effect: NoSchedule\} to payments-apm:datadog\.tolerations/,
        prodConfig(),
      );
    });

    it("catches a stack whose tolerations do not match its nodes (staging's Agent on prod's nodes)", async () => {
      await assertOneViolation(datadogAgentToleratesNodeTaints, agentDaemonSet("staging"), /dedicated=payments:NoSchedule/, prodConfig());
    });

    it("follows Kubernetes matching: operator Exists on the key, or on everything", async () => {
      const ds = agentDaemonSet();
      podSpec(ds).tolerations = [{ key: "dedicated", operator: "Exists", effect: "NoSchedule" }];
      await assertNoViolation(datadogAgentToleratesNodeTaints, ds, prodConfig());
      podSpec(ds).tolerations = [{ operator: "Exists" }];
      await assertNoViolation(datadogAgentToleratesNodeTaints, ds, prodConfig());
      podSpec(ds).tolerations = [{ key: "dedicated", operator: "Equal", value: "payments", effect: "NoExecute" }];
      await assertOneViolation(datadogAgentToleratesNodeTaints, ds, /dedicated=payments:NoSchedule/, prodConfig());
    });

    it("requires nothing without config (default: no taints) and ignores DaemonSets that are not the Agent", async () => {
      const ds = agentDaemonSet();
      podSpec(ds).tolerations = [];
      await assertNoViolation(datadogAgentToleratesNodeTaints, ds);
      for (const c of [...podSpec(ds).containers, ...podSpec(ds).initContainers]) c.image = "public.ecr.aws/eks/aws-node:v1.20.0";
      await assertNoViolation(datadogAgentToleratesNodeTaints, ds, prodConfig());
    });
  });
});
