import * as assert from "node:assert/strict";
import { podSecurityLabels, ServiceNamespace } from "../components/service-namespace";
import { runUnderMocks, type ProgramRun } from "../scripts/mock-engine";
import { recordRegistrations, type Registration } from "./support/service-registrations";

type Rendered = ProgramRun & { readonly registrations: Readonly<Record<string, Registration>> };

async function render(enforceRestricted: boolean | undefined): Promise<Rendered> {
  let registrations: Record<string, Registration> = {};
  const run = await runUnderMocks("test", { config: {}, secretKeys: [] }, () => {
    registrations = recordRegistrations();
    return { name: new ServiceNamespace("payments", { name: "payments", enforceRestricted }).name };
  });
  return { ...run, registrations };
}

describe("the services namespace (ServiceNamespace)", () => {
  let byDefault: Rendered;
  let warnOnly: Rendered;
  before(async function () {
    this.timeout(60_000);
    byDefault = await render(undefined);
    warnOnly = await render(false);
  });

  it("enforces Pod Security restricted as of Kubernetes 1.33 unless told otherwise, and audits and warns about it too", () => {
    const namespaces = byDefault.resources.filter((r) => r.type === "kubernetes:core/v1:Namespace");
    assert.deepEqual(
      namespaces.map((r) => r.inputs),
      [
        {
          apiVersion: "v1",
          kind: "Namespace",
          metadata: {
            name: "payments",
            labels: {
              "app.kubernetes.io/part-of": "payments",
              "pod-security.kubernetes.io/enforce": "restricted",
              "pod-security.kubernetes.io/enforce-version": "v1.33",
              "pod-security.kubernetes.io/audit": "restricted",
              "pod-security.kubernetes.io/warn": "restricted",
            },
          },
        },
      ],
    );
  });

  it("only audits and warns about restricted when enforceRestricted is false", () => {
    const ns = warnOnly.resources.find((r) => r.type === "kubernetes:core/v1:Namespace");
    assert.deepEqual(ns?.inputs.metadata.labels, {
      "app.kubernetes.io/part-of": "payments",
      "pod-security.kubernetes.io/audit": "restricted",
      "pod-security.kubernetes.io/warn": "restricted",
    });
  });

  it("creates the Namespace as the component's child (so it inherits the cluster's provider)", () => {
    assert.equal(byDefault.registrations["payments-namespace"].parent, "urn:pulumi:test::payments-apm::pulumi:pulumi:Stack$payments-apm:app:ServiceNamespace::payments");
  });

  it("hands its callers the namespace's name, and registers it as the component's output", () => {
    assert.equal(byDefault.outputs.name, "payments");
    assert.deepEqual(byDefault.componentOutputs["payments-apm:app:ServiceNamespace::payments"], ["name"]);
  });

  it("labels: restricted enforced and pinned to v1.33, audited and warned about either way", () => {
    assert.deepEqual(podSecurityLabels(true), {
      "pod-security.kubernetes.io/enforce": "restricted",
      "pod-security.kubernetes.io/enforce-version": "v1.33",
      "pod-security.kubernetes.io/audit": "restricted",
      "pod-security.kubernetes.io/warn": "restricted",
    });
    assert.deepEqual(podSecurityLabels(false), {
      "pod-security.kubernetes.io/audit": "restricted",
      "pod-security.kubernetes.io/warn": "restricted",
    });
  });
});
