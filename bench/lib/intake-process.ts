/**
 * The tests' trace intake (app/test/support/trace-intake.ts) in a process of its own, so
 * that decoding the tracers' msgpack, which a real agent does on the node, does not steal
 * event-loop time from the load generator. It forgets each payload once counted and
 * answers the parent's { type: "take" } with the counts since the previous take.
 */
import { TraceIntake } from "../../app/test/support/trace-intake";

export interface IntakeCounts {
  spans: number;
  /** Spans by "<service> <name>". */
  spansByName: Record<string, number>;
  /** Local root spans (fastify.request) by service and sampling priority: "payment-service:2". */
  rootsByServicePriority: Record<string, number>;
}

const empty = (): IntakeCounts => ({ spans: 0, spansByName: {}, rootsByServicePriority: {} });
const bump = (map: Record<string, number>, key: string) => (map[key] = (map[key] ?? 0) + 1);

async function main(): Promise<void> {
  const intake = await TraceIntake.start();
  let counts = empty();
  const drain = () => {
    for (const payload of intake.payloads()) {
      for (const span of payload.traces.flat()) {
        counts.spans += 1;
        bump(counts.spansByName, `${span.service} ${span.name}`);
        if (span.name === "fastify.request") bump(counts.rootsByServicePriority, `${span.service}:${String(span.metrics._sampling_priority_v1 ?? "none")}`);
      }
    }
    intake.clear();
  };
  const timer = setInterval(drain, 200);
  process.on("message", (message: { type?: string }) => {
    if (message?.type !== "take") return;
    drain();
    process.send?.({ type: "counts", counts });
    counts = empty();
  });
  process.on("disconnect", () => {
    clearInterval(timer);
    void intake.close().finally(() => process.exit(0));
  });
  process.send?.({ type: "ready", url: intake.url });
}

main().catch((error: Error) => {
  process.stderr.write(`trace intake failed: ${error.stack ?? error.message}\n`);
  process.exit(1);
});
