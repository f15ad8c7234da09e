/**
 * HTTPS through the whole server stack, under Pulumi's mocks: the default (the server's own CA)
 * and what it adds, off behind a reverse proxy, a certificate the owner gives with its key as a
 * secret on the wire and nowhere else, a bad one refused before anything is registered, and the
 * wsl stack trusting the server's CA through the StackReference.
 */
import { execFileSync } from "child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "fs";
import { tmpdir } from "os";
import { join } from "path";
import * as pulumi from "@pulumi/pulumi";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { listen } from "../helpers/fakeSshd";
import { descendants, waitsFor } from "../helpers/dependencyOrder";
import { isSecretValue, leaksOutsideSecrets, ProgramRun, RecordedResource, runExpectingError, runWithMocks } from "../helpers/pulumiMocks";
import { ScriptRun, ScriptSandbox } from "../helpers/scriptSandbox";
import { renewalUnits, servedPaths, tlsToolPath } from "../../components/tls/render";

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

/**
 * The server stack with the command NAME printing STDOUT (the mocks' commands print nothing):
 * runWithMocks hands its mocks to Pulumi's setMocks, where they are wrapped.
 */
async function serverPrinting(name: string, stdout: string): Promise<ProgramRun> {
  const setMocks = pulumi.runtime.setMocks;
  const spy = vi.spyOn(pulumi.runtime, "setMocks").mockImplementationOnce((mocks, ...rest) => {
    const newResource = mocks.newResource.bind(mocks);
    mocks.newResource = async (args) => {
      const made = await newResource(args);
      return args.name === name ? { ...made, state: { ...made.state, stdout } } : made;
    };
    return setMocks(mocks, ...rest);
  });
  try {
    return await server({});
  } finally {
    spy.mockRestore();
  }
}

/** A command's create script run in the script sandbox, on a host with the certificate volume: how it ended, the paths it installed. */
function runInSandbox(r: RecordedResource): ScriptRun & { installed: string[] } {
  const box = new ScriptSandbox();
  try {
    // The certificate scripts check with openssl; the volume is there (the scripts do not make it).
    box.realTool("openssl", true);
    mkdirSync(join(box.dir, "home", servedPaths().dir), { recursive: true });
    const run = box.runBash(r.script as string, (r.payload as string | undefined) ?? "");
    return { ...run, installed: Object.keys(box.takeInstalled()) };
  } finally {
    box.dispose();
  }
}


describe("tls by default: the server's own CA", () => {
  let run: ProgramRun;
  beforeAll(async () => {
    run = await server({});
  });

  it("serves https with a certificate volume mounted read-only, and waits for health over https", () => {
    const unit = run.byName("gitea-service-unit").script as string;
    expect(unit).toContain('Environment="GITEA__server__PROTOCOL=https"');
    expect(unit).toContain('Environment="GITEA__server__ROOT_URL=https://127.0.0.1:4111/"');
    expect(unit).toContain("Volume=gitea-tls:/etc/gitea-homelab/tls:ro,Z,U");
    // The scripts travel inside a quoted command line: their own quotes are escaped there.
    expect(run.byName("gitea-health").script).toMatch(/health_url='https:\/\/127\.0\.0\.1:4111\/api\/healthz'/);
    expect(run.byName("gitea-health").script).toMatch(/health_ca='\.config\/gitea-homelab\/tls\/ca\.crt'/);
    // The backup tool's rollback waits the same way.
    expect(run.byName("gitea-backup-schedule").script).toMatch(/health_url='https:\/\/127\.0\.0\.1:4111\/api\/healthz'/);
  });

  it("makes the certificate after a restore and before Gitea starts; keeps the CA on destroy unless destroyData", async () => {
    const certificate = run.byName("gitea-https-certificate");
    expect(certificate.dependencies).toContain(run.byName("gitea-tls-volume").urn);
    // A restore brings the CA back: a certificate made before it would come from a new CA.
    const restoring = await server({ restoreFrom: "/var/backups/gitea-homelab/gitea-backup-20261127T030000Z-scheduled" });
    expect(waitsFor(restoring, restoring.byName("gitea-https-certificate"), restoring.byName("gitea-backup-restore")), "certificate after restore").toBe(true);
    // Every command of Gitea's, from the image on, finds the certificate there.
    for (const r of [run, restoring]) {
      const commands = descendants(r, r.byName("gitea")).filter((c) => c.type === "command:remote:Command");
      expect(commands.map((c) => c.name)).toEqual(expect.arrayContaining(["gitea-image", "gitea-service-unit", "gitea-health"]));
      for (const c of commands) expect(waitsFor(r, c, r.byName("gitea-https-certificate")), c.name).toBe(true);
    }
    expect(certificate.deleteScript).toMatch(/remove_ca='false'/);
    // Not secret: the CA certificate is what clients are told to trust.
    expect(certificate.inputs.logging).toBeUndefined();
    expect(certificate.additionalSecretOutputs ?? []).not.toContain("stdout");
  });

  it("exports the mode and the CA certificate for browsers, git and runners", async () => {
    expect(await run.value(run.outputs.tls)).toBe("own-ca");
    // The CA the certificate command prints after its other lines, as it is, and not secret.
    const printing = await serverPrinting("gitea-https-certificate", `certificate for 127.0.0.1 valid until Jan  1 00:00:00 2028 GMT\nCA certificate (trust it in browsers, git and runners):\n${given.cert}`);
    expect(await printing.value(printing.outputs.caCertificate)).toBe(given.cert);
    expect(await printing.isSecret(printing.outputs.caCertificate)).toBe(false);
  });
});

