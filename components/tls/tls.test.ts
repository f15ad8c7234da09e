import { execFileSync, spawnSync } from "child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "fs";
import { tmpdir } from "os";
import { join } from "path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { rootStubs } from "../../test/helpers/rootStubs";
import { checkGivenCertificate, firstCertificate } from "./certificate";
import { givenChainDigest, givenDrift, ownCaDrift } from "./drift";
import { fileDigest } from "../render/shell";
import { CA_DIR, giteaTlsEnvironment, healthTarget, renderGivenCertificateScript, renderRenewalPeriodicScript, renderRenewalServiceUnit, renderRenewalTimerUnit, renderTlsTool, servedPaths, TlsSpec, tlsVolumeMount } from "./render";

/** Certificates made with the openssl CLI, as an owner would bring them. */
class Pki {
  readonly dir = mkdtempSync(join(tmpdir(), "gh-tls-"));
  constructor() {
    this.openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "30", "-subj", "/CN=Test CA", "-addext", "basicConstraints=critical,CA:TRUE", "-keyout", this.path("ca.key"), "-out", this.path("ca.crt"));
  }
  path(name: string): string {
    return join(this.dir, name);
  }
  openssl(...args: string[]): string {
    return execFileSync("openssl", args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  }
  /** A server certificate from the test CA for SAN (e.g. DNS:git.example.test), valid DAYS. */
  issue(name: string, san: string, days: number): { cert: string; key: string; chain: string } {
    writeFileSync(this.path(`${name}.ext`), `subjectAltName=${san}\n`);
    this.openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/O=test", "-keyout", this.path(`${name}.key`), "-out", this.path(`${name}.csr`));
    this.openssl("x509", "-req", "-in", this.path(`${name}.csr`), "-CA", this.path("ca.crt"), "-CAkey", this.path("ca.key"), "-set_serial", String(Date.now()), "-days", String(days), "-extfile", this.path(`${name}.ext`), "-out", this.path(`${name}.crt`));
    const cert = readFileSync(this.path(`${name}.crt`), "utf8");
    return { cert, key: readFileSync(this.path(`${name}.key`), "utf8"), chain: cert + readFileSync(this.path("ca.crt"), "utf8") };
  }
}

const DAY = 24 * 60 * 60 * 1000;

