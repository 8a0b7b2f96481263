import assert from "node:assert/strict";
import http from "node:http";
import { HTTP_SERVER_SPAN, SERVICES } from "../src/tracing/conventions";
import { passesLuhn } from "../src/tracing/redaction";
import { createWallet } from "./support/database";
import { e2e, newKey, scoreAuthorization, subjectOf, type E2E } from "./support/e2e";
import { identity } from "./support/identity";
import type { RunningService } from "./support/services";

/**
 * A card number and a CVV a client puts where no API expects them: in the query string,
 * in the path, in headers, in a body that is not valid JSON or has extra fields. Neither
 * may reach the bytes the tracer sends to the Agent nor a log line of either service.
 */
const PAN = "4916338506082832";
const CVV = "8305";
const PAN_GROUPED = "4916 3385 0608 2832";

/** Each value, not inside a longer run of letters or digits (hex ids could hold "8305"). */
const LEAKS: ReadonlyArray<readonly [string, RegExp]> = [
  ["PAN", new RegExp(`(^|[^0-9A-Za-z])${PAN}($|[^0-9A-Za-z])`)],
  ["PAN with spaces", new RegExp(`(^|[^0-9A-Za-z])${PAN_GROUPED}($|[^0-9A-Za-z])`)],
  ["PAN, URL-encoded spaces", new RegExp(PAN_GROUPED.replace(/ /g, "(%20|\\+)"))],
  ["CVV", new RegExp(`(^|[^0-9A-Za-z])${CVV}($|[^0-9A-Za-z])`)],
];

function leaksIn(text: string): string[] {
  return LEAKS.filter(([, pattern]) => pattern.test(text)).map(([name]) => name);
}

interface Attempt {
  readonly what: string;
  readonly method: "GET" | "POST";
  readonly path: string;
  readonly headers?: Record<string, string>;
  readonly body?: string;
  readonly status: number;
  readonly error?: string;
}

/** What each service is sent: `valid` is a body its route accepts. */
function attempts(route: string, valid: () => Record<string, unknown>): Attempt[] {
  const json = { "content-type": "application/json" };
  const query = `card_number=${PAN}&cvv=${CVV}&pan=${PAN}&cvc=${CVV}&token=${PAN}&password=${CVV}&secret=${CVV}`;
  return [
    { what: "card fields in the query string", method: "POST", path: `${route}?${query}`, headers: json, body: JSON.stringify(valid()), status: 400, error: "query_not_allowed" },
    { what: "bare values in the query string", method: "POST", path: `${route}?${PAN}&${CVV}`, headers: json, body: JSON.stringify(valid()), status: 400, error: "query_not_allowed" },
    { what: "grouped PAN in the query string", method: "GET", path: `${route}?n=${encodeURIComponent(PAN_GROUPED)}&c=${CVV}`, status: 400, error: "query_not_allowed" },
    { what: "PAN and CVV as path segments", method: "GET", path: `${route}/${PAN}/${CVV}`, status: 404, error: "not_found" },
    { what: "PAN in the path, CVV in the query", method: "POST", path: `${route}/${PAN}?cvv=${CVV}`, headers: json, body: "{}", status: 400, error: "query_not_allowed" },
    {
      what: "PAN and CVV in headers",
      method: "POST",
      path: route,
      headers: {
        ...json,
        "user-agent": `checkout/1.0 (card ${PAN}; cvv ${CVV})`,
        referer: `https://shop.example/pay?card=${PAN}&cvv=${CVV}`,
        "x-card-number": PAN,
        "x-cvv": CVV,
        "x-forwarded-for": `${PAN}, ${CVV}`,
      },
      body: JSON.stringify(valid()),
      status: route === "/v1/payments" ? 201 : 200,
    },
    {
      what: "PAN and CVV in a body that is not JSON",
      method: "POST",
      path: route,
      headers: json,
      body: `{"card":{"number":"${PAN}","cvv":"${CVV}"`,
      status: 400,
      error: "invalid_json",
    },
    {
      what: "PAN and CVV in a body with numbers where strings belong",
      method: "POST",
      path: route,
      headers: json,
      body: `{"card_number":${PAN},"cvv":${CVV},"x":${CVV}x}`,
      status: 400,
      error: "invalid_json",
    },
    {
      what: "PAN and CVV in fields the API does not know",
      method: "POST",
      path: route,
      headers: json,
      body: JSON.stringify({ ...valid(), card_number: PAN, cvv: CVV, pan: Number(PAN) }),
      status: 400,
      error: "invalid_request",
    },
  ];
}

/** A valid token for the route: payment-service's ServiceAccount token for /v1/score, else one for the body's sender. */
async function authorizationFor(attempt: Attempt): Promise<string> {
  if (attempt.path.startsWith("/v1/score")) return scoreAuthorization(await e2e());
  let body: unknown = null;
  try {
    body = JSON.parse(attempt.body ?? "null");
  } catch {
    // not JSON: a token for a client of its own
  }
  return (await identity()).bearer(subjectOf(body));
}

