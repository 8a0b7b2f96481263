/**
 * npm run render -- --stack <name> [--out <dir>]
 *
 * Runs the real program (index.ts) offline under Pulumi's mock engine with the config of
 * Pulumi.<stack>.yaml (secrets replaced by visible placeholders), validates every
 * Kubernetes object against the Kubernetes schemas, writes the result under out/<stack>/
 * (one YAML per Kubernetes object, ready for `kubectl apply -f`; Datadog monitors and
 * retention filters as JSON) and prints a summary. Exits non-zero on a bad config or an
 * invalid object, naming the key or the object and field.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import * as yaml from "js-yaml";
import { ConfigError } from "../components/config";
import { validateKubernetesObject } from "./k8s-schema";
import { datadogObjects, deploymentEnv, kubernetesObjects, manifestFileName, objectId } from "./manifests";
import { REPO_ROOT, runStack, type ProgramRun } from "./mock-engine";

interface Options {
  stack: string;
  out: string;
}

function parseArgs(argv: string[]): Options {
  let stack: string | undefined;
  let out: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined || v.startsWith("--")) fail(`${arg} needs a value`);
      return v;
    };
    if (arg === "--stack" || arg === "-s") stack = value();
    else if (arg.startsWith("--stack=")) stack = arg.slice("--stack=".length);
    else if (arg === "--out") out = value();
    else if (arg === "--help" || arg === "-h") {
      console.log("usage: npm run render -- --stack <prod|staging|…> [--out <dir>]");
      process.exit(0);
    } else fail(`unknown argument ${arg} (usage: npm run render -- --stack <name> [--out <dir>])`);
  }
  if (!stack) fail("--stack is required (usage: npm run render -- --stack <name>)");
  return { stack, out: out ?? path.join(REPO_ROOT, "out", stack) };
}

function fail(message: string): never {
  console.error(`render: ${message}`);
  process.exit(2);
}

/** Writes the run under `dir`, replacing what a previous render left there. */
export function writeRender(run: ProgramRun, dir: string): string[] {
  fs.rmSync(dir, { recursive: true, force: true });
  const written: string[] = [];
  const write = (rel: string, text: string) => {
    const file = path.join(dir, rel);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, text);
    written.push(rel);
  };
  for (const { object } of kubernetesObjects(run)) {
    write(path.join("kubernetes", manifestFileName(object)), yaml.dump(object, { noRefs: true, lineWidth: -1, quotingType: '"' }));
  }
  for (const d of datadogObjects(run)) {
    write(path.join("datadog", `${d.kind}-${d.name}.json`), JSON.stringify(d.inputs, null, 2) + "\n");
  }
  write("outputs.json", JSON.stringify(run.outputs, null, 2) + "\n");
  return written;
}

/** Every schema problem of the run's Kubernetes objects. */
export function schemaProblems(run: ProgramRun): string[] {
  return kubernetesObjects(run).flatMap(({ object }) => validateKubernetesObject(object));
}

function summary(run: ProgramRun): string {
  const lines: string[] = [];
  const byType = new Map<string, number>();
  for (const r of run.resources) byType.set(r.type, (byType.get(r.type) ?? 0) + 1);
  lines.push("Resources by type:");
  for (const [type, n] of [...byType].sort()) lines.push(`  ${String(n).padStart(3)}  ${type}`);
  const objects = kubernetesObjects(run).map((o) => o.object);
  const images = new Set<string>();
  for (const o of objects) for (const c of ((o.spec as any)?.template?.spec?.containers ?? []) as any[]) images.add(c.image);
  lines.push("Images:", ...[...images].sort().map((i) => `  ${i}`));
  for (const o of objects.filter((x) => x.kind === "Deployment")) {
    lines.push(`DD_* env of ${objectId(o)}:`);
    for (const [, env] of Object.entries(deploymentEnv(o))) {
      for (const e of env.filter((x) => x.name.startsWith("DD_"))) {
        const from = e.valueFrom as any;
        const shown = e.value ?? (from?.fieldRef ? `<field ${from.fieldRef.fieldPath}>` : from?.secretKeyRef ? `<secret ${from.secretKeyRef.name}/${from.secretKeyRef.key}>` : "<from>");
        lines.push(`  ${e.name}=${shown}`);
      }
    }
  }
  const monitors = datadogObjects(run).filter((d) => d.kind === "Monitor");
  lines.push("Monitors:", ...monitors.map((m) => `  ${m.inputs.name}\n    ${m.inputs.query}`));
  return lines.join("\n");
}

async function main() {
  const options = parseArgs(process.argv.slice(2));
  const started = Date.now();
  console.log(`render: running index.ts for stack ${options.stack} under the mock engine (no cloud calls)…`);
  let run: ProgramRun;
  try {
    run = await runStack(options.stack);
  } catch (e) {
    if (e instanceof ConfigError) fail(`stack ${options.stack}: ${e.message}`);
    fail(e instanceof Error ? e.message : String(e));
  }
  console.log(`render: ${run.resources.length} resources registered; validating Kubernetes objects against the schemas…`);
  const problems = schemaProblems(run);
  if (problems.length > 0) fail(`${problems.length} invalid Kubernetes object field(s):\n${problems.map((p) => `  - ${p}`).join("\n")}`);
  const written = writeRender(run, options.out);
  console.log(summary(run));
  console.log(`render: wrote ${written.length} files to ${path.relative(process.cwd(), options.out) || "."} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  console.log("render: secret values are placeholders (PLACEHOLDER-SECRET(...)); the cluster endpoint and CA are mocked.");
}

if (require.main === module) {
  main().catch((e) => fail(e instanceof Error ? e.stack ?? e.message : String(e)));
}