describe("a certificate the owner gives, checked before any SSH session", () => {
  let pki: Pki;
  let good: ReturnType<Pki["issue"]>;
  let other: ReturnType<Pki["issue"]>;
  beforeAll(() => {
    pki = new Pki();
    good = pki.issue("good", "DNS:git.example.test,IP:192.168.1.10", 20);
    other = pki.issue("other", "DNS:other.example.test", 20);
  });
  afterAll(() => rmSync(pki.dir, { recursive: true, force: true }));
  const messages = (r: ReturnType<typeof checkGivenCertificate>) => r.problems.map((p) => `${p.key}: ${p.message}`);

  it("accepts a matching pair that names the host (DNS or IP), keeps the chain, and warns 30 days before its end", () => {
    const report = checkGivenCertificate(good.chain, good.key, "git.example.test");
    expect(messages(report)).toEqual([]);
    expect(report.chain).toBe(good.chain.replace(/\n+$/, "\n"));
    // Valid 20 days: within the renewal window, so a warning that nothing renews it.
    expect(report.warnings.map((w) => w.message)).toEqual([expect.stringMatching(/^expires in (19|20) days .*nothing renews a certificate you give/)]);
    expect(messages(checkGivenCertificate(good.chain, good.key, "192.168.1.10"))).toEqual([]);
  });

  it("refuses what is not PEM, a key with a passphrase, a key of another certificate, a CA first", () => {
    expect(messages(checkGivenCertificate("hello", good.key, "git.example.test"))).toEqual([expect.stringMatching(/^tlsCertificate: must be a PEM certificate/)]);
    expect(messages(checkGivenCertificate(good.chain, "not a key", "git.example.test"))).toEqual([expect.stringMatching(/^tlsKey: must be a PEM private key/)]);
    const encrypted = pki.openssl("pkey", "-in", pki.path("good.key"), "-aes256", "-passout", "pass:secret");
    expect(messages(checkGivenCertificate(good.chain, encrypted, "git.example.test"))).toEqual([expect.stringMatching(/^tlsKey: is protected by a passphrase/)]);
    expect(messages(checkGivenCertificate(good.chain, other.key, "git.example.test"))).toEqual([expect.stringMatching(/^tlsKey: does not match the certificate/)]);
    const caFirst = readFileSync(pki.path("ca.crt"), "utf8") + good.cert;
    expect(messages(checkGivenCertificate(caFirst, readFileSync(pki.path("ca.key"), "utf8"), "git.example.test"))).toEqual(
      expect.arrayContaining([expect.stringMatching(/^tlsCertificate: its first certificate is a CA/)]),
    );
    // Nothing of a key in any message, whichever refusal (the PEM header a message names as the form is no key).
    const refused = [
      checkGivenCertificate("hello", good.key, "git.example.test"),
      checkGivenCertificate(good.chain, "not a key", "git.example.test"),
      checkGivenCertificate(good.chain, encrypted, "git.example.test"),
      checkGivenCertificate(good.chain, other.key, "git.example.test"),
      checkGivenCertificate(caFirst, readFileSync(pki.path("ca.key"), "utf8"), "git.example.test"),
    ].flatMap(messages);
    expect(refused.length).toBeGreaterThanOrEqual(5);
    const keyLines = [good.key, other.key, encrypted, readFileSync(pki.path("ca.key"), "utf8")].flatMap((k) => k.split("\n").filter((l) => l.length > 20 && !l.startsWith("-----")));
    expect(keyLines.length).toBeGreaterThanOrEqual(8);
    for (const m of refused) {
      expect(m).not.toContain("PRIVATE KEY-----\n");
      expect(m).not.toContain("-----END");
      for (const line of keyLines) expect(m).not.toContain(line);
    }
  });

  it("refuses an expired certificate and one that does not name publicHost, naming the key to fix", () => {
    const later = new Date(Date.now() + 25 * DAY);
    expect(messages(checkGivenCertificate(good.chain, good.key, "git.example.test", later))).toEqual([expect.stringMatching(/^tlsCertificate: expired on \d{4}-\d\d-\d\d; give a renewed one$/)]);
    expect(messages(checkGivenCertificate(good.chain, good.key, "gitea.lan"))).toEqual([expect.stringMatching(/^tlsCertificate: does not name gitea\.lan \(gitea-homelab:publicHost\).*DNS:git\.example\.test/)]);
    expect(messages(checkGivenCertificate(undefined, undefined, "gitea.lan")).map((m) => m.split(":")[0])).toEqual(["tlsCertificate", "tlsKey"]);
  });

  it("finds the CA certificate in the tool's output", () => {
    const ca = readFileSync(pki.path("ca.crt"), "utf8");
    expect(firstCertificate(`certificate issued\nCA certificate (trust it…):\n${ca}`)).toBe(ca);
    expect(firstCertificate("nothing here")).toBeUndefined();
  });
});

describe("Gitea's TLS settings and its health check", () => {
  it("always sets PROTOCOL (Gitea's image never removes a key), and mounts the certificate only with TLS", () => {
    expect(giteaTlsEnvironment({ mode: "off" })).toEqual({ GITEA__server__PROTOCOL: "http", GITEA__server__ENABLE_ACME: "false" });
    expect(giteaTlsEnvironment({ mode: "own-ca" })).toEqual({
      GITEA__server__PROTOCOL: "https",
      GITEA__server__ENABLE_ACME: "false",
      GITEA__server__CERT_FILE: "/etc/gitea-homelab/tls/cert.pem",
      GITEA__server__KEY_FILE: "/etc/gitea-homelab/tls/key.pem",
    });
    expect(tlsVolumeMount("off")).toBeUndefined();
    expect(tlsVolumeMount("given")).toEqual({ name: "gitea-tls", path: "/etc/gitea-homelab/tls", options: "ro,Z,U" });
  });

  it("checks health at the URL people use, verified by the CA or the given certificate, never unverified", () => {
    expect(healthTarget("off", "gitea.lan", 4111)).toEqual({ url: "http://127.0.0.1:4111/api/healthz", caFile: "" });
    expect(healthTarget("own-ca", "[2001:db8::1]", 4111)).toEqual({ url: "https://[2001:db8::1]:4111/api/healthz", caFile: `${CA_DIR}/ca.crt` });
    expect(healthTarget("given", "gitea.lan", 4111).caFile).toBe(servedPaths().cert);
  });
});

/**
 * The own-ca tool and the given script, run for real with openssl in a scratch home: only the
 * commands that need root or a running host (id, runuser, install's owner, systemctl,
 * rc-service) are stand-ins, logged.
 */
