/**
 * A certificate the owner gives (tls: given) on the Debian 13 VM, with the real Pulumi CLI: the
 * owner's own small CA, made here with openssl as a homelab owner would. A certificate that does
 * not name publicHost is refused before anything runs; a fresh up serves the given certificate
 * (curl trusts it with the owner's CA), its key only in the volume (0600, Gitea's user) and in no
 * state or output; a certificate replaced by hand is drift that up repairs; the wsl stack,
 * told the CA with its caCertificate key (the server stack has no CA of its own to export),
 * registers over https. Stacks "server-given" and "wsl-given"; the user "given".
 */
import { execFileSync } from "child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "fs";
import { tmpdir } from "os";
import { join } from "path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { filesBelow } from "./harness/cliOutput";
import { GITEA_START_MS, giteaApi, trustGiteaCa, waitFor } from "./harness/gitea";
import { CliStack, DeploymentError, openWorkspace, Workspace } from "./harness/pulumiCli";
import { acceptedSshSessions, resolveGiteaTestLocally, serverConfig, TestVm, testVm, waitForStatus, wslConfig } from "./harness/vm";

const rundir = process.env.GITEA_HOMELAB_VM_RUNDIR;
const USER = "given";
const RUNNER = "given-runner";

/** The owner's CA and certificates from it, made with the openssl CLI. */
class OwnerPki {
  readonly dir = mkdtempSync(join(tmpdir(), "gh-owner-pki-"));
  readonly ca: string;
  constructor() {
    this.openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "60", "-subj", "/CN=Owner CA", "-keyout", this.path("ca.key"), "-out", this.path("ca.crt"));
    this.ca = readFileSync(this.path("ca.crt"), "utf8");
  }
  path(name: string): string {
    return join(this.dir, name);
  }
  openssl(...args: string[]): void {
    execFileSync("openssl", args, { stdio: "ignore" });
  }
  issue(name: string, dnsName: string): { chain: string; key: string } {
    writeFileSync(this.path(`${name}.ext`), `subjectAltName=DNS:${dnsName}\n`);
    this.openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/O=owner", "-keyout", this.path(`${name}.key`), "-out", this.path(`${name}.csr`));
    this.openssl("x509", "-req", "-in", this.path(`${name}.csr`), "-CA", this.path("ca.crt"), "-CAkey", this.path("ca.key"), "-set_serial", String(Date.now()), "-days", "50", "-extfile", this.path(`${name}.ext`), "-out", this.path(`${name}.crt`));
    return { chain: readFileSync(this.path(`${name}.crt`), "utf8") + this.ca, key: readFileSync(this.path(`${name}.key`), "utf8") };
  }
}

