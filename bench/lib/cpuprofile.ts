/**
 * Reads a V8 .cpuprofile (node --cpu-prof) and says where the non-idle time of a window
 * went: by package (self time), dd-trace's own time by component, and by "who asked": each
 * sample charged to the nearest function of ours on its stack, so a dd-trace or pino call
 * made from one of our helpers is charged to that helper.
 */
import { readFileSync } from "node:fs";

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

export interface Bucket {
  readonly key: string;
  /** Milliseconds of samples. */
  readonly ms: number;
}

export interface ProfileSummary {
  readonly byPackage: Bucket[];
  readonly nearestApp: Bucket[];
  readonly ddTraceSelf: Bucket[];
}

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

/** Summary of the samples taken between `fromUs` and `toUs` (the profile's clock: CLOCK_MONOTONIC µs). */
export function summarizeProfile(file: string, fromUs: number, toUs: number, top = 25): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, "utf8")) as CpuProfile;
  const frames = new Map(profile.nodes.map((n) => [n.id, n.callFrame]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const maps = { byPackage: new Map<string, number>(), nearestApp: new Map<string, number>(), ddTraceSelf: new Map<string, number>() };
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
    add(maps.byPackage, pkg, ms);
    if (pkg === "dd-trace") {
      const m = /\/dd-trace\/packages\/([^/]+)\/(?:src\/)?([^/]+)/.exec(frame.url);
      add(maps.ddTraceSelf, m ? `${m[1]}/${m[2]}` : "dd-trace", ms);
    }
    let nearest = "(no app frame)";
    for (let id: number | undefined = profile.samples[i]; id !== undefined; id = parent.get(id)) {
      const f = frames.get(id)!;
      const at = f.url.indexOf(APP_MARKER);
      if (at < 0) continue;
      nearest = `${f.functionName || "(anonymous)"} ${f.url.slice(at + APP_MARKER.length)}:${f.lineNumber + 1}`;
      break;
    }
    add(maps.nearestApp, nearest, ms);
  }
  const buckets = (map: Map<string, number>) =>
    [...map.entries()].sort((a, b) => b[1] - a[1]).slice(0, top).map(([key, ms]) => ({ key, ms }));
  return { byPackage: buckets(maps.byPackage), nearestApp: buckets(maps.nearestApp), ddTraceSelf: buckets(maps.ddTraceSelf) };
}
