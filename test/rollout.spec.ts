import * as assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { SERVICES } from "../app/src/tracing/conventions";
import { kubernetesObjects, type KubernetesObject } from "../scripts/manifests";
import { runStack, type ProgramRun, type RecordedResource } from "../scripts/mock-engine";
import { pathsContaining } from "./support/paths-containing";

/** Computed here with node:crypto directly, so the component's own helper is not its own oracle. */
const hmac = (key: string, text: string) => createHmac("sha256", Buffer.from(key, "utf8")).update(Buffer.from(text, "utf8")).digest("hex");
const KEY = "rollout-checksum-key-first-QZ-0123456789";
const NEW_KEY = "rollout-checksum-key-rotated-QZ-0123456789";

// Not hex, so a 64-hex checksum can never contain them by chance.
const FIRST = {
  "datadog:apiKey": "dd-api-key-first-QZ",
  "datadog:appKey": "dd-app-key-first-QZ",
  "payments-apm:databasePassword": "db-password-first-QZ",
  "payments-apm:rolloutChecksumKey": KEY,
};
const NEW_API_KEY = { ...FIRST, "datadog:apiKey": "dd-api-key-rotated-QZ" };
const NEW_PASSWORD = { ...FIRST, "payments-apm:databasePassword": "db-password-rotated-QZ" };
const NEW_CHECKSUM_KEY = { ...FIRST, "payments-apm:rolloutChecksumKey": NEW_KEY };
const ALL_SECRET_VALUES = [
  ...new Set([...Object.values(FIRST), ...Object.values(NEW_API_KEY), ...Object.values(NEW_PASSWORD), ...Object.values(NEW_CHECKSUM_KEY)]),
];

const AGENT_CHECKSUM = "checksum/datadog-agent-api-key";
const PAYMENT_CHECKSUM = "checksum/payment-service-secrets";
/** What each rendered Secret holds, as the Secret's stringData would be written by hand. */
const expectedAgentChecksum = (secrets: typeof FIRST) =>
  hmac(secrets["payments-apm:rolloutChecksumKey"], `{"api-key":"${secrets["datadog:apiKey"]}"}`);
const expectedPaymentChecksum = (secrets: typeof FIRST) =>
  hmac(secrets["payments-apm:rolloutChecksumKey"], `{"PGPASSWORD":"${secrets["payments-apm:databasePassword"]}"}`);

function resource(run: ProgramRun, kind: string, name: string): { resource: RecordedResource; object: KubernetesObject } {
  const found = kubernetesObjects(run).find((o) => o.object.kind === kind && o.object.metadata.name === name);
  assert.ok(found, `no ${kind} ${name}`);
  return found;
}
const podTemplate = (run: ProgramRun, kind: string, name: string) => (resource(run, kind, name).object.spec as any).template;
const podAnnotations = (run: ProgramRun, kind: string, name: string): Record<string, string> => podTemplate(run, kind, name).metadata.annotations ?? {};
const agentAnnotations = (run: ProgramRun) => podAnnotations(run, "DaemonSet", "datadog-agent");
const paymentAnnotations = (run: ProgramRun) => podAnnotations(run, "Deployment", SERVICES.payment);
/** The pod template with its annotations removed: what a checksum change must leave alone. */
function templateWithoutAnnotations(run: ProgramRun, kind: string, name: string): unknown {
  const t = structuredClone(podTemplate(run, kind, name));
  delete t.metadata.annotations;
  return t;
}
/** Every checksum annotation the run puts on a pod template, as `Kind/name annotation → value`. */
function checksumAnnotations(run: ProgramRun): Record<string, string> {
  const found: Record<string, string> = {};
  for (const { object } of kubernetesObjects(run)) {
    const annotations: Record<string, string> = (object.spec as any)?.template?.metadata?.annotations ?? {};
    for (const [k, v] of Object.entries(annotations)) if (k.startsWith("checksum/")) found[`${object.kind}/${object.metadata.name} ${k}`] = v;
  }
  return found;
}

