/**
 * A stand-in for fraud-service on 127.0.0.1 that records each request (headers included)
 * and answers as told: allow, hold until released, or fail.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import type { ScoreResponse } from "../../src/fraud-service/api";

export type StandInBehaviour = "allow" | "hold" | "fail";

export interface RecordedRequest {
  readonly headers: http.IncomingHttpHeaders;
  readonly body: unknown;
}

const ALLOW: ScoreResponse = {
  decision: "allow",
  risk_score: 1,
  risk_factors: [],
  confidence: 1,
  degraded: false,
  model_version: "stand-in",
};

export class FraudStandIn {
  behaviour: StandInBehaviour = "allow";
  readonly requests: RecordedRequest[] = [];
  private readonly held: http.ServerResponse[] = [];
  private readonly waiters: Array<() => boolean> = [];

  private constructor(private readonly server: http.Server) {}

  static async start(): Promise<FraudStandIn> {
    const server = http.createServer();
    const standIn = new FraudStandIn(server);
    server.on("request", (req, res) => standIn.onRequest(req, res));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return standIn;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** Resolves once `count` requests have arrived in total. */
  waitForRequests(count: number): Promise<RecordedRequest[]> {
    return new Promise((resolve) => {
      const check = () => {
        if (this.requests.length < count) return false;
        resolve(this.requests.slice(0, count));
        return true;
      };
      if (!check()) this.waiters.push(check);
    });
  }

  /** Answers every held request with "allow". */
  release(): void {
    for (const res of this.held.splice(0)) answer(res, 200, ALLOW);
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }

  private onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      this.requests.push({ headers: req.headers, body: JSON.parse(Buffer.concat(chunks).toString() || "null") });
      if (this.behaviour === "allow") answer(res, 200, ALLOW);
      else if (this.behaviour === "fail") answer(res, 500, { error: "internal_error" });
      else this.held.push(res);
      for (const waiter of this.waiters.splice(0)) if (!waiter()) this.waiters.push(waiter);
    });
  }
}

function answer(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
}
