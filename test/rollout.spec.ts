import * as assert from "node:assert/strict";
import { createHash, createHmac } from "node:crypto";
import { SERVICES } from "../app/src/tracing/conventions";
import { canonicalSecretData, MIN_CHECKSUM_KEY_LENGTH, secretChecksumAnnotation, secretDataChecksum } from "../components/secret-checksum";
import { kubernetesObjects, type KubernetesObject } from "../scripts/manifests";
import { runStack, type ProgramRun, type RecordedResource } from "../scripts/mock-engine";
import { pathsContaining } from "./support/paths-containing";

/** Computed here with node:crypto directly, so the component's own helper is not its own oracle. */
const sha256 = (text: string) => createHash("sha256").update(Buffer.from(text, "utf8")).digest("hex");
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
  describe("secretDataChecksum", () => {
    it("is the HMAC-SHA256 hex, keyed by the stack's checksum key, of the Secret's data as compact JSON with sorted keys", () => {
      // Known answer: `printf '%s' '{"api-key":"PLACEHOLDER-SECRET(datadog:apiKey)"}' | openssl dgst -sha256 -hmac 0123456789abcdef0123456789abcdef`.
      assert.equal(
        secretDataChecksum({ "api-key": "PLACEHOLDER-SECRET(datadog:apiKey)" }, "0123456789abcdef0123456789abcdef"),
        "2ad94c452347e7d29b1911733576335ca15e1f02143bfa529ca628e1f2733101",
      );
      assert.equal(canonicalSecretData({ b: "2", a: "1", "a-b": "3" }), '{"a":"1","a-b":"3","b":"2"}');
      assert.equal(secretDataChecksum({ PGPASSWORD: "pässwörd \"quoted\"" }, KEY), hmac(KEY, '{"PGPASSWORD":"pässwörd \\"quoted\\""}'));
    });

    it("is no password oracle: without the key, a guess of the value cannot be checked against it", () => {
      const data = { PGPASSWORD: "summer2026" };
      const checksum = secretDataChecksum(data, KEY);
      assert.notEqual(checksum, sha256(canonicalSecretData(data)), "not the bare SHA-256 a guess could be hashed to");
      assert.notEqual(secretDataChecksum(data, NEW_KEY), checksum, "another key, another checksum");
    });

    it("refuses a key shorter than 32 characters, naming the stack setting", () => {
      assert.equal(MIN_CHECKSUM_KEY_LENGTH, 32);
      assert.throws(() => secretDataChecksum({ A: "1" }, "x".repeat(31)), /payments-apm:rolloutChecksumKey must be at least 32 characters/);
      assert.doesNotThrow(() => secretDataChecksum({ A: "1" }, "x".repeat(32)));
    });

    it("does not depend on key order, and changes with any value or key", () => {
      const base = secretDataChecksum({ A: "1", B: "2" }, KEY);
      assert.equal(secretDataChecksum({ B: "2", A: "1" }, KEY), base);
      assert.notEqual(secretDataChecksum({ A: "1", B: "3" }, KEY), base, "a new value");
      assert.notEqual(secretDataChecksum({ A: "1", C: "2" }, KEY), base, "a renamed key");
      assert.notEqual(secretDataChecksum({ A: "1" }, KEY), base, "a removed key");
      assert.notEqual(secretDataChecksum({ A: "1", B: "2", C: "" }, KEY), base, "an added key");
    });

    it("names the annotation after the Secret, as a valid annotation key", () => {
      for (const secret of ["datadog-agent-api-key", "payment-service-secrets"]) {
        const key = secretChecksumAnnotation(secret);
        assert.equal(key, `checksum/${secret}`);
        assert.match(key.split("/")[1], /^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/, "the name part of a qualified name");
      }
    });
  });

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
