"use strict";
// Experiment (bench/experiments.ts "http-agent"): app/src/payment-service/fraud-client.ts with
// node:http and a keep-alive Agent instead of global fetch, compiled by hand. Same contract:
// any failure is FraudServiceUnavailable, the deadline covers the whole exchange.
Object.defineProperty(exports, "__esModule", { value: true });
exports.createFraudClient = createFraudClient;
const node_http_1 = require("node:http");
const conventions_1 = require("../tracing/conventions");
const api_1 = require("../fraud-service/api");
const outcomes_1 = require("./outcomes");
const agent = new node_http_1.Agent({ keepAlive: true, maxSockets: 256 });
function createFraudClient(baseUrl, timeoutMs) {
    const url = new URL(conventions_1.ROUTES.score, baseUrl);
    return {
        score(request) {
            const body = JSON.stringify(request);
            return new Promise((resolve, reject) => {
                let settled = false;
                const fail = (error) => {
                    if (settled) return;
                    settled = true;
                    clearTimeout(deadline);
                    reject(error);
                };
                const req = (0, node_http_1.request)(url, {
                    method: "POST",
                    agent,
                    headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) },
                }, (res) => {
                    const chunks = [];
                    res.on("data", (chunk) => chunks.push(chunk));
                    res.on("error", (error) => fail(new outcomes_1.FraudServiceUnavailable("fraud-service unreachable", { cause: error })));
                    res.on("end", () => {
                        if (settled) return;
                        const status = res.statusCode ?? 0;
                        if (status < 200 || status > 299) return fail(new outcomes_1.FraudServiceUnavailable(`fraud-service answered ${status}`));
                        let parsed;
                        try {
                            parsed = api_1.scoreResponseSchema.safeParse(JSON.parse(Buffer.concat(chunks).toString("utf8")));
                        } catch {
                            parsed = { success: false };
                        }
                        if (!parsed.success) return fail(new outcomes_1.FraudServiceUnavailable("fraud-service answered an unexpected body"));
                        settled = true;
                        clearTimeout(deadline);
                        resolve(parsed.data);
                    });
                });
                const deadline = setTimeout(() => {
                    fail(new outcomes_1.FraudServiceUnavailable(`fraud-service did not answer within ${timeoutMs} ms`));
                    req.destroy();
                }, timeoutMs);
                req.on("error", (error) => fail(new outcomes_1.FraudServiceUnavailable("fraud-service unreachable", { cause: error })));
                req.end(body);
            });
        },
    };
}
