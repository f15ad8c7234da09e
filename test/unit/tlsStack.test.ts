/**
 * HTTPS through the whole server stack, under Pulumi's mocks: the default (the server's own CA)
 * and what it adds, off behind a reverse proxy, a certificate the owner gives with its key as a
 * secret on the wire and nowhere else, a bad one refused before anything is registered, and the
 * wsl stack trusting the server's CA through the StackReference.
 */
import { execFileSync } from "child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "fs";
import { tmpdir } from "os";
import { join } from "path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { listen } from "../helpers/fakeSshd";
import { isSecretValue, leaksOutsideSecrets, ProgramRun, runExpectingError, runWithMocks } from "../helpers/pulumiMocks";

const BASE = { host: "127.0.0.1", user: "root", adminEmail: "admin@example.com" };
const program = async () => (await import("../../program")).main();

let sshd: Awaited<ReturnType<typeof listen>>;
let dir: string;
/** A certificate for 127.0.0.1 (the stack's host, hence its publicHost) and its key. */
let given: { cert: string; key: string };
beforeAll(async () => {
  sshd = await listen("SSH-2.0-OpenSSH_9.9\r\n");
  dir = mkdtempSync(join(tmpdir(), "gh-tls-stack-"));
  writeFileSync(join(dir, "ext"), "subjectAltName=IP:127.0.0.1\n");
  execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "90", "-subj", "/O=test", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem")], { stdio: "ignore" });
  given = { cert: readFileSync(join(dir, "cert.pem"), "utf8"), key: readFileSync(join(dir, "key.pem"), "utf8") };
});
afterAll(() => {
  sshd.close();
  rmSync(dir, { recursive: true, force: true });
});

async function server(config: Record<string, string>, secretKeys: string[] = []): Promise<ProgramRun> {
  return runWithMocks({ ...BASE, port: String(sshd.port), ...config }, program, { secretKeys });
}


describe("tls by default: the server's own CA", () => {
  let run: ProgramRun;
  beforeAll(async () => {
    run = await server({});
  });

  it("serves https with a certificate volume mounted read-only, and waits for health over https", () => {
    const unit = run.byName("gitea-service-unit").inputs.create as string;
    expect(unit).toContain('Environment="GITEA__server__PROTOCOL=https"');
    expect(unit).toContain('Environment="GITEA__server__ROOT_URL=https://127.0.0.1:4111/"');
    expect(unit).toContain("Volume=gitea-tls:/etc/gitea-homelab/tls:ro,Z,U");
    // The scripts travel inside a quoted command line: their own quotes are escaped there.
    expect(run.byName("gitea-health").inputs.create).toMatch(/health_url='\\''https:\/\/127\.0\.0\.1:4111\/api\/healthz'/);
    expect(run.byName("gitea-health").inputs.create).toMatch(/health_ca='\\''\.config\/gitea-homelab\/tls\/ca\.crt'/);
    // The backup tool's rollback waits the same way.
    expect(run.byName("gitea-backup-schedule").inputs.create).toMatch(/health_url='\\''https:\/\/127\.0\.0\.1:4111\/api\/healthz'/);
  });

  it("makes the certificate after a restore and before Gitea starts; keeps the CA on destroy unless destroyData", () => {
    const certificate = run.byName("gitea-https-certificate");
    expect(certificate.dependencies).toContain(run.byName("gitea-tls-volume").urn);
    expect(run.byName("gitea-service-unit").dependencies.length).toBeGreaterThan(0);
    expect(certificate.inputs.delete).toMatch(/remove_ca='\\''false'/);
    // Not secret: the CA certificate is what clients are told to trust.
    expect(certificate.inputs.logging).toBeUndefined();
    expect(certificate.additionalSecretOutputs ?? []).not.toContain("stdout");
  });

  it("exports the mode and the CA certificate for browsers, git and runners", async () => {
    expect(await run.value(run.outputs.tls)).toBe("own-ca");
    expect(Object.keys(run.outputs)).toContain("caCertificate");
  });
});

