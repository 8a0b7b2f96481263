/**
 * A stand-in for fraud-service on 127.0.0.1 that records each request (headers included)
 * and answers as told: allow, hold until released, fail, or allow after `delayMs`.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import type { ScoreResponse } from "../../src/fraud-service/api";

export type StandInBehaviour = "allow" | "hold" | "fail" | "delay";

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
  /** How long "delay" waits before answering allow. */
  delayMs = 0;
  readonly requests: RecordedRequest[] = [];
  /** Requests answered so far (a held or delayed one counts once answered, even if its client gave up). */
  answered = 0;
  private readonly held: http.ServerResponse[] = [];
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly waiters: Array<() => boolean> = [];

  private constructor(private readonly server: http.Server) {}

  /** Listens on 127.0.0.1 and `port` (a free one by default). */
  static async start(port = 0): Promise<FraudStandIn> {
    const server = http.createServer();
    const standIn = new FraudStandIn(server);
    server.on("request", (req, res) => standIn.onRequest(req, res));
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, "127.0.0.1", () => {
        server.off("error", reject);
        resolve();
      });
    });
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

  /** Resolves once `count` answers have been sent in total. */
  waitForAnswers(count: number): Promise<void> {
    return new Promise((resolve) => {
      const check = () => {
        if (this.answered < count) return false;
        resolve();
        return true;
      };
      if (!check()) this.waiters.push(check);
    });
  }

  /** Answers every held request with "allow". */
  release(): void {
    for (const res of this.held.splice(0)) this.answer(res, 200, ALLOW);
  }

  async close(): Promise<void> {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }

  private onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      this.requests.push({ headers: req.headers, body: JSON.parse(Buffer.concat(chunks).toString() || "null") });
      if (this.behaviour === "allow") this.answer(res, 200, ALLOW);
      else if (this.behaviour === "fail") this.answer(res, 500, { error: "internal_error" });
      else if (this.behaviour === "delay") {
        const timer = setTimeout(() => {
          this.timers.delete(timer);
          this.answer(res, 200, ALLOW);
        }, this.delayMs);
        this.timers.add(timer);
      } else this.held.push(res);
      this.notify();
    });
  }

  private answer(res: http.ServerResponse, status: number, body: unknown): void {
    // The client may have given up and closed the connection: nothing to answer then.
    if (!res.destroyed) res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
    this.answered += 1;
    this.notify();
  }

  private notify(): void {
    for (const waiter of this.waiters.splice(0)) if (!waiter()) this.waiters.push(waiter);
  }
}
