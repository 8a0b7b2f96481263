/**
 * A property-based sweep of bad requests to POST /v1/payments: generated bodies and headers,
 * each broken on purpose at one layer (media type, size, JSON syntax, Idempotency-Key,
 * payment schema) or at several. Every one must be refused with a 4xx whose body carries
 * one of the API's error codes, never a 5xx, never reach fraud-service, never write a row.
 *
 * The seed is fixed (override with RELIABILITY_SEED to replay another run).
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { CUSTOMER_TIERS } from "../src/tracing/conventions";
import { CURRENCIES, MAX_AMOUNT, PAYMENT_METHOD_TYPES } from "../src/payment-service/request";
import { startPaymentService } from "./support/e2e";
import { identity } from "./support/identity";
import { FraudStandIn } from "./support/fraud-stand-in";
import { seedWallets, snapshotBalances, tableRowCounts } from "./support/ledger-audit";
import { fixedSeed, HttpClient, tally, type HttpAnswer } from "./support/load";
import { createWiring, runCleanups, type Wiring } from "./support/reliability";
import type { RunningService } from "./support/services";

const SEED = fixedSeed(4_242);
const RUNS = 1_200;

/**
 * payment-service's body limit (BODY_LIMIT_BYTES in src/server/http.ts). Not imported: that
 * module loads the tracer, and dd-trace initialised in the test process would put trace
 * headers on the tests' own requests.
 */
const BODY_LIMIT_BYTES = 16 * 1024;

/** Node's default limit on the whole header section. */
const MAX_HEADER_BYTES = 16 * 1024;

const ERROR_CODES = [
  "invalid_request",
  "invalid_json",
  "idempotency_key_required",
  "payload_too_large",
  "unsupported_media_type",
  "headers_too_large",
] as const;
type ErrorCode = (typeof ERROR_CODES)[number];

/** Status of each code the sweep may see. */
const STATUS: Record<ErrorCode, number> = {
  invalid_request: 400,
  invalid_json: 400,
  idempotency_key_required: 400,
  payload_too_large: 413,
  unsupported_media_type: 415,
  headers_too_large: 431,
};

interface BadRequest {
  /** What is broken, for the counterexample. */
  readonly what: string;
  readonly contentType: string | undefined;
  readonly idempotencyKey: string | undefined;
  readonly body: string;
  /** The one answer this request must get; undefined when several layers are broken. */
  readonly expected: ErrorCode | undefined;
}

const SENDER = "sweep_sender";
const RECEIVER = "sweep_receiver";
const VALID_CARD = { number: "4539148803436467", cvv: "847", expiry: "12/39" };
const KNOWN_FIELDS = new Set([
  "sender_id",
  "receiver_id",
  "amount",
  "currency",
  "payment_method_type",
  "card",
  "device",
  "customer_tier",
  "sender_country",
  "receiver_country",
]);
const REQUIRED_FIELDS = ["sender_id", "receiver_id", "amount", "currency", "payment_method_type"] as const;

const printable = (min: number, max: number) =>
  fc.string({ unit: fc.integer({ min: 0x21, max: 0x7e }).map((c) => String.fromCharCode(c)), minLength: min, maxLength: max });

// ---------------------------------------------------------------------------------------
// The valid parts

const validKey = printable(8, 64);

/** A payment that would be paid (between two funded wallets), optionally with valid extras. */
const validPayment: fc.Arbitrary<Payment> = fc
  .record(
    {
      amount: fc.integer({ min: 1, max: 5_000 }),
      card: fc.boolean(),
      device: fc.record({ id: printable(1, 20), fingerprint: printable(1, 40) }),
      customer_tier: fc.constantFrom(...CUSTOMER_TIERS),
      sender_country: fc.constantFrom("US", "GB", "DE"),
      receiver_country: fc.constantFrom("US", "FR", "JP"),
    },
    { requiredKeys: ["amount", "card"] },
  )
  .map(({ card, ...extras }) => ({
    sender_id: SENDER,
    receiver_id: RECEIVER,
    currency: "USD",
    payment_method_type: card ? "card" : "wallet",
    ...(card ? { card: VALID_CARD } : {}),
    ...extras,
  }));

// ---------------------------------------------------------------------------------------
// Broken at one layer

