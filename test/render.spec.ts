import * as assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";
import * as yaml from "js-yaml";
import { schemaProblems, writeRender } from "../scripts/render";
import { REPO_ROOT, runStack } from "../scripts/mock-engine";

const RENDER = path.join(REPO_ROOT, "scripts/render.ts");

/** Runs `npm run render` the way a reviewer does (tsx), returning exit code and output. */
async function renderCli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, ["--import", "tsx", RENDER, ...args], { cwd: REPO_ROOT });
    return { code: 0, stdout, stderr };
  } catch (e: any) {
    return { code: e.code ?? -1, stdout: e.stdout ?? "", stderr: e.stderr ?? "" };
  }
}

function readTree(dir: string): Record<string, string> {
  const files: Record<string, string> = {};
  const walk = (d: string) => {
    for (const entry of fs.readdirSync(d, { withFileTypes: true })) {
      const full = path.join(d, entry.name);
      if (entry.isDirectory()) walk(full);
      else files[path.relative(dir, full)] = fs.readFileSync(full, "utf8");
    }
  };
  walk(dir);
  return files;
}

describe("npm run render", function () {
  this.timeout(60_000);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "render-spec-"));
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it("writes one YAML per Kubernetes object, the Datadog objects as JSON, and a summary", async () => {
    const out = path.join(tmp, "cli");
    const { code, stdout, stderr } = await renderCli(["--stack", "prod", "--out", out]);
    assert.equal(code, 0, stderr);
    const files = readTree(out);
    const manifests = Object.keys(files).filter((f) => f.startsWith("kubernetes/"));
    assert.ok(manifests.length >= 14, manifests.join("\n"));
    for (const f of manifests) {
      const o = yaml.load(files[f]) as any;
      assert.ok(o.apiVersion && o.kind && o.metadata?.name, `${f} is one Kubernetes object`);
    }
    assert.deepEqual(manifests, [...manifests].sort(), "file names sort in apply order");
    assert.match(manifests[0], /^kubernetes\/00-namespace-/);
    assert.ok(Object.keys(files).some((f) => /^datadog\/Monitor-.+\.json$/.test(f)));
    assert.ok(Object.keys(files).some((f) => /^datadog\/ApmRetentionFilter-.+\.json$/.test(f)));
    assert.match(stdout, /Resources by type:/);
    assert.match(stdout, /public\.ecr\.aws\/datadog\/agent:7\.81\.1/);
    assert.match(stdout, /DD_TRACE_SAMPLING_RULES=\[/);
    assert.match(stdout, /percentile\(last_5m\):p95:trace\.payment\.process_payment\{env:prod,service:payment-service\} > 2/);
    const secret = files["kubernetes/03-secret-datadog-datadog-agent-api-key.yaml"];
    assert.match(secret, /PLACEHOLDER-SECRET\(datadog:apiKey\)/, "secrets are visible placeholders");
    // Checksum annotations are written out (the mocks unwrap secrets): the hash of the placeholder data.
    const ds = yaml.load(files["kubernetes/10-daemonset-datadog-datadog-agent.yaml"]) as any;
    const placeholderData = '{"api-key":"PLACEHOLDER-SECRET(datadog:apiKey)"}';
    assert.equal(ds.spec.template.metadata.annotations["checksum/datadog-agent-api-key"], createHash("sha256").update(placeholderData).digest("hex"));

    // Deterministic: a second render, in another process, writes the same bytes.
    const again = path.join(tmp, "in-process");
    writeRender(await runStack("prod"), again);
    assert.deepEqual(readTree(again), files);
  });

  it("fails at a bad stack setting, naming the key", async () => {
    const stackFile = path.join(REPO_ROOT, `Pulumi.render-spec-${process.pid}.yaml`);
    const prod = yaml.load(fs.readFileSync(path.join(REPO_ROOT, "Pulumi.prod.yaml"), "utf8")) as any;
    prod.config["payments-apm:sampling"].baseRate = 1.5;
    fs.writeFileSync(stackFile, yaml.dump(prod));
    try {
      const { code, stderr } = await renderCli(["--stack", `render-spec-${process.pid}`, "--out", path.join(tmp, "bad")]);
      assert.equal(code, 2);
      assert.match(stderr, /payments-apm:sampling\.baseRate must be between 0 and 1, got 1\.5/);
      assert.ok(!fs.existsSync(path.join(tmp, "bad")), "nothing is written");
    } finally {
      fs.rmSync(stackFile, { force: true });
    }
  });

  it("fails on an unknown stack, listing the stacks there are", async () => {
    const { code, stderr } = await renderCli(["--stack", "nope"]);
    assert.equal(code, 2);
    assert.match(stderr, /No stack file Pulumi\.nope\.yaml \(stacks here: .*prod.*staging/);
  });

  it("refuses an invalid Kubernetes object, naming the object and the field", async () => {
    const run = await runStack("staging");
    const ds = run.resources.find((r) => r.type === "kubernetes:apps/v1:DaemonSet")!;
    ds.inputs.spec.template.spec.containers[0].ports = [{ name: "dogstatsdport", containerPort: "8125", protocol: "UDP" }];
    const problems = schemaProblems(run);
    assert.equal(problems.length, 1, problems.join("\n"));
    assert.match(problems[0], /^DaemonSet\/datadog\/datadog-agent: spec\.template\.spec\.containers\[0\]\.ports\[0\]\.containerPort /);
  });
});
