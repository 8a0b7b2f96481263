import assert from "node:assert/strict";
import { connect, type Socket } from "node:net";
import { SERVICES } from "../src/tracing/conventions";
import { e2e, newKey, scoreAuthorization, startFraudService, startPaymentService, type E2E } from "./support/e2e";
import { identity } from "./support/identity";
import type { RunningService } from "./support/services";

/** Limits small enough for a test to cross, the ratios of the defaults kept. */
const LIMITS = {
  HTTP_REQUEST_TIMEOUT_MS: "1500",
  HTTP_HEADERS_TIMEOUT_MS: "1000",
  HTTP_KEEP_ALIVE_TIMEOUT_MS: "1000",
  HTTP_MAX_REQUESTS_PER_SOCKET: "3",
  HTTP_MAX_CONNECTIONS: "60",
};
/** Node checks the timeouts every 500 ms (server/http.ts); the rest is a busy machine's slack. */
const SLACK_MS = 2_500;

interface SlowResult {
  /** The status line's code, or undefined when the connection closed without an answer. */
  readonly status: number | undefined;
  /** From the first byte sent to the connection's close. */
  readonly elapsedMs: number;
}

/**
 * A client that sends `head` at once, then `trickle` one byte every `everyMs`, until the
 * server answers or closes; it never finishes on its own (the trickle outlasts any limit).
 */
function slowClient(service: RunningService, head: string, trickle: string, everyMs = 100): Promise<SlowResult> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const socket = connect(service.port, "127.0.0.1");
    let received = "";
    let timer: NodeJS.Timeout | undefined;
    socket.setEncoding("latin1");
    socket.on("data", (chunk: string) => (received += chunk));
    socket.on("error", () => undefined); // a reset is a close too
    socket.on("close", () => {
      clearInterval(timer);
      const status = /^HTTP\/1\.1 (\d{3})/.exec(received)?.[1];
      resolve({ status: status ? Number(status) : undefined, elapsedMs: Date.now() - started });
    });
    socket.once("connect", () => {
      socket.write(head);
      let i = 0;
      timer = setInterval(() => {
        if (socket.destroyed || !socket.writable) return clearInterval(timer);
        socket.write(trickle[i++ % trickle.length]);
      }, everyMs);
    });
    setTimeout(() => reject(new Error("the server never closed a slow client's connection")), 30_000).unref();
  });
}

/** An authenticated request's head: authentication runs before the body is read, so it must pass for the body's timeout to be reached. */
const PAYMENT_HEAD = (length: number, authorization: string, path = "/v1/payments") =>
  `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nAuthorization: ${authorization}\r\nIdempotency-Key: ${newKey()}\r\nContent-Length: ${length}\r\n\r\n`;
const BODY = JSON.stringify({ sender_id: "slow_sender", receiver_id: "slow_receiver", amount: 100, currency: "USD", payment_method_type: "wallet" });

/** GET /healthz on a fresh connection: status and time taken. */
async function probe(service: RunningService): Promise<{ status: number; ms: number }> {
  const started = Date.now();
  const response = await fetch(`${service.url}/healthz`, { headers: { connection: "close" } });
  await response.arrayBuffer();
  return { status: response.status, ms: Date.now() - started };
}