describe("rolling the pods when a secret changes", () => {
  describe("index.ts under the mock engine (prod), rendered with different secrets", () => {
    const runs = {} as { first: ProgramRun; newApiKey: ProgramRun; newPassword: ProgramRun; newChecksumKey: ProgramRun };
    before(async function () {
      this.timeout(60_000);
      runs.first = await runStack("prod", { secrets: FIRST });
      runs.newApiKey = await runStack("prod", { secrets: NEW_API_KEY });
      runs.newPassword = await runStack("prod", { secrets: NEW_PASSWORD });
      runs.newChecksumKey = await runStack("prod", { secrets: NEW_CHECKSUM_KEY });
    });

    it("annotates the Agent's pod template with the keyed checksum of exactly what its Secret holds", () => {
      assert.equal(agentAnnotations(runs.first)[AGENT_CHECKSUM], expectedAgentChecksum(FIRST));
      const secret = resource(runs.first, "Secret", "datadog-agent-api-key").object as any;
      assert.equal(agentAnnotations(runs.first)[AGENT_CHECKSUM], hmac(KEY, JSON.stringify(secret.stringData)));
    });

    it("annotates each service's pod template with the keyed checksum of its Secret", () => {
      assert.equal(paymentAnnotations(runs.first)[PAYMENT_CHECKSUM], expectedPaymentChecksum(FIRST));
      const secret = resource(runs.first, "Secret", "payment-service-secrets").object as any;
      assert.equal(paymentAnnotations(runs.first)[PAYMENT_CHECKSUM], hmac(KEY, JSON.stringify(secret.stringData)));
      // fraud-service's Secret holds the key of its Redis key names (secret config left at its placeholder here).
      assert.equal(
        podTemplate(runs.first, "Deployment", SERVICES.fraud).metadata.annotations["checksum/fraud-service-secrets"],
        hmac(KEY, '{"REDIS_KEY_SECRET":"PLACEHOLDER-SECRET(payments-apm:redisKeySecret)","REDIS_PASSWORD":"PLACEHOLDER-SECRET(payments-apm:redisAuthToken)"}'),
      );
      assert.deepEqual(Object.keys(checksumAnnotations(runs.first)).sort(), [
        `DaemonSet/datadog-agent ${AGENT_CHECKSUM}`,
        "Deployment/fraud-service checksum/fraud-service-secrets",
        // The database's CA bundle (a ConfigMap, not secret): a plain SHA-256 of a public certificate.
        `Deployment/outbox-relay checksum/outbox-relay-ledger-ca`,
        `Deployment/outbox-relay checksum/outbox-relay-secrets`,
        `Deployment/payment-service checksum/payment-service-ledger-ca`,
        `Deployment/payment-service ${PAYMENT_CHECKSUM}`,
        `Deployment/post-processing checksum/post-processing-ledger-ca`,
        `Deployment/post-processing checksum/post-processing-secrets`,
      ]);
    });

    it("changes the Agent's pod template, by its checksum only, when the API key changes", () => {
      assert.equal(agentAnnotations(runs.newApiKey)[AGENT_CHECKSUM], expectedAgentChecksum(NEW_API_KEY));
      assert.notEqual(agentAnnotations(runs.newApiKey)[AGENT_CHECKSUM], agentAnnotations(runs.first)[AGENT_CHECKSUM]);
      assert.deepEqual(templateWithoutAnnotations(runs.newApiKey, "DaemonSet", "datadog-agent"), templateWithoutAnnotations(runs.first, "DaemonSet", "datadog-agent"));
      assert.deepEqual(paymentAnnotations(runs.newApiKey), paymentAnnotations(runs.first), "payment-service does not roll");
    });

    it("changes payment-service's pod template, by its checksum only, when the database password changes", () => {
      assert.equal(paymentAnnotations(runs.newPassword)[PAYMENT_CHECKSUM], expectedPaymentChecksum(NEW_PASSWORD));
      assert.notEqual(paymentAnnotations(runs.newPassword)[PAYMENT_CHECKSUM], paymentAnnotations(runs.first)[PAYMENT_CHECKSUM]);
      assert.deepEqual(templateWithoutAnnotations(runs.newPassword, "Deployment", SERVICES.payment), templateWithoutAnnotations(runs.first, "Deployment", SERVICES.payment));
      assert.deepEqual(agentAnnotations(runs.newPassword), agentAnnotations(runs.first), "the Agent does not roll");
    });

    it("rolls every pod that reads a Secret when the checksum key is rotated, and changes nothing else", () => {
      assert.equal(agentAnnotations(runs.newChecksumKey)[AGENT_CHECKSUM], expectedAgentChecksum(NEW_CHECKSUM_KEY));
      assert.equal(paymentAnnotations(runs.newChecksumKey)[PAYMENT_CHECKSUM], expectedPaymentChecksum(NEW_CHECKSUM_KEY));
      assert.notEqual(agentAnnotations(runs.newChecksumKey)[AGENT_CHECKSUM], agentAnnotations(runs.first)[AGENT_CHECKSUM]);
      assert.deepEqual(templateWithoutAnnotations(runs.newChecksumKey, "Deployment", SERVICES.payment), templateWithoutAnnotations(runs.first, "Deployment", SERVICES.payment));
      const secrets = (run: ProgramRun) => kubernetesObjects(run).filter((o) => o.object.kind === "Secret").map((o) => o.object);
      assert.deepEqual(secrets(runs.newChecksumKey), secrets(runs.first), "the key itself goes into no Secret");
    });

    it("marks every checksum secret, so it stays encrypted in state", () => {
      for (const [kind, name, key] of [["DaemonSet", "datadog-agent", AGENT_CHECKSUM], ["Deployment", SERVICES.payment, PAYMENT_CHECKSUM]]) {
        const r = resource(runs.first, kind, name).resource;
        const path = `spec.template.metadata.annotations.${key}`;
        assert.ok(r.secretPaths.some((p) => path === p || path.startsWith(`${p}.`)), `${kind}/${name}: ${path} not secret (${r.secretPaths})`);
      }
    });

    it("never puts a secret's plaintext in a checksum", () => {
      for (const run of Object.values(runs)) {
        for (const [where, value] of Object.entries(checksumAnnotations(run))) {
          assert.match(value, /^[0-9a-f]{64}$/, where);
          for (const secret of ALL_SECRET_VALUES) {
            assert.ok(!value.includes(secret), `${where} contains a secret`);
            assert.ok(!value.includes(Buffer.from(secret).toString("base64")), `${where} contains a secret, base64-encoded`);
          }
        }
      }
    });

    it("puts each checksum on its pod template only: not on the Secrets, any ConfigMap or the stack outputs", () => {
      for (const run of Object.values(runs)) {
        const annotations = checksumAnnotations(run);
        for (const [where, value] of Object.entries(annotations)) {
          const places = run.resources.flatMap((r) => pathsContaining(r.inputs, value).map((p) => `${r.type} ${r.name}: ${p}`));
          // Secrets with the same data (the relay's and the consumers': the ledger and broker
          // passwords) have the same checksum, each on its own pod template.
          const sameData = Object.values(annotations).filter((v) => v === value).length;
          assert.equal(places.length, sameData, `${where}\n${places.join("\n")}`);
          for (const place of places) assert.match(place, /^kubernetes:apps\/v1:(DaemonSet|Deployment) .+: spec\.template\.metadata\.annotations\.checksum\//);
          assert.deepEqual(pathsContaining(run.outputs, value), []);
        }
        for (const { object } of kubernetesObjects(run).filter((o) => o.object.kind === "Secret" || o.object.kind === "ConfigMap")) {
          const annotations = Object.keys((object.metadata.annotations as Record<string, string> | undefined) ?? {});
          assert.deepEqual(annotations.filter((k) => k.startsWith("checksum/")), [], `${object.kind}/${object.metadata.name}`);
        }
      }
    });
  });
});
