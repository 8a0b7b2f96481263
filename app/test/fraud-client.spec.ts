/**
 * payment-service's HTTP client for fraud-service, against a plain local server: the
 * keep-alive behaviour that the e2e tests cannot see (they only see answers).
 */
import assert from "node:assert/strict";
import { once } from "node:events";
import http from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { createFraudClient } from "../src/payment-service/fraud-client";
import type { ScoreRequest, ScoreResponse } from "../src/fraud-service/api";

const ANSWER: ScoreResponse = {
  decision: "allow",
  risk_score: 5,
  risk_factors: [],
  confidence: 0.9,
  degraded: false,
  model_version: "test",
};

const REQUEST: ScoreRequest = {
  transaction_id: "00000000-0000-4000-8000-000000000001",
  sender_id: "client_sender",
  receiver_id: "client_receiver",
  amount: 100,
  currency: "USD",
  payment_method_type: "wallet",
};

describe("the fraud-service client", function () {
  let server: http.Server;
  let url: string;
  const sockets: Array<{ socket: Socket; endedByClient: boolean; closed: Promise<unknown> }> = [];

  before(async function () {
    server = http.createServer((req, res) => {
      req.resume();
      req.on("end", () => {
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify(ANSWER));
      });
    });
    // Announced to the client as `Keep-Alive: timeout=3`.
    server.keepAliveTimeout = 3_000;
    server.on("connection", (socket: Socket) => {
      const entry = { socket, endedByClient: false, closed: once(socket, "close") };
      // 'end' is the peer's FIN: the client closed the idle connection itself.
      socket.on("end", () => (entry.endedByClient = true));
      sockets.push(entry);
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  after(async function () {
    server.closeAllConnections();
    server.close();
  });

  it("reuses one connection for consecutive scores", async function () {
    const client = createFraudClient(url, 2_000, () => "service-token");
    const before = sockets.length;
    for (let i = 0; i < 3; i++) assert.deepEqual(await client.score(REQUEST), ANSWER);
    assert.equal(sockets.length - before, 1);
  });

  it("closes an idle connection itself before the server's keep-alive timeout", async function () {
    this.timeout(10_000);
    const client = createFraudClient(url, 2_000, () => "service-token");
    const before = sockets.length;
    assert.deepEqual(await client.score(REQUEST), ANSWER);
    const [connection] = sockets.slice(before);
    assert.ok(connection, "the score opened a connection");
    // The client closes at about 2 s (the server's hint less a second), the server at 3 s;
    // whichever does, the socket closes within 4 s.
    await connection.closed;
    assert.ok(
      connection.endedByClient,
      "the client closed the idle connection: a payment is never sent on one the server is closing",
    );
  });
});