/** Any JSON value that is not a string. */
const notAString = fc.oneof(
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.nat(), { maxLength: 3 }),
  fc.object({ maxDepth: 1 }),
);
const badUserId = fc.oneof(
  notAString,
  fc.constant(""),
  fc.stringMatching(/^[A-Za-z0-9_-]{65,90}$/),
  fc
    .tuple(fc.stringMatching(/^[A-Za-z0-9_-]{0,10}$/), fc.string({ minLength: 1, maxLength: 3 }).filter((s) => /[^A-Za-z0-9_-]/.test(s)))
    .map(([a, b]) => a + b),
);
const badCountry = fc.oneof(notAString, fc.string({ maxLength: 4 }).filter((s) => !/^[A-Z]{2}$/.test(s)));

type Payment = Record<string, unknown>;

/** Mutations of a valid payment; each alone makes it invalid for the schema. */
const schemaMutation: fc.Arbitrary<{ what: string; apply: (p: Payment) => void }> = fc.oneof(
  fc
    .oneof(
      fc.integer({ min: -1_000_000, max: 0 }),
      fc.double({ min: -1e6, max: 1e6, noNaN: true }).filter((n) => !Number.isInteger(n)),
      fc.integer({ min: MAX_AMOUNT + 1, max: Number.MAX_SAFE_INTEGER }),
      fc.constantFrom(1e21, 1.7976931348623157e308, 2 ** 53 + 2),
      fc.string({ maxLength: 8 }),
      fc.integer({ min: 1, max: 1000 }).map(String),
      fc.boolean(),
      fc.constant(null),
      fc.array(fc.integer({ min: 1, max: 100 }), { maxLength: 2 }),
      fc.object({ maxDepth: 1 }),
    )
    .map((amount) => ({ what: `amount ${JSON.stringify(amount)}`, apply: (p: Payment) => void (p.amount = amount) })),
  fc
    .subarray([...REQUIRED_FIELDS], { minLength: 1 })
    .map((fields) => ({ what: `missing ${fields.join(",")}`, apply: (p: Payment) => fields.forEach((f) => delete p[f]) })),
  fc
    .tuple(fc.constantFrom("sender_id", "receiver_id"), badUserId)
    .map(([field, id]) => ({ what: `${field} ${JSON.stringify(id)}`, apply: (p: Payment) => void (p[field] = id) })),
  fc
    .oneof(notAString, fc.string({ maxLength: 5 }).filter((c) => !(CURRENCIES as readonly string[]).includes(c)), fc.constantFrom("usd", "Eur", "XXX", "BTC"))
    .map((currency) => ({ what: `currency ${JSON.stringify(currency)}`, apply: (p: Payment) => void (p.currency = currency) })),
  fc
    .oneof(notAString, fc.string({ maxLength: 14 }).filter((m) => !(PAYMENT_METHOD_TYPES as readonly string[]).includes(m)))
    .map((method) => ({ what: `payment_method_type ${JSON.stringify(method)}`, apply: (p: Payment) => void (p.payment_method_type = method) })),
  fc.constant({ what: "paying oneself", apply: (p: Payment) => void (p.receiver_id = p.sender_id) }),
  fc.constant({
    what: "card method without a card",
    apply: (p: Payment) => {
      p.payment_method_type = "card";
      delete p.card;
    },
  }),
  fc
    .oneof(
      notAString,
      fc.stringMatching(/^\d{1,11}$/).map((number) => ({ ...VALID_CARD, number })),
      fc.stringMatching(/^\d{20,24}$/).map((number) => ({ ...VALID_CARD, number })),
      fc.stringMatching(/^\d{6}[ a-z-]\d{9}$/).map((number) => ({ ...VALID_CARD, number })),
      fc.stringMatching(/^(\d{1,2}|\d{5,6})$/).map((cvv) => ({ ...VALID_CARD, cvv })),
      fc.constantFrom("13/30", "00/30", "1/30", "12-30", "12/2030", "").map((expiry) => ({ ...VALID_CARD, expiry })),
      fc.constant({ ...VALID_CARD, holder: "A. Person" }),
    )
    .map((card) => ({
      what: `card ${JSON.stringify(card)}`,
      apply: (p: Payment) => {
        p.payment_method_type = "card";
        p.card = card;
      },
    })),
  fc
    .oneof(
      notAString.filter((v) => v !== null && typeof v !== "object"),
      fc.constant({ id: "", fingerprint: "f" }),
      fc.constant({ id: "d" }),
      fc.stringMatching(/^[a-f0-9]{513,600}$/).map((fingerprint) => ({ id: "d", fingerprint })),
      fc.constant({ id: "d", fingerprint: "f", ip: "10.0.0.1" }),
    )
    .map((device) => ({ what: `device ${JSON.stringify(device).slice(0, 60)}`, apply: (p: Payment) => void (p.device = device) })),
  fc
    .oneof(notAString, fc.string({ maxLength: 12 }).filter((t) => !(CUSTOMER_TIERS as readonly string[]).includes(t)))
    .map((tier) => ({ what: `customer_tier ${JSON.stringify(tier)}`, apply: (p: Payment) => void (p.customer_tier = tier) })),
  fc
    .tuple(fc.constantFrom("sender_country", "receiver_country"), badCountry)
    .map(([field, c]) => ({ what: `${field} ${JSON.stringify(c)}`, apply: (p: Payment) => void (p[field] = c) })),
  fc
    .tuple(
      fc.string({ minLength: 1, maxLength: 20 }).filter((k) => !KNOWN_FIELDS.has(k) && k !== "__proto__" && k !== "constructor"),
      fc.jsonValue({ maxDepth: 2 }),
    )
    .map(([key, value]) => ({ what: `unknown field ${JSON.stringify(key)}`, apply: (p: Payment) => void (p[key] = value) })),
);

