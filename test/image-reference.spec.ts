import * as assert from "node:assert/strict";
import { imagePinned, imageTag, mutableTag, wellFormedDigest } from "../components/image-reference";

const HEX64 = "0123456789abcdef".repeat(4);

describe("a pinned image reference (components/image-reference.ts)", () => {
  it("is pinned by a tag other than latest, with or without a registry and its port", () => {
    for (const image of [
      "payment-service:1.4.2",
      "registry.example.com/payments/payment-service:1.4.2",
      "registry.example.com:5000/payment-service:2024.06.01-rc_1",
      "public.ecr.aws/datadog/agent:7.81.1",
      "x:v",
      `x:v${"1".repeat(127)}`,
    ]) {
      assert.equal(imagePinned(image), true, image);
    }
  });

  it("is pinned by a sha256 digest of 64 lowercase hex digits, a tag allowed before it", () => {
    assert.equal(imagePinned(`registry.example.com/payment-service@sha256:${HEX64}`), true);
    assert.equal(imagePinned(`payment-service:1.4.2@sha256:${HEX64}`), true);
    assert.equal(imagePinned(`payment-service:latest@sha256:${HEX64}`), true, "the digest pins it");
  });

  it("is not pinned without a tag, by latest or a variant of it, or by a malformed digest", () => {
    for (const image of [
      "payment-service",
      "registry.example.com:5000/payment-service",
      "payment-service:",
      "payment-service:latest",
      "payment-service:latest-jmx",
      "payment-service:latest.1",
      "payment-service:-rc",
      "payment-service:.1",
      `x:v${"1".repeat(128)}`,
      "payment-service:1.4.2/extra",
      "registry.example.com//payment-service:1.4.2",
      "/payment-service:1.4.2",
      "pay ment-service:1.4.2",
      "registry example.com/payment-service:1.4.2",
      "payment-service:1.4.2 ",
      " payment-service:1.4.2",
      "payment-service:1.4 2",
      "payment-service:1.4!2",
      `payment-service@sha256:${HEX64.slice(1)}`,
      `payment-service@sha256:${HEX64}0`,
      `payment-service@sha256:${HEX64.toUpperCase()}`,
      `payment-service@sha256:${"g".repeat(64)}`,
      `payment-service@sha512:${HEX64}`,
      `@sha256:${HEX64}`,
      `pay ment-service@sha256:${HEX64}`,
      ` payment-service@sha256:${HEX64}`,
      `payment-service@v1@sha256:${HEX64}`,
      `payment-service@sha256:${HEX64} `,
    ]) {
      assert.equal(imagePinned(image), false, image);
    }
  });

  it("finds the tag after the last '/', never a registry's port", () => {
    assert.equal(imageTag("registry.example.com:5000/payment-service:1.4.2"), "1.4.2");
    assert.equal(imageTag("registry.example.com:5000/payment-service"), undefined);
    assert.equal(imageTag("a/b/c/payment-service:v2"), "v2");
    assert.equal(imageTag(`payment-service@sha256:${HEX64}`), undefined);
  });

  it("checks a digest whole", () => {
    assert.equal(wellFormedDigest(`a@sha256:${HEX64}`), true);
    assert.equal(wellFormedDigest(`a@sha256:${HEX64}:latest`), false);
    assert.equal(wellFormedDigest(`xa b@sha256:${HEX64}`), false);
  });

  it("takes latest and every tag starting with it as mutable", () => {
    assert.deepEqual(
      ["latest", "latest-jmx", "latest-full", "latest.1", "7.81.1", "v-latest", "stable"].map(mutableTag),
      [true, true, true, true, false, false, false],
    );
  });
});
