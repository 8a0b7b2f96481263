/**
 * The trace intake (app/test/support/trace-intake.ts) in a process of its own, so that
 * decoding the tracers' msgpack, which a real agent does on the node, does not steal event
 * loop time from the load generator. It forgets each payload after counting it (a traced
 * round sends hundreds of thousands of spans) and answers the parent's "take" messages with
 * the counts since the previous take.
 *
 *   parent → child: { type: "take" }
 *   child → parent: { type: "ready", url } once listening, { type: "counts", counts } per take
 */
import { TraceIntake } from "../../app/test/support/trace-intake";

export interface IntakeCounts {
  /** Trace submissions (HTTP requests to /v0.4|v0.5/traces). */
  payloads: number;
  /** Bytes of those submissions. */
  bytes: number;
  spans: number;
  /** Trace chunks by the sampling priority on their first span ("none" when absent). */
  chunksByPriority: Record<string, number>;
  /** Local root spans (fastify.request) by service and priority: "payment-service:2". */
  rootsByServicePriority: Record<string, number>;
  /** Spans by "<service> <name>". */
  spansByName: Record<string, number>;
  /** Submissions the intake could not decode. */
  decodeErrors: number;
  /** Other requests (telemetry, remote config, DogStatsD proxy). */
  otherRequests: number;
}

function emptyCounts(): IntakeCounts {
  return {
    payloads: 0,
    bytes: 0,
    spans: 0,
    chunksByPriority: {},
    rootsByServicePriority: {},
    spansByName: {},
    decodeErrors: 0,
    otherRequests: 0,
  };
}

async function main(): Promise<void> {
  const intake = await TraceIntake.start();
  let counts = emptyCounts();

  const drain = () => {
    for (const payload of intake.payloads()) {
      counts.payloads += 1;
      for (const chunk of payload.traces) {
        counts.spans += chunk.length;
        const priority = String(chunk[0]?.metrics._sampling_priority_v1 ?? "none");
        counts.chunksByPriority[priority] = (counts.chunksByPriority[priority] ?? 0) + 1;
        for (const span of chunk) {
          const name = `${span.service} ${span.name}`;
          counts.spansByName[name] = (counts.spansByName[name] ?? 0) + 1;
          if (span.name !== "fastify.request") continue;
          const key = `${span.service}:${String(span.metrics._sampling_priority_v1 ?? "none")}`;
          counts.rootsByServicePriority[key] = (counts.rootsByServicePriority[key] ?? 0) + 1;
        }
      }
    }
    for (const request of intake.requests()) {
      if (/^\/v0\.[45]\/traces/.test(request.path)) counts.bytes += request.body.length;
      else counts.otherRequests += 1;
    }
    counts.decodeErrors += intake.errors().length;
    intake.clear();
  };
  const timer = setInterval(drain, 200);

  process.on("message", (message: { type?: string }) => {
    if (message?.type !== "take") return;
    drain();
    process.send?.({ type: "counts", counts });
    counts = emptyCounts();
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