/** A JSON body the schema must refuse. */
const schemaBody: fc.Arbitrary<{ what: string; body: string }> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.tuple(validPayment, fc.array(schemaMutation, { minLength: 1, maxLength: 3 })).map(([payment, mutations]) => {
      for (const m of mutations) m.apply(payment);
      return { what: mutations.map((m) => m.what).join("; "), body: JSON.stringify(payment) };
    }),
  },
  {
    weight: 1,
    arbitrary: fc
      .oneof(fc.array(fc.jsonValue({ maxDepth: 2 }), { maxLength: 4 }), fc.string({ maxLength: 20 }), fc.integer(), fc.boolean(), fc.constant(null))
      .map((value) => ({ what: `a JSON ${value === null ? "null" : Array.isArray(value) ? "array" : typeof value}`, body: JSON.stringify(value) })),
  },
  {
    weight: 1,
    arbitrary: fc
      .tuple(validPayment, fc.constantFrom("1e400", "-1e400", "-0.0", "0.5", "1e-7", "100.000001"))
      .map(([payment, literal]) => ({
        what: `amount written ${literal}`,
        body: JSON.stringify({ ...payment, amount: 0 }).replace('"amount":0', `"amount":${literal}`),
      })),
  },
  {
    weight: 1,
    arbitrary: fc.integer({ min: 100, max: 5_000 }).map((depth) => ({
      what: `nested ${depth} deep`,
      body: `${"[".repeat(depth)}${"]".repeat(depth)}`,
    })),
  },
);

function isJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

/** A body that is not JSON (or JSON that fastify's parser refuses: prototype poisoning). */
const badJsonBody: fc.Arbitrary<{ what: string; body: string }> = fc.oneof(
  fc
    .tuple(validPayment, fc.nat())
    .map(([payment, cut]) => {
      const text = JSON.stringify(payment);
      return { what: "truncated JSON", body: text.slice(0, cut % text.length) };
    }),
  fc
    .tuple(validPayment, fc.constantFrom("x", "}", ",", "]", "{}", "//"))
    .map(([payment, tail]) => ({ what: `JSON followed by ${tail}`, body: JSON.stringify(payment) + tail })),
  fc.string({ minLength: 1, maxLength: 200 }).filter((s) => !isJson(s)).map((body) => ({ what: "not JSON", body })),
  fc
    .constantFrom(
      "{'sender_id': 'a'}",
      '{"amount": 1,}',
      '{"amount": NaN}',
      '{"amount": undefined}',
      '{"amount": 0x10}',
      '/* c */ {"amount": 1}',
      "   ",
      '{"__proto__": {"admin": true}}',
      '{"constructor": {"prototype": {"admin": true}}}',
    )
    .map((body) => ({ what: `JSON-ish ${body}`, body })),
);

/** Over the body limit, and otherwise a payment. */
const oversizedBody: fc.Arbitrary<{ what: string; body: string }> = fc
  .tuple(validPayment, fc.integer({ min: BODY_LIMIT_BYTES + 1, max: 4 * BODY_LIMIT_BYTES }), fc.boolean())
  .map(([payment, size, asField]) => {
    const body = asField
      ? JSON.stringify({ ...payment, note: "x".repeat(size) })
      : JSON.stringify(payment).replace(/}$/, `${" ".repeat(size)}}`);
    return { what: `${Buffer.byteLength(body)} bytes`, body };
  });