describe("tls off behind a reverse proxy", () => {
  it("leaves TLS to the proxy: plain http, no certificate commands", async () => {
    const run = await server({ rootUrl: "https://git.example.com/" });
    expect(run.resources.map((r) => r.name)).not.toContain("gitea-https-certificate");
    expect(run.byName("gitea-service-unit").inputs.create).toContain('Environment="GITEA__server__PROTOCOL=http"');
    expect(await run.value(run.outputs.tls)).toBe("off");
    expect(Object.keys(run.outputs)).not.toContain("caCertificate");
  });
});

describe("tls given: the owner's certificate", () => {
  let run: ProgramRun;
  beforeAll(async () => {
    run = await server({ tls: "given", tlsCertificate: given.cert, tlsKey: given.key }, ["tlsKey"]);
  });

  it("sends the key and the chain as a secret stdin to a command that logs nothing", () => {
    const certificate = run.byName("gitea-https-certificate");
    expect(isSecretValue(certificate.wireInputs.stdin)).toBe(true);
    expect(certificate.inputs.stdin).toBe(`${given.key.trim()}\n${given.cert}`);
    expect(certificate.inputs.logging).toBe("none");
    expect(certificate.additionalSecretOutputs).toEqual(expect.arrayContaining(["stdout", "stderr"]));
    expect(run.byName("gitea-health").inputs.create).toContain(".local/share/containers/storage/volumes/gitea-tls/_data/cert.pem");
  });

  it("puts the key in no input that is not secret, no invoke and no output", async () => {
    const keyBody = given.key.split("\n")[1];
    expect(await leaksOutsideSecrets(run, keyBody)).toEqual([]);
  });

  it("refuses a certificate that does not name publicHost before anything is registered, naming the key", async () => {
    const { run: refused, error } = await runExpectingError(
      { ...BASE, port: String(sshd.port), publicHost: "gitea.lan", tls: "given", tlsCertificate: given.cert, tlsKey: given.key },
      program,
      { secretKeys: ["tlsKey"] },
    );
    expect(refused.resources).toEqual([]);
    expect(error?.message).toContain("gitea-homelab:tlsCertificate: does not name gitea.lan (gitea-homelab:publicHost), the host people use; it names IP Address:127.0.0.1");
    expect(error?.message).not.toContain(given.key.split("\n")[1]);
  });
});

describe("the wsl stack trusts the server's CA", () => {
  const wsl = (config: Record<string, string>, serverOutputs: Record<string, unknown>) =>
    runWithMocks({ host: "127.0.0.1", port: String(sshd.port), user: "root", runnerSourcePath: "/root/act_runner", ...config }, program, {
      stack: "wsl",
      stackReferences: {
        "organization/gitea-homelab/server": {
          outputs: { giteaUrl: "https://192.168.1.10:4111/", runnerRegistrationToken: "T0ken".repeat(8), adminUsername: "gitea-admin", adminPassword: "pw-pw-pw-pw", ...serverOutputs },
          secret: ["runnerRegistrationToken", "adminPassword"],
        },
      },
    });

  it("from the server stack's caCertificate output: the daemon, its jobs and register", async () => {
    const run = await wsl({}, { caCertificate: given.cert });
    const install = run.byName("runner-install").inputs.create as string;
    expect(install).toContain("-----BEGIN CERTIFICATE-----");
    expect(install).toContain("SSL_CERT_FILE=/etc/act_runner/ca-bundle.crt");
    expect(install).toContain("valid_volumes:");
    expect(run.byName("runner-register").inputs.create).toContain("export SSL_CERT_FILE=$ca_bundle");
  });

  it("from its own caCertificate key, which wins; none: no trust files, and a bad one is refused naming the key", async () => {
    const own = execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "/dev/null", "-days", "9", "-subj", "/CN=Own CA"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
    const withOwn = await wsl({ caCertificate: own }, { caCertificate: given.cert });
    const install = withOwn.byName("runner-install").inputs.create as string;
    expect(install).toContain(own.split("\n")[1]);
    expect(install).not.toContain(given.cert.split("\n")[1]);
    const none = await wsl({}, {});
    expect(none.byName("runner-install").inputs.create).not.toContain("SSL_CERT_FILE");
    const { error } = await runExpectingError({ host: "127.0.0.1", port: String(sshd.port), user: "root", runnerSourcePath: "/root/act_runner", caCertificate: "hello" }, program, { stack: "wsl" });
    expect(error?.message).toContain("gitea-homelab:caCertificate: must be a PEM certificate");
  });
});

