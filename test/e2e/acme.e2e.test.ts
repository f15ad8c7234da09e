/**
 * tls acme on the Debian 13 VM, with the real Pulumi CLI. Standing in for Let's Encrypt: pebble,
 * Let's Encrypt's own ACME test server, built from its Go module (tools/build.sh pebble) and run
 * on the VM. It checks the TLS-ALPN-01 challenge on the published HTTPS port, as Let's Encrypt
 * checks port 443 forwarded there; its directory has an HTTPS certificate from a root made here
 * (the stack's acmeCaRoot), and the VM trusts its issuing root as a host trusts Let's Encrypt's.
 * A fresh up gets Gitea a certificate with no certificate file of ours; a second up changes
 * nothing and a restart reuses it; a certificate Gitea failed to renew in time (the VM's clock
 * moved 65 days on, pebble paused) shows in preview, and up renews it. Stack "server-acme", user "acme".
 */
import { execFileSync } from "child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "fs";
import { tmpdir } from "os";
import { join } from "path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CliStack, openWorkspace, Workspace } from "./harness/pulumiCli";
import { acceptedSshSessions, resolveGiteaTestLocally, serverConfig, TestVm, testVm } from "./harness/vm";

const rundir = process.env.GITEA_HOMELAB_VM_RUNDIR;
const USER = "acme";
const REPO = join(__dirname, "..", "..");
const PEBBLE = "/usr/local/bin/pebble-acme-test";
const PEBBLE_DIR = "/etc/pebble-acme-test";
const PEBBLE_UNIT = "pebble-acme-test";
/** Pebble's default profile: Let's Encrypt's 90 days. */
const VALIDITY_SECONDS = 90 * 86400;
/** Far enough that a third of the lifetime is left (Gitea should have renewed it), not so far that it expired. */
const CLOCK_JUMP_DAYS = 65;

/** The root and the HTTPS certificate of pebble's directory, made with the openssl CLI. */
function directoryPki(dir: string): { root: string; cert: string; key: string } {
  const openssl = (...args: string[]) => execFileSync("openssl", args, { stdio: "ignore" });
  const at = (name: string) => join(dir, name);
  openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "3650", "-subj", "/CN=ACME directory test root", "-keyout", at("root.key"), "-out", at("root.crt"));
  writeFileSync(at("ext"), "subjectAltName=DNS:host.containers.internal,DNS:localhost,IP:127.0.0.1\n");
  openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=pebble", "-keyout", at("key.pem"), "-out", at("csr"));
  openssl("x509", "-req", "-in", at("csr"), "-CA", at("root.crt"), "-CAkey", at("root.key"), "-set_serial", "1", "-days", "3000", "-extfile", at("ext"), "-out", at("cert.pem"));
  return { root: readFileSync(at("root.crt"), "utf8"), cert: readFileSync(at("cert.pem"), "utf8"), key: readFileSync(at("key.pem"), "utf8") };
}

