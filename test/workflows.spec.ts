import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import * as yaml from "js-yaml";
import { REPO_ROOT } from "../scripts/mock-engine";
import { imageNodeMajor } from "./support/image-node";

const WORKFLOWS = path.join(REPO_ROOT, ".github", "workflows");

interface Step {
  name?: string;
  id?: string;
  uses?: string;
  run?: string;
  with?: Record<string, unknown>;
  env?: Record<string, unknown>;
}
interface Job {
  name?: string;
  needs?: string | string[];
  if?: string;
  environment?: string | { name: string };
  permissions?: Record<string, string>;
  services?: Record<string, { image: string; ports?: string[]; env?: Record<string, string> }>;
  strategy?: { matrix: Record<string, any> };
  env?: Record<string, unknown>;
  steps: Step[];
}
interface Workflow {
  name: string;
  on: Record<string, any>;
  permissions?: Record<string, string>;
  jobs: Record<string, Job>;
}

const files = fs.readdirSync(WORKFLOWS).filter((f) => /\.ya?ml$/.test(f));
const texts = Object.fromEntries(files.map((f) => [f, fs.readFileSync(path.join(WORKFLOWS, f), "utf8")]));
const workflows: Record<string, Workflow> = Object.fromEntries(files.map((f) => [f, yaml.load(texts[f]) as Workflow]));
const pr = () => workflows["pull-request.yml"];
const deploy = () => workflows["deploy.yml"];
const stacks = fs.readdirSync(REPO_ROOT).flatMap((f) => /^Pulumi\.([^.]+)\.yaml$/.exec(f)?.[1] ?? []).sort();

const stepUsing = (job: Job, action: string, withCommand?: string) =>
  job.steps.find((s) => s.uses?.split("@")[0] === action && (withCommand === undefined || s.with?.command === withCommand));
const runs = (job: Job) => job.steps.map((s) => s.run ?? "").join("\n");
const secretRef = /^\$\{\{\s*secrets(\.[A-Z][A-Z0-9_]*|\[[^\]]+\])\s*\}\}$/;

/** Every `key: value` pair of env and with maps in a workflow, with where it is. */
function settings(w: Workflow): { where: string; key: string; value: unknown }[] {
  const out: { where: string; key: string; value: unknown }[] = [];
  const add = (where: string, map?: Record<string, unknown>) => Object.entries(map ?? {}).forEach(([key, value]) => out.push({ where, key, value }));
  for (const [jobId, job] of Object.entries(w.jobs)) {
    add(`${jobId}.env`, job.env);
    for (const [i, step] of job.steps.entries()) {
      add(`${jobId}.steps[${i}].env`, step.env);
      add(`${jobId}.steps[${i}].with`, step.with);
    }
  }
  return out;
}

