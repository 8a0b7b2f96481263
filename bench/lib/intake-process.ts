/**
 * The tests' trace intake (app/test/support/trace-intake.ts) in a process of its own, so
 * that decoding the tracers' msgpack, which a real agent does on the node, does not steal
 * event-loop time from the load generator. It forgets each payload once counted and
 * answers the parent's "take" with the counts since the previous take.
 */
import { HTTP_SERVER_SPAN, SERVICES } from "../../app/src/tracing/conventions";
import { TraceIntake } from "../../app/test/support/trace-intake";

export interface IntakeCounts {
  spans: number;
  /** Spans by "<service> <name>", and their summed duration in ms. */
  spansByName: Record<string, number>;
  msByName: Record<string, number>;
  /** payment-service's local root spans (fastify.request), and those with a keep priority. */
  paymentRoots: number;
  paymentRootsKept: number;
}

const empty = (): IntakeCounts => ({ spans: 0, spansByName: {}, msByName: {}, paymentRoots: 0, paymentRootsKept: 0 });
const add = (map: Record<string, number>, key: string, n = 1) => (map[key] = (map[key] ?? 0) + n);

async function main(): Promise<void> {
  const intake = await TraceIntake.start();
  let counts = empty();
  const drain = () => {
    for (const span of intake.payloads().flatMap((p) => p.traces.flat())) {
      counts.spans += 1;
      add(counts.spansByName, `${span.service} ${span.name}`);
      add(counts.msByName, `${span.service} ${span.name}`, span.duration / 1e6);
      if (span.name !== HTTP_SERVER_SPAN || span.service !== SERVICES.payment) continue;
      counts.paymentRoots += 1;
      if (Number(span.metrics._sampling_priority_v1) > 0) counts.paymentRootsKept += 1;
    }
    intake.clear();
  };
  const timer = setInterval(drain, 200);
  process.on("message", () => {
    drain();
    process.send?.(counts);
    counts = empty();
  });
  process.on("disconnect", () => {
    clearInterval(timer);
    void intake.close().finally(() => process.exit(0));
  });
  process.send?.({ url: intake.url });
}

main().catch((error: Error) => {
  process.stderr.write(`trace intake failed: ${error.stack ?? error.message}\n`);
  process.exit(1);
});