describe.runIf(rundir)("tls given: a certificate the owner gives", () => {
  let vm: TestVm;
  let ws: Workspace;
  let server: CliStack;
  let wsl: CliStack;
  let pki: OwnerPki;
  let config: Record<string, string>;
  let given: { chain: string; key: string };
  const log: string[] = [];
  const web = () => `https://127.0.0.1:${vm.forwarded(4111)}`;
  const served = `/home/${USER}/.local/share/containers/storage/volumes/gitea-tls/_data`;
  const curlOnVm = (args: string) => vm.root(`curl --silent --output /dev/null --max-time 20 --write-out '%{http_code}' ${args}; echo " exit=$?"`);

  beforeAll(async () => {
    vm = testVm(rundir!);
    ws = await openWorkspace(rundir!, { suite: "tls suite", sshSessions: () => acceptedSshSessions(vm) });
    server = await new CliStack(ws, "server-given", log).init();
    wsl = await new CliStack(ws, "wsl-given", log).init();
    await resolveGiteaTestLocally(vm);
    pki = new OwnerPki();
    given = pki.issue("gitea", "gitea.test");
    await vm.root(`echo ${Buffer.from(pki.ca).toString("base64")} | base64 -d >/tmp/owner-ca.pem`);
    config = { ...serverConfig(vm, { tls: "given" }), role: "server", rootlessUser: USER, tlsCertificate: given.chain, tlsKey: given.key, destroyData: "true", removeUserOnDestroy: "true" };
  });

  afterAll(async () => {
    await wsl?.destroy().catch(() => undefined);
    await server?.destroy().catch(() => undefined);
    if (pki) rmSync(pki.dir, { recursive: true, force: true });
  });

  it("a certificate that does not name publicHost fails the preview, naming the key, and nothing runs", async () => {
    const other = pki.issue("other", "other.test");
    const failure = await server.preview({ ...config, tlsCertificate: other.chain, tlsKey: other.key }).then(
      () => undefined,
      (e: DeploymentError) => e,
    );
    expect(failure).toBeInstanceOf(DeploymentError);
    expect(failure!.message).toContain("gitea-homelab:tlsCertificate: does not name gitea.test (gitea-homelab:publicHost), the host people use; it names DNS:other.test");
    expect(failure!.message).not.toMatch(/PRIVATE KEY|error serializing property|\n\s+at /);
    expect(await vm.root(`id -u ${USER} >/dev/null 2>&1 && echo yes || echo no`)).toBe("no");
  });

  it("a fresh up serves the given certificate, trusted with the owner's CA; its key is nowhere but the volume", async () => {
    const report = await server.up(config);
    expect(report.commands.map((c) => c.resource)).toContain("gitea-https-certificate");
    expect(server.lastOutputs().tls).toBe("given");
    expect(server.lastOutputs().caCertificate).toBeUndefined();
    trustGiteaCa(pki.ca, "gitea.test");
    expect(await waitForStatus(`${web()}/api/healthz`, 200, GITEA_START_MS)).toBe(200);
    expect(await curlOnVm("--cacert /tmp/owner-ca.pem https://gitea.test:4111/api/healthz")).toBe("200 exit=0");
    expect(await vm.root(`cat ${served}/cert.pem`)).toBe(given.chain.trimEnd());
    expect(await vm.root(`stat -c '%a' ${served}/key.pem`)).toBe("600");
    const keyBody = given.key.split("\n")[1];
    expect(filesBelow(ws.backend)).not.toContain(keyBody);
    expect(log.join("\n")).not.toContain(keyBody);
    expect(await vm.root("journalctl --no-pager -n 3000")).not.toContain(keyBody);
    // Nothing of the own-ca mode: no CA made, no renewal timer.
    expect(await vm.root(`ls /home/${USER}/.config/gitea-homelab/tls /etc/systemd/system/gitea-homelab-tls-${USER}.timer 2>/dev/null | wc -l`)).toBe("0");
  });

  it("a certificate replaced by hand is drift; up puts the given one back", async () => {
    const stranger = pki.issue("stranger", "gitea.test");
    await vm.root(`echo ${Buffer.from(stranger.chain).toString("base64")} | base64 -d >${served}/cert.pem && echo ${Buffer.from(stranger.key).toString("base64")} | base64 -d >${served}/key.pem`);
    const preview = await server.preview(config);
    expect(preview.steps.map((s) => `${s.operation} ${s.resource}`)).toEqual(["update gitea-https-certificate"]);
    expect(preview.steps[0].drift).toBe("certificate: differs from gitea-homelab:tlsCertificate");
    await server.up(config);
    expect(await vm.root(`cat ${served}/cert.pem`)).toBe(given.chain.trimEnd());
    expect((await server.preview(config)).steps).toEqual([]);
  });

  it("the wsl stack, told the owner's CA with its caCertificate key, registers over https", async () => {
    await wsl.up(wslConfig(vm, { role: "wsl", serverStack: server.qualifiedName, runnerName: RUNNER, caCertificate: pki.ca }));
    expect(await vm.root("grep -o '\"address\": *\"[^\"]*\"' /var/lib/act_runner/.runner")).toMatch(/"https:\/\/gitea\.test:4111\/?"$/);
    const admin = { username: "gitea-admin", password: server.lastOutputs().adminPassword as string };
    await waitFor(`runner ${RUNNER} online`, 180_000, async () => ((await giteaApi(web(), "/admin/actions/runners", { auth: admin })).body.runners as Array<{ name: string; status: string }>).find((r) => r.name === RUNNER && r.status === "online"));
    expect(await vm.root("cmp /etc/act_runner/gitea-ca.crt /tmp/owner-ca.pem && echo same")).toBe("same");
  });
});
