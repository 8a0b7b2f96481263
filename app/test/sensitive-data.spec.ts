import assert from "node:assert/strict";
import { SERVICES, TAGS } from "../src/tracing/conventions";
import { passesLuhn } from "../src/tracing/redaction";
import { createWallet } from "./support/database";
import { e2e, postPayment, type E2E } from "./support/e2e";
import { identity } from "./support/identity";
import type { CapturedSpan } from "./support/trace-intake";
import { tagged, waitForTrace } from "./support/traces";

/** Values the requests carry that must never reach a span or a log line. */
const SECRETS = {
  cardNumber: "4556737586899855",
  cvv: "7391",
  password: "hunter2-Correct-Horse",
  ssn: "219-09-9999",
  cookie: "sess_8c1d2e3f4a5b6c7d",
  queryToken: "qs_9e8d7c6b5a4f3e2d",
  deviceFingerprint: "fp_3ad1c0ffee42b7",
} as const;

/** Each secret as a pattern that does not match inside a longer run of digits or word characters. */
const PATTERNS = Object.entries(SECRETS).map(
  ([name, value]) => [name, new RegExp(`(^|[^0-9A-Za-z_])${value.replace(/[-]/g, "\\-")}($|[^0-9A-Za-z_])`)] as const,
);

/** The signatures of the real access tokens the requests carry (unique to each token). */
const tokenSignatures: string[] = [];

function leaks(text: string): string[] {
  return [
    ...PATTERNS.filter(([, pattern]) => pattern.test(text)).map(([name]) => name),
    ...tokenSignatures.filter((signature) => text.includes(signature)).map(() => "bearerToken"),
  ];
}

function spanText(span: CapturedSpan): string[] {
  return [
    span.name,
    span.resource,
    span.service,
    span.type ?? "",
    ...Object.entries(span.meta).flat(),
    ...Object.entries(span.metrics)
      .filter(([key]) => key !== "process_id")
      .flatMap(([key, value]) => [key, String(value)]),
  ];
}

describe("sensitive data", function () {
  let env: E2E;
  let senders: string[];

  before(async function () {
    assert.ok(passesLuhn(SECRETS.cardNumber), "the test card number is a valid one");
    env = await e2e();
    const receiver = await createWallet(env.db.pool, "secret_receiver", { balance: 0 });
    senders = [];
    const since = BigInt(Date.now()) * 1_000_000n;
    const send = async (label: string, body: object, status: number) => {
      const sender = await createWallet(env.db.pool, label, { balance: 10_000 });
      senders.push(sender);
      const token = await (await identity()).tokenFor(sender);
      tokenSignatures.push(token.split(".")[2]);
      const response = await fetch(`${env.payment.url}/v1/payments?access_token=${SECRETS.queryToken}`, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "idempotency-key": `secret-${sender}`,
          authorization: `Bearer ${token}`,
          cookie: `session=${SECRETS.cookie}`,
        },
        body: JSON.stringify({ sender_id: sender, receiver_id: receiver, amount: 500, currency: "USD", ...body }),
      });
      assert.equal(response.status, status, `${label}: ${await response.text()}`);
    };
    const card = { number: SECRETS.cardNumber, cvv: SECRETS.cvv, expiry: "11/38" };
    await send("secret_card_paid", { payment_method_type: "card", card }, 201);
    await send(
      "secret_card_new_device",
      { payment_method_type: "card", card, device: { id: "device-1", fingerprint: SECRETS.deviceFingerprint } },
      402,
    );
    await send("secret_card_expired", { payment_method_type: "card", card: { ...card, expiry: "01/20" } }, 422);
    await send(
      "secret_extra_fields",
      { payment_method_type: "card", card, password: SECRETS.password, ssn: SECRETS.ssn },
      400,
    );
    await waitForTrace(env.intake, tagged(TAGS.senderId, senders[0]), [SERVICES.payment, SERVICES.fraud]);
    await waitForTrace(env.intake, tagged(TAGS.senderId, senders[1]), [SERVICES.payment, SERVICES.fraud]);
    await waitForTrace(env.intake, tagged(TAGS.senderId, senders[2]), [SERVICES.payment]);
    await env.intake.waitForSpans((spans) =>
      spans.some((s) => s.service === SERVICES.payment && s.start >= since && s.meta["http.status_code"] === "400"),
    );
  });

  it("never reaches a span: name, resource, tags or metrics", function () {
    const spans = env.intake.spans();
    assert.ok(spans.length > 50, `${spans.length} spans scanned`);
    const found = spans.flatMap((span) =>
      leaks(spanText(span).join("\n")).map((secret) => `${secret} in ${span.service} ${span.name}`),
    );
    assert.deepEqual(found, []);
  });

  it("never reaches a log line of either service", async function () {
    const lines = [...env.payment.output, ...env.fraud.output];
    assert.ok(lines.length > 10);
    assert.deepEqual(lines.flatMap(leaks), []);
  });

  it("keeps Redis commands free of sender and device identifiers", function () {
    const commands = env.intake
      .spans()
      .filter((s) => s.name === "redis.command")
      .map((s) => s.meta["redis.raw_command"] ?? "");
    // The velocity script's call, with its keys and arguments.
    assert.ok(commands.some((c) => /^EVAL(SHA)? /.test(c) && c.includes("velocity:")), commands.join("\n"));
    for (const command of commands) {
      for (const sender of senders) assert.ok(!command.includes(sender), command);
      assert.ok(!command.includes("device-1"), command);
    }
  });
});