const badContentType: fc.Arbitrary<string | undefined> = fc.oneof(
  fc.constant(undefined),
  fc.constantFrom(
    "",
    "text/plain",
    "text/plain; charset=utf-8",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=xyz",
    "application/xml",
    "text/json",
    "application/jsonx",
    "application/merge-patch+json",
    "application/octet-stream",
    ";;;",
  ),
  fc.tuple(fc.stringMatching(/^[a-z]{1,12}$/), fc.stringMatching(/^[a-z.+-]{1,16}$/)).map(([t, s]) => `${t}/${s}`).filter((t) => t !== "application/json"),
);

/**
 * A printable string of `min`..`max` characters built from a short random one, so that
 * shrinking works on its length (a few steps) rather than on thousands of characters.
 */
const printableOfLength = (min: number, max: number) =>
  fc.tuple(printable(1, 16), fc.integer({ min, max })).map(([unit, length]) => unit.repeat(Math.ceil(length / unit.length)).slice(0, length));

/** What Node hands the app for a header value: surrounding spaces and tabs are not part of it. */
const badKey: fc.Arbitrary<{ what: string; key: string | undefined; overflow: boolean }> = fc.oneof(
  fc.constant({ what: "no Idempotency-Key", key: undefined, overflow: false }),
  printable(0, 7).map((key) => ({ what: `short key (${key.length})`, key, overflow: false })),
  printableOfLength(256, 8_000).map((key) => ({ what: `long key (${key.length})`, key, overflow: false })),
  printableOfLength(MAX_HEADER_BYTES + 500, 3 * MAX_HEADER_BYTES).map((key) => ({ what: `huge key (${key.length})`, key, overflow: true })),
  fc
    .tuple(printable(1, 20), fc.constantFrom(" ", "\t", "  "), printable(1, 20))
    .map(([a, gap, b]) => ({ what: "key with blanks inside", key: a + gap + b, overflow: false })),
  fc.constantFrom(" ", "\t", "   ").map((key) => ({ what: "blank key", key, overflow: false })),
);

const JSON_TYPE = fc.constantFrom("application/json", "application/json; charset=utf-8");

function request(what: string, contentType: string | undefined, key: string | undefined, body: string, expected?: ErrorCode): BadRequest {
  return { what, contentType, idempotencyKey: key, body, expected };
}

/** One layer broken, everything else valid: the answer is known exactly. */
const singleLayer: fc.Arbitrary<BadRequest> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.tuple(schemaBody, JSON_TYPE, validKey).map(([b, type, key]) =>
      request(`schema: ${b.what}`, type, key, b.body, Buffer.byteLength(b.body) > BODY_LIMIT_BYTES ? "payload_too_large" : "invalid_request"),
    ),
  },
  {
    weight: 2,
    arbitrary: fc.tuple(badJsonBody, JSON_TYPE, validKey).map(([b, type, key]) => request(`json: ${b.what}`, type, key, b.body, "invalid_json")),
  },
  {
    weight: 1,
    arbitrary: fc.tuple(oversizedBody, JSON_TYPE, validKey).map(([b, type, key]) => request(`size: ${b.what}`, type, key, b.body, "payload_too_large")),
  },
  {
    weight: 2,
    arbitrary: fc
      .tuple(validPayment, badContentType, validKey)
      .map(([p, type, key]) => request(`media: ${JSON.stringify(type)}`, type, key, JSON.stringify(p), "unsupported_media_type")),
  },
  {
    weight: 2,
    arbitrary: fc
      .tuple(validPayment, JSON_TYPE, badKey)
      .map(([p, type, k]) =>
        request(`key: ${k.what}`, type, k.key, JSON.stringify(p), k.overflow ? "headers_too_large" : "idempotency_key_required"),
      ),
  },
);

/** Several layers broken at once: any of the API's 4xx codes will do. */
const severalLayers: fc.Arbitrary<BadRequest> = fc
  .record({
    contentType: fc.oneof(JSON_TYPE, badContentType),
    key: fc.oneof(validKey.map((key) => ({ what: "valid key", key, overflow: false })), badKey),
    body: fc.oneof(schemaBody, badJsonBody, oversizedBody),
  })
  .map(({ contentType, key, body }) =>
    request(`several: content-type ${JSON.stringify(contentType)}; ${key.what}; ${body.what}`, contentType, key.key, body.body),
  );

const badRequest = fc.oneof({ weight: 4, arbitrary: singleLayer }, { weight: 1, arbitrary: severalLayers });