describe("slow and greedy clients", function () {
  this.timeout(60_000);
  let env: E2E;
  let payment: RunningService;
  let fraud: RunningService;

  before(async function () {
    env = await e2e();
    [payment, fraud] = await Promise.all([
      startPaymentService(env, { FRAUD_SERVICE_URL: env.fraud.url, ...LIMITS }),
      startFraudService(env, LIMITS),
    ]);
  });

  after(async function () {
    await Promise.all([payment?.stop(), fraud?.stop()]);
  });

  for (const which of ["payment", "fraud"] as const) {
    it(`${which}-service answers 408 to a body trickled past HTTP_REQUEST_TIMEOUT_MS and closes the connection`, async function () {
      const service = which === "payment" ? payment : fraud;
      const head =
        which === "payment"
          ? PAYMENT_HEAD(BODY.length, await (await identity()).bearer("slow_sender"))
          : PAYMENT_HEAD(BODY.length, await scoreAuthorization(env), "/v1/score");
      const result = await slowClient(service, head, BODY);
      assert.equal(result.status, 408);
      assert.ok(result.elapsedMs >= 1_400 && result.elapsedMs < 1_500 + SLACK_MS, `closed after ${result.elapsedMs} ms`);
    });
  }

  it("answers 408 to headers trickled past HTTP_HEADERS_TIMEOUT_MS", async function () {
    const result = await slowClient(payment, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n", "X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    assert.equal(result.status, 408);
    assert.ok(result.elapsedMs >= 900 && result.elapsedMs < 1_000 + SLACK_MS, `closed after ${result.elapsedMs} ms`);
  });

  it("cuts 50 trickling clients at once in time, answering others meanwhile", async function () {
    // 50 users: one user's 50 would meet the per-user rate limit (429) before any body is read.
    const users = await identity();
    const heads = await Promise.all(Array.from({ length: 50 }, async (_, i) => PAYMENT_HEAD(BODY.length, await users.bearer(`slow_sender_${i}`))));
    const slow = heads.map((head) => slowClient(payment, head, BODY, 200));
    await new Promise((resolve) => setTimeout(resolve, 300));
    const meanwhile = await probe(payment);
    const results = await Promise.all(slow);
    assert.equal(meanwhile.status, 200);
    assert.ok(meanwhile.ms < 1_000, `a probe took ${meanwhile.ms} ms while 50 clients trickled`);
    assert.deepEqual([...new Set(results.map((r) => r.status))], [408]);
    const slowest = Math.max(...results.map((r) => r.elapsedMs));
    assert.ok(slowest < 1_500 + SLACK_MS, `the last trickling client was cut after ${slowest} ms`);
    assert.equal(payment.logs.filter((l) => l.level === "error" || l.level === "fatal").length, 0, payment.tail());
  });

  it("refuses connections past HTTP_MAX_CONNECTIONS, and accepts again once some close", async function () {
    const held: Socket[] = [];
    try {
      for (let i = 0; i < 60; i++) {
        const socket = connect(payment.port, "127.0.0.1");
        socket.on("error", () => undefined);
        await new Promise((resolve) => socket.once("connect", resolve));
        socket.write("GET /healthz HTTP/1.1\r\n"); // an unfinished request holds the connection
        held.push(socket);
      }
      await assert.rejects(probe(payment), "the 61st connection is closed at accept");
    } finally {
      for (const socket of held) socket.destroy();
    }
    // The server sees the closes asynchronously: the next connection is accepted soon after.
    let accepted: { status: number } | undefined;
    for (let attempt = 0; attempt < 20 && !accepted; attempt++) {
      accepted = await probe(payment).catch(() => undefined);
      if (!accepted) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.equal(accepted?.status, 200);
  });

  it("closes a keep-alive connection after HTTP_MAX_REQUESTS_PER_SOCKET requests, and an idle one after HTTP_KEEP_ALIVE_TIMEOUT_MS", async function () {
    // Raw sockets: Node's own client drops a connection whose server says `timeout=1`.
    const exchange = (requests: number) =>
      new Promise<{ answers: string[]; closedAfterMs: number }>((resolve) => {
        const socket = connect(payment.port, "127.0.0.1");
        let received = "";
        let lastAnswer = Date.now();
        socket.setEncoding("latin1");
        socket.on("data", (chunk: string) => {
          received += chunk;
          lastAnswer = Date.now();
        });
        socket.on("error", () => undefined);
        socket.on("close", () => resolve({ answers: received.split(/(?=HTTP\/1\.1 )/).filter(Boolean), closedAfterMs: Date.now() - lastAnswer }));
        socket.once("connect", () => socket.write("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".repeat(requests)));
      });

    // Node answers a request past the cap 503, and the connection closes.
    const four = await exchange(4);
    const statuses = four.answers.map((a) => Number(a.slice(9, 12)));
    assert.deepEqual(statuses, [200, 200, 200, 503], four.answers.join("\n"));
    assert.deepEqual(four.answers.map((a) => /^connection: (\S+)/im.exec(a)?.[1]), ["keep-alive", "keep-alive", "close", "close"]);

    const idle = await exchange(1);
    assert.equal(idle.answers.length, 1);
    assert.match(idle.answers[0], /^connection: keep-alive/im);
    assert.ok(idle.closedAfterMs >= 800 && idle.closedAfterMs < 1_000 + SLACK_MS, `idle connection closed after ${idle.closedAfterMs} ms`);
  });

  it("refuses to start when HTTP_REQUEST_TIMEOUT_MS would outlast the shutdown deadline, naming the variable", async function () {
    const { runToExit, renderedEnv, testEnv } = await import("./support/services");
    const base = testEnv(await renderedEnv(SERVICES.payment), env.intake.url, { ...env.db.env, FRAUD_SERVICE_URL: env.fraud.url });
    const result = await runToExit(SERVICES.payment, { ...base, HTTP_REQUEST_TIMEOUT_MS: "30000", SHUTDOWN_TIMEOUT_MS: "20000" });
    assert.equal(result.code, 1);
    assert.match(result.output, /invalid environment: HTTP_REQUEST_TIMEOUT_MS: must be less than SHUTDOWN_TIMEOUT_MS/);
  });

  it("on SIGTERM with a client trickling its body: cuts it with 408 and still exits 0 before the deadline", async function () {
    const service = await startPaymentService(env, {
      FRAUD_SERVICE_URL: env.fraud.url,
      ...LIMITS,
      HTTP_REQUEST_TIMEOUT_MS: "2000",
      SHUTDOWN_TIMEOUT_MS: "8000",
    });
    const trickling = slowClient(service, PAYMENT_HEAD(BODY.length, await (await identity()).bearer("slow_sender")), BODY, 100);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const signalled = Date.now();
    service.child.kill("SIGTERM");
    const code = await service.exited;
    const exitMs = Date.now() - signalled;
    const result = await trickling;
    assert.equal(code, 0, service.tail());
    assert.ok(exitMs < 8_000, `exited after ${exitMs} ms`);
    assert.ok(result.status === 408 || result.status === undefined, `answered ${result.status}`);
    assert.ok(!service.logs.some((l) => l.msg === "shutdown deadline exceeded"));
  });
});
