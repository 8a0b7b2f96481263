import * as assert from "node:assert/strict";
import { SERVICES } from "../app/src/tracing/conventions";
import { ConfigError, parseStackSettings } from "../components/config";
import { validateKubernetesObject } from "../scripts/k8s-schema";
import { deploymentEnv, kubernetesObjects } from "../scripts/manifests";
import { runStack, type ProgramRun } from "../scripts/mock-engine";
import { rawSettings, withValue } from "./support/stack-settings";

function problemsOf(raw: Record<string, unknown>): string[] {
  try {
    parseStackSettings(raw);
    return [];
  } catch (e) {
    if (e instanceof ConfigError) return [...e.problems];
    throw e;
  }
}

describe("TLS to the ledger database, as rendered", () => {
  let run: ProgramRun;
  const objects = () => kubernetesObjects(run).map((o) => o.object);

  before(async function () {
    this.timeout(60_000);
    run = await runStack("prod");
  });

  it("puts the CA bundle from config into a ConfigMap, schema-valid, and nowhere in the env", () => {
    const caBundle = parseStackSettings(rawSettings("prod")).database.caBundle;
    const cm = objects().find((o) => o.kind === "ConfigMap" && o.metadata.name === `${SERVICES.payment}-ledger-ca`);
    assert.ok(cm, "no CA ConfigMap");
    assert.deepEqual((cm as any).data, { "ca.pem": caBundle });
    assert.deepEqual(validateKubernetesObject(cm), []);
  });

  it("mounts it read-only and points verify-full at it, with no cleartext mode", () => {
    const d = objects().find((o) => o.kind === "Deployment" && o.metadata.name === SERVICES.payment)!;
    const pod = (d.spec as any).template.spec;
    const env = Object.fromEntries(deploymentEnv(d)[SERVICES.payment].map((e) => [e.name, e.value]));
    assert.equal(env.PGSSLMODE, "verify-full");
    const mount = pod.containers[0].volumeMounts.find((m: any) => m.name === "ledger-ca");
    assert.deepEqual(mount, { name: "ledger-ca", mountPath: "/etc/payments/ledger-ca", readOnly: true });
    assert.equal(env.PGSSLROOTCERT, `${mount.mountPath}/ca.pem`);
    assert.deepEqual(pod.volumes.find((v: any) => v.name === "ledger-ca").configMap, { name: `${SERVICES.payment}-ledger-ca`, defaultMode: 0o444 });
    assert.match((d.spec as any).template.metadata.annotations[`checksum/${SERVICES.payment}-ledger-ca`], /^[0-9a-f]{64}$/, "a new bundle rolls the pods");
  });

  it("refuses a CA bundle that is not PEM at preview, naming the key", () => {
    for (const bad of ["not a certificate", "-----BEGIN PRIVATE KEY-----\nMIGHAgEA\n-----END PRIVATE KEY-----\n"]) {
      const problems = problemsOf(withValue(rawSettings("prod"), "database.caBundle", bad));
      assert.ok(problems.some((p) => p.startsWith("payments-apm:database.caBundle must be a PEM bundle")), problems.join("\n"));
    }
    assert.ok(problemsOf(withValue(rawSettings("prod"), "database.caBundle", undefined)).includes("payments-apm:database.caBundle is required"));
  });
});

describe("TLS and AUTH to Redis, as rendered", () => {
  let run: ProgramRun;
  before(async function () {
    this.timeout(60_000);
    run = await runStack("prod", { secrets: { "payments-apm:redisAuthToken": "redis-auth-token-SENTINEL" } });
  });

  it("points fraud-service at rediss:// with the AUTH token from its Secret, never as a literal", () => {
    const objects = kubernetesObjects(run).map((o) => o.object);
    const d = objects.find((o) => o.kind === "Deployment" && o.metadata.name === SERVICES.fraud)!;
    const env = Object.fromEntries(deploymentEnv(d)[SERVICES.fraud].map((e) => [e.name, e.value ?? e.valueFrom]));
    assert.equal(env.REDIS_URL, "rediss://payments-velocity.abc123.use1.cache.amazonaws.com:6379");
    assert.deepEqual(env.REDIS_PASSWORD, { secretKeyRef: { name: `${SERVICES.fraud}-secrets`, key: "REDIS_PASSWORD" } });
    const secret = run.resources.find((r) => r.type === "kubernetes:core/v1:Secret" && r.inputs.metadata.name === `${SERVICES.fraud}-secrets`)!;
    assert.equal(secret.inputs.stringData.REDIS_PASSWORD, "redis-auth-token-SENTINEL");
    assert.ok(secret.secretPaths.length > 0, "its data is marked secret");
    const places = run.resources.filter((r) => JSON.stringify(r.inputs).includes("redis-auth-token-SENTINEL")).map((r) => `${r.type} ${r.name}`);
    // And the consumers', which write the fraud history fraud-service reads.
    assert.deepEqual(places.sort(), [`kubernetes:core/v1:Secret ${secret.name}`, `kubernetes:core/v1:Secret ${SERVICES.postProcessing}-secrets`].sort());
    const consumers = objects.find((o) => o.kind === "Deployment" && o.metadata.name === SERVICES.postProcessing)!;
    const consumersEnv = Object.fromEntries(deploymentEnv(consumers)[SERVICES.postProcessing].map((e) => [e.name, e.value ?? e.valueFrom]));
    assert.equal(consumersEnv.REDIS_URL, env.REDIS_URL);
    assert.deepEqual(consumersEnv.REDIS_PASSWORD, { secretKeyRef: { name: `${SERVICES.postProcessing}-secrets`, key: "REDIS_PASSWORD" } });
    assert.deepEqual(consumersEnv.REDIS_KEY_SECRET, { secretKeyRef: { name: `${SERVICES.postProcessing}-secrets`, key: "REDIS_KEY_SECRET" } });
  });
});