describe("reliability: bad input sweep on POST /v1/payments", function () {
  this.timeout(120_000);

  const cleanups: Array<() => Promise<unknown>> = [];
  let wiring: Wiring;
  let standIn: FraudStandIn;
  let service: RunningService;
  let client: HttpClient;

  before(async function () {
    wiring = await createWiring("rel_input");
    cleanups.push(() => wiring.close());
    await seedWallets(wiring.db.pool, [
      { userId: SENDER, currency: "USD", balance: 1_000_000, tier: "enterprise", country: "US" },
      { userId: RECEIVER, currency: "USD", balance: 0, tier: "standard", country: "US" },
    ]);
    standIn = await FraudStandIn.start();
    cleanups.push(() => standIn.close());
    service = await startPaymentService(wiring, { FRAUD_SERVICE_URL: standIn.url });
    cleanups.push(() => service.stop());
    client = new HttpClient(service.url, 4);
    cleanups.push(async () => client.close());
  });

  after(async function () {
    await runCleanups(cleanups);
  });

  it(`refuses ${RUNS} generated bad requests with a 4xx and an error code, writing nothing (seed ${SEED})`, async function () {
    const rowCountsBefore = await tableRowCounts(wiring.db.pool);
    const balancesBefore = await snapshotBalances(wiring.db.pool);
    const tables = Object.keys(rowCountsBefore);
    assert.ok(tables.includes("transactions") && tables.includes("ledger_entries") && tables.includes("outbox"));
    const totalRows = async () => {
      const { rows } = await wiring.db.pool.query<{ n: string }>(
        `SELECT (${tables.map((t) => `(SELECT count(*) FROM "${t}")`).join(" + ")})::text AS n`,
      );
      return Number(rows[0].n);
    };
    const answers: HttpAnswer[] = [];
    const bearer = await (await identity()).bearer(SENDER);

    // Each run checks its own effect (rows, fraud calls), so that while shrinking a failure
    // every candidate is judged on its own.
    let run = 0;
    const property = fc.asyncProperty(badRequest, async (request) => {
      const rowsBefore = await totalRows();
      const fraudCallsBefore = standIn.requests.length;
      // A valid key is made unique per run: a request wrongly accepted must not turn the
      // candidates tried after it into replays of its key.
      const key = request.idempotencyKey;
      const unique = key !== undefined && /^[\x21-\x7e]{8,64}$/.test(key) ? `${key}-${(run += 1)}` : key;
      // Authenticated as the sender: the sweep is about what comes after authentication.
      const answer = await client.request({
        path: "/v1/payments",
        headers: { "content-type": request.contentType, "idempotency-key": unique, authorization: bearer },
        body: request.body,
      });
      answers.push(answer);
      const code = answer.body?.error;
      const where = `${request.what}: answered ${answer.status} ${answer.raw.slice(0, 300)}`;
      assert.ok(answer.status >= 400 && answer.status < 500, `not a 4xx: ${where}`);
      assert.ok(typeof code === "string" && (ERROR_CODES as readonly string[]).includes(code), `no known error code: ${where}`);
      assert.equal(answer.status, STATUS[code as ErrorCode], `status for ${code}: ${where}`);
      if (request.expected) assert.equal(code, request.expected, where);
      assert.ok(Array.isArray(answer.body?.details), `details: ${where}`);
      if (code === "invalid_request" || code === "idempotency_key_required") {
        const details = answer.body?.details as Array<Record<string, unknown>>;
        assert.ok(details.length > 0, `details say what is wrong: ${where}`);
        for (const d of details) assert.ok(typeof d.path === "string" && typeof d.code === "string" && typeof d.message === "string", where);
      }
      assert.equal(standIn.requests.length, fraudCallsBefore, `reached fraud-service: ${where}`);
      assert.equal(await totalRows(), rowsBefore, `wrote a row: ${where}`);
    });

    try {
      // Bounded: past the limit (shrinking a failure included) it stops and reports what it has.
      await fc.assert(property, { seed: SEED, numRuns: RUNS, plugins: [fc.interruptAfterTimeLimit(75_000, { failOnInterrupt: true })] });
    } catch (error) {
      throw new Error(`bad input sweep failed with seed ${SEED} (replay: RELIABILITY_SEED=${SEED}):\n${(error as Error).message}`);
    }

    assert.deepEqual(await tableRowCounts(wiring.db.pool), rowCountsBefore, "no table gained or lost a row");
    assert.deepEqual(await snapshotBalances(wiring.db.pool), balancesBefore);
    assert.equal(standIn.requests.length, 0);
    console.log(`      ${answers.length} requests: ${JSON.stringify(tally(answers))}`);

    // The sweep left the service healthy: a valid payment still goes through.
    const ok = await client.pay({ sender_id: SENDER, receiver_id: RECEIVER, amount: 100, currency: "USD", payment_method_type: "wallet" }, `rel-input-${process.pid}`);
    assert.equal(ok.status, 201, ok.raw);
  });
});
