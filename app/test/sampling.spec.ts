import assert from "node:assert/strict";
import { FLOWS, HTTP_SERVER_SPAN, ROUTES, SERVICES, TAGS } from "../src/tracing/conventions";
import { createWallet } from "./support/database";
import { e2e, get, postPayment, type E2E } from "./support/e2e";
import type { CapturedSpan } from "./support/trace-intake";
import { isRoot } from "./support/traces";

const PRIORITY = "_sampling_priority_v1";

/** Runs `work` for 0..count-1, at most `width` at a time. */
async function inBatches(count: number, width: number, work: (i: number) => Promise<void>): Promise<void> {
  for (let start = 0; start < count; start += width) {
    await Promise.all(Array.from({ length: Math.min(width, count - start) }, (_, k) => work(start + k)));
  }
}

describe("head-based sampling with the rendered prod rules", function () {
  let env: E2E;

  before(async function () {
    env = await e2e();
    const rendered = env.rendered[SERVICES.payment];
    assert.ok(Number(rendered.DD_TRACE_SAMPLE_RATE) <= 0.1, `base rate ${rendered.DD_TRACE_SAMPLE_RATE}`);
  });

  it("keeps every payment trace, in both services, under the 10 % base rate", async function () {
    const count = 50;
    const senders = await Promise.all(
      Array.from({ length: count }, () => createWallet(env.db.pool, "sampled_sender", { balance: 10_000 })),
    );
    const receiver = await createWallet(env.db.pool, "sampled_receiver", { balance: 0 });
    const bySender = new Set(senders);
    await inBatches(count, 5, async (i) => {
      const response = await postPayment(env.payment, {
        sender_id: senders[i],
        receiver_id: receiver,
        amount: 100,
        currency: "USD",
        payment_method_type: "wallet",
      });
      assert.equal(response.status, 201, JSON.stringify(response.body));
    });

    const paymentRoots = (spans: CapturedSpan[]) => {
      const traceIds = new Set(
        spans.filter((s) => bySender.has(s.meta[TAGS.senderId] ?? "")).map((s) => s.traceId),
      );
      return {
        payment: spans.filter((s) => traceIds.has(s.traceId) && s.service === SERVICES.payment && isRoot(s)),
        fraud: spans.filter((s) => traceIds.has(s.traceId) && s.service === SERVICES.fraud && s.name === HTTP_SERVER_SPAN),
      };
    };
    const spans = await env.intake.waitForSpans((all) => {
      const roots = paymentRoots(all);
      return roots.payment.length === count && roots.fraud.length === count;
    });
    const roots = paymentRoots(spans);
    for (const root of roots.payment) {
      assert.equal(root.name, HTTP_SERVER_SPAN);
      assert.equal(root.meta[TAGS.flow], FLOWS.payment);
      assert.equal(root.metrics[PRIORITY], 2, "kept by a user rule");
      assert.equal(root.metrics["_dd.rule_psr"], 1);
    }
    for (const local of roots.fraud) assert.ok(local.metrics[PRIORITY] >= 1, "fraud-service follows the propagated decision");
  });

  it("samples unrelated root spans at the base rate", async function () {
    const count = 100;
    const since = BigInt(Date.now()) * 1_000_000n;
    await inBatches(count, 10, async () => {
      assert.equal((await get(env.payment, ROUTES.liveness)).status, 200);
    });
    const isProbe = (s: CapturedSpan) =>
      s.service === SERVICES.payment && isRoot(s) && s.resource === `GET ${ROUTES.liveness}` && s.start >= since;
    const spans = await env.intake.waitForSpans((all) => all.filter(isProbe).length >= count);
    const probes = spans.filter(isProbe);
    assert.equal(probes.length, count, "sampled-out traces are sent too, for the agent's stats");
    const kept = probes.filter((s) => s.metrics[PRIORITY] > 0);
    for (const probe of probes) assert.equal(probe.metrics["_dd.rule_psr"], Number(env.rendered[SERVICES.payment].DD_TRACE_SAMPLE_RATE));
    // Binomial(100, 0.1): P(0 kept) < 0.003 %, P(≥ 30 kept) < 1e-7.
    assert.ok(kept.length > 0 && kept.length < 30, `kept ${kept.length} of ${count}`);
  });
});
