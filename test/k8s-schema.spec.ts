import * as assert from "node:assert/strict";
import type { RecordedResource } from "../scripts/mock-engine";
import { assertValidKubernetesObjects, validateKubernetesObject } from "../scripts/k8s-schema";

/** A small valid DaemonSet; each test breaks one field of a fresh copy. */
function daemonSet(): any {
  return {
    apiVersion: "apps/v1",
    kind: "DaemonSet",
    metadata: { name: "agent", namespace: "datadog" },
    spec: {
      selector: { matchLabels: { app: "agent" } },
      updateStrategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: "10%" } },
      template: {
        metadata: { labels: { app: "agent" } },
        spec: { containers: [{ name: "agent", image: "gcr.io/datadoghq/agent:7.81.1", ports: [{ containerPort: 8125, protocol: "UDP" }] }] },
      },
    },
  };
}

const recorded = (type: string, name: string, inputs: Record<string, any>): RecordedResource => ({ type, name, inputs, secretPaths: [], custom: true });

describe("Kubernetes schema validation", () => {
  it("accepts a valid DaemonSet", () => {
    assert.deepEqual(validateKubernetesObject(daemonSet()), []);
  });

  it("accepts core and RBAC kinds, picking the model by apiVersion and kind", () => {
    assert.deepEqual(validateKubernetesObject({ apiVersion: "v1", kind: "Secret", metadata: { name: "s", namespace: "n" }, type: "Opaque", stringData: { k: "v" } }), []);
    assert.deepEqual(
      validateKubernetesObject({ apiVersion: "rbac.authorization.k8s.io/v1", kind: "ClusterRole", metadata: { name: "r" }, rules: [{ apiGroups: [""], resources: ["pods"], verbs: ["get"] }] }),
      [],
    );
  });

  it("names the field of a containerPort given as a string", () => {
    const ds = daemonSet();
    ds.spec.template.spec.containers[0].ports[0].containerPort = "8125";
    assert.deepEqual(validateKubernetesObject(ds), ["DaemonSet/datadog/agent: spec.template.spec.containers[0].ports[0].containerPort must be integer"]);
  });

  it("names the field of a container without a name", () => {
    const ds = daemonSet();
    delete ds.spec.template.spec.containers[0].name;
    assert.deepEqual(validateKubernetesObject(ds), ["DaemonSet/datadog/agent: spec.template.spec.containers[0].name is required"]);
  });

  it("reports an int-or-string field of another type once, with both allowed types", () => {
    const ds = daemonSet();
    ds.spec.updateStrategy.rollingUpdate.maxUnavailable = true;
    assert.deepEqual(validateKubernetesObject(ds), ["DaemonSet/datadog/agent: spec.updateStrategy.rollingUpdate.maxUnavailable must be string or integer"]);
  });

  it("lists the allowed values of an enum", () => {
    const ds = daemonSet();
    ds.spec.template.spec.containers[0].ports[0].protocol = "udp";
    assert.deepEqual(validateKubernetesObject(ds), [
      'DaemonSet/datadog/agent: spec.template.spec.containers[0].ports[0].protocol must be equal to one of the allowed values ("SCTP", "TCP", "UDP")',
    ]);
  });

  it("reports a kind it has no schema for instead of passing it", () => {
    const problems = validateKubernetesObject({ apiVersion: "datadoghq.com/v2alpha1", kind: "DatadogAgent", metadata: { name: "datadog", namespace: "datadog" } });
    assert.equal(problems.length, 1);
    assert.match(problems[0], /^DatadogAgent\/datadog\/datadog: apiVersion\/kind datadoghq\.com\/v2alpha1 DatadogAgent is not a Kubernetes kind/);
  });

  it("reports an apiVersion the API server no longer serves, though kubernetes-models has its schema", () => {
    assert.deepEqual(validateKubernetesObject({ ...daemonSet(), apiVersion: "apps/v1beta2" }), [
      "DaemonSet/datadog/agent: apiVersion apps/v1beta2 is no longer served (removed in Kubernetes 1.16)",
    ]);
  });

  it("reports a kind under an apiVersion that does not have it, and a missing kind", () => {
    assert.match(validateKubernetesObject({ ...daemonSet(), apiVersion: "batch/v1" })[0], /batch\/v1 DaemonSet is not a Kubernetes kind/);
    assert.deepEqual(validateKubernetesObject({ apiVersion: "v1", metadata: { name: "x" } }), ["<no kind>/x: kind is required"]);
  });

  it("checks every recorded kubernetes:* resource, skips the provider and fails with all problems", () => {
    const bad = daemonSet();
    bad.spec.template.spec.containers[0].ports[0].containerPort = "8125";
    const resources = [
      recorded("pulumi:providers:kubernetes", "k8s", { kubeconfig: "{}" }),
      recorded("kubernetes:apps/v1:DaemonSet", "good", daemonSet()),
      recorded("kubernetes:apps/v1:DaemonSet", "bad", bad),
      recorded("kubernetes:datadoghq.com/v2alpha1:DatadogAgent", "cr", { apiVersion: "datadoghq.com/v2alpha1", kind: "DatadogAgent", metadata: { name: "d" } }),
    ];
    assert.equal(assertValidKubernetesObjects(resources.slice(0, 2)), 1);
    assert.throws(
      () => assertValidKubernetesObjects(resources),
      (e: Error) => /containerPort must be integer {2}\[kubernetes:apps\/v1:DaemonSet bad\]/.test(e.message) && /DatadogAgent\/d: apiVersion\/kind/.test(e.message),
    );
  });
});
