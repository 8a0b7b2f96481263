import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import Ajv from "ajv";
import * as yaml from "js-yaml";
import type { ResourceValidationPolicy, StackValidationPolicy } from "@pulumi/policy";
import type * as PolicyModule from "../policy/policies";
import type { NodeTaint } from "../policy/policies";
import { REPO_ROOT, runStack, type ProgramRun } from "../scripts/mock-engine";
import { perTestModule } from "./support/per-test-module";
import { checkResource, checkStack, type ResourceUnderTest } from "./support/policy-harness";

/** policy/policies.ts, as loaded for the running test (support/per-test-module.ts). */
const pack = perTestModule<typeof PolicyModule>(require.resolve("../policy/policies"));

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

const resourcePolicies = () => pack().policies.filter((p): p is ResourceValidationPolicy => "validateResource" in p);
const stackPolicies = () => pack().policies.filter((p): p is StackValidationPolicy => "validateStack" in p);

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
    // The program never loads the policies: its runs are the same for every run of these
    // tests in one process (a mutation run reruns them once per mutant of policies.ts).
    for (const stack of STACKS) runs[stack] ??= await runStack(stack, { secrets: SECRETS });
  });

  describe("the pack", () => {
    it("has unique kebab-case names, mandatory enforcement and a description for every policy", () => {
      const names = pack().policies.map((p) => p.name);
      assert.equal(new Set(names).size, names.length);
      for (const p of pack().policies) {
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
          for (const policy of resourcePolicies()) {
            const result = await checkResource(policy, r, configFor(stack, policy));
            if (result.applicable) applied.add(policy.name);
            problems.push(...result.violations.map((v) => `${policy.name}: ${v}`));
          }
        }
        assert.deepEqual(problems, []);
        const neverApplied = resourcePolicies().map((p) => p.name).filter((n) => !applied.has(n) && n !== pack().datadogKeysNotInConfigMaps.name);
        assert.deepEqual(neverApplied, [], "the program registers no ConfigMap; every other policy must see a resource");
      });

      it("passes the stack policies on its outputs", async () => {
        for (const policy of stackPolicies()) {
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
      await assertNoViolation(pack().datadogKeysNotInConfigMaps, configMap({ DD_SITE: "datadoghq.com", DD_ENV: "prod", "datadog.yaml": "api_key: ${DD_API_KEY}\nsite: datadoghq.com\n" }));
      await assertNoViolation(pack().datadogKeysNotInConfigMaps, configMap({ "datadog.yaml": "api_key:\nsite: datadoghq.com\n" }));
    });

    it("rejects an api_key assigned in a config file, whatever its shape", async () => {
      await assertOneViolation(pack().datadogKeysNotInConfigMaps, configMap({ "datadog.yaml": "site: datadoghq.com\napp_key: \"my-app-key\"\n" }), /data\["datadog\.yaml"\].*assigns an api_key\/app_key/);
    });

    it("rejects an entry named like a Datadog key", async () => {
      const m = await assertOneViolation(pack().datadogKeysNotInConfigMaps, configMap({ DD_API_KEY: "not-hex-but-still-a-key" }), /ConfigMap datadog\/agent-config: data\["DD_API_KEY"\]/);
      assert.match(m, /pulumi config set --secret datadog:apiKey/);
      assert.match(m, /secretKeyRef/);
    });

    it("rejects an API key embedded in a config file", async () => {
      await assertOneViolation(pack().datadogKeysNotInConfigMaps, configMap({ "datadog.yaml": `site: datadoghq.com\napi_key: ${API_KEY}\n` }), /data\["datadog\.yaml"\].*hex string/);
    });

    it("rejects an application key in binaryData", async () => {
      await assertOneViolation(pack().datadogKeysNotInConfigMaps, configMap({}, { blob: Buffer.from(`key=${APP_KEY}`).toString("base64") }), /binaryData\["blob"\]/);
    });
  });

  describe("datadog-keys-not-in-env-literals", () => {
    it("rejects a literal DD_API_KEY on the Agent instead of its secretKeyRef", async () => {
      const ds = agentDaemonSet();
      const env = firstContainer(ds).env.find((e: any) => e.name === "DD_API_KEY");
      delete env.valueFrom;
      env.value = API_KEY;
      await assertOneViolation(pack().datadogKeysNotInEnvLiterals, ds, /DaemonSet datadog\/datadog-agent: containers "agent" env DD_API_KEY is a literal value\..*valueFrom\.secretKeyRef/);
    });

    it("rejects any *_APP_KEY env with a literal value, whatever it looks like", async () => {
      const d = paymentDeployment();
      firstContainer(d).env.push({ name: "DATADOG_APP_KEY", value: "anything" });
      await assertOneViolation(pack().datadogKeysNotInEnvLiterals, d, /Deployment payments\/payment-service: containers "payment-service" env DATADOG_APP_KEY is a literal/);
    });

    it("rejects a key-shaped literal under an innocent name", async () => {
      const d = paymentDeployment();
      firstContainer(d).env.push({ name: "SOME_TOKEN", value: APP_KEY });
      await assertOneViolation(pack().datadogKeysNotInEnvLiterals, d, /env SOME_TOKEN holds a 32- or 40-character hex literal/);
    });

    it("checks init containers too", async () => {
      const ds = agentDaemonSet();
      podSpec(ds).initContainers[0].env = [{ name: "DD_API_KEY", value: API_KEY }];
      await assertOneViolation(pack().datadogKeysNotInEnvLiterals, ds, /initContainers "init-volume" env DD_API_KEY/);
    });
  });

  describe("datadog-keys-not-in-stack-outputs", () => {
    it("rejects an output holding a key", async () => {
      const outputs = { ...runs.prod.outputs, agent: { apiKey: API_KEY } };
      const violations = await checkStack(pack().datadogKeysNotInStackOutputs, [stackResource("prod", outputs)]);
      assert.equal(violations.length, 1);
      assert.match(violations[0], /Stack output "agent\.apiKey" holds .*export the name of the Secret/);
      assert.ok(!violations[0].includes(API_KEY));
    });

    it("accepts Datadog object ids, which can be 32 hex characters too (SLO ids)", async () => {
      const outputs = { ...runs.prod.outputs, sloIds: { availability: API_KEY } };
      assert.deepEqual(await checkStack(pack().datadogKeysNotInStackOutputs, [stackResource("prod", outputs)]), []);
    });
  });

  describe("deployment-unified-service-tagging", () => {
    it("rejects a container without DD_VERSION", async () => {
      await assertOneViolation(pack().deploymentUnifiedServiceTagging, withoutEnv(paymentDeployment(), "DD_VERSION"), /container "payment-service" has no DD_VERSION env\. Set it from the pod label: valueFrom\.fieldRef\.fieldPath: metadata\.labels\['tags\.datadoghq\.com\/version'\]/);
    });

    it("rejects a pod template without the version label", async () => {
      const d = paymentDeployment();
      delete d.inputs.spec.template.metadata.labels["tags.datadoghq.com/version"];
      await assertOneViolation(pack().deploymentUnifiedServiceTagging, d, /spec\.template\.metadata\.labels has no "tags\.datadoghq\.com\/version" label/);
    });

    it("rejects a Deployment without the env label", async () => {
      const d = paymentDeployment();
      delete d.inputs.metadata.labels["tags.datadoghq.com/env"];
      await assertOneViolation(pack().deploymentUnifiedServiceTagging, d, /Deployment payments\/payment-service: metadata\.labels has no "tags\.datadoghq\.com\/env" label/);
    });

    it("rejects Deployment and pod labels that disagree", async () => {
      const d = paymentDeployment();
      d.inputs.metadata.labels["tags.datadoghq.com/version"] = "1.4.1";
      await assertOneViolation(pack().deploymentUnifiedServiceTagging, d, /label "tags\.datadoghq\.com\/version" is "1\.4\.1" on the Deployment but "1\.4\.2" on the pod template/);
    });

    it("rejects a literal DD_ENV that disagrees with the pod label", async () => {
      const d = paymentDeployment();
      const env = firstContainer(d).env.find((e: any) => e.name === "DD_ENV");
      delete env.valueFrom;
      env.value = "production";
      await assertOneViolation(pack().deploymentUnifiedServiceTagging, d, /sets DD_ENV="production" but the pod label tags\.datadoghq\.com\/env is "prod"/);
    });
  });

  describe("deployment-trace-agent-address", () => {
    it("rejects a container with no agent address", async () => {
      const d = withoutEnv(withoutEnv(paymentDeployment(), "DD_TRACE_AGENT_URL"), "DD_AGENT_HOST");
      await assertOneViolation(pack().deploymentTraceAgentAddress, d, /has neither DD_AGENT_HOST nor DD_TRACE_AGENT_URL.*status\.hostIP/);
    });

    it("rejects a socket address without the socket directory mounted", async () => {
      // prod reaches the Agent by hostPort (Pod Security restricted): point it at the socket instead.
      const d = withoutEnv(withoutEnv(paymentDeployment(), "DD_AGENT_HOST"), "DD_TRACE_AGENT_PORT");
      firstContainer(d).env.push({ name: "DD_TRACE_AGENT_URL", value: "unix:///var/run/datadog/apm.socket" });
      assert.ok(!firstContainer(d).volumeMounts.some((m: any) => m.mountPath === "/var/run/datadog"));
      await assertOneViolation(pack().deploymentTraceAgentAddress, d, /sends traces to \/var\/run\/datadog\/apm\.socket but mounts nothing at \/var\/run\/datadog/);
    });

    it("accepts DD_AGENT_HOST from the node's IP (staging)", async () => {
      await assertNoViolation(pack().deploymentTraceAgentAddress, paymentDeployment("staging"));
    });
  });

  describe("container-images-pinned", () => {
    const withImage = (image: string) => {
      const d = paymentDeployment();
      firstContainer(d).image = image;
      return d;
    };

    it("rejects :latest", async () => {
      await assertOneViolation(pack().containerImagesPinned, withImage("123456789012.dkr.ecr.us-east-1.amazonaws.com/payment-service:latest"), /uses the mutable tag latest.*Pin the image by version tag/);
    });

    it("rejects an untagged image, even behind a registry port", async () => {
      await assertOneViolation(pack().containerImagesPinned, withImage("registry.local:5000/payment-service"), /without a tag/);
    });

    it("accepts a digest", async () => {
      await assertNoViolation(pack().containerImagesPinned, withImage(`registry.local:5000/payment-service@sha256:${"a".repeat(64)}`));
    });

    it("checks the Agent's init containers", async () => {
      const ds = agentDaemonSet();
      podSpec(ds).initContainers[1].image = "gcr.io/datadoghq/agent";
      await assertOneViolation(pack().containerImagesPinned, ds, /DaemonSet datadog\/datadog-agent: initContainers "init-config" uses "gcr\.io\/datadoghq\/agent" without a tag/);
    });
  });

  describe("app-containers-non-root-read-only", () => {
    it("rejects a container that may run as root", async () => {
      const d = paymentDeployment();
      delete firstContainer(d).securityContext.runAsNonRoot;
      delete podSpec(d).securityContext.runAsNonRoot;
      await assertOneViolation(pack().appContainersNonRootReadOnly, d, /container.*"payment-service" may run as root\. Set securityContext\.runAsNonRoot: true/);
    });

    it("rejects runAsUser 0", async () => {
      const d = paymentDeployment();
      firstContainer(d).securityContext.runAsUser = 0;
      await assertOneViolation(pack().appContainersNonRootReadOnly, d, /sets runAsUser: 0 \(root\)/);
    });

    it("rejects a writable root filesystem", async () => {
      const d = paymentDeployment();
      firstContainer(d).securityContext.readOnlyRootFilesystem = false;
      await assertOneViolation(pack().appContainersNonRootReadOnly, d, /has a writable root filesystem\. Set securityContext\.readOnlyRootFilesystem: true/);
    });

    it("leaves the Agent DaemonSet (root by necessity) alone", async () => {
      const result = await checkResource(pack().appContainersNonRootReadOnly, agentDaemonSet());
      assert.deepEqual(result, { violations: [], applicable: false });
    });
  });

  describe("monitors", () => {
    it("rejects a monitor whose message notifies nobody", async () => {
      const m = latencyMonitor();
      m.inputs.message = m.inputs.message.replace(/@\S+/g, "");
      await assertOneViolation(pack().monitorHasNotificationHandle, m, /Monitor "\[prod\] Payment p95 latency above threshold": its message mentions no @handle.*payments-apm:monitors\.notify/);
    });

    it("rejects a monitor without a service: tag", async () => {
      const m = latencyMonitor();
      m.inputs.tags = m.inputs.tags.filter((t: string) => !t.startsWith("service:"));
      await assertOneViolation(pack().monitorHasEnvAndServiceTags, m, /no service: tag/);
    });

    it("rejects a monitor with an empty env: tag", async () => {
      const m = latencyMonitor();
      m.inputs.tags = m.inputs.tags.map((t: string) => (t.startsWith("env:") ? "env:" : t));
      await assertOneViolation(pack().monitorHasEnvAndServiceTags, m, /no env: tag/);
    });
  });

  describe("datadog-agent-tolerates-node-taints", () => {
    const prodConfig = () => configFor("prod", pack().datadogAgentToleratesNodeTaints);

    it("rejects the Agent when a configured taint is not tolerated", async () => {
      const ds = agentDaemonSet();
      podSpec(ds).tolerations = [];
      await assertOneViolation(
        pack().datadogAgentToleratesNodeTaints,
        ds,
        /DaemonSet datadog\/datadog-agent: does not tolerate the node taint dedicated=payments:NoSchedule.*Add \{key: dedicated, operator: Equal, value: payments, effect: NoSchedule\} to payments-apm:datadog\.tolerations/,
        prodConfig(),
      );
    });

    it("catches a stack whose tolerations do not match its nodes (staging's Agent on prod's nodes)", async () => {
      await assertOneViolation(pack().datadogAgentToleratesNodeTaints, agentDaemonSet("staging"), /dedicated=payments:NoSchedule/, prodConfig());
    });

    it("follows Kubernetes matching: operator Exists on the key, or on everything", async () => {
      const ds = agentDaemonSet();
      podSpec(ds).tolerations = [{ key: "dedicated", operator: "Exists", effect: "NoSchedule" }];
      await assertNoViolation(pack().datadogAgentToleratesNodeTaints, ds, prodConfig());
      podSpec(ds).tolerations = [{ operator: "Exists" }];
      await assertNoViolation(pack().datadogAgentToleratesNodeTaints, ds, prodConfig());
      podSpec(ds).tolerations = [{ key: "dedicated", operator: "Equal", value: "payments", effect: "NoExecute" }];
      await assertOneViolation(pack().datadogAgentToleratesNodeTaints, ds, /dedicated=payments:NoSchedule/, prodConfig());
    });

    it("requires nothing without config (default: no taints) and ignores DaemonSets that are not the Agent", async () => {
      const ds = agentDaemonSet();
      podSpec(ds).tolerations = [];
      await assertNoViolation(pack().datadogAgentToleratesNodeTaints, ds);
      for (const c of [...podSpec(ds).containers, ...podSpec(ds).initContainers]) c.image = "public.ecr.aws/eks/aws-node:v1.20.0";
      await assertNoViolation(pack().datadogAgentToleratesNodeTaints, ds, prodConfig());
    });
  });
});