describe("tls acme: Gitea gets its certificate from an ACME CA", () => {
  const ACME = { publicHost: "git.example.com", tls: "acme", acmeEmail: "certs@example.com", acmeAcceptTerms: "true" };
  let run: ProgramRun;
  beforeAll(async () => {
    run = await server(ACME);
  }, 60_000);

  it("turns on Gitea's ACME with the account, the directory and an unprivileged challenge port, and no certificate files", () => {
    const unit = run.byName("gitea-service-unit").inputs.create as string;
    expect(unit).toContain('Environment="GITEA__server__PROTOCOL=https"');
    expect(unit).toContain('Environment="GITEA__server__ENABLE_ACME=true"');
    expect(unit).toContain('Environment="GITEA__server__ACME_EMAIL=certs@example.com"');
    expect(unit).toContain('Environment="GITEA__server__ACME_URL=https://acme-v02.api.letsencrypt.org/directory"');
    expect(unit).toContain('Environment="GITEA__server__PORT_TO_REDIRECT=3080"');
    expect(unit).not.toContain("CERT_FILE");
    expect(unit).not.toContain("3080:");
  });

  it("opens the firewall before Gitea starts, waits for health over https with the host's roots, and checks the served certificate after", () => {
    // The firewall's port before Gitea's image is even loaded (the default opens it once Gitea runs).
    const firewall = run.byName("gitea-http");
    expect(run.byName("gitea-image").dependencies.some((urn) => urn.endsWith("::gitea-http") || urn.includes("gitea-http-"))).toBe(true);
    const health = run.byName("gitea-health").inputs.create as string;
    expect(health).toMatch(/health_url='\\''https:\/\/git\.example\.com:4111\/api\/healthz'/);
    expect(health).toMatch(/health_ca='\\'''\\''/);
    const check = run.byName("gitea-acme-certificate");
    expect(check.inputs.create).toMatch(/served_certificate/);
    expect(firewall).toBeDefined();
    expect(run.resources.map((r) => r.name)).not.toContain("gitea-https-certificate-tool");
  });

  it("exports the mode and no CA of its own", async () => {
    expect(await run.value(run.outputs.tls)).toBe("acme");
    expect(Object.keys(run.outputs)).not.toContain("caCertificate");
  });

  it("refuses an IP publicHost, a missing e-mail, terms not agreed to and an http directory, naming each key, before anything runs", async () => {
    const { run: refused, error } = await runExpectingError({ ...BASE, port: String(sshd.port), tls: "acme", acmeDirectory: "http://acme.example.com/dir" }, program);
    expect(refused.resources).toEqual([]);
    const err = error?.message ?? "";
    expect(err).toMatch(/gitea-homelab:publicHost: is the IP address 127\.0\.0\.1, but tls acme needs a DNS name/);
    expect(err).toMatch(/gitea-homelab:acmeEmail: /);
    expect(err).toMatch(/gitea-homelab:acmeAcceptTerms: must be true for tls acme/);
    expect(err).toMatch(/gitea-homelab:acmeDirectory: must be an https:\/\/ URL/);
  });
});