describe("the certificate scripts, run with the real openssl", () => {
  let dir: string;
  let home: string;
  let served: string;
  const spec: TlsSpec = { init: "systemd", user: "rootless", service: "gitea.service", publicHost: "gitea.test" };

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "gh-tls-run-"));
    home = join(dir, "home");
    served = join(home, servedPaths().dir);
    mkdirSync(served, { recursive: true });
    rootStubs(dir, home);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const run = (script: string, stdin = "") => {
    writeFileSync(join(dir, "log"), "");
    const r = spawnSync("bash", ["-c", script], { input: stdin, encoding: "utf8", env: { PATH: `${join(dir, "bin")}:/usr/bin:/bin`, HOME: home } });
    return { status: r.status, out: r.stdout, err: r.stderr, log: readFileSync(join(dir, "log"), "utf8") };
  };
  const openssl = (...args: string[]) => execFileSync("openssl", args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  const caFile = () => join(home, CA_DIR, "ca.crt");
  const servedCert = () => join(served, "cert.pem");

  it("makes the CA once, issues a certificate naming the host, and restarts Gitea only when it issued", () => {
    const first = run(renderTlsTool(spec));
    expect(first.status, first.err).toBe(0);
    expect(first.out).toMatch(/CA made in ~rootless\/\.config\/gitea-homelab\/tls/);
    expect(first.out).toMatch(/certificate issued for gitea\.test \(no certificate yet\), valid 397 days/);
    expect(first.log).toMatch(/systemctl --user restart gitea\.service/);
    expect(firstCertificate(first.out)).toBe(readFileSync(caFile(), "utf8"));
    expect(statSync(join(home, CA_DIR, "ca.key")).mode & 0o777).toBe(0o600);
    expect(statSync(join(served, "key.pem")).mode & 0o777).toBe(0o600);
    expect(openssl("verify", "-CAfile", caFile(), servedCert())).toMatch(/: OK/);
    expect(openssl("x509", "-in", servedCert(), "-noout", "-checkhost", "gitea.test")).toMatch(/does match/);
    expect(openssl("x509", "-in", caFile(), "-noout", "-text")).toMatch(/CA:TRUE, pathlen:0/);

    const caBefore = readFileSync(caFile(), "utf8");
    const certBefore = readFileSync(servedCert(), "utf8");
    const again = run(renderTlsTool(spec));
    expect(again.status, again.err).toBe(0);
    expect(again.out).toMatch(/certificate for gitea\.test valid until/);
    expect(again.log).not.toMatch(/restart/);
    expect(readFileSync(caFile(), "utf8")).toBe(caBefore);
    expect(readFileSync(servedCert(), "utf8")).toBe(certBefore);
  });

  it("reissues from the same CA when the host changes or the certificate ends within 30 days", () => {
    const caBefore = readFileSync(caFile(), "utf8");
    const moved = run(renderTlsTool({ ...spec, publicHost: "192.168.1.10" }));
    expect(moved.out).toMatch(/certificate issued for 192\.168\.1\.10 \(the certificate does not name 192\.168\.1\.10\)/);
    expect(openssl("x509", "-in", servedCert(), "-noout", "-checkip", "192.168.1.10")).toMatch(/does match/);
    expect(readFileSync(caFile(), "utf8")).toBe(caBefore);

    // A certificate from the same CA that ends in 10 days.
    writeFileSync(join(dir, "ext"), "subjectAltName=DNS:gitea.test\n");
    openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/O=x", "-keyout", join(served, "key.pem"), "-out", join(dir, "csr"));
    openssl("x509", "-req", "-in", join(dir, "csr"), "-CA", caFile(), "-CAkey", join(home, CA_DIR, "ca.key"), "-set_serial", "7", "-days", "10", "-extfile", join(dir, "ext"), "-out", servedCert());
    const renewed = run(renderTlsTool(spec));
    expect(renewed.out).toMatch(/certificate issued for gitea\.test \(the certificate ends .*, within 30 days\)/);
    expect(renewed.log).toMatch(/restart gitea\.service/);
    expect(openssl("x509", "-in", servedCert(), "-noout", "-checkend", String(300 * 86400))).toMatch(/will not expire/);
  });

  it("refuses to replace half a CA", () => {
    const key = join(home, CA_DIR, "ca.key");
    const saved = readFileSync(key);
    rmSync(key);
    const r = run(renderTlsTool(spec));
    expect(r.status).toBe(1);
    expect(r.err).toMatch(/half of the CA is missing .*restore a backup \(gitea-homelab:restoreFrom\)/);
    writeFileSync(key, saved, { mode: 0o600 });
  });

  it("installs a given certificate from stdin, refusing a key of another one, and restarts Gitea when it changed", () => {
    const pki = new Pki();
    try {
      const given = pki.issue("given", "DNS:gitea.test", 90);
      const other = pki.issue("other", "DNS:gitea.test", 90);
      const script = renderGivenCertificateScript(spec);
      const wrong = run(script, `${other.key}${given.chain}`);
      expect(wrong.status).toBe(1);
      expect(wrong.err).toMatch(/tlsKey does not match gitea-homelab:tlsCertificate/);
      const installed = run(script, `${given.key.trim()}\n${given.chain}`);
      expect(installed.status, installed.err).toBe(0);
      expect(installed.out).toMatch(/certificate installed/);
      expect(installed.log).toMatch(/restart gitea\.service/);
      expect(readFileSync(servedCert(), "utf8")).toBe(given.chain);
      expect(givenChainDigest(given.chain)).toBe(execFileSync("sha256sum", [servedCert()], { encoding: "utf8" }).slice(0, 64));
      const same = run(script, `${given.key.trim()}\n${given.chain}`);
      expect(same.out).toMatch(/certificate unchanged/);
      expect(same.log).not.toMatch(/restart gitea/);
      // The key for the rootless user alone (its owner is the stand-in's to drop, its mode is real).
      expect(installed.log).toMatch(/^install -m 600 -o rootless -g rootless \S+ \S+\/key\.pem$/m);
      expect(statSync(join(served, "key.pem")).mode & 0o777).toBe(0o600);
    } finally {
      rmSync(pki.dir, { recursive: true, force: true });
    }
  });
});