describe("GitHub workflows (.github/workflows)", () => {
  it("has the pull-request and deploy workflows, each valid YAML with a name and jobs", () => {
    assert.deepEqual(Object.keys(workflows).sort(), ["deploy.yml", "pull-request.yml"]);
    for (const [file, w] of Object.entries(workflows)) {
      assert.ok(w.name && Object.keys(w.jobs).length > 0, file);
      assert.deepEqual(w.permissions, { contents: "read" }, `${file}: read-only by default; jobs widen what they need`);
    }
  });

  it("pins every action to a version tag (or a commit) and every service image to a tag", () => {
    for (const [file, w] of Object.entries(workflows)) {
      for (const [jobId, job] of Object.entries(w.jobs)) {
        for (const step of job.steps.filter((s) => s.uses)) {
          assert.match(step.uses!, /^[\w.-]+\/[\w.-]+(\/[\w./-]+)?@(v\d+(\.\d+){0,2}|[0-9a-f]{40})$/, `${file} ${jobId}: ${step.uses}`);
        }
        for (const [name, service] of Object.entries(job.services ?? {})) {
          assert.match(service.image, /^[\w./-]+:(?!latest$)[\w.-]+$/, `${file} ${jobId} service ${name}`);
        }
      }
    }
  });

  it("holds no secret literal: credentials come from the secret store, and only through env or with", () => {
    const literal = [
      /AKIA[0-9A-Z]{16}/, // AWS access key id
      /pul-[0-9a-f]{40}/, // Pulumi access token
      /gh[pousr]_[A-Za-z0-9]{36}/, // GitHub token
      /(?<![0-9a-f])[0-9a-f]{32}(?![0-9a-f])|(?<![0-9a-f])[0-9a-f]{40}(?![0-9a-f])/, // Datadog API / application key
      /arn:aws:iam::\d{12}:role\//, // a role ARN belongs in the secret store too
      /-----BEGIN [A-Z ]*PRIVATE KEY-----/,
    ];
    for (const [file, text] of Object.entries(texts)) {
      const withoutCommitPins = text.replace(/(uses:\s*\S+@)[0-9a-f]{40}/g, "$1<commit>");
      for (const pattern of literal) assert.doesNotMatch(withoutCommitPins, pattern, `${file} holds a literal matching ${pattern}`);
    }
    const sensitive = /TOKEN|KEY|PASSWORD|SECRET|role-to-assume/i;
    let checked = 0;
    for (const [file, w] of Object.entries(workflows)) {
      for (const { where, key, value } of settings(w)) {
        if (!sensitive.test(key)) continue;
        checked++;
        assert.match(String(value), key === "github-token" ? /^\$\{\{\s*secrets\.GITHUB_TOKEN\s*\}\}$/ : secretRef, `${file} ${where}.${key} must come from secrets`);
      }
      for (const [jobId, job] of Object.entries(w.jobs)) {
        assert.doesNotMatch(runs(job), /\$\{\{\s*secrets/, `${file} ${jobId}: a secret expanded into a script; pass it through env`);
      }
    }
    assert.ok(checked >= 15, `${checked} credential settings checked`);
  });

  it("runs every job that sets up Node on the Node major of the services' image", () => {
    let checked = 0;
    for (const [file, w] of Object.entries(workflows)) {
      for (const [jobId, job] of Object.entries(w.jobs)) {
        const node = stepUsing(job, "actions/setup-node");
        if (!node) continue;
        checked++;
        assert.equal(node.with?.["node-version"], imageNodeMajor(), `${file} ${jobId}`);
      }
    }
    assert.ok(checked >= 4, `${checked} jobs checked`);
  });

  describe("pull-request.yml", () => {
    it("runs on pull requests to main", () => {
      assert.deepEqual(Object.keys(pr().on), ["pull_request"]);
      assert.deepEqual(pr().on.pull_request.branches, ["main"]);
    });

    it("tests and renders every stack with no credentials, against Postgres, Redis and RabbitMQ service containers", () => {
      const test = pr().jobs.test;
      assert.doesNotMatch(JSON.stringify(test), /secrets\.|id-token/);
      assert.deepEqual(
        Object.values(test.services ?? {}).map((s) => [s.image.split(":")[0], s.ports]),
        [
          ["postgres", ["5432:5432"]],
          ["redis", ["6379:6379"]],
          ["rabbitmq", ["5672:5672"]],
        ],
      );
      assert.equal(test.services!.postgres.env?.POSTGRES_HOST_AUTH_METHOD, "trust", "the app tests connect as postgres without a password");
      const node = stepUsing(test, "actions/setup-node")!;
      assert.deepEqual(node.with, { "node-version": imageNodeMajor(), cache: "npm" }, "the Node major of the services' image");
      assert.ok(stepUsing(test, "actions/checkout"));
      assert.match(runs(test), /npm ci/);
      assert.match(runs(test), /npm test/);
      assert.match(runs(test), /for stack_file in Pulumi\.\*\.yaml[\s\S]*npm run --silent render -- --stack "\$stack"/);
      const upload = stepUsing(test, "actions/upload-artifact")!;
      assert.equal(upload.with?.path, "out/");
      // The HTML report's test drives a headless Chromium; the runner's image has Chrome.
      const testStep = test.steps.find((s) => /npm test/.test(s.run ?? ""))!;
      assert.equal(testStep.env?.CHROMIUM_PATH, "/usr/bin/google-chrome");
    });

    it("previews each stack with the policy pack and a PR comment that always keeps the summary", () => {
      const preview = pr().jobs.preview;
      assert.equal(preview.needs, "test");
      assert.deepEqual(preview.strategy!.matrix.stack, stacks);
      assert.deepEqual(preview.permissions, { contents: "read", "id-token": "write", "pull-requests": "write" });
      const step = stepUsing(preview, "pulumi/actions", "preview")!;
      assert.equal(step.uses, "pulumi/actions@v6");
      assert.equal(step.with?.["stack-name"], "${{ matrix.stack }}");
      assert.equal(step.with?.policyPacks, "policy");
      assert.equal(step.with?.policyPackConfigs, "policy/config/${{ matrix.stack }}.json");
      for (const stack of stacks) assert.ok(fs.existsSync(path.join(REPO_ROOT, "policy", "config", `${stack}.json`)), `policy/config/${stack}.json`);
      assert.equal(step.with?.["comment-on-pr"], true);
      assert.equal(step.with?.["edit-pr-comment"], true);
      assert.equal(step.with?.["always-include-summary"], true);
    });

    it("gives the preview AWS credentials by OIDC and Pulumi's token, both from secrets, and skips forks", () => {
      const preview = pr().jobs.preview;
      const aws = stepUsing(preview, "aws-actions/configure-aws-credentials")!;
      assert.equal(aws.uses, "aws-actions/configure-aws-credentials@v4");
      assert.match(String(aws.with?.["role-to-assume"]), secretRef);
      assert.equal(aws.with?.["aws-access-key-id"], undefined, "OIDC, no long-lived keys");
      assert.match(String(preview.env?.PULUMI_ACCESS_TOKEN), secretRef);
      assert.match(preview.if ?? "", /head\.repo\.full_name == github\.repository/);
    });

    it("validates the monitors with Datadog before the preview", () => {
      const preview = pr().jobs.preview;
      const i = preview.steps.findIndex((s) => /npm run monitors:validate -- --stack "\$\{\{ matrix\.stack \}\}"/.test(s.run ?? ""));
      assert.ok(i >= 0);
      assert.match(String(preview.steps[i].env?.DD_API_KEY), secretRef);
      assert.match(String(preview.steps[i].env?.DD_APP_KEY), secretRef);
      // The offline render refuses ciphertext in Pulumi.<stack>.yaml: validate before the secrets are set.
      assert.ok(i < preview.steps.findIndex((s) => /config set --secret/.test(s.run ?? "")));
    });
  });

  describe("deploy.yml", () => {
    it("runs on pushes to main only, one at a time", () => {
      assert.deepEqual(deploy().on, { push: { branches: ["main"] } });
      assert.equal((deploy() as any).concurrency["cancel-in-progress"], false);
    });

    it("builds and pushes every image from app/Dockerfile to ECR, tagged with the commit SHA", () => {
      const images = deploy().jobs.images;
      assert.deepEqual(images.strategy!.matrix.service, ["payment-service", "fraud-service", "outbox-relay", "post-processing"]);
      assert.equal(stepUsing(images, "aws-actions/amazon-ecr-login")?.uses, "aws-actions/amazon-ecr-login@v2");
      const build = stepUsing(images, "docker/build-push-action")!;
      assert.equal(build.uses, "docker/build-push-action@v6");
      assert.equal(build.with?.file, "app/Dockerfile");
      assert.equal(build.with?.["build-args"], "SERVICE=${{ matrix.service }}");
      assert.equal(build.with?.push, true);
      assert.equal(build.with?.tags, "${{ steps.ecr.outputs.registry }}/${{ matrix.service }}:${{ github.sha }}");
    });

    it("deploys staging, then prod behind the production environment's approval", () => {
      const { staging, prod } = deploy().jobs;
      assert.equal(staging.needs, "images");
      assert.equal(prod.needs, "staging");
      assert.equal(prod.environment, "production");
      for (const [stack, job] of [
        ["staging", staging],
        ["prod", prod],
      ] as const) {
        const up = stepUsing(job, "pulumi/actions", "up")!;
        assert.equal(up.with?.["stack-name"], stack);
        assert.equal(up.with?.policyPacks, "policy");
        assert.equal(up.with?.policyPackConfigs, `policy/config/${stack}.json`);
        assert.equal(job.env?.STACK, stack);
        assert.match(String(job.env?.PULUMI_ACCESS_TOKEN), secretRef);
        assert.match(String(stepUsing(job, "aws-actions/configure-aws-credentials")?.with?.["role-to-assume"]), secretRef);
      }
    });

    it("points each stack at the new images in the job, before `pulumi up`, without committing", () => {
      for (const job of [deploy().jobs.staging, deploy().jobs.prod]) {
        const i = job.steps.findIndex((s) => /pulumi config set --stack "\$STACK" --path "services\.\$service\.image" "\$REGISTRY\/\$service-service:\$GITHUB_SHA"/.test(s.run ?? ""));
        assert.ok(i >= 0);
        assert.match(job.steps[i].run!, /--path "services\.\$service\.version" "\$GITHUB_SHA"/);
        assert.match(job.steps[i].run!, /for service in payment fraud/);
        assert.match(job.steps[i].run!, /for worker in relay:outbox-relay postProcessing:post-processing/);
        assert.match(job.steps[i].run!, /--path "services\.\$\{worker%%:\*\}\.image" "\$REGISTRY\/\$\{worker#\*:\}:\$GITHUB_SHA"/);
        assert.ok(i < job.steps.findIndex((s) => s.with?.command === "up"));
        assert.doesNotMatch(runs(job), /git (commit|push)/);
      }
    });
  });
});
