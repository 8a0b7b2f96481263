// Mutation testing of the program's logic (`npm run test:mutation`, scripts/mutation.ts).
//
// Files are tested in groups, each against the specs that exercise them: a mutant in
// module-level code (the config schema, built at import) runs against every test of its
// run, so a group keeps that set small. Per group, Stryker runs with the settings below
// (MUTATION_GROUP picks the group); scripts/mutation.ts runs the groups one after the
// other and checks every file's score against its floor.

import { fileURLToPath } from "node:url";

/**
 * `equivalent`: the group's equivalent mutants, in the shape of `equivalentMutants` below.
 * @type {Record<string, { mutate: string[]; spec: string[]; equivalent?: object[] }>}
 */
export const groups = {
  config: {
    mutate: ["components/config.ts", "components/image-reference.ts"],
    spec: ["test/image-reference.spec.ts", "test/config.spec.ts", "test/config-load.spec.ts", "test/config-values.spec.ts", "test/config-sweep.spec.ts"],
    equivalent: [
      ...[
        ["must not start with 'system-'", "the name is set (the check reads it)"],
        ["is only read when deployAgent is false", "existingAgent is set (the check reads it)"],
        ["must be true ${why}", "portEnabled is set (only false fails, and its default is true)"],
      ].map(([line, what]) => ({
        file: "components/config.ts",
        mutator: "StringLiteral",
        original: '"custom"',
        replacement: '""',
        in: line,
        reason: `${what}: describeIssue reads an issue's code only for a key left unset, so the message is printed whatever the code`,
      })),
      {
        file: "components/config.ts",
        mutator: "OptionalChaining",
        original: "settings.datadog.existingAgent?.port",
        replacement: "settings.datadog.existingAgent.port",
        reason: "the checks across settings run only when every other check passed, and datadog's own check requires existingAgent whenever deployAgent is false",
      },
      {
        file: "components/config.ts",
        mutator: "OptionalChaining",
        original: "(v as Record<string, unknown> | undefined)?.[p]",
        replacement: "(v as Record<string, unknown> | undefined)[p]",
        reason: "zod names a key below another only when that one holds an object, and every check across settings names a key of an object that is set: the path never runs through a missing value",
      },
      {
        file: "components/config.ts",
        mutator: "ConditionalExpression",
        original: "PROJECT_SECRET_NAMES.includes(key)",
        replacement: "false",
        reason: "a secret's key is a known top-level name outside the schema: parseStackSettings drops its value either way (skipping it keeps the secret's text out of the raw values)",
      },
      {
        file: "components/config.ts",
        mutator: "ConditionalExpression",
        original: "!(e instanceof ConfigError)",
        replacement: "false",
        reason: "parseStackSettings throws nothing but a ConfigError (safeParse does not throw)",
      },
    ],
  },
  sampling: {
    mutate: ["components/sampling.ts"],
    spec: ["test/sampling.spec.ts"],
  },
  monitoring: {
    mutate: ["components/apm-monitors.ts", "components/apm-slos.ts", "components/apm-dashboard.ts"],
    spec: ["test/apm-monitors.spec.ts", "test/apm-slos.spec.ts", "test/apm-dashboard.spec.ts"],
  },
  // The Datadog Agent and the cluster it runs on.
  agent: {
    mutate: ["components/datadog-agent.ts", "components/cluster.ts"],
    // The fast specs (pure functions, the component alone) first: a mutant they catch never waits for a whole-program run.
    spec: [
      "test/agent-daemonset.spec.ts",
      "test/agent-cluster.spec.ts",
      "test/datadog-agent.spec.ts",
      "test/agent-scheduling.spec.ts",
      "test/deploy-agent.spec.ts",
      "test/program.spec.ts",
    ],
    equivalent: [
      {
        file: "components/datadog-agent.ts",
        mutator: "ConditionalExpression",
        original: "r.cpuLimit !== undefined",
        replacement: "true",
        reason: "without a CPU limit it spreads { cpu: undefined } into limits, and Pulumi sends no undefined property: the same limits reach the cluster",
      },
    ],
  },
  // The traced services' workloads: each component rendered alone and its pure functions,
  // without whole-program runs (test/program.spec.ts and test/rollout.spec.ts test them in the program).
  services: {
    mutate: ["components/traced-service.ts", "components/service-namespace.ts", "components/secret-checksum.ts"],
    spec: [
      "test/traced-service.spec.ts",
      "test/service-agent-connection.spec.ts",
      "test/service-env.spec.ts",
      "test/service-namespace.spec.ts",
      "test/service-secret-checksum.spec.ts",
    ],
  },
  // Components added with authentication, the ledger migrations and the NetworkPolicies. The
  // specs of the components alone come first: most mutants fail there, before any whole-program run.
  workloads: {
    mutate: ["components/auth.ts", "components/ledger-migrations.ts", "components/network-policies.ts"],
    spec: [
      "test/auth.spec.ts",
      "test/network-policy-objects.spec.ts",
      "test/ledger-migrations-job.spec.ts",
      "test/ledger-migrations.spec.ts",
      "test/network-policies.spec.ts",
    ],
    equivalent: [
      {
        file: "components/ledger-migrations.ts",
        mutator: "MethodExpression",
        original: 'readdirSync(dir).filter((f) => f.endsWith(".sql")).sort()',
        replacement: 'readdirSync(dir).filter(f => f.endsWith(".sql"))',
        reason: "Node's readdirSync lists a directory already sorted (libuv's scandir sorts by strcmp), the same order as sort() for the migrations' ASCII names",
      },
    ],
  },
  policy: {
    mutate: ["policy/policies.ts"],
    spec: ["test/policy.spec.ts"],
  },
  app: {
    mutate: ["app/src/payment-service/request.ts", "app/src/fraud-service/scoring.ts", "app/src/tracing/redaction.ts"],
    spec: ["app/test/payment-request.spec.ts", "app/test/fraud-scoring.spec.ts", "app/test/redaction.spec.ts"],
  },
};

