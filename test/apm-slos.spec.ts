import * as assert from "node:assert/strict";
import { MEASURED_SPANS, SERVICES, SPANS } from "../app/src/tracing/conventions";
import { p95LatencyQuery } from "../components/apm-monitors";
import { ApmSlos, apmSlosArgsProblems, availabilityQuery, p95Query, paymentSloSpecs, SLO_DEFAULTS, type ApmSlosArgs } from "../components/apm-slos";
import { sloSettingsSchema } from "../components/config";
import { datadogObjects } from "../scripts/manifests";
import { runStack, runUnderMocks, type ProgramRun } from "../scripts/mock-engine";
import { rawSettings } from "./support/stack-settings";
import { stackRun } from "./support/rendered-env";

const SLO = "ServiceLevelObjective";
const slosOf = (run: ProgramRun) => Object.fromEntries(datadogObjects(run).filter((d) => d.kind === SLO).map((d) => [d.name, d.inputs as any]));

describe("payment SLOs (components/apm-slos.ts)", () => {
  describe("queries", () => {
    it("counts good payments as hits minus errors of payment.process_payment, scoped to env and service", () => {
      assert.deepEqual(availabilityQuery(SPANS.processPayment, "prod", SERVICES.payment), {
        numerator:
          "sum:trace.payment.process_payment.hits{env:prod,service:payment-service}.as_count() - sum:trace.payment.process_payment.errors{env:prod,service:payment-service}.as_count()",
        denominator: "sum:trace.payment.process_payment.hits{env:prod,service:payment-service}.as_count()",
      });
    });

    it("measures latency with the same p95 metric query as the latency monitor", () => {
      const sli = p95Query(SPANS.processPayment, "prod", SERVICES.payment);
      assert.equal(sli, "p95:trace.payment.process_payment{env:prod,service:payment-service}");
      assert.ok(p95LatencyQuery(SPANS.processPayment, "prod", SERVICES.payment, "5m", 2).startsWith(`percentile(last_5m):${sli} `));
    });

    it("counts on payment.process_payment, a span the app marks measured (its trace metrics count every payment)", () => {
      assert.ok((MEASURED_SPANS as readonly string[]).includes("payment.process_payment"));
    });

    it("takes the latency threshold from the monitors unless the SLO settings name one", () => {
      const [, latency] = paymentSloSpecs("prod", SLO_DEFAULTS, 2);
      assert.equal(latency.timeSlice?.threshold, 2);
      const [, custom] = paymentSloSpecs("prod", { ...SLO_DEFAULTS, latencyThresholdSeconds: 1.2 }, 2);
      assert.equal(custom.timeSlice?.threshold, 1.2);
      assert.match(custom.name, /p95 ≤ 1\.2 s/);
    });
  });

  describe("settings (proposed payments-apm:slos)", () => {
    it("defaults to 99.9 % availability and 99.5 % of 5-minute slices within the threshold over 30 days", () => {
      assert.deepEqual(SLO_DEFAULTS, { timeframe: "30d", availabilityTarget: 99.9, latencyTarget: 99.5 });
    });

    it("accepts numbers given as strings by `pulumi config set --path`", () => {
      assert.equal(sloSettingsSchema.parse({ availabilityTarget: "99.95" }).availabilityTarget, 99.95);
    });

    it("rejects a target of 100 %, an unknown window and unknown keys, naming each", () => {
      const result = sloSettingsSchema.safeParse({ availabilityTarget: 100, timeframe: "1d", target: 99 });
      assert.ok(!result.success);
      const issues = result.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`);
      assert.ok(issues.includes("availabilityTarget: must be a percentage strictly between 0 and 100"), issues.join("\n"));
      assert.ok(issues.includes("timeframe: must be 7d, 30d or 90d"), issues.join("\n"));
      assert.ok(issues.some((i) => /target/.test(i) && /nrecognized/.test(i)), issues.join("\n"));
    });

    it("accepts a non-empty env, valid settings and a positive threshold", () => {
      assert.deepEqual(apmSlosArgsProblems({ env: "qa", settings: { timeframe: "7d", availabilityTarget: 99.5, latencyTarget: 99 }, latencyThresholdSeconds: 0.5 }), []);
    });

    it("refuses a blank env, a bad target and a threshold that is not a finite number of seconds above 0, saying why", () => {
      const problems = (latencyThresholdSeconds: number) => apmSlosArgsProblems({ env: "  ", settings: { ...SLO_DEFAULTS, latencyTarget: 100 }, latencyThresholdSeconds });
      assert.deepEqual(problems(Infinity), [
        { propertyPath: "env", reason: "must not be empty" },
        { propertyPath: "settings.latencyTarget", reason: "must be a percentage strictly between 0 and 100" },
        { propertyPath: "latencyThresholdSeconds", reason: "must be a number of seconds greater than 0, got Infinity" },
      ]);
      assert.deepEqual(
        [-1, Number.NaN].map((t) => problems(t)[2]),
        [
          { propertyPath: "latencyThresholdSeconds", reason: "must be a number of seconds greater than 0, got -1" },
          { propertyPath: "latencyThresholdSeconds", reason: "must be a number of seconds greater than 0, got NaN" },
        ],
      );
    });

    it("reports bad component args by property path before creating anything", () => {
      const problems = apmSlosArgsProblems({ env: "", settings: { ...SLO_DEFAULTS, latencyTarget: 0 }, latencyThresholdSeconds: 0 });
      assert.deepEqual(
        problems.map((p) => p.propertyPath),
        ["env", "settings.latencyTarget", "latencyThresholdSeconds"],
      );
    });
  });

  describe("ApmSlos (rendered under the mock engine)", () => {
    const args: ApmSlosArgs = { env: "qa", settings: { timeframe: "7d", availabilityTarget: 99.5, latencyTarget: 99 }, latencyThresholdSeconds: 1.5 };
    const tags = ["source:apm", "env:qa", "service:payment-service", "team:payments"];

    it("creates the availability and latency SLOs with the settings' window and targets, and exports their ids", async function () {
      this.timeout(60_000);
      const run = await runUnderMocks("qa", { config: {}, secretKeys: [] }, () => {
        const component = new ApmSlos("slo", args);
        return { sloIds: component.sloIds, objectives: component.objectives };
      });
      assert.deepEqual(
        run.resources.filter((r) => r.type === "datadog:index/serviceLevelObjective:ServiceLevelObjective").map((r) => [r.name, r.inputs]),
        [
          [
            "slo-payment-availability",
            {
              name: "[qa] Payment availability",
              description: "Share of payment.process_payment spans of payment-service in qa that end without an error (declined payments are not errors).",
              type: "metric",
              query: {
                numerator:
                  "sum:trace.payment.process_payment.hits{env:qa,service:payment-service}.as_count() - sum:trace.payment.process_payment.errors{env:qa,service:payment-service}.as_count()",
                denominator: "sum:trace.payment.process_payment.hits{env:qa,service:payment-service}.as_count()",
              },
              thresholds: [{ timeframe: "7d", target: 99.5 }],
              timeframe: "7d",
              targetThreshold: 99.5,
              tags,
            },
          ],
          [
            "slo-payment-latency",
            {
              name: "[qa] Payment latency p95 ≤ 1.5 s",
              description: "Share of 5-minute slices in which the p95 of payment.process_payment for payment-service in qa is at most 1.5 s.",
              type: "time_slice",
              sliSpecification: {
                timeSlice: {
                  query: { formula: { formulaExpression: "p95" }, queries: [{ metricQuery: { name: "p95", query: "p95:trace.payment.process_payment{env:qa,service:payment-service}" } }] },
                  comparator: "<=",
                  threshold: 1.5,
                  queryIntervalSeconds: 300,
                },
              },
              thresholds: [{ timeframe: "7d", target: 99 }],
              timeframe: "7d",
              targetThreshold: 99,
              tags,
            },
          ],
        ],
      );
      assert.deepEqual(run.outputs, {
        sloIds: { "payment-availability": "slo-payment-availability-id", "payment-latency": "slo-payment-latency-id" },
        objectives: [
          { key: "payment-availability", name: "[qa] Payment availability", timeframe: "7d", id: "slo-payment-availability-id" },
          { key: "payment-latency", name: "[qa] Payment latency p95 ≤ 1.5 s", timeframe: "7d", id: "slo-payment-latency-id" },
        ],
      });
      // Registered as the component's outputs, so the engine records it complete with them.
      assert.deepEqual(run.componentOutputs["payments-apm:monitoring:ApmSlos::slo"], ["sloIds"]);
    });

    const failure = async (bad: Partial<ApmSlosArgs>) => {
      let created: string[] = ["(the run did not fail)"];
      let error: any;
      try {
        const run = await runUnderMocks("qa", { config: {}, secretKeys: [] }, () => {
          new ApmSlos("slo", { ...args, ...bad });
        });
        created = run.resources.map((r) => r.name);
      } catch (e) {
        error = e;
        created = [];
      }
      return { created, error };
    };

    it("refuses one bad arg with that property's error, creating nothing", async function () {
      this.timeout(60_000);
      const { created, error } = await failure({ latencyThresholdSeconds: 0 });
      assert.deepEqual(created, []);
      assert.equal(error.constructor.name, "InputPropertyError");
      assert.deepEqual([error.propertyPath, error.reason], ["latencyThresholdSeconds", "must be a number of seconds greater than 0, got 0"]);
    });

    it("refuses several bad args with one error naming each, creating nothing", async function () {
      this.timeout(60_000);
      const { created, error } = await failure({ env: "", latencyThresholdSeconds: -2 });
      assert.deepEqual(created, []);
      assert.equal(error.constructor.name, "InputPropertiesError");
      assert.equal(error.message, 'Invalid ApmSlos "slo" arguments');
      assert.deepEqual(error.errors, [
        { propertyPath: "env", reason: "must not be empty" },
        { propertyPath: "latencyThresholdSeconds", reason: "must be a number of seconds greater than 0, got -2" },
      ]);
    });
  });

  for (const stack of ["prod", "staging"]) {
    describe(`stack ${stack} under the mock engine`, () => {
      let slos: Record<string, any>;
      before(async function () {
        this.timeout(60_000);
        slos = slosOf(await stackRun(stack));
      });

      it("creates an availability metric SLO on payment hits and errors", () => {
        const slo = slos["apm-slos-payment-availability"];
        assert.equal(slo.type, "metric");
        assert.deepEqual(slo.query, availabilityQuery(SPANS.processPayment, stack, SERVICES.payment));
        assert.deepEqual(slo.thresholds, [{ timeframe: "30d", target: 99.9 }]);
        assert.equal(slo.timeframe, "30d");
        assert.equal(slo.targetThreshold, 99.9);
        assert.equal(slo.name, `[${stack}] Payment availability`);
      });

      it("creates a time-slice latency SLO: p95 at most the monitor's threshold in each 5-minute slice", () => {
        const slo = slos["apm-slos-payment-latency"];
        const threshold = Number(rawSettings(stack).monitors.paymentLatencyP95Seconds ?? 2);
        assert.equal(slo.type, "time_slice");
        assert.deepEqual(slo.sliSpecification, {
          timeSlice: {
            query: { formula: { formulaExpression: "p95" }, queries: [{ metricQuery: { name: "p95", query: `p95:trace.payment.process_payment{env:${stack},service:payment-service}` } }] },
            comparator: "<=",
            threshold,
            queryIntervalSeconds: 300,
          },
        });
        assert.equal(slo.query, undefined);
        assert.deepEqual(slo.thresholds, [{ timeframe: "30d", target: 99.5 }]);
      });

      it("tags both SLOs with env, service, team and source", () => {
        for (const slo of Object.values(slos)) {
          assert.deepEqual(slo.tags, ["source:apm", `env:${stack}`, "service:payment-service", "team:payments"]);
        }
      });

      it("exports the SLO ids by key", async () => {
        const outputs = (await stackRun(stack)).outputs as any;
        assert.deepEqual(outputs.sloIds, { "payment-availability": "apm-slos-payment-availability-id", "payment-latency": "apm-slos-payment-latency-id" });
      });
    });
  }

  it("follows a change of the payment latency monitor threshold", async function () {
    this.timeout(60_000);
    const monitors = { ...rawSettings("prod").monitors, paymentLatencyP95Seconds: 1.5 };
    const run = await runStack("prod", { overrides: { "payments-apm:monitors": JSON.stringify(monitors) } });
    const slo = slosOf(run)["apm-slos-payment-latency"];
    assert.equal(slo.sliSpecification.timeSlice.threshold, 1.5);
    assert.equal(slo.name, "[prod] Payment latency p95 ≤ 1.5 s");
  });
});
