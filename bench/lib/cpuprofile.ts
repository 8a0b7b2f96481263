/**
 * Reads a V8 .cpuprofile (node --cpu-prof) and says where the time went within a window:
 * by package, by function (self time), dd-trace's own time by component, and by "who
 * asked": each sample charged to the nearest function of ours on its stack, so a dd-trace
 * or pino call made from one of our helpers is charged to that helper.
 */
import { readFileSync } from "node:fs";

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface Bucket {
  readonly key: string;
  /** Milliseconds of samples. */
  readonly ms: number;
  /** Share of the non-idle samples in the window. */
  readonly share: number;
}

export interface ProfileSummary {
  readonly windowMs: number;
  readonly busyMs: number;
  readonly idleMs: number;
  readonly byPackage: Bucket[];
  readonly selfTop: Bucket[];
  /** Every sample charged to the nearest function of ours on its stack ("(no app frame)" otherwise). */
  readonly nearestApp: Bucket[];
  /** dd-trace's own (self) time by component: packages/<package>/src/<first directory or file>. */
  readonly ddTraceSelf: Bucket[];
}

const APP_MARKER = "/app/dist/src/";

function packageOf(url: string, functionName: string): string {
  if (!url) {
    if (functionName === "(garbage collector)") return "(gc)";
    if (functionName === "(idle)") return "(idle)";
    if (functionName === "(program)") return "(program)";
    return "(native)";
  }
  const app = url.indexOf(APP_MARKER);
  if (app >= 0) return `app:${url.slice(app + APP_MARKER.length).split("/")[0]}`;
  const nm = url.lastIndexOf("/node_modules/");
  if (nm >= 0) {
    const rest = url.slice(nm + "/node_modules/".length).split("/");
    return rest[0].startsWith("@") ? `${rest[0]}/${rest[1]}` : rest[0];
  }
  if (url.startsWith("node:")) return "node";
  return url;
}

function frameLabel(frame: CallFrame): string {
  const url = frame.url;
  const app = url.indexOf(APP_MARKER);
  const file = app >= 0 ? url.slice(app + APP_MARKER.length) : url.replace(/^.*\/node_modules\//, "");
  return `${frame.functionName || "(anonymous)"} ${file ? `${file}:${frame.lineNumber + 1}` : ""}`.trim();
}

/** Summary of the samples taken between `fromUs` and `toUs` (the profile's clock: CLOCK_MONOTONIC µs). */
export function summarizeProfile(file: string, fromUs?: number, toUs?: number, top = 25): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, "utf8")) as CpuProfile;
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const node of profile.nodes) {
    byId.set(node.id, node);
    for (const child of node.children ?? []) parent.set(child, node.id);
  }
  const add = (map: Map<string, number>, key: string, ms: number) => map.set(key, (map.get(key) ?? 0) + ms);
  const packages = new Map<string, number>();
  const self = new Map<string, number>();
  const nearest = new Map<string, number>();
  const ddTrace = new Map<string, number>();
  let idleMs = 0;
  let busyMs = 0;

  let t = profile.startTime;
  let first = Number.POSITIVE_INFINITY;
  let last = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i];
    if ((fromUs !== undefined && t < fromUs) || (toUs !== undefined && t > toUs)) continue;
    // The time until the next sample is what this sample stands for.
    const ms = (profile.timeDeltas[i + 1] ?? profile.timeDeltas[i]) / 1000;
    first = Math.min(first, t);
    last = Math.max(last, t);
    const node = byId.get(profile.samples[i])!;
    const pkg = packageOf(node.callFrame.url, node.callFrame.functionName);
    if (pkg === "(idle)") {
      idleMs += ms;
      continue;
    }
    busyMs += ms;
    add(packages, pkg, ms);
    add(self, `${frameLabel(node.callFrame)} [${pkg}]`, ms);
    if (pkg === "dd-trace") {
      const m = /\/dd-trace\/packages\/([^/]+)\/(?:src\/)?([^/]+)/.exec(node.callFrame.url);
      add(ddTrace, m ? `${m[1]}/${m[2]}` : "dd-trace", ms);
    }
    let nearestApp: string | undefined;
    for (let id: number | undefined = node.id; id !== undefined && !nearestApp; id = parent.get(id)) {
      const frame = byId.get(id)!;
      if (frame.callFrame.url.includes(APP_MARKER)) nearestApp = frameLabel(frame.callFrame);
    }
    add(nearest, nearestApp ?? "(no app frame)", ms);
  }
  const buckets = (map: Map<string, number>, n = top): Bucket[] =>
    [...map.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([key, ms]) => ({ key, ms: Math.round(ms * 10) / 10, share: busyMs ? Math.round((ms / busyMs) * 1000) / 1000 : 0 }));
  return {
    windowMs: Number.isFinite(first) ? Math.round((last - first) / 1000) : 0,
    busyMs: Math.round(busyMs),
    idleMs: Math.round(idleMs),
    byPackage: buckets(packages, 30),
    selfTop: buckets(self),
    nearestApp: buckets(nearest),
    ddTraceSelf: buckets(ddTrace, 15),
  };
}
