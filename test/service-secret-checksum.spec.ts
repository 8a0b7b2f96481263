import * as assert from "node:assert/strict";
import { createHash, createHmac } from "node:crypto";
import * as pulumi from "@pulumi/pulumi";
import { canonicalSecretData, MIN_CHECKSUM_KEY_LENGTH, secretChecksumAnnotation, secretChecksumAnnotations, secretDataChecksum } from "../components/secret-checksum";

/** Computed here with node:crypto directly, so the component's own helper is not its own oracle. */
const sha256 = (text: string) => createHash("sha256").update(Buffer.from(text, "utf8")).digest("hex");
const hmac = (key: string, text: string) => createHmac("sha256", Buffer.from(key, "utf8")).update(Buffer.from(text, "utf8")).digest("hex");
const KEY = "rollout-checksum-key-first-QZ-0123456789";
const NEW_KEY = "rollout-checksum-key-rotated-QZ-0123456789";

/** An Output's value and whether it is secret (outside a program run, every value is known). */
async function valueOf(output: pulumi.Output<string>): Promise<{ value: string; secret: boolean }> {
  const o = output as unknown as { promise(): Promise<string>; isSecret: Promise<boolean> };
  return { value: await o.promise(), secret: await o.isSecret };
}

describe("rolling the pods when a secret changes: the checksum", () => {
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
      assert.throws(
        () => secretDataChecksum({ A: "1" }, "x".repeat(31)),
        (e: Error) => e.message === "payments-apm:rolloutChecksumKey must be at least 32 characters (e.g. `openssl rand -hex 32`), got 31",
      );
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

  describe("secretChecksumAnnotations", () => {
    it("annotates checksum/<Secret> with the keyed checksum of the data, marked secret", async () => {
      const annotations = secretChecksumAnnotations("fraud-service-secrets", { API_TOKEN: "token-sentinel" }, "rollout-checksum-key-sentinel-0123456789abcdef");
      assert.deepEqual(Object.keys(annotations), ["checksum/fraud-service-secrets"]);
      // Known answer: `printf '%s' '{"API_TOKEN":"token-sentinel"}' | openssl dgst -sha256 -hmac rollout-checksum-key-sentinel-0123456789abcdef`.
      assert.deepEqual(await valueOf(annotations["checksum/fraud-service-secrets"]), {
        value: "595fb95c2eca289a4116eddfb47674f67312088d3847a9e243d0b4efdb137638",
        secret: true,
      });
    });

    it("takes the values and the key as Outputs (secret config) as well as plain strings", async () => {
      const annotations = secretChecksumAnnotations(
        "payment-service-secrets",
        { PGPASSWORD: pulumi.secret("db-password-sentinel") },
        pulumi.secret("rollout-checksum-key-sentinel-0123456789abcdef"),
      );
      assert.deepEqual(await valueOf(annotations["checksum/payment-service-secrets"]), {
        value: "fa1b149d016c0a43de684e377b666408e9b1899419208b2777d8b171dafcf44e",
        secret: true,
      });
    });
  });
});