async function send(service: RunningService, attempt: Attempt): Promise<void> {
  const response = await fetch(`${service.url}${attempt.path}`, {
    method: attempt.method,
    headers: { "idempotency-key": newKey(), authorization: await authorizationFor(attempt), ...attempt.headers },
    body: attempt.body,
  });
  const text = await response.text();
  assert.equal(response.status, attempt.status, `${service.service}, ${attempt.what}: ${text}`);
  if (attempt.error) assert.equal((JSON.parse(text) as { error?: string }).error, attempt.error, `${service.service}, ${attempt.what}`);
  assert.deepEqual(leaksIn(text), [], `${service.service}, ${attempt.what}: the answer echoes it`);
}

describe("card data anywhere in a request", function () {
  let env: E2E;
  let sent: Record<string, number>;

  before(async function () {
    this.timeout(60_000);
    assert.ok(passesLuhn(PAN), "the test PAN is a valid card number");
    env = await e2e();
    const receiver = await createWallet(env.db.pool, "anywhere_receiver", { balance: 0 });
    const since = BigInt(Date.now()) * 1_000_000n;
    const payment = async () => ({
      sender_id: await createWallet(env.db.pool, "anywhere_sender", { balance: 10_000 }),
      receiver_id: receiver,
      amount: 100,
      currency: "USD",
      payment_method_type: "wallet",
    });
    let counter = 0;
    const score = () => ({
      transaction_id: `00000000-0000-4000-8000-${String(++counter).padStart(12, "0")}`,
      sender_id: `anywhere_${process.pid}`,
      receiver_id: "anywhere_receiver",
      amount: 100,
      currency: "USD",
      payment_method_type: "wallet",
    });
    sent = {};
    for (const [service, route, valid] of [
      [env.payment, "/v1/payments", await payment()],
      [env.fraud, "/v1/score", score()],
    ] as const) {
      const list = attempts(route, () => valid);
      for (const attempt of list) {
        // A fresh sender per accepted payment, so replays do not hide a request.
        const body = attempt.status === 201 ? { ...attempt, body: JSON.stringify(await payment()) } : attempt;
        await send(service, body);
      }
      // The Host header is the one a tracer copies into http.url; fetch cannot set it.
      const status = await new Promise<number | undefined>((resolve, reject) => {
        const req = http.request(`${service.url}/healthz`, { headers: { host: `${PAN}.${CVV}` }, agent: false }, (res) => {
          res.resume();
          res.on("end", () => resolve(res.statusCode));
        });
        req.on("error", reject);
        req.end();
      });
      assert.equal(status, 200, `${service.service}: PAN in the Host header`);
      sent[service.service] = list.length + 1;
    }
    // Every request's server span, sampled in or out, reaches the intake.
    await env.intake.waitForSpans(
      (spans) =>
        [SERVICES.payment, SERVICES.fraud].every(
          (service) => spans.filter((s) => s.service === service && s.name === HTTP_SERVER_SPAN && s.start >= since).length >= sent[service],
        ),
      20_000,
    );
  });

  it("refuses a query string on every API route, with 400 query_not_allowed", function () {
    // Asserted request by request in `send`; here, that both services were exercised.
    assert.deepEqual(Object.keys(sent).sort(), [SERVICES.fraud, SERVICES.payment]);
  });

  it("never reaches the bytes sent to the trace intake", function () {
    const requests = env.intake.requests();
    assert.ok(requests.length > 0);
    const found = requests.flatMap((r) => leaksIn(r.body.toString("latin1")).map((leak) => `${leak} in ${r.method} ${r.path}`));
    assert.deepEqual(found, []);
  });

  it("never reaches a log line of either service", function () {
    const found = [env.payment, env.fraud].flatMap((s) => s.output.flatMap((line) => leaksIn(line).map((leak) => `${leak} in ${s.service}: ${line}`)));
    assert.deepEqual(found, []);
  });

  it("logs the route pattern of each request, never its raw path or query", function () {
    const access = [env.payment, env.fraud].flatMap((s) => s.logs.filter((l) => l.msg === "request completed" || l.msg === "request errored"));
    assert.ok(access.length > 0);
    for (const line of access) {
      const req = line.req as Record<string, unknown>;
      assert.equal(req.url, undefined, JSON.stringify(line));
      assert.ok(req.route === null || (typeof req.route === "string" && req.route.startsWith("/")), JSON.stringify(line));
    }
    // A 404 has no route: it is logged without one.
    assert.ok(access.some((l) => (l.res as { statusCode?: number } | undefined)?.statusCode === 404 && (l.req as { route?: unknown }).route === null));
  });
});
