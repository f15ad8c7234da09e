/**
 * tls acme: Gitea's settings, the setup and check scripts run for real (openssl serving a
 * certificate with s_server, the check reading it over TLS as on a host), and the comparison.
 * Only what needs root or a running host (id, runuser, install's owner, systemctl, journalctl)
 * is a stand-in, logged; `date` can be moved on to see a certificate later in its life.
 */
import { ChildProcess, execFileSync, spawn, spawnSync } from "child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "fs";
import { createServer } from "net";
import { tmpdir } from "os";
import { join } from "path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { rootStubs } from "../../test/helpers/rootStubs";
import { acmeCaRootDigest, acmeServedDrift, acmeSetupDrift } from "./drift";
import { AcmeSpec, giteaTlsEnvironment, healthTarget, renderAcmeCheckScript, renderAcmeSetupScript, servedPaths, tlsToolPath } from "./render";

const DAY_SECONDS = 86400;

describe("Gitea's settings for acme", () => {
  it("turns ACME on with the account, the directory, the store in the data volume, and a challenge port Gitea's user can bind", () => {
    expect(giteaTlsEnvironment({ mode: "acme", acme: { email: "certs@example.com", directory: "https://acme.example.com/dir" } })).toEqual({
      GITEA__server__PROTOCOL: "https",
      GITEA__server__ENABLE_ACME: "true",
      GITEA__server__ACME_ACCEPTTOS: "true",
      GITEA__server__ACME_URL: "https://acme.example.com/dir",
      GITEA__server__ACME_EMAIL: "certs@example.com",
      GITEA__server__ACME_DIRECTORY: "/var/lib/gitea/https",
      GITEA__server__ACME_CA_ROOT: "",
      GITEA__server__PORT_TO_REDIRECT: "3080",
    });
    const privateCa = giteaTlsEnvironment({ mode: "acme", acme: { email: "a@b.c", directory: "https://ca.lan/dir", caRoot: "-----BEGIN CERTIFICATE-----\n" } });
    expect(privateCa.GITEA__server__ACME_CA_ROOT).toBe("/etc/gitea-homelab/tls/acme-ca-root.pem");
  });

  it("waits for health over https on the loopback, verified with the host's own roots", () => {
    expect(healthTarget("acme", "git.example.com", 4111)).toEqual({ url: "https://git.example.com:4111/api/healthz", caFile: "" });
  });
});

/** A free TCP port on the loopback. */
async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolve(port));
    });
  });
}

