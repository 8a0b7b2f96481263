import * as assert from "node:assert/strict";
import { agentAddressEnv, agentConnectionOf, agentSocketVolume, viaHostPort } from "../components/traced-service";

const apm = { socketEnabled: true, portEnabled: true, port: 8126 };

describe("how the services reach the node's trace-agent", () => {
  describe("agentConnectionOf", () => {
    it("uses our Agent's apm settings as they are when the stack deploys the Agent", () => {
      const existingAgent = { socketPath: "/run/other/apm.socket", port: 9999 };
      assert.deepEqual(agentConnectionOf({ deployAgent: true, apm, existingAgent }), { socketEnabled: true, portEnabled: true, port: 8126 });
      assert.deepEqual(agentConnectionOf({ deployAgent: true, apm: { socketEnabled: false, portEnabled: true, port: 9126 } }), {
        socketEnabled: false,
        portEnabled: true,
        port: 9126,
      });
    });

    it("uses the existing Agent's socket alone when only its socket is given", () => {
      assert.deepEqual(agentConnectionOf({ deployAgent: false, apm, existingAgent: { socketPath: "/run/datadog-chart/apm.socket" } }), {
        socketEnabled: true,
        portEnabled: false,
        port: 8126,
        socketPath: "/run/datadog-chart/apm.socket",
      });
    });

    it("uses the existing Agent's hostPort alone when only its port is given", () => {
      assert.deepEqual(agentConnectionOf({ deployAgent: false, apm, existingAgent: { port: 9126 } }), {
        socketEnabled: false,
        portEnabled: true,
        port: 9126,
        socketPath: undefined,
      });
    });

    it("keeps both ways to the existing Agent when both are given", () => {
      assert.deepEqual(agentConnectionOf({ deployAgent: false, apm, existingAgent: { socketPath: "/var/run/datadog/apm.socket", port: 8127 } }), {
        socketEnabled: true,
        portEnabled: true,
        port: 8127,
        socketPath: "/var/run/datadog/apm.socket",
      });
    });

    it("refuses a stack without our Agent that says nothing of the existing one", () => {
      const message = /^Error: datadog\.existingAgent needs socketPath or port when deployAgent is false$/;
      assert.throws(() => agentConnectionOf({ deployAgent: false, apm }), (e: Error) => message.test(String(e)));
      assert.throws(() => agentConnectionOf({ deployAgent: false, apm, existingAgent: {} }), (e: Error) => message.test(String(e)));
    });
  });

  describe("viaHostPort", () => {
    it("drops the socket and keeps the hostPort, for pods that may not mount a host directory", () => {
      assert.deepEqual(viaHostPort({ socketEnabled: true, portEnabled: true, port: 8126, socketPath: "/run/datadog-chart/apm.socket" }), {
        socketEnabled: false,
        portEnabled: true,
        port: 8126,
        socketPath: undefined,
      });
    });

    it("refuses an Agent without a hostPort: restricted pods could not reach it", () => {
      assert.throws(
        () => viaHostPort({ socketEnabled: true, portEnabled: false, port: 8126 }),
        (e: Error) => String(e) === "Error: the Agent has no hostPort: pods under Pod Security restricted cannot reach it",
      );
    });
  });

  describe("agentAddressEnv", () => {
    it("points the tracer at our Agent's socket path when the socket is on", () => {
      assert.deepEqual(agentAddressEnv({ socketEnabled: true, portEnabled: true, port: 8126 }), [
        { name: "DD_TRACE_AGENT_URL", value: "unix:///var/run/datadog/apm.socket" },
      ]);
    });

    it("points the tracer at an existing Agent's own socket path", () => {
      assert.deepEqual(agentAddressEnv({ socketEnabled: true, portEnabled: false, port: 8126, socketPath: "/run/datadog-chart/apm.socket" }), [
        { name: "DD_TRACE_AGENT_URL", value: "unix:///run/datadog-chart/apm.socket" },
      ]);
    });

    it("points the tracer at the node's IP and the Agent's hostPort when there is no socket", () => {
      assert.deepEqual(agentAddressEnv({ socketEnabled: false, portEnabled: true, port: 9126 }), [
        { name: "DD_AGENT_HOST", valueFrom: { fieldRef: { fieldPath: "status.hostIP" } } },
        { name: "DD_TRACE_AGENT_PORT", value: "9126" },
      ]);
    });
  });

  describe("agentSocketVolume", () => {
    it("mounts nothing from the node when the socket is off", () => {
      assert.deepEqual(agentSocketVolume({ socketEnabled: false, portEnabled: true, port: 8126, socketPath: "/run/datadog-chart/apm.socket" }), {
        volumes: [],
        mounts: [],
      });
    });

    it("mounts our Agent's socket directory read-only, created if missing", () => {
      assert.deepEqual(agentSocketVolume({ socketEnabled: true, portEnabled: false, port: 8126 }), {
        volumes: [{ name: "apm-socket", hostPath: { path: "/var/run/datadog", type: "DirectoryOrCreate" } }],
        mounts: [{ name: "apm-socket", mountPath: "/var/run/datadog", readOnly: true }],
      });
    });

    it("mounts the directory of an existing Agent's socket path, at the same path in the pod", () => {
      assert.deepEqual(agentSocketVolume({ socketEnabled: true, portEnabled: false, port: 8126, socketPath: "/run/datadog-chart/apm.socket" }), {
        volumes: [{ name: "apm-socket", hostPath: { path: "/run/datadog-chart", type: "DirectoryOrCreate" } }],
        mounts: [{ name: "apm-socket", mountPath: "/run/datadog-chart", readOnly: true }],
      });
    });
  });
});
