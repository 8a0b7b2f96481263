import * as fs from "node:fs";
import * as path from "node:path";

const REPO_ROOT = path.resolve(__dirname, "../..");

/** The Node version of the services' image: `ARG NODE_IMAGE=node:<version>-…` in app/Dockerfile. */
export function imageNodeVersion(): string {
  const dockerfile = fs.readFileSync(path.join(REPO_ROOT, "app/Dockerfile"), "utf8");
  const match = /^ARG NODE_IMAGE=node:(\d+\.\d+\.\d+)-/m.exec(dockerfile);
  if (!match) throw new Error("app/Dockerfile: no `ARG NODE_IMAGE=node:<x.y.z>-…` line");
  return match[1];
}

/** Its major version. */
export function imageNodeMajor(): number {
  return Number(imageNodeVersion().split(".")[0]);
}