describe("the acme scripts, run with the real openssl", () => {
  let dir: string;
  let home: string;
  let served: string;
  let servers: ChildProcess[] = [];
  const openssl = (...args: string[]) => execFileSync("openssl", args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "gh-acme-run-"));
    home = join(dir, "home");
    served = join(home, servedPaths().dir);
    mkdirSync(served, { recursive: true });
    rootStubs(dir, home, {
      journalctl: `echo "level=error msg=\\"could not get certificate from issuer\\" challenge_type=tls-alpn-01"`,
      // The host's clock, moved on by GH_DAYS_ON days for "now" (dates the script converts stay real).
      date: `if [[ $* == "-u +%s" || $* == "+%s" ]]; then echo $(( $(/usr/bin/date -u +%s) + \${GH_DAYS_ON:-0} * ${DAY_SECONDS} )); else exec /usr/bin/date "$@"; fi`,
    });
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "3650", "-subj", "/CN=Test ACME CA", "-keyout", join(dir, "ca.key"), "-out", join(dir, "ca.crt"));
  });
  afterEach(() => {
    for (const s of servers) s.kill();
    servers = [];
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** A certificate from the test CA naming DNS, valid DAYS from now. */
  const issue = (name: string, dns: string, days: number) => {
    writeFileSync(join(dir, `${name}.ext`), `subjectAltName=DNS:${dns}\n`);
    openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/O=acme", "-keyout", join(dir, `${name}.key`), "-out", join(dir, `${name}.csr`));
    openssl("x509", "-req", "-in", join(dir, `${name}.csr`), "-CA", join(dir, "ca.crt"), "-CAkey", join(dir, "ca.key"), "-set_serial", String(Date.now()), "-days", String(days), "-extfile", join(dir, `${name}.ext`), "-out", join(dir, `${name}.crt`));
    return { cert: join(dir, `${name}.crt`), key: join(dir, `${name}.key`) };
  };
  /** Gitea serving CERT on a port of the loopback (openssl s_server). */
  const serve = async (cert: { cert: string; key: string }): Promise<number> => {
    const port = await freePort();
    const server = spawn("openssl", ["s_server", "-accept", `127.0.0.1:${port}`, "-cert", cert.cert, "-key", cert.key, "-quiet", "-naccept", "50"], { stdio: "ignore" });
    servers.push(server);
    for (let i = 0; i < 100; i++) {
      if (spawnSync("bash", ["-c", `exec 3<>/dev/tcp/127.0.0.1/${port}`]).status === 0) return port;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error("openssl s_server did not start");
  };
  const run = (script: string, opts: { stdin?: string; daysOn?: number } = {}) => {
    writeFileSync(join(dir, "log"), "");
    const r = spawnSync("bash", ["-c", script], {
      input: opts.stdin ?? "",
      encoding: "utf8",
      env: { PATH: `${join(dir, "bin")}:/usr/bin:/bin`, HOME: home, GH_DAYS_ON: String(opts.daysOn ?? 0) },
      timeout: 60_000,
    });
    return { status: r.status, out: r.stdout, err: r.stderr, log: readFileSync(join(dir, "log"), "utf8") };
  };
  const spec = (httpPort: number): AcmeSpec => ({ init: "systemd", user: "rootless", service: "gitea.service", publicHost: "gitea.test", httpPort, logFile: "/var/log/gitea.log", timeoutSeconds: 3 });

  it("accepts a certificate that names the host and is not past its renewal, and restarts nothing", async () => {
    const port = await serve(issue("fresh", "gitea.test", 90));
    const r = run(renderAcmeCheckScript(spec(port)));
    expect(r.status, r.err).toBe(0);
    expect(r.out).toMatch(/^certificate for gitea\.test from .*Test ACME CA, valid until /m);
    expect(r.log).not.toMatch(/restart/);
  });

  it("restarts Gitea to renew a certificate past a third of its life and within 30 days of its end, and fails with its ACME lines when none comes", async () => {
    const port = await serve(issue("aging", "gitea.test", 90));
    // 65 days on, 25 of 90 are left: Gitea should have renewed it (at 30).
    const r = run(renderAcmeCheckScript(spec(port)), { daysOn: 65 });
    expect(r.status).toBe(1);
    expect(r.out).toMatch(/the certificate Gitea serves ends .* and was not renewed: restarting Gitea/);
    expect(r.log).toMatch(/systemctl --user restart gitea\.service/);
    expect(r.err).toMatch(/challenge_type=tls-alpn-01/);
    expect(r.err).toMatch(/Gitea did not get a new certificate within 3 seconds \(gitea-homelab:healthTimeoutSeconds\).*port 443 \(forwarded to \d+ here\)/);
    // 55 days on, 35 are left: not yet.
    expect(run(renderAcmeCheckScript(spec(port)), { daysOn: 55 }).status).toBe(0);
  });

  it("follows a short lifetime: a 20-day certificate is due at a third of it, not at 30 days", async () => {
    const port = await serve(issue("short", "gitea.test", 20));
    expect(run(renderAcmeCheckScript(spec(port))).status).toBe(0);
    expect(run(renderAcmeCheckScript(spec(port)), { daysOn: 14 }).out).toMatch(/was not renewed: restarting Gitea/);
  });

  it("follows a long lifetime only to 30 days: a 365-day certificate is due 30 days before its end, not at a third of it", async () => {
    const port = await serve(issue("long", "gitea.test", 365));
    // 305 days on, 60 of 365 are left: past a third (121 days), not yet within 30.
    const early = run(renderAcmeCheckScript(spec(port)), { daysOn: 305 });
    expect(early.status, early.err).toBe(0);
    expect(early.log).not.toMatch(/restart/);
    // 336 days on, 29 are left.
    expect(run(renderAcmeCheckScript(spec(port)), { daysOn: 336 }).out).toMatch(/was not renewed: restarting Gitea/);
  });

  it("restarts Gitea when its certificate does not name the host, or when it serves none", async () => {
    const port = await serve(issue("other", "other.test", 90));
    expect(run(renderAcmeCheckScript(spec(port))).out).toMatch(/the certificate Gitea serves does not name gitea\.test: restarting Gitea/);
    expect(run(renderAcmeCheckScript(spec(await freePort()))).out).toMatch(/Gitea serves no certificate: restarting Gitea/);
  });

  it("setup: installs the ACME CA's root from stdin, restarting Gitea when it changed, and leaves nothing of an earlier mode", () => {
    writeFileSync(join(served, "cert.pem"), "old chain");
    writeFileSync(join(served, "key.pem"), "old key");
    const root = readFileSync(join(dir, "ca.crt"), "utf8");
    const script = renderAcmeSetupScript({ init: "systemd", user: "rootless", service: "gitea.service", publicHost: "gitea.test" });
    const first = run(script, { stdin: root });
    expect(first.status, first.err).toBe(0);
    expect(readFileSync(join(served, "acme-ca-root.pem"), "utf8")).toBe(root);
    expect(existsSync(join(served, "cert.pem")) || existsSync(join(served, "key.pem"))).toBe(false);
    expect(first.log).toMatch(/restart gitea\.service/);
    expect(acmeCaRootDigest(root)).toBe(execFileSync("sha256sum", [join(served, "acme-ca-root.pem")], { encoding: "utf8" }).slice(0, 64));
    expect(run(script, { stdin: root }).log).not.toMatch(/restart/);
    const unset = run(script);
    expect(unset.out).toMatch(/ACME CA root removed/);
    expect(existsSync(join(served, "acme-ca-root.pem"))).toBe(false);
  });
});

describe("drift of an ACME certificate", () => {
  it("shows one Gitea did not renew, one not naming the host, and none served; nothing when it is fine", () => {
    expect(acmeServedDrift({ served: "yes", served_problem: "" })).toEqual([]);
    expect(acmeServedDrift({ served: "yes", served_problem: "the certificate Gitea serves ends Jan  1 00:00:00 2027 GMT and was not renewed" })).toEqual([
      "served certificate: the certificate Gitea serves ends Jan  1 00:00:00 2027 GMT and was not renewed; up restarts Gitea to renew it",
    ]);
    expect(acmeServedDrift({ served: "missing" })[0]).toMatch(/^served certificate: Gitea serves none/);
    expect(acmeServedDrift(undefined)[0]).toMatch(/state unknown/);
  });

  it("shows the ACME CA's root changed or left behind, and an own-ca tool left behind", () => {
    const user = { user: "rootless" };
    expect(acmeSetupDrift(user, "missing", { acme_ca_root: "missing", tool: "missing" })).toEqual([]);
    expect(acmeSetupDrift(user, "abc", { acme_ca_root: "def", tool: "t" })).toEqual([
      "ACME CA root acme-ca-root.pem: differs from gitea-homelab:acmeCaRoot",
      `certificate tool ${tlsToolPath("rootless")}: present, expected none (tls is acme)`,
    ]);
    expect(acmeSetupDrift(user, "missing", { acme_ca_root: "abc", tool: "missing" })).toEqual(["ACME CA root acme-ca-root.pem: present, expected none"]);
  });
});