/** A workload of `kind` with one container, as the engine would send it (no program run needed). */
function workloadOf(kind: string, container: Record<string, unknown>, extra: { namespace?: string; podSecurityContext?: Record<string, unknown> } = {}): ResourceUnderTest {
  const types: Record<string, string> = {
    Deployment: "kubernetes:apps/v1:Deployment",
    StatefulSet: "kubernetes:apps/v1:StatefulSet",
    DaemonSet: "kubernetes:apps/v1:DaemonSet",
    ReplicaSet: "kubernetes:apps/v1:ReplicaSet",
    Job: "kubernetes:batch/v1:Job",
    CronJob: "kubernetes:batch/v1:CronJob",
    Pod: "kubernetes:core/v1:Pod",
  };
  const metadata = { name: "w", ...(extra.namespace === undefined ? {} : { namespace: extra.namespace }) };
  const pod = { containers: [{ name: "c", ...container }], ...(extra.podSecurityContext ? { securityContext: extra.podSecurityContext } : {}) };
  const template = { metadata: { labels: { app: "w" } }, spec: pod };
  const spec =
    kind === "Pod" ? pod : kind === "CronJob" ? { schedule: "* * * * *", jobTemplate: { spec: { template } } } : { selector: { matchLabels: { app: "w" } }, template };
  return { type: types[kind], name: `w-${kind.toLowerCase()}`, inputs: { metadata, spec } };
}

