/**
 * Certificates for the TLS tests, made with openssl in a temporary directory: a CA, server
 * certificates it signs for given names, and a second CA that signed nothing the servers
 * present (the "untrusted CA"). Removed at process exit.
 */
import { execFileSync } from "node:child_process";
import { chmodSync, chownSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";

export interface CertificateAuthority {
  /** PEM file of the CA certificate (what a client trusts). */
  readonly certFile: string;
  readonly keyFile: string;
  readonly pem: string;
}

export interface ServerCertificate {
  readonly certFile: string;
  /** Mode 0600 (PostgreSQL refuses a key others can read). */
  readonly keyFile: string;
}

const dirs: string[] = [];
process.once("exit", () => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function openssl(args: string[], cwd: string): void {
  execFileSync("openssl", args, { cwd, stdio: ["ignore", "ignore", "pipe"] });
}

export class CertificateFactory {
  readonly dir: string;
  private count = 0;

  constructor() {
    this.dir = mkdtempSync(path.join(os.tmpdir(), "payments-certs-"));
    chmodSync(this.dir, 0o755);
    dirs.push(this.dir);
  }

  /** A self-signed CA (EC P-256, valid one day). */
  ca(name: string): CertificateAuthority {
    const keyFile = path.join(this.dir, `${name}.key`);
    const certFile = path.join(this.dir, `${name}.crt`);
    openssl(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", keyFile], this.dir);
    openssl(
      ["req", "-x509", "-new", "-key", keyFile, "-sha256", "-days", "1", "-subj", `/CN=${name}`,
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-out", certFile],
      this.dir,
    );
    return { certFile, keyFile, pem: readFileSync(certFile, "utf8") };
  }

  /**
   * A server certificate signed by `ca` for `names` (DNS names or IP addresses, as
   * subjectAltName). `owner`: uid/gid that must own the key (a server run as another user).
   */
  server(ca: CertificateAuthority, names: readonly string[], owner?: { uid: number; gid: number }): ServerCertificate {
    this.count += 1;
    const base = path.join(this.dir, `server-${this.count}`);
    const [keyFile, csrFile, certFile, extFile] = [`${base}.key`, `${base}.csr`, `${base}.crt`, `${base}.ext`];
    openssl(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", keyFile], this.dir);
    openssl(["req", "-new", "-key", keyFile, "-subj", `/CN=${names[0]}`, "-out", csrFile], this.dir);
    const san = names.map((n) => (/^[\d.]+$/.test(n) ? `IP:${n}` : `DNS:${n}`)).join(",");
    writeFileSync(extFile, `subjectAltName=${san}\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n`);
    openssl(
      ["x509", "-req", "-in", csrFile, "-CA", ca.certFile, "-CAkey", ca.keyFile, "-CAcreateserial", "-days", "1", "-sha256", "-extfile", extFile, "-out", certFile],
      this.dir,
    );
    chmodSync(keyFile, 0o600);
    if (owner) {
      chownSync(keyFile, owner.uid, owner.gid);
      chownSync(certFile, owner.uid, owner.gid);
    }
    return { certFile, keyFile };
  }
}