/** Files of components/ and policy/ in no group, and why. */
export const notMutated = [
  {
    file: "policy/index.ts",
    reason: "only builds the PolicyPack from policies.ts, which starts the policy gRPC server: the Pulumi CLI alone runs it",
  },
];

/**
 * Lowest mutation score (killed or timed out ÷ all mutants, equivalent ones left out) each
 * file may have, in %. The first match wins.
 */
export const floors = [
  { files: /^components\//, floor: 90 },
  { files: /^policy\//, floor: 90 },
  { files: /^app\/src\//, floor: 85 },
];

/**
 * Mutants no test can kill because the mutated program behaves the same. Each is named by
 * its file, mutator, the source it replaces and the replacement (as the report shows them).
 * @type {{ file: string; mutator: string; original: string; replacement: string; reason: string }[]}
 */
export const equivalentMutants = [
  ...Object.values(groups).flatMap((g) => g.equivalent ?? []),
  {
    file: "app/src/tracing/redaction.ts",
    mutator: "EqualityOperator",
    original: "d > 9",
    replacement: "d >= 9",
    reason: "d is a doubled digit there, always even: it is never 9",
  },
  {
    file: "app/src/tracing/redaction.ts",
    mutator: "AssignmentOperator",
    original: "sum += d",
    replacement: "sum -= d",
    reason: "the check is sum % 10 === 0, and -s % 10 is (-)0 exactly when s % 10 is 0",
  },
  {
    file: "app/src/tracing/redaction.ts",
    mutator: "EqualityOperator",
    original: "Math.abs(value) >= 1e12",
    replacement: "Math.abs(value) > 1e12",
    reason: "only 1e12 itself tells them apart, and 1 followed by twelve zeros fails Luhn either way",
  },
  ...[
    ["const envOf = (c: Container): EnvVar[] => [...(c.env ?? [])];", "a container without env"],
    ["const tags = (m.tags ?? []).map(String);", "a monitor without tags"],
    ["const tolerations = [...(w.pod.tolerations ?? [])];", "a pod without tolerations"],
  ].map(([line, what]) => ({
    file: "policy/policies.ts",
    mutator: "ArrayDeclaration",
    original: "[]",
    replacement: '["Stryker was here"]',
    in: line,
    reason: `${what}: a string element has no name, value, key or env:/service: prefix, so every check skips it as it skips an empty list`,
  })),
  ...[
    ['/^unix:\\/\\/(\\/.+)/.exec(url?.value ?? "")', "no agent URL: neither text starts with unix://"],
    ['const lastPart = name.split("/").pop() ?? "";', "a split always has a last part: the fallback is never used"],
    ['if (!NOTIFY_HANDLE.test(m.message ?? "")) {', "no message: neither text holds an @handle"],
    ['AGENT_IMAGE.test(c.image ?? "")', "no image: neither text is a Datadog Agent image"],
  ].map(([line, what]) => ({
    file: "policy/policies.ts",
    mutator: "StringLiteral",
    original: '""',
    replacement: '"Stryker was here!"',
    in: line,
    reason: what,
  })),
  ...["metadata?.name", "metadata?.namespace"].map((original) => ({
    file: "policy/policies.ts",
    mutator: "OptionalChaining",
    original,
    replacement: original.replace("?.", "."),
    reason: "in describeObject's try: reading a field of missing metadata throws, and the catch falls back to the resource name as the missing name does",
  })),
  {
    file: "policy/policies.ts",
    mutator: "ArrayDeclaration",
    original: "[]",
    replacement: '["Stryker was here"]',
    in: "const mounted = (container.volumeMounts ?? []).some((m) => {",
    reason: "a container without volumeMounts: a string mount's mountPath reads \"undefined\", which no socket directory is or is under",
  },
  {
    file: "policy/policies.ts",
    mutator: "ConditionalExpression",
    original: 'typeof value === "object"',
    replacement: "true",
    in: "if (value && typeof value === \"object\") {",
    reason: "strings are handled before it, and Object.entries of a number or a boolean is empty: the same [] either way",
  },
  {
    file: "policy/policies.ts",
    mutator: "StringLiteral",
    original: '"Equal"',
    replacement: '""',
    in: 'const operator = t.operator ?? "Equal";',
    reason: "the toleration operator is only ever compared with \"Exists\": \"Equal\" and \"\" behave the same",
  },
  {
    file: "policy/policies.ts",
    mutator: "Regex",
    original: '/(?:api|app|application)[_-]?key["\']?[ \\t]*[:=][ \\t]*["\']?(?!\\$|ENC\\[)[^\\s"\'#,}]+/i',
    replacement: '/(?:api|app|application)[_-]?key["\']?[ \\t]*[:=][ \\t]*["\']?(?!\\$|ENC\\[)[^\\s"\'#,}]/i',
    reason: "the pattern is only tested for a match: a run of one or more value characters is there exactly when one is",
  },
  {
    file: "policy/policies.ts",
    mutator: "Regex",
    original: "/(^|[\\s(])@[A-Za-z0-9][\\w.+-]*/",
    replacement: "/(^|[\\s(])@[A-Za-z0-9][^\\w.+-]*/",
    reason: "only tested for a match, and a trailing `*` run may be empty: the handle's first character decides",
  },
  {
    file: "policy/policies.ts",
    mutator: "Regex",
    original: "/(^|[\\s(])@[A-Za-z0-9][\\w.+-]*/",
    replacement: "/(^|[\\s(])@[A-Za-z0-9][\\W.+-]*/",
    reason: "only tested for a match, and a trailing `*` run may be empty: the handle's first character decides",
  },
];

const group = groups[process.env.MUTATION_GROUP ?? ""];
if (process.env.MUTATION_GROUP !== undefined && !group) {
  throw new Error(`MUTATION_GROUP must be one of ${Object.keys(groups).join(", ")}`);
}

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: "mocha",
  // scripts/mocha-cli-cjs.cjs: see there; tsx runs the TypeScript specs and sources.
  testRunnerNodeArgs: ["--require", fileURLToPath(new URL("./scripts/mocha-cli-cjs.cjs", import.meta.url)), "--import", "tsx"],
  mochaOptions: {
    config: ".mocharc.json",
    spec: group?.spec ?? [],
    require: ["./test/support/mutation-hooks.ts"],
  },
  mutate: group?.mutate ?? [],
  coverageAnalysis: "perTest",
  // Two cores shared with everything else on the machine; MUTATION_CONCURRENCY=2 on an idle one.
  concurrency: Number(process.env.MUTATION_CONCURRENCY ?? 1),
  incremental: true,
  incrementalFile: `reports/mutation/${process.env.MUTATION_GROUP ?? "all"}.incremental.json`,
  reporters: ["clear-text", "html", "json", "progress"],
  htmlReporter: { fileName: `reports/mutation/${process.env.MUTATION_GROUP ?? "all"}.html` },
  jsonReporter: { fileName: `reports/mutation/${process.env.MUTATION_GROUP ?? "all"}.json` },
  clearTextReporter: { allowColor: false, reportTests: false, reportMutants: false, reportScoreTable: true },
  // Generous: on a loaded machine a slow run must not pass for a mutant caught by a timeout.
  timeoutMS: 30000,
  tempDirName: ".stryker-tmp",
  cleanTempDir: "always",
  ignorePatterns: ["reports", "bench/results", ".stryker-tmp"],
  thresholds: { high: 95, low: 90, break: null },
};