describe.runIf(rundir)("tls acme: a certificate Gitea gets from an ACME CA (pebble standing in for Let's Encrypt)", () => {
  let vm: TestVm;
  let ws: Workspace;
  let server: CliStack;
  let config: Record<string, string>;
  let pkiDir: string;
  let clockMoved = false;
  const log: string[] = [];
  const put = (path: string, content: string | Buffer, mode: string) =>
    execFileSync("bash", [join(REPO, "test/e2e/vm/ssh.sh"), rundir!, `sudo -n sh -c 'cat >${path} && chmod ${mode} ${path}'`], { input: content });
  /** The certificate Gitea serves for gitea.test: serial, issuer and end. */
  const served = () =>
    vm.root("timeout 20 openssl s_client -connect 127.0.0.1:4111 -servername gitea.test </dev/null 2>/dev/null | openssl x509 -noout -serial -issuer -enddate -dateopt iso_8601");

  beforeAll(async () => {
    vm = testVm(rundir!);
    ws = await openWorkspace(rundir!, { suite: "acme suite", sshSessions: () => acceptedSshSessions(vm) });
    server = await new CliStack(ws, "server-acme", log).init();
    await resolveGiteaTestLocally(vm);

    const started = Date.now();
    const bin = execFileSync("bash", [join(REPO, "tools/build.sh"), "pebble"], { encoding: "utf8" }).trim().split("\n").pop()!;
    console.log(`  pebble built in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    pkiDir = mkdtempSync(join(tmpdir(), "gh-acme-pki-"));
    const pki = directoryPki(pkiDir);
    await vm.root(`mkdir -p ${PEBBLE_DIR}`);
    put(PEBBLE, readFileSync(join(bin, "pebble")), "755");
    put(`${PEBBLE_DIR}/cert.pem`, pki.cert, "644");
    put(`${PEBBLE_DIR}/key.pem`, pki.key, "600");
    put(`${PEBBLE_DIR}/root.pem`, pki.root, "644");
    const pebbleConfig = {
      pebble: {
        listenAddress: "0.0.0.0:14000",
        managementListenAddress: "127.0.0.1:15000",
        certificate: `${PEBBLE_DIR}/cert.pem`,
        privateKey: `${PEBBLE_DIR}/key.pem`,
        // HTTP-01 finds nothing there (Gitea's challenge port is not published); TLS-ALPN-01
        // goes to the published HTTPS port, as Let's Encrypt's goes to 443 forwarded to it.
        httpPort: 5002,
        tlsPort: 4111,
        externalAccountBindingRequired: false,
        profiles: { default: { description: "Let's Encrypt's lifetime", validityPeriod: VALIDITY_SECONDS } },
      },
    };
    put(`${PEBBLE_DIR}/config.json`, JSON.stringify(pebbleConfig, null, 2), "644");
    // No random validation delays or refused nonces: the test waits for nothing it does not check.
    await vm.root(
      `systemd-run --quiet --unit=${PEBBLE_UNIT} --setenv=PEBBLE_VA_NOSLEEP=1 --setenv=PEBBLE_WFE_NONCEREJECT=0 ${PEBBLE} -config ${PEBBLE_DIR}/config.json && ` +
        `for i in $(seq 60); do curl -sf --cacert ${PEBBLE_DIR}/root.pem -o /dev/null https://localhost:14000/dir && break; sleep 1; done`,
    );
    // The VM has no default route (it reaches nothing outside); a server an ACME CA reaches has
    // one, and only through it does pasta route a container's host.containers.internal to the host.
    await vm.root("ip route show default | grep -q . || ip route add default via 10.0.2.2 dev eth0");
    // The VM trusts pebble's issuing root, as a host trusts Let's Encrypt's: the health wait verifies with the system's roots.
    await vm.root(`curl -sf --cacert ${PEBBLE_DIR}/root.pem https://localhost:15000/roots/0 >/usr/local/share/ca-certificates/pebble-acme-test.crt && update-ca-certificates >/dev/null 2>&1`);

    config = {
      ...serverConfig(vm, { tls: "acme" }),
      role: "server",
      rootlessUser: USER,
      acmeEmail: "certs@gitea.test",
      acmeAcceptTerms: "true",
      acmeDirectory: "https://host.containers.internal:14000/dir",
      acmeCaRoot: pki.root,
      // A clock moved on would start the daily backup in the middle of a check.
      backupSchedule: "off",
      destroyData: "true",
      removeUserOnDestroy: "true",
    };
  }, 600_000);

  afterAll(async () => {
    if (clockMoved) await vm?.root(`date -s '-${CLOCK_JUMP_DAYS} days' >/dev/null`).catch(() => undefined);
    await server?.destroy().catch(() => undefined);
    await vm
      ?.root(`ip route del default via 10.0.2.2 dev eth0 2>/dev/null; systemctl kill -s CONT ${PEBBLE_UNIT} 2>/dev/null; systemctl stop ${PEBBLE_UNIT} 2>/dev/null; rm -rf ${PEBBLE_DIR} ${PEBBLE} /usr/local/share/ca-certificates/pebble-acme-test.crt; update-ca-certificates --fresh >/dev/null 2>&1`)
      .catch(() => undefined);
    if (pkiDir) rmSync(pkiDir, { recursive: true, force: true });
  });

  it("a fresh up: Gitea gets its certificate from the ACME CA by TLS-ALPN-01 and serves it; no certificate file of ours", async () => {
    const report = await server.up(config);
    console.log(`  fresh up with acme: ${(report.wallMs / 1000).toFixed(1)} s`);
    const names = report.commands.map((c) => c.resource);
    expect(names).toEqual(expect.arrayContaining(["gitea-https-certificate", "gitea-acme-certificate", "gitea-health"]));
    expect(server.lastOutputs().tls).toBe("acme");
    expect(server.lastOutputs().caCertificate).toBeUndefined();
    expect(await served()).toMatch(/issuer=.*Pebble Intermediate/);
    // Trusted with the system's roots (pebble's is one of them now), and not with another root.
    expect(await vm.root("curl -s -o /dev/null -w '%{http_code}' https://gitea.test:4111/api/healthz; echo \" exit=$?\"")).toBe("200 exit=0");
    // Only another root (curl's --capath, the system's hashed roots, is emptied too).
    expect(await vm.root(`d=$(mktemp -d); curl -s -o /dev/null --cacert ${PEBBLE_DIR}/root.pem --capath "$d" https://gitea.test:4111/; echo "exit=$?"; rmdir "$d"`)).toBe("exit=60");
    // Kept by Gitea in its data volume (in every backup); nothing in the certificate volume but the CA root.
    const data = `/home/${USER}/.local/share/containers/storage/volumes/gitea-data/_data`;
    expect(await vm.root(`ls ${data}/https/certificates/*/gitea.test/`)).toMatch(/gitea\.test\.crt/);
    expect(await vm.root(`ls /home/${USER}/.local/share/containers/storage/volumes/gitea-tls/_data`)).toBe("acme-ca-root.pem");
    expect(await vm.root(`journalctl --no-pager _UID=$(id -u ${USER}) | grep -c 'tls-alpn-01' || true`)).not.toBe("0");
  });

  it("a second up changes nothing, preview is clean, and a restart serves the same certificate (no new order)", async () => {
    const before = await served();
    const again = await server.up(config);
    expect(again.commands).toEqual([]);
    expect((await server.preview(config)).steps).toEqual([]);
    await vm.asUser(USER, "systemctl --user restart gitea.service");
    let after = "";
    for (let i = 0; i < 60 && !after.includes("serial="); i++) {
      after = await served().catch(() => "");
      if (!after.includes("serial=")) await new Promise((r) => setTimeout(r, 2000));
    }
    expect(after).toBe(before);
  });

  it("a certificate Gitea did not renew in time shows in preview, and up renews it", async () => {
    const before = await served();
    // The ACME CA paused, so that Gitea's own renewal cannot win the race; then 65 days on.
    await vm.root(`systemctl kill -s STOP ${PEBBLE_UNIT} && date -s '+${CLOCK_JUMP_DAYS} days' >/dev/null`);
    clockMoved = true;
    const preview = await server.preview(config);
    expect(preview.steps.map((s) => `${s.operation} ${s.resource}`)).toEqual(["update gitea-acme-certificate"]);
    expect(preview.steps[0].drift).toMatch(/^served certificate: the certificate Gitea serves ends .* and was not renewed; up restarts Gitea to renew it$/);
    await vm.root(`systemctl kill -s CONT ${PEBBLE_UNIT}`);
    const report = await server.up(config);
    console.log(`  renewal up: ${(report.wallMs / 1000).toFixed(1)} s`);
    expect(report.commands.map((c) => c.resource)).toEqual(["gitea-acme-certificate"]);
    const after = await served();
    expect(after).not.toBe(before);
    expect(after).toMatch(/issuer=.*Pebble Intermediate/);
    expect((await server.preview(config)).steps).toEqual([]);
  });
});
