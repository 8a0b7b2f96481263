/**
 * `npm run bench -- --profile`: reads the V8 .cpuprofile each service wrote (node
 * --cpu-prof, into <dir>/<configuration>/, the pid in each file name) and says where the
 * non-idle time of the measured window went, in µs per payment: by package (self time),
 * dd-trace's own time by component, and by "who asked": each sample charged to the nearest
 * function of ours on its stack, so a dd-trace or pino call made from one of our helpers is
 * charged to that helper. Open the raw profiles in Chrome DevTools or speedscope.
 */
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import type { Round } from "../run";

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface CpuProfile {
  nodes: { id: number; callFrame: CallFrame; children?: number[] }[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

type Views = Record<"byPackage" | "nearestApp" | "ddTraceSelf", Map<string, number>>;

const APP_MARKER = "/app/dist/src/";

function packageOf({ url, functionName }: CallFrame): string {
  if (!url) return functionName === "(garbage collector)" ? "(gc)" : ["(idle)", "(program)"].includes(functionName) ? functionName : "(native)";
  const app = url.indexOf(APP_MARKER);
  if (app >= 0) return `app:${url.slice(app + APP_MARKER.length).split("/")[0]}`;
  const nm = url.lastIndexOf("/node_modules/");
  if (nm < 0) return url.startsWith("node:") ? "node" : url;
  const rest = url.slice(nm + "/node_modules/".length).split("/");
  return rest[0].startsWith("@") ? `${rest[0]}/${rest[1]}` : rest[0];
}

/** ms of samples by key, for the samples taken between `fromUs` and `toUs` (the profile's clock: CLOCK_MONOTONIC µs). */
function summarize(file: string, fromUs: number, toUs: number): Views {
  const profile = JSON.parse(readFileSync(file, "utf8")) as CpuProfile;
  const frames = new Map(profile.nodes.map((n) => [n.id, n.callFrame]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const views: Views = { byPackage: new Map(), nearestApp: new Map(), ddTraceSelf: new Map() };
  const add = (map: Map<string, number>, key: string, ms: number) => map.set(key, (map.get(key) ?? 0) + ms);
  let t = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i];
    if (t < fromUs || t > toUs) continue;
    // The time until the next sample is what this sample stands for.
    const ms = (profile.timeDeltas[i + 1] ?? profile.timeDeltas[i]) / 1000;
    const frame = frames.get(profile.samples[i])!;
    const pkg = packageOf(frame);
    if (pkg === "(idle)") continue;
    add(views.byPackage, pkg, ms);
    if (pkg === "dd-trace") {
      const m = /\/dd-trace\/packages\/([^/]+)\/(?:src\/)?([^/]+)/.exec(frame.url);
      add(views.ddTraceSelf, m ? `${m[1]}/${m[2]}` : "dd-trace", ms);
    }
    let nearest = "(no app frame)";
    for (let id: number | undefined = profile.samples[i]; id !== undefined; id = parent.get(id)) {
      const f = frames.get(id)!;
      const at = f.url.indexOf(APP_MARKER);
      if (at < 0) continue;
      nearest = `${f.functionName || "(anonymous)"} ${f.url.slice(at + APP_MARKER.length)}:${f.lineNumber + 1}`;
      break;
    }
    add(views.nearestApp, nearest, ms);
  }
  return views;
}

/** The tables, one column per configuration, from each configuration's one round. */
export function renderProfiles(dir: string, rounds: readonly Round[], pids: Map<string, { payment: number; fraud: number }>): string {
  const columns = rounds.map((round) => {
    const files = readdirSync(path.join(dir, round.config)).map((f) => path.join(dir, round.config, f));
    const of = (pid: number) => files.find((f) => new RegExp(`^CPU\\.\\d+\\.\\d+\\.${pid}\\.`).test(path.basename(f)));
    const views = (pid: number) => {
      const file = of(pid);
      if (!file) throw new Error(`no profile of pid ${pid} in ${path.join(dir, round.config)}`);
      return summarize(file, round.window.from, round.window.to);
    };
    return { round, payment: views(pids.get(round.config)!.payment), fraud: views(pids.get(round.config)!.fraud) };
  });
  const header = [`| | ${rounds.map((r) => r.config).join(" | ")} |`, `|---|${rounds.map(() => "---:").join("|")}|`];
  const lines = [
    "# CPU profile of POST /v1/payments (µs per payment of profiled non-idle time; includes waiting for a core)",
    "",
    ...header,
    `| CPU per payment, both services (/proc) | ${rounds.map((r) => Math.round((r.cpuMsPerPayment.payment + r.cpuMsPerPayment.fraud) * 1000)).join(" | ")} |`,
  ];
  for (const service of ["payment", "fraud"] as const) {
    for (const [view, heading, limit] of [["byPackage", "self time by package", 12], ["nearestApp", "charged to the nearest function of ours on the stack", 15], ["ddTraceSelf", "dd-trace's own time by component", 10]] as const) {
      const perPayment = columns.map((c) => new Map([...c[service][view]].map(([k, ms]) => [k, (ms * 1000) / c.round.payments])));
      const top = (k: string) => Math.max(...perPayment.map((m) => m.get(k) ?? 0));
      const keys = [...new Set(perPayment.flatMap((m) => [...m.keys()]))].sort((a, b) => top(b) - top(a)).slice(0, limit);
      lines.push("", `## ${service}-service: ${heading}`, "", ...header);
      for (const key of keys) lines.push(`| \`${key.replace(/\|/g, "\\|")}\` | ${perPayment.map((m) => (m.has(key) ? Math.round(m.get(key)!) : "–")).join(" | ")} |`);
    }
  }
  return lines.join("\n");
}
