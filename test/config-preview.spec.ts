import * as assert from "node:assert/strict";
import { deploymentEnv, kubernetesObjects } from "../scripts/manifests";
import { runStack, secretPlaceholder } from "../scripts/mock-engine";
import { rawSettings } from "./support/stack-settings";

// Whole-program runs: the config's errors as `pulumi preview` prints them. The checks
// themselves are unit-tested in config.spec.ts and config-load.spec.ts.
describe("stack config loaded by the program at preview", () => {
  async function previewError(options: Parameters<typeof runStack>[1]): Promise<string> {
    try {
      await runStack("prod", options);
    } catch (e) {
      return String((e as Error).message);
    }
    assert.fail("the preview succeeded");
  }

  it("fails when the Datadog API key is not set, saying how to set it", async () => {
    const message = await previewError({ secrets: { "datadog:apiKey": undefined } });
    assert.match(message, /datadog:apiKey is required: set it with `pulumi config set --secret datadog:apiKey <Datadog API key>`/);
  });

  it("fails on rediss:// without an AUTH token, naming the secret, and renders redis:// without one when redis.tls is false", async () => {
    const message = await previewError({ secrets: { "payments-apm:redisAuthToken": undefined } });
    assert.match(message, /payments-apm:redisAuthToken is required while payments-apm:redis\.tls is true/);
    const plain = await runStack("prod", {
      secrets: { "payments-apm:redisAuthToken": undefined },
      overrides: { "payments-apm:redis": JSON.stringify({ ...rawSettings("prod").redis, tls: false }) },
    });
    const fraud = kubernetesObjects(plain).find((o) => o.object.kind === "Deployment" && o.object.metadata.name === "fraud-service")!.object;
    const env = Object.fromEntries(deploymentEnv(fraud)["fraud-service"].map((e) => [e.name, e.value ?? e.valueFrom]));
    assert.match(String(env.REDIS_URL), /^redis:\/\//);
    assert.equal(env.REDIS_PASSWORD, undefined);
  });

  it("fails on a bad value in the stack file with the full key, and on missing secrets, in one error", async () => {
    const message = await previewError({
      overrides: { "payments-apm:sampling": JSON.stringify({ baseRate: 1.5 }) },
      secrets: { "payments-apm:databasePassword": undefined },
    });
    assert.match(message, /payments-apm:sampling\.baseRate must be between 0 and 1, got 1\.5/);
    assert.match(message, /payments-apm:databasePassword is required/);
  });

  it("fails without the broker password, naming the secret key", async () => {
    const message = await previewError({ secrets: { "payments-apm:brokerPassword": undefined } });
    assert.match(message, /payments-apm:brokerPassword is required: set it with `pulumi config set --secret payments-apm:brokerPassword <broker password>`/);
  });

  it("fails on a bad broker setting at preview with the full key", async () => {
    const message = await previewError({ overrides: { "payments-apm:broker": JSON.stringify({ host: "b-1.mq.us-east-1.amazonaws.com", user: "payments", port: 0 }) } });
    assert.match(message, /payments-apm:broker\.port must be a whole number between 1 and 65535, got 0/);
  });

  it("fails on a rate limit that leaves the always-kept traces too little, naming sampling.rateLimit", async () => {
    const message = await previewError({ overrides: { "payments-apm:sampling": JSON.stringify({ rateLimit: 100 }) } });
    assert.match(message, /payments-apm:sampling\.rateLimit must be at least 500 \(traces\/s per service instance\).*, got 100/);
  });

  it("fails for a non-US Datadog site without a matching datadog:apiUrl", async () => {
    const eu = { "payments-apm:datadog": JSON.stringify({ site: "datadoghq.eu" }) };
    assert.match(await previewError({ overrides: eu }), /datadog:apiUrl is required for site datadoghq\.eu: set it to https:\/\/api\.datadoghq\.eu\//);
    const usApi = { ...eu, "datadog:apiUrl": "https://api.datadoghq.com/" };
    assert.match(await previewError({ overrides: usApi }), /datadog:apiUrl must be https:\/\/api\.datadoghq\.eu\/ to match payments-apm:datadog\.site datadoghq\.eu, got "https:\/\/api\.datadoghq\.com\/"/);
    await runStack("prod", { overrides: { ...eu, "datadog:apiUrl": "https://api.datadoghq.eu/" } });
  });

  it("reads the secrets as secret Outputs, never as plain config", async () => {
    const run = await runStack("prod");
    const secret = run.resources.find((r) => r.type === "kubernetes:core/v1:Secret" && JSON.stringify(r.inputs).includes(secretPlaceholder("payments-apm:databasePassword")));
    assert.ok(secret, "the database password reaches a Secret");
    assert.ok(secret.secretPaths.length > 0, "…marked secret");
  });
});
