import * as assert from "node:assert/strict";
import * as pulumi from "@pulumi/pulumi";
import { stackConfigFromFile } from "../scripts/mock-engine";
import { configPerSuite } from "./support/config-per-suite";

// The config module as loaded for this run of the specs (support/config-per-suite.ts).
const { configModule } = configPerSuite();

// loadConfig() as the program calls it: the stack's config as the engine hands it over
// (full key → string, structured values as JSON text), without a whole program run.

/** Runs `body` with the engine's config set to `config`, then puts the previous config back. */
function withEngineConfig<T>(config: Record<string, string>, secretKeys: readonly string[], body: () => T): T {
  const before = pulumi.runtime.allConfig();
  pulumi.runtime.setAllConfig(config, [...secretKeys]);
  try {
    return body();
  } finally {
    pulumi.runtime.setAllConfig(before, []);
  }
}

/** Pulumi.prod.yaml with every secret set to `secret:<key>`, then `changes` (undefined removes a key). */
function prodConfig(changes: Record<string, string | undefined> = {}): { config: Record<string, string>; secretKeys: readonly string[] } {
  const { config, secretKeys } = stackConfigFromFile("prod");
  for (const key of secretKeys) config[key] = `secret:${key}`;
  for (const [key, value] of Object.entries(changes)) {
    if (value === undefined) delete config[key];
    else config[key] = value;
  }
  return { config, secretKeys };
}

function load(changes: Record<string, string | undefined> = {}) {
  const { config, secretKeys } = prodConfig(changes);
  return withEngineConfig(config, secretKeys, () => configModule().loadConfig());
}

function loadError(changes: Record<string, string | undefined>): { problems: readonly string[]; message: string } {
  try {
    load(changes);
  } catch (e) {
    assert.ok(e instanceof configModule().ConfigError, `expected a ConfigError, got ${e}`);
    return { problems: e.problems, message: e.message };
  }
  assert.fail("the config was accepted");
}

/** An Output's value and whether it is secret. */
async function read(o: pulumi.Output<string> | undefined): Promise<{ value: string; secret: boolean }> {
  assert.ok(o, "the Output is there");
  const out = o as unknown as { promise(): Promise<string>; isSecret: Promise<boolean> };
  return { value: await out.promise(), secret: await out.isSecret };
}