describe("policy pack details (policy/policies.ts, no program run)", () => {
  const KEY32 = "0123456789abcdef0123456789abcdef";
  const KEY40 = "0123456789abcdef0123456789abcdef01234567";
  const SHA256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

  describe("what counts as a Datadog key", () => {
    it("takes exactly 32 or 40 hex characters, any case, around spaces, and nothing longer or shorter", () => {
      for (const v of [KEY32, KEY40, KEY32.toUpperCase(), ` ${KEY40}\n`]) assert.equal(pack().looksLikeDatadogKey(v), true, v);
      for (const v of [KEY32.slice(1), `${KEY32}0`, KEY40.slice(1), `${KEY40}0`, SHA256, `x${KEY32}`, `${KEY32}x`, "g".repeat(32), ""]) {
        assert.equal(pack().looksLikeDatadogKey(v), false, v);
      }
    });

    it("flags ConfigMap entries named like keys (with or without a separator), unless blank", () => {
      for (const name of ["DD_API_KEY", "DATADOG_APP_KEY", "api-key", "apiKey", "appkey", "DD_APPLICATION_KEY"]) {
        assert.equal(pack().datadogKeyIn(name, "x"), `its name "${name}" is a Datadog key name`, name);
      }
      assert.equal(pack().datadogKeyIn("DD_API_KEY", "  "), undefined);
      assert.equal(pack().datadogKeyIn("DD_SITE", "datadoghq.com"), undefined);
      assert.equal(pack().datadogKeyIn("DD_API_URL", "https://api.datadoghq.com"), undefined);
    });

    it("flags a key-shaped hex run inside text, but not a longer hex run such as a sha256 digest", () => {
      const embedded = "it contains a 32- or 40-character hex string (the shape of a Datadog API or application key)";
      assert.equal(pack().datadogKeyIn("notes", `token=${KEY32};`), embedded);
      assert.equal(pack().datadogKeyIn("notes", `${KEY40} is the one`), embedded);
      assert.equal(pack().datadogKeyIn("notes", `image: repo/agent@sha256:${SHA256}`), undefined);
      assert.equal(pack().datadogKeyIn("notes", `id ${KEY32}0`), undefined);
      assert.equal(pack().datadogKeyIn("notes", `id 0${KEY32}`), undefined);
    });

    it("flags an api_key/app_key assigned a literal, not one assigned a reference or nothing", () => {
      const assigns = "it assigns an api_key/app_key";
      for (const text of ["api_key: abc", "app_key=abc", '"application_key": "abc"', "API-KEY:\t'abc'", "apikey = abc"]) assert.equal(pack().datadogKeyIn("datadog.yaml", text), assigns, text);
      for (const text of ["api_key: ${DD_API_KEY}", "api_key: $DD_API_KEY", "app_key: ENC[vault:datadog]", "api_key:", "api_key: # set from the Secret", "site: datadoghq.com"]) {
        assert.equal(pack().datadogKeyIn("datadog.yaml", text), undefined, text);
      }
    });

    it("names a ConfigMap without a namespace, or by its resource name while its metadata is unknown", async () => {
      const cm = (metadata: unknown): ResourceUnderTest => ({ type: "kubernetes:core/v1:ConfigMap", name: "cm-resource", inputs: { metadata, data: { DD_API_KEY: "x" } } });
      await assertOneViolation(pack().datadogKeysNotInConfigMaps, cm({ name: "agent-config" }), /^ConfigMap agent-config: data\["DD_API_KEY"\]/);
      await assertOneViolation(pack().datadogKeysNotInConfigMaps, cm(undefined), /^ConfigMap cm-resource: data\["DD_API_KEY"\]/);
      const unknown = {
        get name(): string {
          throw new Error("unknown during preview");
        },
      };
      await assertOneViolation(pack().datadogKeysNotInConfigMaps, cm(unknown), /^ConfigMap cm-resource: data\["DD_API_KEY"\]/);
    });
  });

  describe("stack outputs", () => {
    it("names the path of every key-shaped output, through objects and arrays, skipping ids", () => {
      assert.deepEqual(pack().keyShapedOutputs({ token: KEY32, agent: { keys: ["x", KEY40], port: 8126, on: true }, sloIds: { a: KEY32 }, monitorId: KEY32, name: "payments" }), [
        "token",
        "agent.keys[1]",
      ]);
      assert.deepEqual(pack().keyShapedOutputs([KEY32]), ["[0]"]);
      assert.deepEqual(pack().keyShapedOutputs(KEY32), [""]);
      assert.deepEqual(pack().keyShapedOutputs(null), []);
    });

    it("looks only at the stack resource's outputs", async () => {
      const other: ResourceUnderTest = { type: "kubernetes:core/v1:Secret", name: "s", inputs: { data: { key: KEY32 } } };
      assert.deepEqual(await checkStack(pack().datadogKeysNotInStackOutputs, [other]), []);
    });
  });

  describe("every workload kind", () => {
    for (const [kind, id] of [
      ["StatefulSet", "StatefulSet ns/w"],
      ["DaemonSet", "DaemonSet ns/w"],
      ["ReplicaSet", "ReplicaSet ns/w"],
      ["Job", "Job ns/w"],
      ["CronJob", "CronJob ns/w"],
      ["Pod", "Pod ns/w"],
    ] as const) {
      it(`checks a ${kind}'s containers for literal keys and unpinned images`, async () => {
        const w = workloadOf(kind, { image: "repo/app:1.0.0", env: [{ name: "DD_API_KEY", value: "literal" }] }, { namespace: "ns" });
        await assertOneViolation(pack().datadogKeysNotInEnvLiterals, w, new RegExp(`^${id}: containers "c" env DD_API_KEY is a literal value`));
        await assertOneViolation(pack().containerImagesPinned, workloadOf(kind, { image: "repo/app" }, { namespace: "ns" }), new RegExp(`^${id}: containers "c" uses "repo/app" without a tag`));
      });
    }

    it("ignores an env literal that is empty and a key taken from a Secret", async () => {
      const w = workloadOf("Deployment", { image: "repo/app:1.0.0", env: [{ name: "DD_API_KEY", value: "" }, { name: "DD_APP_KEY", valueFrom: { secretKeyRef: { name: "s", key: "k" } } }] });
      await assertNoViolation(pack().datadogKeysNotInEnvLiterals, w);
    });

    it("skips a workload whose pod template is not known yet", async () => {
      const w = workloadOf("Deployment", { image: "repo/app" });
      delete w.inputs.spec.template.spec;
      assert.deepEqual(await checkResource(pack().containerImagesPinned, w), { violations: [], applicable: true });
    });

    it("requires non-root and read-only only of Deployments and StatefulSets", async () => {
      const root = { image: "repo/app:1.0.0" };
      await assertOneViolation(pack().appContainersNonRootReadOnly, workloadOf("StatefulSet", { ...root, securityContext: { readOnlyRootFilesystem: true } }), /^StatefulSet w: containers "c" may run as root/);
      for (const kind of ["Job", "CronJob", "Pod", "ReplicaSet", "DaemonSet"]) {
        assert.deepEqual(await checkResource(pack().appContainersNonRootReadOnly, workloadOf(kind, root)), { violations: [], applicable: false }, kind);
      }
      for (const policy of [pack().deploymentUnifiedServiceTagging, pack().deploymentTraceAgentAddress]) {
        assert.deepEqual(await checkResource(policy, workloadOf("StatefulSet", root)), { violations: [], applicable: false }, policy.name);
      }
    });
  });

  describe("image pins", () => {
    it("accepts a version tag, a digest, or both; refuses no image, no tag, latest and malformed digests", () => {
      for (const image of ["repo/app:1.2.3", `repo/app@sha256:${SHA256}`, `repo/app:1.2.3@sha256:${SHA256}`, "registry:5000/repo/app:1.2.3"]) assert.equal(pack().imagePinProblem(image), undefined, image);
      assert.equal(pack().imagePinProblem(undefined), "has no image");
      assert.equal(pack().imagePinProblem(""), "has no image");
      assert.equal(pack().imagePinProblem("registry:5000/repo/app"), 'uses "registry:5000/repo/app" without a tag (Kubernetes pulls :latest)');
      assert.equal(pack().imagePinProblem("repo/app:latest"), 'uses the mutable tag latest ("repo/app:latest")');
      for (const image of ["repo/app@sha256:abc", `repo/app@sha256:${SHA256.toUpperCase()}`, `repo/app@sha512:${SHA256}`, `repo/app@sha256:${SHA256}0`, `repo/app@x-sha256:${SHA256}`]) {
        assert.equal(pack().imagePinProblem(image), `has a malformed digest in "${image}"`, image);
      }
    });
  });

  describe("non-root, read-only containers", () => {
    const hardened = { runAsNonRoot: true, runAsUser: 1000, readOnlyRootFilesystem: true };
    it("takes runAsNonRoot and runAsUser from the pod when the container does not set them, the container's first", async () => {
      await assertNoViolation(pack().appContainersNonRootReadOnly, workloadOf("Deployment", { image: "a:1", securityContext: { readOnlyRootFilesystem: true } }, { podSecurityContext: { runAsNonRoot: true, runAsUser: 1000 } }));
      await assertOneViolation(
        pack().appContainersNonRootReadOnly,
        workloadOf("Deployment", { image: "a:1", securityContext: { readOnlyRootFilesystem: true } }, { podSecurityContext: { runAsNonRoot: true, runAsUser: 0 } }),
        /^Deployment w: containers "c" sets runAsUser: 0 \(root\)/,
      );
      await assertNoViolation(pack().appContainersNonRootReadOnly, workloadOf("Deployment", { image: "a:1", securityContext: hardened }, { podSecurityContext: { runAsNonRoot: false, runAsUser: 0 } }));
      await assertOneViolation(
        pack().appContainersNonRootReadOnly,
        workloadOf("Deployment", { image: "a:1", securityContext: { ...hardened, runAsNonRoot: false } }, { podSecurityContext: { runAsNonRoot: true } }),
        /may run as root/,
      );
    });

    it("reports root and a writable filesystem together, for init containers too", async () => {
      const w = workloadOf("Deployment", { image: "a:1", securityContext: hardened });
      w.inputs.spec.template.spec.initContainers = [{ name: "init", image: "a:1" }];
      const { violations } = await checkResource(pack().appContainersNonRootReadOnly, w);
      assert.deepEqual(violations.map((v) => v.slice(0, v.indexOf(".") + 1)), ['Deployment w: initContainers "init" may run as root.', 'Deployment w: initContainers "init" has a writable root filesystem.']);
    });
  });

  describe("unified service tagging and the agent address", () => {
    const ust = (env: Record<string, unknown>[], labels: Record<string, string> = { "tags.datadoghq.com/env": "prod", "tags.datadoghq.com/service": "svc", "tags.datadoghq.com/version": "1.0.0" }) => {
      const w = workloadOf("Deployment", { image: "a:1", env: [{ name: "DD_AGENT_HOST", value: "10.0.0.1" }, ...env] });
      w.inputs.metadata.labels = { ...labels };
      w.inputs.spec.template.metadata.labels = { ...labels };
      return w;
    };
    const fromLabel = (name: string, key: string) => ({ name, valueFrom: { fieldRef: { fieldPath: `metadata.labels['tags.datadoghq.com/${key}']` } } });

    it("accepts env from the labels, or literals equal to them", async () => {
      await assertNoViolation(pack().deploymentUnifiedServiceTagging, ust([fromLabel("DD_ENV", "env"), fromLabel("DD_SERVICE", "service"), fromLabel("DD_VERSION", "version")]));
      await assertNoViolation(pack().deploymentUnifiedServiceTagging, ust([{ name: "DD_ENV", value: "prod" }, { name: "DD_SERVICE", value: "svc" }, { name: "DD_VERSION", value: "1.0.0" }]));
    });

    it("rejects an env read from another field, and an empty literal", async () => {
      await assertOneViolation(
        pack().deploymentUnifiedServiceTagging,
        ust([fromLabel("DD_ENV", "env"), { name: "DD_SERVICE", valueFrom: { fieldRef: { fieldPath: "metadata.labels['app']" } } }, fromLabel("DD_VERSION", "version")]),
        /^Deployment w: container "c" reads DD_SERVICE from metadata\.labels\['app'\]\. Read it from metadata\.labels\['tags\.datadoghq\.com\/service'\]\.$/,
      );
      await assertOneViolation(pack().deploymentUnifiedServiceTagging, ust([fromLabel("DD_ENV", "env"), { name: "DD_SERVICE", value: "" }, fromLabel("DD_VERSION", "version")]), /container "c" has no DD_SERVICE env/);
    });

    it("reports each missing label on the Deployment and on the pod template", async () => {
      const w = ust([fromLabel("DD_ENV", "env"), fromLabel("DD_SERVICE", "service"), fromLabel("DD_VERSION", "version")], {});
      const { violations } = await checkResource(pack().deploymentUnifiedServiceTagging, w);
      assert.equal(violations.length, 6, JSON.stringify(violations));
      assert.match(violations[0], /^Deployment w: metadata\.labels has no "tags\.datadoghq\.com\/env" label\./);
      assert.match(violations[1], /^Deployment w: spec\.template\.metadata\.labels has no "tags\.datadoghq\.com\/env" label\./);
    });

    it("accepts the agent socket when its directory or a parent is mounted, with or without a trailing '/'", async () => {
      const socketAt = (mountPath: string | undefined) => {
        const w = workloadOf("Deployment", { image: "a:1", env: [{ name: "DD_TRACE_AGENT_URL", value: "unix:///var/run/datadog/apm.socket" }], ...(mountPath ? { volumeMounts: [{ name: "apm", mountPath }] } : {}) });
        return w;
      };
      for (const mountPath of ["/var/run/datadog", "/var/run/datadog/", "/var/run/datadog//", "/var/run", "/var/run/"]) await assertNoViolation(pack().deploymentTraceAgentAddress, socketAt(mountPath));
      for (const mountPath of [undefined, "/var/run/datadog-other", "/var/run/datadog/apm"]) {
        await assertOneViolation(pack().deploymentTraceAgentAddress, socketAt(mountPath), /^Deployment w: container "c" sends traces to \/var\/run\/datadog\/apm\.socket but mounts nothing at \/var\/run\/datadog\. Mount the Agent's hostPath directory \/var\/run\/datadog/);
      }
      const http = workloadOf("Deployment", { image: "a:1", env: [{ name: "DD_TRACE_AGENT_URL", value: "http://10.0.0.1:8126" }] });
      await assertNoViolation(pack().deploymentTraceAgentAddress, http);
      const fromNode = workloadOf("Deployment", { image: "a:1", env: [{ name: "DD_AGENT_HOST", valueFrom: { fieldRef: { fieldPath: "status.hostIP" } } }] });
      await assertNoViolation(pack().deploymentTraceAgentAddress, fromNode);
      const blank = workloadOf("Deployment", { image: "a:1", env: [{ name: "DD_AGENT_HOST", value: "" }] });
      await assertOneViolation(pack().deploymentTraceAgentAddress, blank, /has neither DD_AGENT_HOST nor DD_TRACE_AGENT_URL/);
    });
  });

  describe("monitors", () => {
    const monitor = (message: string, tags: string[], name?: string): ResourceUnderTest => ({
      type: "datadog:index/monitor:Monitor",
      name: "m-resource",
      inputs: { ...(name ? { name } : {}), message, tags, query: "q", type: "query alert" },
    });
    const tags = ["env:prod", "service:svc"];

    it("counts an @handle at the start, after a space or a parenthesis, not an e-mail address inside a word", async () => {
      for (const message of ["@slack-payments down", "down\n@pagerduty-payments", "down (@team@example.com)", "@x"]) await assertNoViolation(pack().monitorHasNotificationHandle, monitor(message, tags));
      for (const message of ["mail ops@example.com", "@ nobody", "@-x", ""]) {
        await assertOneViolation(pack().monitorHasNotificationHandle, monitor(message, tags), /^Monitor m-resource: its message mentions no @handle/);
      }
      await assertOneViolation(pack().monitorHasNotificationHandle, monitor("no handle", tags, "Latency"), /^Monitor "Latency": its message mentions no @handle/);
    });

    it("requires env: and service: tags with a value, each reported on its own", async () => {
      const violations = async (t: string[]) => (await checkResource(pack().monitorHasEnvAndServiceTags, monitor("@x", t, "Latency"))).violations;
      assert.deepEqual(await violations(["environment:prod", "service:"]), [
        'Monitor "Latency": no env: tag. Add a "env:<env>" tag matching the env the query is scoped to.',
        'Monitor "Latency": no service: tag. Add a "service:<service>" tag matching the service the query is scoped to.',
      ]);
      assert.deepEqual(await violations(["env:p", "service:s"]), []);
      assert.equal((await checkResource(pack().monitorHasEnvAndServiceTags, monitor("@x", []))).violations[0], 'Monitor m-resource: no env: tag. Add a "env:<env>" tag matching the env the query is scoped to.');
    });
  });

  describe("node taints", () => {
    const taint: NodeTaint = { key: "dedicated", value: "payments", effect: "NoSchedule" };

    it("matches tolerations as Kubernetes does", () => {
      assert.equal(pack().tolerates({ key: "dedicated", value: "payments", effect: "NoSchedule" }, taint), true);
      assert.equal(pack().tolerates({ key: "dedicated", value: "payments" }, taint), true, "no effect: every effect");
      assert.equal(pack().tolerates({ key: "dedicated", operator: "Equal", value: "other", effect: "NoSchedule" }, taint), false);
      assert.equal(pack().tolerates({ key: "dedicated", value: "other" }, taint), false, "operator defaults to Equal");
      assert.equal(pack().tolerates({ key: "dedicated", operator: "Exists" }, taint), true);
      assert.equal(pack().tolerates({ key: "other", operator: "Exists" }, taint), false);
      assert.equal(pack().tolerates({ operator: "Exists", effect: "NoExecute" }, taint), false);
      assert.equal(pack().tolerates({ operator: "Exists" }, taint), true);
      assert.equal(pack().tolerates({ value: "payments", effect: "NoSchedule" }, taint), false, "no key with Equal tolerates nothing");
      assert.equal(pack().tolerates({ key: "gpu", effect: "NoSchedule" }, { key: "gpu", effect: "NoSchedule" }), true, "no value on either side");
      assert.equal(pack().tolerates({ key: "gpu", value: "", effect: "NoSchedule" }, { key: "gpu", effect: "NoSchedule" }), true);
      assert.equal(pack().tolerates({ key: "gpu", effect: "NoSchedule" }, { key: "gpu", value: "a100", effect: "NoSchedule" }), false);
    });

    it("applies to DaemonSets running the Datadog Agent image, from any registry", async () => {
      const config = { nodeTaints: [{ key: "gpu", effect: "NoExecute" }] };
      for (const image of ["datadog/agent:7.81.1", "gcr.io/datadoghq/agent:7", `public.ecr.aws/datadog/agent@sha256:${SHA256}`, "datadog/agent"]) {
        await assertOneViolation(
          pack().datadogAgentToleratesNodeTaints,
          workloadOf("DaemonSet", { image }, { namespace: "datadog" }),
          /^DaemonSet datadog\/w: does not tolerate the node taint gpu:NoExecute, .* Add \{key: gpu, operator: Exists, effect: NoExecute\} to payments-apm:datadog\.tolerations\.$/,
          config,
        );
      }
      for (const image of ["datadog/cluster-agent:7", "mydatadog/agent:7", "datadog/agent-custom:1", "datadoghq/agentless:1"]) {
        await assertNoViolation(pack().datadogAgentToleratesNodeTaints, workloadOf("DaemonSet", { image }), config);
      }
    });
  });
});

describe("policy pack edges (policy/policies.ts, no program run)", () => {
  const KEY32 = "0123456789abcdef0123456789abcdef";

  it("checks nothing in a workload whose spec or pod template is not known yet, whatever its kind", async () => {
    for (const kind of ["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "Pod"]) {
      const w = workloadOf(kind, { image: "repo/app" });
      delete w.inputs.spec;
      assert.deepEqual(await checkResource(pack().containerImagesPinned, w), { violations: [], applicable: true }, kind);
    }
    const cron = workloadOf("CronJob", { image: "repo/app" });
    delete cron.inputs.spec.jobTemplate.spec;
    assert.deepEqual((await checkResource(pack().containerImagesPinned, cron)).violations, []);
    delete cron.inputs.spec.jobTemplate;
    assert.deepEqual((await checkResource(pack().containerImagesPinned, cron)).violations, []);
  });

  it("reports the missing labels of a Deployment without metadata, by its resource name", async () => {
    const w = workloadOf("Deployment", { image: "a:1", env: [{ name: "DD_AGENT_HOST", value: "10.0.0.1" }, { name: "DD_ENV", value: "prod" }, { name: "DD_SERVICE", value: "s" }, { name: "DD_VERSION", value: "1" }] });
    delete w.inputs.metadata;
    delete w.inputs.spec.template.metadata;
    const { violations } = await checkResource(pack().deploymentUnifiedServiceTagging, w);
    assert.equal(violations.length, 6, JSON.stringify(violations));
    for (const v of violations) assert.match(v, /^Deployment w-deployment: (spec\.template\.)?metadata\.labels has no "tags\.datadoghq\.com\/(env|service|version)" label\./);
  });

  it("accepts an empty literal next to the label reference (Kubernetes allows value \"\" with valueFrom)", async () => {
    const labels = { "tags.datadoghq.com/env": "prod", "tags.datadoghq.com/service": "svc", "tags.datadoghq.com/version": "1.0.0" };
    const env = (["env", "service", "version"] as const).map((key) => ({
      name: `DD_${key.toUpperCase()}`,
      value: "",
      valueFrom: { fieldRef: { fieldPath: `metadata.labels['tags.datadoghq.com/${key}']` } },
    }));
    const w = workloadOf("Deployment", { image: "a:1", env: [{ name: "DD_AGENT_HOST", value: "10.0.0.1" }, ...env] });
    w.inputs.metadata.labels = { ...labels };
    w.inputs.spec.template.metadata.labels = { ...labels };
    await assertNoViolation(pack().deploymentUnifiedServiceTagging, w);
  });

  it("says how to reach the Agent, and checks the socket mount only for unix:// addresses", async () => {
    const none = workloadOf("Deployment", { image: "a:1" });
    await assertOneViolation(
      pack().deploymentTraceAgentAddress,
      none,
      /^Deployment w: container "c" has neither DD_AGENT_HOST nor DD_TRACE_AGENT_URL, so its tracer cannot reach the Agent\. Set DD_TRACE_AGENT_URL=unix:\/\/\/var\/run\/datadog\/apm\.socket and mount the hostPath \/var\/run\/datadog, or DD_AGENT_HOST from valueFrom\.fieldRef\.fieldPath: status\.hostIP/,
    );
    const url = (value: string) => workloadOf("Deployment", { image: "a:1", env: [{ name: "DD_TRACE_AGENT_URL", value }] });
    await assertNoViolation(pack().deploymentTraceAgentAddress, url("http://agent.local:8126/unix:///var/run/datadog/apm.socket"));
    await assertOneViolation(pack().deploymentTraceAgentAddress, url("unix:///apm.socket"), /sends traces to \/apm\.socket but mounts nothing at \/\. /);
  });

  it("flags a key under any output name that does not end in id or ids", () => {
    assert.deepEqual(pack().keyShapedOutputs({ identityToken: KEY32, idleKey: KEY32, agentId: KEY32, sloIDs: [KEY32] }), ["identityToken", "idleKey"]);
  });

  it("checks a DaemonSet for tolerations when any of its containers is the Agent", async () => {
    const ds = workloadOf("DaemonSet", { image: "datadog/agent:7.81.1" }, { namespace: "datadog" });
    ds.inputs.spec.template.spec.containers.push({ name: "sidecar", image: "busybox:1.36" });
    await assertOneViolation(pack().datadogAgentToleratesNodeTaints, ds, /does not tolerate the node taint gpu:NoSchedule/, { nodeTaints: [{ key: "gpu", effect: "NoSchedule" }] });
  });

  describe("its config schema (what `pulumi preview --policy-pack-config` is checked against)", () => {
    // Pulumi validates a policy's config as a JSON Schema object of its properties.
    const valid = (config: Record<string, unknown>) => {
      const validate = new Ajv({ useDefaults: true, strict: false }).compile({ type: "object", ...pack().AGENT_TAINTS_CONFIG_SCHEMA });
      const ok = validate(config);
      return ok ? "valid" : (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message}`).join("; ");
    };

    it("accepts each stack's pack config and fills an empty one with no taints", () => {
      for (const stack of ["prod", "staging"]) {
        const config = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, "policy", "config", `${stack}.json`), "utf8"))[pack().datadogAgentToleratesNodeTaints.name] ?? {};
        assert.equal(valid(config), "valid", stack);
      }
      const empty: Record<string, unknown> = {};
      assert.equal(valid(empty), "valid");
      assert.deepEqual(empty, { nodeTaints: [] });
      assert.equal(valid({ nodeTaints: [{ key: "gpu", effect: "PreferNoSchedule" }, { key: "a", value: "b", effect: "NoExecute" }] }), "valid");
      assert.match(String(pack().AGENT_TAINTS_CONFIG_SCHEMA.properties.nodeTaints.description), /kubectl get nodes/);
    });

    it("refuses taints that are not a list of {key, value?, effect} with a known effect", () => {
      assert.equal(valid({ nodeTaints: { key: "gpu", effect: "NoSchedule" } }), "/nodeTaints must be array");
      assert.equal(valid({ nodeTaints: ["gpu:NoSchedule"] }), "/nodeTaints/0 must be object");
      assert.equal(valid({ nodeTaints: [{ effect: "NoSchedule" }] }), "/nodeTaints/0 must have required property 'key'");
      assert.equal(valid({ nodeTaints: [{ key: "gpu" }] }), "/nodeTaints/0 must have required property 'effect'");
      assert.equal(valid({ nodeTaints: [{ key: "", effect: "NoSchedule" }] }), "/nodeTaints/0/key must NOT have fewer than 1 characters");
      assert.equal(valid({ nodeTaints: [{ key: 1, effect: "NoSchedule" }] }), "/nodeTaints/0/key must be string");
      assert.equal(valid({ nodeTaints: [{ key: "gpu", value: 1, effect: "NoSchedule" }] }), "/nodeTaints/0/value must be string");
      assert.equal(valid({ nodeTaints: [{ key: "gpu", effect: 1 }] }), "/nodeTaints/0/effect must be string");
      assert.equal(valid({ nodeTaints: [{ key: "gpu", effect: "NoRun" }] }), "/nodeTaints/0/effect must be equal to one of the allowed values");
      assert.equal(valid({ nodeTaints: [{ key: "gpu", effect: "NoSchedule", operator: "Exists" }] }), "/nodeTaints/0 must NOT have additional properties");
    });
  });
});

describe("policy pack contents and odd pod specs (policy/policies.ts, no program run)", () => {
  it("is these ten policies", () => {
    assert.deepEqual(
      pack().policies.map((p) => p.name),
      [
        "datadog-keys-not-in-configmaps",
        "datadog-keys-not-in-env-literals",
        "datadog-keys-not-in-stack-outputs",
        "deployment-unified-service-tagging",
        "deployment-trace-agent-address",
        "container-images-pinned",
        "app-containers-non-root-read-only",
        "monitor-has-notification-handle",
        "monitor-has-env-and-service-tags",
        "datadog-agent-tolerates-node-taints",
      ],
    );
  });

  it("takes an env entry with neither value nor valueFrom for no address", async () => {
    await assertOneViolation(pack().deploymentTraceAgentAddress, workloadOf("Deployment", { image: "a:1", env: [{ name: "DD_AGENT_HOST" }] }), /has neither DD_AGENT_HOST nor DD_TRACE_AGENT_URL/);
  });

  it("checks the field path only of tagging env read from a field (a Secret reference is left alone)", async () => {
    const labels = { "tags.datadoghq.com/env": "prod", "tags.datadoghq.com/service": "svc", "tags.datadoghq.com/version": "1.0.0" };
    const w = workloadOf("Deployment", {
      image: "a:1",
      env: [
        { name: "DD_AGENT_HOST", value: "10.0.0.1" },
        { name: "DD_ENV", valueFrom: { secretKeyRef: { name: "tags", key: "env" } } },
        { name: "DD_SERVICE", valueFrom: { configMapKeyRef: { name: "tags", key: "service" } } },
        { name: "DD_VERSION", value: "1.0.0" },
      ],
    });
    w.inputs.metadata.labels = { ...labels };
    w.inputs.spec.template.metadata.labels = { ...labels };
    await assertNoViolation(pack().deploymentUnifiedServiceTagging, w);
  });

  it("checks the init containers of a pod spec without containers, and finds no container without tagging env", async () => {
    const w = workloadOf("Deployment", { image: "a:1" });
    w.inputs.spec.template.spec = { initContainers: [{ name: "init", image: "repo/init" }] };
    await assertOneViolation(pack().containerImagesPinned, w, /^Deployment w: initContainers "init" uses "repo\/init" without a tag/);
    const labels = { "tags.datadoghq.com/env": "prod", "tags.datadoghq.com/service": "svc", "tags.datadoghq.com/version": "1.0.0" };
    w.inputs.metadata.labels = { ...labels };
    w.inputs.spec.template.metadata.labels = { ...labels };
    await assertNoViolation(pack().deploymentUnifiedServiceTagging, w);
  });
});