describe("drift of the certificate", () => {
  const spec: TlsSpec = { init: "systemd", user: "rootless", service: "gitea.service", publicHost: "gitea.test" };
  const healthy = { ca_key: "600 rootless", ca_cert: "abc", cert: "d1", cert_ending: "no", cert_names_host: "yes", cert_from_ca: "yes", key_matches: "yes", key_mode: "600" };

  it("finds nothing on a healthy own-ca host: CA, certificate, the tool and its schedule as rendered", () => {
    const tool = fileDigest(renderTlsTool(spec));
    const systemd = { ...healthy, tool, renewal_service: fileDigest(renderRenewalServiceUnit("rootless")), renewal_timer: fileDigest(renderRenewalTimerUnit()), renewal_active: "active", renewal_enabled: "enabled" };
    expect(ownCaDrift(spec, systemd)).toEqual([]);
    const openrc: TlsSpec = { ...spec, init: "openrc", service: "gitea" };
    expect(ownCaDrift(openrc, { ...healthy, tool: fileDigest(renderTlsTool(openrc)), renewal_periodic: fileDigest(renderRenewalPeriodicScript("rootless")) })).toEqual([]);
    // The same facts but one: drift, so the healthy answer is the comparison's, not a default.
    expect(ownCaDrift(spec, { ...systemd, renewal_enabled: "disabled" })).toEqual(["timer gitea-homelab-tls-rootless.timer: disabled at boot, expected enabled"]);
  });

  it("shows a certificate near its end, or not naming the host, as drift up repairs (own-ca)", () => {
    const drift = ownCaDrift(spec, { ...healthy, cert_ending: "yes", cert_ends: "Jan  1 00:00:00 2027 GMT", cert_names_host: "no", tool: "missing", renewal_service: "missing", renewal_timer: "missing", renewal_active: "inactive", renewal_enabled: "disabled" });
    expect(drift).toEqual(
      expect.arrayContaining([
        "certificate: does not name gitea.test (gitea-homelab:publicHost)",
        "certificate: ends Jan  1 00:00:00 2027 GMT, within 30 days; up renews it",
        "timer gitea-homelab-tls-rootless.timer: inactive, expected active",
      ]),
    );
    expect(ownCaDrift(spec, { ...healthy, ca_key: "missing", ca_cert: "missing", tool: "x" })[0]).toMatch(/^CA ~rootless\/\.config\/gitea-homelab\/tls: MISSING; up makes a new one/);
    expect(ownCaDrift(spec, undefined)).toEqual(["certificate: state unknown (probe output unreadable)"]);
  });

  it("shows a given certificate replaced by hand, and a leftover renewal tool", () => {
    expect(givenDrift(spec, "d1", { ...healthy, tool: "missing" })).toEqual([]);
    expect(givenDrift(spec, "d2", { ...healthy, tool: "t" })).toEqual(["certificate: differs from gitea-homelab:tlsCertificate", "certificate tool /usr/local/libexec/gitea-homelab/gitea-tls-rootless: present, expected none (tls is given)"]);
  });
});