describe("stack config loaded from the engine (loadConfig)", () => {
  it("returns the prod settings, frozen, with the global tags from cluster and deployment", () => {
    const config = load();
    assert.equal(config.environment, "prod");
    assert.equal(config.cluster.name, "payments-prod");
    assert.deepEqual(config.globalTags, { cluster: "payments-prod", region: "us-east-1", deployment: "payments-prod-use1" });
    assert.ok(Object.isFrozen(config), "the config is frozen");
    assert.ok(Object.isFrozen(config.secrets), "its secrets are frozen");
    assert.ok(Object.isFrozen(config.globalTags), "its global tags are frozen");
    assert.ok(Object.isFrozen(config.sampling.tierRates), "settings are frozen all the way down");
  });

  it("reads every secret as a secret Output of its own key", async () => {
    const { secrets } = load();
    const expected: Record<string, string> = {
      datadogApiKey: "secret:datadog:apiKey",
      datadogAppKey: "secret:datadog:appKey",
      databasePassword: "secret:payments-apm:databasePassword",
      databaseMigrationPassword: "secret:payments-apm:databaseMigrationPassword",
      databaseWorkerPassword: "secret:payments-apm:databaseWorkerPassword",
      rolloutChecksumKey: "secret:payments-apm:rolloutChecksumKey",
      redisKeySecret: "secret:payments-apm:redisKeySecret",
      redisAuthToken: "secret:payments-apm:redisAuthToken",
      brokerPassword: "secret:payments-apm:brokerPassword",
    };
    assert.deepEqual(Object.keys(secrets).sort(), Object.keys(expected).sort());
    for (const [name, value] of Object.entries(expected)) {
      assert.deepEqual(await read((secrets as Record<string, pulumi.Output<string>>)[name]), { value, secret: true }, name);
    }
  });

  it("never takes a project secret for a setting", () => {
    // Present in the project's namespace, yet neither an unknown key nor part of the settings.
    const config = load();
    assert.equal((config as unknown as Record<string, unknown>).databasePassword, undefined);
    assert.equal((config as unknown as Record<string, unknown>).brokerPassword, undefined);
  });

  it("reads structured values from their JSON text, with blanks around it, and scalars as strings", () => {
    const config = load({
      "payments-apm:sampling": '  {"baseRate": 0.25}  ',
      "payments-apm:network": ` ${stackConfigFromFile("prod").config["payments-apm:network"]}`,
      "payments-apm:environment": "staging",
    });
    assert.equal(config.sampling.baseRate, 0.25);
    assert.equal(config.sampling.errorRate, 0.5, "the rest of sampling keeps its defaults");
    assert.equal(config.environment, "staging");
    // An array where an object belongs: read as JSON, then refused as an array.
    const { problems } = loadError({ "payments-apm:monitors": ' ["@slack-payments"]' });
    assert.deepEqual(problems, ['payments-apm:monitors must be object, got ["@slack-payments"]']);
  });

  it("keeps a scalar that reads as JSON (a number, null) as the text typed", () => {
    const config = load({ "payments-apm:environment": "2026", "payments-apm:deployment": "null" });
    assert.equal(config.environment, "2026");
    assert.equal(config.deployment, "null");
  });

  it("throws a ConfigError, by that name", () => {
    assert.throws(() => load({ "payments-apm:environment": "Prod" }), (e: Error) => e.name === "ConfigError" && e instanceof configModule().ConfigError);
  });

  it("reports text that only looks like JSON as the text typed", () => {
    assert.deepEqual(loadError({ "payments-apm:sampling": "{baseRate: 0.2}" }).problems, ['payments-apm:sampling must be object, got "{baseRate: 0.2}"']);
    assert.deepEqual(loadError({ "payments-apm:sampling": " [0.2" }).problems, ['payments-apm:sampling must be object, got " [0.2"']);
  });

  it("ignores other namespaces' keys and names unknown project keys", () => {
    assert.equal(load({ "aws:region": "eu-west-1", "kubernetes:context": "x" }).cluster.region, "us-east-1");
    const { problems } = loadError({ "payments-apm:clusterName": "payments-prod" });
    assert.equal(problems.length, 1, problems.join("\n"));
    assert.match(problems[0], /^payments-apm:clusterName is not a known setting \(known: environment, deployment, cluster, datadog, /);
  });

  it("names every missing secret with the command that sets it", () => {
    const { problems, message } = loadError(Object.fromEntries(prodConfig().secretKeys.map((k) => [k, undefined])));
    assert.deepEqual(problems, [
      "datadog:apiKey is required: set it with `pulumi config set --secret datadog:apiKey <Datadog API key>`",
      "datadog:appKey is required: set it with `pulumi config set --secret datadog:appKey <Datadog application key>`",
      "payments-apm:databasePassword is required: set it with `pulumi config set --secret payments-apm:databasePassword <database password>`",
      "payments-apm:databaseMigrationPassword is required: set it with `pulumi config set --secret payments-apm:databaseMigrationPassword <migration role's database password>`",
      "payments-apm:databaseWorkerPassword is required: set it with `pulumi config set --secret payments-apm:databaseWorkerPassword <worker role's database password>`",
      "payments-apm:rolloutChecksumKey is required: set it with `pulumi config set --secret payments-apm:rolloutChecksumKey <random key: $(openssl rand -hex 32)>`",
      "payments-apm:redisKeySecret is required: set it with `pulumi config set --secret payments-apm:redisKeySecret <random key: $(openssl rand -hex 32)>`",
      "payments-apm:redisAuthToken is required while payments-apm:redis.tls is true (rediss:// with the ElastiCache AUTH token): " +
        "set it with `pulumi config set --secret payments-apm:redisAuthToken <AUTH token>`",
      "payments-apm:brokerPassword is required: set it with `pulumi config set --secret payments-apm:brokerPassword <broker password>`",
    ]);
    assert.ok(message.startsWith("Invalid stack configuration (9 problems):\n  - datadog:apiKey is required: "), message);
  });

  for (const [key, hint] of [
    ["datadog:apiKey", "Datadog API key"],
    ["datadog:appKey", "Datadog application key"],
    ["payments-apm:databasePassword", "database password"],
    ["payments-apm:databaseMigrationPassword", "migration role's database password"],
    ["payments-apm:databaseWorkerPassword", "worker role's database password"],
    ["payments-apm:rolloutChecksumKey", "random key: $(openssl rand -hex 32)"],
    ["payments-apm:redisKeySecret", "random key: $(openssl rand -hex 32)"],
    ["payments-apm:brokerPassword", "broker password"],
  ]) {
    it(`fails without ${key} alone, in one problem`, () => {
      const { problems, message } = loadError({ [key]: undefined });
      assert.deepEqual(problems, [`${key} is required: set it with \`pulumi config set --secret ${key} <${hint}>\``]);
      assert.equal(message, `Invalid stack configuration (1 problem):\n  - ${key} is required: set it with \`pulumi config set --secret ${key} <${hint}>\``);
    });
  }

  it("needs the Redis AUTH token only with redis.tls", () => {
    assert.deepEqual(loadError({ "payments-apm:redisAuthToken": undefined }).problems, [
      "payments-apm:redisAuthToken is required while payments-apm:redis.tls is true (rediss:// with the ElastiCache AUTH token): " +
        "set it with `pulumi config set --secret payments-apm:redisAuthToken <AUTH token>`",
    ]);
    const plain = load({ "payments-apm:redisAuthToken": undefined, "payments-apm:redis": JSON.stringify({ host: "redis.internal", tls: false }) });
    assert.equal(plain.redis.tls, false);
    assert.equal(plain.secrets.redisAuthToken, undefined);
  });

  it("reports a bad setting and a missing secret in one error", () => {
    const { problems, message } = loadError({ "payments-apm:sampling": JSON.stringify({ baseRate: 1.5 }), "payments-apm:databasePassword": undefined });
    assert.deepEqual(problems, [
      "payments-apm:sampling.baseRate must be between 0 and 1, got 1.5",
      "payments-apm:databasePassword is required: set it with `pulumi config set --secret payments-apm:databasePassword <database password>`",
    ]);
    assert.ok(message.startsWith("Invalid stack configuration (2 problems):\n  - payments-apm:sampling.baseRate must be between 0 and 1, got 1.5\n  - payments-apm:databasePassword"), message);
  });

  it("checks datadog:apiUrl against the Datadog site", () => {
    const eu = JSON.stringify({ site: "datadoghq.eu" });
    assert.deepEqual(loadError({ "payments-apm:datadog": eu }).problems, ["datadog:apiUrl is required for site datadoghq.eu: set it to https://api.datadoghq.eu/"]);
    assert.deepEqual(loadError({ "payments-apm:datadog": eu, "datadog:apiUrl": "https://api.datadoghq.com/" }).problems, [
      'datadog:apiUrl must be https://api.datadoghq.eu/ to match payments-apm:datadog.site datadoghq.eu, got "https://api.datadoghq.com/"',
    ]);
    assert.equal(load({ "payments-apm:datadog": eu, "datadog:apiUrl": "https://api.datadoghq.eu" }).datadog.site, "datadoghq.eu");
    assert.deepEqual(loadError({ "datadog:apiUrl": "https://api.datadoghq.eu/" }).problems, [
      'datadog:apiUrl must be https://api.datadoghq.com/ to match payments-apm:datadog.site datadoghq.com, got "https://api.datadoghq.eu/"',
    ]);
  });
});
