import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { pathToFileURL } from "node:url";
import { fileScores } from "../scripts/mutation";

const ROOT = path.resolve(__dirname, "..");

interface Config {
  groups: Record<string, { mutate: string[]; spec: string[] }>;
  notMutated: { file: string; reason: string }[];
  floors: { files: RegExp; floor: number }[];
  equivalentMutants: { file: string; mutator: string; original: string; replacement: string; in?: string; reason: string }[];
}
const loadConfig = async () => (await import(pathToFileURL(path.join(ROOT, "stryker.config.mjs")).href)) as Config;

describe("mutation testing set-up (stryker.config.mjs, scripts/mutation.ts)", () => {
  it("puts every file of components/ and policy/ in exactly one group, or says why not", async () => {
    const { groups, notMutated } = await loadConfig();
    const mutated = Object.values(groups).flatMap((g) => g.mutate);
    const files = ["components", "policy"].flatMap((dir) =>
      fs
        .readdirSync(path.join(ROOT, dir))
        .filter((f) => f.endsWith(".ts"))
        .map((f) => `${dir}/${f}`),
    );
    for (const file of files) {
      const times = mutated.filter((m) => m === file).length + notMutated.filter((n) => n.file === file).length;
      assert.equal(times, 1, `${file} is in ${times} groups or exceptions`);
    }
    for (const file of [...mutated, ...notMutated.map((n) => n.file)]) assert.ok(fs.existsSync(path.join(ROOT, file)), `${file} does not exist`);
  });

  it("runs each group against spec files that exist", async () => {
    const { groups } = await loadConfig();
    for (const [name, group] of Object.entries(groups)) {
      assert.ok(group.spec.length > 0, name);
      for (const spec of group.spec) assert.ok(fs.existsSync(path.join(ROOT, spec)), `${name}: ${spec} does not exist`);
    }
  });

  it("gives every equivalent mutant a reason and a file of a group", async () => {
    const { groups, equivalentMutants } = await loadConfig();
    const mutated = new Set(Object.values(groups).flatMap((g) => g.mutate));
    for (const e of equivalentMutants) {
      assert.ok(mutated.has(e.file), `${e.file} is in no group`);
      assert.ok(e.reason.length > 20, `${e.file} ${e.mutator} ${e.original}: no reason`);
    }
  });

  it("scores a file as killed ÷ all but the equivalent mutants, and names what survived", () => {
    const source = 'const a = x > 1;\nconst b = "y";\n';
    const at = (line: number, column: number, endColumn: number) => ({ start: { line, column }, end: { line, column: endColumn } });
    const report = {
      files: {
        "components/x.ts": {
          source,
          mutants: [
            { mutatorName: "EqualityOperator", replacement: "x >= 1", status: "Killed", location: at(1, 11, 16) },
            { mutatorName: "EqualityOperator", replacement: "x < 1", status: "Timeout", location: at(1, 11, 16) },
            { mutatorName: "BooleanLiteral", replacement: "true", status: "Survived", location: at(1, 11, 16) },
            { mutatorName: "StringLiteral", replacement: '""', status: "Survived", location: at(2, 11, 14) },
            { mutatorName: "StringLiteral", replacement: '"z"', status: "NoCoverage", location: at(2, 11, 14) },
            { mutatorName: "BlockStatement", replacement: "{}", status: "CompileError", location: at(2, 1, 5) },
          ],
        },
      },
    };
    const equivalentMutants = [{ file: "components/x.ts", mutator: "StringLiteral", original: '"y"', replacement: '""', reason: "no test can tell" }];
    const [score] = fileScores(report, { floors: [{ files: /^components\//, floor: 90 }], equivalentMutants });
    assert.deepEqual(score, {
      file: "components/x.ts",
      killed: 2,
      survived: 1,
      noCoverage: 1,
      equivalent: 1,
      score: 50,
      floor: 90,
      undetected: ['1:11 Survived BooleanLiteral: "x > 1" → "true"', '2:11 NoCoverage StringLiteral: "\\"y\\"" → "\\"z\\""'],
    });
  });
});