describe("tls off behind a reverse proxy", () => {
  it("leaves TLS to the proxy: plain http, no certificate commands", async () => {
    const run = await server({ rootUrl: "https://git.example.com/" });
    expect(run.resources.map((r) => r.name)).not.toContain("gitea-https-certificate");
    expect(run.byName("gitea-service-unit").script).toContain('Environment="GITEA__server__PROTOCOL=http"');
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
    expect(certificate.payload).toBe(`${given.key.trim()}\n${given.cert}`);
    expect(certificate.inputs.logging).toBe("none");
    expect(certificate.additionalSecretOutputs).toEqual(expect.arrayContaining(["stdout", "stderr"]));
    expect(run.byName("gitea-health").script).toContain(".local/share/containers/storage/volumes/gitea-tls/_data/cert.pem");
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
    const install = run.byName("runner-install").script as string;
    expect(install).toContain("-----BEGIN CERTIFICATE-----");
    expect(install).toContain("SSL_CERT_FILE=/etc/act_runner/ca-bundle.crt");
    expect(install).toContain("valid_volumes:");
    expect(run.byName("runner-register").script).toContain("export SSL_CERT_FILE=$ca_bundle");
  });

  it("from its own caCertificate key, which wins; none: no trust files, and a bad one is refused naming the key", async () => {
    const own = execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "/dev/null", "-days", "9", "-subj", "/CN=Own CA"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
    const withOwn = await wsl({ caCertificate: own }, { caCertificate: given.cert });
    const install = withOwn.byName("runner-install").script as string;
    expect(install).toContain(own.split("\n")[1]);
    expect(install).not.toContain(given.cert.split("\n")[1]);
    const none = await wsl({}, {});
    expect(none.byName("runner-install").script).not.toContain("SSL_CERT_FILE");
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
    const unit = run.byName("gitea-service-unit").script as string;
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
    const health = run.byName("gitea-health").script as string;
    expect(health).toMatch(/health_url='https:\/\/git\.example\.com:4111\/api\/healthz'/);
    expect(health).toMatch(/health_ca=''/);
    const check = run.byName("gitea-acme-certificate");
    expect(check.script).toMatch(/served_certificate/);
    // Gitea obtains the certificate as it starts: checked once every command of Gitea's is done.
    const giteaCommands = descendants(run, run.byName("gitea")).filter((c) => c.type === "command:remote:Command");
    expect(giteaCommands.map((c) => c.name)).toEqual(expect.arrayContaining(["gitea-service-unit", "gitea-health", "gitea-admin"]));
    for (const c of giteaCommands) expect(waitsFor(run, check, c), c.name).toBe(true);
    expect(firewall).toBeDefined();
  });

  it("installs no own-ca renewal: no certificate tool and no daily timer, which own-ca's command installs", async () => {
    // Both modes name the tool and the timer (acme removes what an earlier own-ca left): what
    // tells them apart is what their certificate command installs, run in the script sandbox.
    const tool = tlsToolPath("rootless");
    const timer = `${renewalUnits("rootless").dir}/${renewalUnits("rootless").timer}`;
    const ownCa = await server({});
    // (It then runs the tool from the host's path, which the sandbox does not have.)
    expect(runInSandbox(ownCa.byName("gitea-https-certificate")).installed).toEqual(expect.arrayContaining([tool, timer]));
    const acme = runInSandbox(run.byName("gitea-https-certificate"));
    expect(acme.status, acme.stderr).toBe(0);
    expect(acme.stdout).toContain("certificate volume ready for ACME");
    expect(acme.installed).not.toContain(tool);
    expect(acme.installed).not.toContain(timer);
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
