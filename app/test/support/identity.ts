/**
 * A token issuer for the tests: key pairs generated here, their public halves served as a
 * JWKS on 127.0.0.1, access tokens signed with them. Stands for the identity provider of
 * payment-service's callers and, with another issuer, for the cluster's ServiceAccount
 * token issuer. Everything real: real keys, real signatures, real HTTP.
 */
import { mkdirSync, renameSync, writeFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { exportJWK, exportSPKI, generateKeyPair, SignJWT, type CryptoKey, type JWK, type JWTPayload } from "jose";

export type SigningAlgorithm = "ES256" | "RS256";

interface SigningKey {
  readonly kid: string;
  readonly alg: SigningAlgorithm;
  readonly privateKey: CryptoKey;
  readonly publicJwk: JWK;
  readonly publicPem: string;
}

export interface TokenOptions {
  /** Default "payments:write". */
  readonly scope?: string;
  /** Seconds from now; negative for a token already expired. Default 3600. */
  readonly expiresIn?: number;
  /** Seconds from now the token becomes valid (nbf). Default: no nbf. */
  readonly notBefore?: number;
  readonly issuer?: string;
  readonly audience?: string | string[];
  readonly alg?: SigningAlgorithm;
  /** Sign with a key the JWKS does not publish. */
  readonly unpublishedKey?: boolean;
  /** Default "at+jwt" (RFC 9068). */
  readonly typ?: string;
  /** Further claims. */
  readonly claims?: JWTPayload;
}

const b64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");

export class IdentityProvider {
  /** JWKS requests served, to observe caching and refetches. */
  jwksRequests = 0;
  /** When false the JWKS endpoint answers 503. */
  serving = true;
  private keys: SigningKey[] = [];
  private unpublished?: SigningKey;
  private readonly cache = new Map<string, string>();
  private count = 0;

  private constructor(
    private readonly server: http.Server,
    readonly issuer: string,
    readonly audience: string,
  ) {}

  static async start(options: { issuer?: string; audience?: string } = {}): Promise<IdentityProvider> {
    const server = http.createServer();
    const provider = new IdentityProvider(
      server,
      options.issuer ?? "https://identity.payments.test/",
      options.audience ?? "payments-api",
    );
    provider.keys = [await provider.newKey("ES256"), await provider.newKey("RS256")];
    provider.unpublished = await provider.newKey("ES256");
    server.on("request", (req, res) => provider.onRequest(req, res));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    // A test process that forgot to close it still exits.
    server.unref();
    return provider;
  }

  get jwksUrl(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/.well-known/jwks.json`;
  }

  /** payment-service's AUTH_* env for this issuer (a short cooldown, so rotation tests need not wait 30 s). */
  userAuthEnv(): Record<string, string> {
    return { AUTH_ISSUER: this.issuer, AUTH_AUDIENCE: this.audience, AUTH_JWKS_URL: this.jwksUrl, AUTH_JWKS_COOLDOWN_MS: "200" };
  }

  /** A signed access token for `subject`. */
  async token(subject: string, options: TokenOptions = {}): Promise<string> {
    const key = options.unpublishedKey ? this.unpublished! : this.current(options.alg ?? "ES256");
    const now = Math.floor(Date.now() / 1000);
    const jwt = new SignJWT({ scope: options.scope ?? "payments:write", client_id: "payments-web", ...options.claims })
      .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: options.typ ?? "at+jwt" })
      .setSubject(subject)
      .setIssuer(options.issuer ?? this.issuer)
      .setAudience(options.audience ?? this.audience)
      .setIssuedAt(now)
      .setJti(`jti-${process.pid}-${(this.count += 1)}`)
      .setExpirationTime(now + (options.expiresIn ?? 3600));
    if (options.notBefore !== undefined) jwt.setNotBefore(now + options.notBefore);
    return jwt.sign(key.privateKey);
  }

  /** A valid token for `subject`, made once and reused (signing costs more than the test's request). */
  async tokenFor(subject: string): Promise<string> {
    let token = this.cache.get(subject);
    if (!token) {
      token = await this.token(subject);
      this.cache.set(subject, token);
    }
    return token;
  }

  /** `Authorization` header value for `subject`. */
  async bearer(subject: string): Promise<string> {
    return `Bearer ${await this.tokenFor(subject)}`;
  }

  /** fraud-service's SERVICE_AUTH_* env for this issuer as the cluster's ServiceAccount token issuer. */
  serviceAuthEnv(): Record<string, string> {
    return { SERVICE_AUTH_ISSUER: this.issuer, SERVICE_AUTH_JWKS_URL: this.jwksUrl, SERVICE_AUTH_JWKS_COOLDOWN_MS: "200" };
  }

  /**
   * A projected ServiceAccount token as the kube-apiserver writes one: RS256, no `typ`,
   * `sub` system:serviceaccount:<namespace>:<name>, the `kubernetes.io` claim, `iat`/`nbf`.
   */
  async serviceAccountToken(
    subject: string,
    options: { audience?: string; expiresIn?: number; issuedAgo?: number; issuer?: string } = {},
  ): Promise<string> {
    const key = this.current("RS256");
    const now = Math.floor(Date.now() / 1000) - (options.issuedAgo ?? 0);
    const [, , namespace, name] = subject.split(":");
    return new SignJWT({
      "kubernetes.io": { namespace, serviceaccount: { name, uid: `uid-${name}` }, pod: { name: `${name}-pod`, uid: "pod-uid" } },
    })
      .setProtectedHeader({ alg: key.alg, kid: key.kid })
      .setSubject(subject)
      .setIssuer(options.issuer ?? this.issuer)
      .setAudience([options.audience ?? this.audience])
      .setIssuedAt(now)
      .setNotBefore(now)
      .setExpirationTime(now + (options.expiresIn ?? 3600))
      .sign(key.privateKey);
  }

  /** An unsigned token (`alg: none`) with otherwise valid claims. */
  unsignedToken(subject: string): string {
    const now = Math.floor(Date.now() / 1000);
    const claims = { sub: subject, iss: this.issuer, aud: this.audience, exp: now + 3600, iat: now, scope: "payments:write" };
    return `${b64url({ alg: "none", typ: "at+jwt" })}.${b64url(claims)}.`;
  }

  /**
   * The algorithm confusion attack: HS256 with the published RSA public key (PEM) as the
   * HMAC secret, under the RSA key's kid.
   */
  async hmacWithPublicKey(subject: string): Promise<string> {
    const rsa = this.current("RS256");
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({ scope: "payments:write" })
      .setProtectedHeader({ alg: "HS256", kid: rsa.kid, typ: "at+jwt" })
      .setSubject(subject)
      .setIssuer(this.issuer)
      .setAudience(this.audience)
      .setIssuedAt(now)
      .setExpirationTime(now + 3600)
      .sign(new TextEncoder().encode(rsa.publicPem));
  }

  /**
   * Publishes a new key for `alg` and signs with it from now on; the old key stays
   * published (as identity providers do during a rotation). Returns the new kid.
   */
  async rotate(alg: SigningAlgorithm = "ES256"): Promise<string> {
    const key = await this.newKey(alg);
    this.keys.unshift(key);
    this.cache.clear();
    return key.kid;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private current(alg: SigningAlgorithm): SigningKey {
    const key = this.keys.find((k) => k.alg === alg);
    if (!key) throw new Error(`no ${alg} key`);
    return key;
  }

  private async newKey(alg: SigningAlgorithm): Promise<SigningKey> {
    const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
    this.count += 1;
    const kid = `${alg.toLowerCase()}-${process.pid}-${this.count}`;
    const publicJwk = { ...(await exportJWK(publicKey)), kid, alg, use: "sig" };
    return { kid, alg, privateKey, publicJwk, publicPem: await exportSPKI(publicKey) };
  }

  private onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    if (req.url !== new URL(this.jwksUrl).pathname) {
      res.writeHead(404).end();
      return;
    }
    this.jwksRequests += 1;
    if (!this.serving) {
      res.writeHead(503, { "content-type": "application/json" }).end('{"error":"unavailable"}');
      return;
    }
    res
      .writeHead(200, { "content-type": "application/jwk-set+json" })
      .end(JSON.stringify({ keys: this.keys.map((k) => k.publicJwk) }));
  }
}

let shared: Promise<IdentityProvider> | undefined;
let cluster: Promise<IdentityProvider> | undefined;

/** The test process's identity provider for payment-service's callers, started once. */
export function identity(): Promise<IdentityProvider> {
  shared ??= IdentityProvider.start();
  return shared;
}

/** The test process's stand-in for the cluster's ServiceAccount token issuer (EKS publishes one per cluster). */
export function clusterIssuer(): Promise<IdentityProvider> {
  cluster ??= IdentityProvider.start({ issuer: `https://oidc.eks.us-east-1.amazonaws.com/id/TEST${process.pid}`, audience: "fraud-service" });
  return cluster;
}

/** A token file as the kubelet keeps one: replaced whole (rename), never written in place. */
export class TokenFile {
  readonly path: string;

  constructor(name: string) {
    const dir = path.join(os.tmpdir(), `payments-tokens-${process.pid}`);
    mkdirSync(dir, { recursive: true });
    this.path = path.join(dir, name);
  }

  write(token: string): void {
    const next = `${this.path}.next`;
    writeFileSync(next, token);
    renameSync(next, this.path);
  }
}

const tokenFiles = new Map<string, Promise<TokenFile>>();

/**
 * payment-service's projected ServiceAccount token for `subject` and `audience` (what the
 * program renders for fraud-service), in a file, made once per test process.
 */
export function serviceTokenFile(subject: string, audience: string): Promise<TokenFile> {
  const key = `${subject} ${audience}`;
  let file = tokenFiles.get(key);
  if (!file) {
    file = (async () => {
      const made = new TokenFile(`service-token-${tokenFiles.size}`);
      made.write(await (await clusterIssuer()).serviceAccountToken(subject, { audience }));
      return made;
    })();
    tokenFiles.set(key, file);
  }
  return file;
}
