/**
 * "The server is gone" (issue 34): a forge whose backups are copied off-site over SFTP comes back
 * on a second, fresh VM from the off-site repository alone, with a new Pulumi state.
 *
 * VM 1 (the run's, with-vm.sh's): a server stack (tls own-ca, rootless user "phoenix", its own
 * backupDir) copying every backup with restic to the stand-in for another homelab machine
 * (`rclone serve sftp` outside the VM, pinned host key, one client key:
 * harness/offsiteServers.ts), a repository with history pushed over SSH, a user, an Actions
 * secret a workflow reads (the runner: the wsl stack on the same VM), and a backup by the timer's
 * service, which the tool pushes. Then the server is lost: both stacks are destroyed with
 * destroyData and removeUserOnDestroy (VM 1 is left clean for the later suites).
 * VM 2 (booted here, stopped in afterAll, always), reaching the same SFTP stand-in: a new
 * workspace and state, a new server stack with the same off-site settings and
 * `restoreFrom: offsite:latest`; its up brings back the repository (the same clone history, over
 * SSH with Gitea's SSH host key pinned on VM 1), the user, the same CA (caCertificate output) and
 * keys (a workflow of the wsl stack on VM 2 decrypts the secret); a second up runs nothing.
 * The off-site password and the SSH key never show in the CLI's output, Pulumi's state, the
 * VMs' process lists (sampled while restic ran) or journals, nor in the repository out there.
 * Stacks "server-offsite" and "wsl-offsite" (names of this file's own; the config sets `role`).
 */
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from "fs";
import { join } from "path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { shq } from "../../components/render/shell";
import { filesBelow } from "./harness/cliOutput";
import { Forge, VAULT } from "./harness/forge";
import { GITEA_START_MS, GiteaAuth, giteaApi, trustGiteaCa, waitFor } from "./harness/gitea";
import { SftpServer, startSftpServer } from "./harness/offsiteServers";
import { CliStack, openWorkspace, RunReport, Workspace } from "./harness/pulumiCli";
import { sshRun } from "./harness/ssh";
import { Timings } from "./harness/timings";
import { acceptedSshSessions, resolveGiteaTestLocally, serverConfig, startVm, stopVm, TestVm, testVm, waitForStatus, wslConfig } from "./harness/vm";

const rundir = process.env.GITEA_HOMELAB_VM_RUNDIR;
const USER = "phoenix";
const BACKUPS = "/var/backups/gitea-offsite-e2e";
const REPO = "vault";
/** Set with --secret; restic encrypts the repository with it. Hostile, as a password may be. */
const OFFSITE_PASSWORD = "phoenix-Pa55 '$(touch /tmp/offsite-canary)' %h \"`id`\"";
/** Gitea's published ports, forwarded by both VMs. */
const GUEST_PORTS = [4111, 3333];

/** Each VM's half: its Pulumi workspace, stacks and forge. */
interface Site {
  vm: TestVm;
  ws: Workspace;
  server: CliStack;
  wsl: CliStack;
  forge: Forge;
  web: () => string;
  admin: () => GiteaAuth;
}

describe.runIf(rundir)("the server is gone: a new machine comes back from the off-site copy", () => {
  const log: string[] = [];
  const timings = new Timings();
  let sftp: SftpServer;
  let one: Site;
  let two: Site | undefined;
  let vm2Dir: string;
  let config: Record<string, string>;
  let vm1Cleaned = false;
  /** What VM 1 had, for VM 2 to show: */
  let history: string[] = [];
  let ca = "";
  let keysDigest = "";
  /** The pushed backup's manifest id ("CREATED REASON"), what a restore records as restored-from. */
  let pushedId = "";
  /** The operator's "laptop": the Gitea SSH key, the pinned Gitea host key and the working copy (tar.gz, base64). */
  let laptop = "";
  /** `ps` of each VM, sampled while restic ran. */
  const processSamples: string[] = [];
  /** VM 1's journal before this suite (the run's earlier suites wrote the rest). */
  let journalCursor = "";

  const cloneUrl = (s: Site) => `${s.server.lastOutputs().sshCloneBase as string}gitea-admin/${REPO}.git`;
  const healthy = async (s: Site) => expect(await waitForStatus(`${s.web()}/api/healthz`, 200, GITEA_START_MS)).toBe(200);
  const digestOfKeys = (vm: TestVm) => vm.root(`sha256sum </home/${USER}/.config/gitea-homelab/gitea-keys.env | cut -c1-64`);
  const record = async (vm: TestVm) =>
    Object.fromEntries(
      (await vm.root(`cat ${BACKUPS}/offsite-status`))
        .split("\n")
        .filter((l) => l.includes("="))
        .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
    );
  /** The snapshot files of the repository on the other machine (named by their ids). */
  const snapshotsOutThere = () => (existsSync(join(sftp.dataDir, "gitea-homelab", "snapshots")) ? readdirSync(join(sftp.dataDir, "gitea-homelab", "snapshots")) : []);
  const ran = (r: RunReport) => r.commands.map((c) => `${c.operation} ${c.resource}`);
  const runners = async (s: Site) => ((await giteaApi(s.web(), "/admin/actions/runners", { auth: s.admin() })).body.runners ?? []) as Array<{ name: string; status: string }>;

  /** The same off-site settings on both machines; only the connection differs. */
  const serverStackConfig = (vm: TestVm, extra: Record<string, string> = {}) => ({
    ...serverConfig(vm, { tls: "own-ca" }),
    role: "server",
    rootlessUser: USER,
    backupDir: BACKUPS,
    offsiteRepository: sftp.repository,
    offsitePassword: OFFSITE_PASSWORD,
    offsiteSshKey: sftp.clientPrivateKey,
    offsiteHostKey: sftp.hostPublicKey,
    ...extra,
  });

  async function site(vm: TestVm, name: string): Promise<Site> {
    const ws = await openWorkspace(vm.rundir, { suite: `offsite suite (${name})`, sshSessions: () => acceptedSshSessions(vm) });
    const server = await new CliStack(ws, "server-offsite", log).init();
    const wsl = await new CliStack(ws, "wsl-offsite", log).init();
    const web = () => `https://127.0.0.1:${vm.forwarded(4111)}`;
    const admin = (): GiteaAuth => ({ username: "gitea-admin", password: server.lastOutputs().adminPassword as string });
    await resolveGiteaTestLocally(vm);
    // The runner's jobs run in root's Podman: the job image goes there (nothing can be pulled).
    await vm.root(`podman image exists ${vm.env.JOB_IMAGE} || podman load -q -i ${vm.env.JOB_IMAGE_ARCHIVE}`);
    return { vm, ws, server, wsl, forge: new Forge(vm, web, admin), web, admin };
  }

  /** `ps` of every process, every half second, into a root-only file, until the returned stop; stop gives the distinct lines. */
  async function sampleProcesses(vm: TestVm): Promise<() => Promise<string>> {
    await vm.root(
      "rm -f /root/ps-samples /root/ps-sampler.pid && setsid -f bash -c 'echo $$ >/root/ps-sampler.pid; exec >>/root/ps-samples 2>&1; while :; do ps -eww -o args; sleep 0.5; done' </dev/null >/dev/null 2>&1; " +
        "for i in $(seq 50); do [[ -s /root/ps-sampler.pid ]] && break; sleep 0.1; done",
    );
    return async () => {
      const samples = await vm.root("kill $(cat /root/ps-sampler.pid) && sort -u /root/ps-samples && rm -f /root/ps-samples /root/ps-sampler.pid");
      processSamples.push(samples);
      return samples;
    };
  }

  /** Pushes a commit; returns the secret's hash the workflow printed for it. */
  async function secretHashAfterPush(s: Site, message: string): Promise<string> {
    const { sha, hash } = await s.forge.vaultHashAfterPush(REPO, message);
    history = [sha, ...history];
    return hash;
  }

  /** Runs `cmd` as the operator (the SSH user itself) with `stdin`; its stdout, or an error. */
  async function asOperator(vm: TestVm, cmd: string, stdin?: string): Promise<string> {
    const r = await sshRun(vm.operator, `set -euo pipefail; ${cmd}`, stdin);
    if (r.code !== 0) throw new Error(`${cmd} failed (${r.code}): ${r.stderr}`);
    return r.stdout.trim();
  }

  /** The destroy that leaves VM 1 as the later suites expect it: no stacks, no account, no backups. */
  async function cleanVm1(): Promise<void> {
    await one.wsl.destroy();
    // destroyData and removeUserOnDestroy are resource options: an up records them before the destroy.
    await one.server.up({ ...config, destroyData: "true", removeUserOnDestroy: "true" });
    await one.server.destroy();
    // Backups are never removed by destroy (the off-site copy is all that is left of them).
    await one.vm.root(`rm -rf ${BACKUPS}`);
    vm1Cleaned = true;
  }

  beforeAll(async () => {
    const vm = testVm(rundir!);
    vm2Dir = `${rundir!.replace(/\/+$/, "")}-offsite`;
    // The other homelab machine, outside both VMs, on the port VM 1 reaches it at (VM 2 is told that port).
    sftp = await startSftpServer({ dir: join(rundir!, "offsite-restore", "sftp"), ...vm.hostService("sftp") });
    journalCursor = (await vm.root("journalctl -n 0 --show-cursor --no-pager")).replace(/^-- cursor: /, "");
    one = await site(vm, "VM 1");
    config = serverStackConfig(vm);
  });

  afterAll(async () => {
    // VM 2 first and always: nothing after it may keep it running.
    await timings.time("stop VM 2", () => stopVm(vm2Dir)).then(
      // Its disk overlay is all it wrote; its console log stays.
      () => rmSync(join(vm2Dir, "disk.qcow2"), { force: true }),
      (e) => console.error(`stopping VM 2: ${e}`),
    );
    if (one && !vm1Cleaned) await timings.time("clean VM 1 after a failure", () => cleanVm1()).catch((e) => console.error(`cleaning VM 1: ${e}`));
    await sftp?.stop();
    timings.print("offsite suite");
  });

  it("VM 1: a fresh up copies off-site over SFTP: the repository is made on the other machine", async () => {
    const stopSampling = await sampleProcesses(one.vm);
    try {
      await timings.time("VM 1: server fresh up", () => one.server.up(config));
    } finally {
      await stopSampling();
    }
    ca = one.server.lastOutputs().caCertificate as string;
    expect(one.server.lastOutputs().tls).toBe("own-ca");
    expect(ca).toMatch(/^-----BEGIN CERTIFICATE-----\n[\s\S]+\n-----END CERTIFICATE-----\n$/);
    // Every later request of this file trusts only this CA, for gitea.test: also on VM 2.
    trustGiteaCa(ca, "gitea.test");
    await healthy(one);
    expect(one.server.lastOutputs()).toMatchObject({ offsiteRepository: sftp.repository, lastOffsiteBackup: "none yet", backupDir: BACKUPS });
    // restic init ran against the stand-in: its repository is there, out here.
    expect(readdirSync(join(sftp.dataDir, "gitea-homelab"))).toEqual(expect.arrayContaining(["config", "keys"]));
    expect(snapshotsOutThere()).toEqual([]);
    const offsiteDir = `/home/${USER}/.config/gitea-homelab/offsite`;
    // The environment file too, empty (sftp needs no credentials there): drift expects it.
    expect(await one.vm.root(`stat -c '%n %a %U' ${offsiteDir} ${offsiteDir}/password ${offsiteDir}/ssh-key ${offsiteDir}/environment`)).toBe(
      [`${offsiteDir} 700 ${USER}`, `${offsiteDir}/password 600 ${USER}`, `${offsiteDir}/ssh-key 600 ${USER}`, `${offsiteDir}/environment 600 ${USER}`].join("\n"),
    );
    expect(await one.vm.root(`stat -c %s ${offsiteDir}/environment`)).toBe("0");
    expect(await one.vm.root("ls /tmp/offsite-canary 2>&1 || true")).toMatch(/No such file/);
  });

  it("VM 1: a repository pushed over SSH, a user, and an Actions secret a workflow reads (the wsl stack's runner)", async () => {
    await timings.time("VM 1: wsl fresh up", () => one.wsl.up(wslConfig(one.vm, { role: "wsl", serverStack: one.server.qualifiedName, runnerName: "offsite-runner-1" })));
    await waitFor("the runner online in Gitea", 180_000, async () => (await runners(one)).find((r) => r.name === "offsite-runner-1" && r.status === "online"));
    await one.forge.addOperatorKey();
    expect((await giteaApi(one.web(), "/admin/users", { auth: one.admin(), method: "POST", body: { username: "alice", email: "alice@gitea.test", password: "alice-password-1", must_change_password: false } })).status).toBe(201);
    const first = await one.forge.pushNewRepository(REPO, cloneUrl(one), { ".gitea/workflows/ci.yml": VAULT.workflow }, "vault with a workflow");
    history = [first];
    expect((await giteaApi(one.web(), `/repos/gitea-admin/${REPO}/actions/secrets/VAULT_TOKEN`, { auth: one.admin(), method: "PUT", body: { data: VAULT.secret } })).status).toBeLessThan(300);
    expect(await timings.time("VM 1: a workflow run", () => secretHashAfterPush(one, "read the secret"))).toBe(VAULT.hash);
  });

  it("VM 1: the timer's backup is pushed off-site by the tool", async () => {
    const stopSampling = await sampleProcesses(one.vm);
    try {
      await timings.time("VM 1: scheduled backup with its push (gitea-backup.service)", () => one.vm.asUser(USER, "systemctl --user start gitea-backup.service"));
    } finally {
      await stopSampling();
    }
    await healthy(one);
    const names = (await one.vm.root(`ls -1 ${BACKUPS} | grep '^gitea-backup-' || true`)).split("\n").filter((l) => l !== "");
    expect(names).toEqual([expect.stringMatching(/^gitea-backup-\d{8}T\d{6}Z-scheduled$/)]);
    const pushed = await record(one.vm);
    expect(pushed).toMatchObject({ push: "ok", pushed: names[0], forget: "ok", push_error: "" });
    expect(pushed.snapshot).toMatch(/^[0-9a-f]{8}$/);
    timings.note(`VM 1: backup ${await one.vm.root(`du -sb ${BACKUPS}/${names[0]} | cut -f1`)} B, pushed ${pushed.data_added} B new of ${pushed.backup_bytes} B`);
    // The snapshot is out there: one file in the repository's snapshots/ (named by its full id).
    expect(snapshotsOutThere().map((f) => f.slice(0, 8))).toEqual([pushed.snapshot]);
    // The repository has the newest backup: nothing for preview to show (no drift), nothing for up to push.
    expect((await timings.time("VM 1: preview after the push", () => one.server.preview(config))).steps).toEqual([]);
    pushedId = await one.vm.root(`m=${BACKUPS}/${names[0]}/manifest; echo "$(sed -n 's/^created=//p' $m) $(sed -n 's/^reason=//p' $m)"`);
    expect(pushedId).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ scheduled$/);

    // What VM 2 must show: the same history in a fresh clone over SSH, the same CA and keys.
    expect(await one.forge.cloneHistory(REPO, cloneUrl(one))).toEqual(history);
    keysDigest = await digestOfKeys(one.vm);
    expect(keysDigest).toMatch(/^[0-9a-f]{64}$/);
    // The operator's laptop outlives the server: its Gitea key, Gitea's pinned SSH host key, the working copy.
    laptop = await asOperator(one.vm, "tar -C ~ -czf - .ssh/gitea_ed25519 .ssh/gitea_ed25519.pub .ssh/gitea_known_hosts vault | base64 -w0");
  });

  it("the server is lost: both stacks destroyed with their data and account on VM 1; a second fresh VM boots", async () => {
    await timings.time("VM 1: destroy both stacks (destroyData, removeUserOnDestroy), backups removed", () => cleanVm1());
    expect(await one.vm.root(`id -u ${USER} >/dev/null 2>&1 && echo present || echo gone`)).toBe("gone");
    expect(await one.vm.root(`test -e /var/lib/gitea-homelab/instance/${USER} || test -e ${BACKUPS} && echo present || echo gone`)).toBe("gone");
    expect(await one.vm.root("systemctl is-active act_runner.service || true")).toBe("inactive");
    // Only the copy on the other machine is left.
    expect(snapshotsOutThere().length).toBe(1);

    rmSync(vm2Dir, { recursive: true, force: true });
    const vm2 = await timings.time("VM 2: boot (start-vm.sh)", () => startVm(vm2Dir, GUEST_PORTS, { hostServices: `sftp=${sftp.port}`, imageDir: one.vm.env.VM_IMAGE_DIR }));
    timings.note(`VM 2: ${vm2.env.VM_ACCEL}, SSH after ${vm2.env.VM_BOOT_SECONDS} s`);
    // Another machine (its own qemu and SSH port), reaching the same stand-in at the same address.
    expect(vm2.env.VM_PID).not.toBe(one.vm.env.VM_PID);
    expect(vm2.env.VM_SSH_PORT).not.toBe(one.vm.env.VM_SSH_PORT);
    expect(vm2.hostService("sftp")).toEqual(one.vm.hostService("sftp"));
    expect(await vm2.root(`id -u ${USER} >/dev/null 2>&1 || test -e ${BACKUPS} && echo present || echo none`)).toBe("none");
    two = await timings.time("VM 2: a new Pulumi workspace and stacks, the job image loaded", () => site(vm2, "VM 2, a new workspace and state"));
    expect(two.ws.backend).not.toBe(one.ws.backend);
  });

  it("VM 2: a new stack with restoreFrom offsite:latest comes up with the repository, the user, the same CA and keys; the secret decrypts; a second up runs nothing", async () => {
    const s = two!;
    const restoring = serverStackConfig(s.vm, { restoreFrom: "offsite:latest" });
    const stopSampling = await sampleProcesses(s.vm);
    let report: RunReport;
    try {
      // The CLI reports no time per command: the restore's own time is inside this whole up's.
      report = await timings.time("VM 2: up with restoreFrom offsite:latest (whole up, the restore included)", () => s.server.up(restoring));
    } finally {
      await stopSampling();
    }
    expect(report.commands.find((c) => c.resource === "gitea-backup-offsite-restore")).toMatchObject({ operation: "create", exitCode: 0 });
    // Restored before Gitea first started.
    expect(ran(report).indexOf("create gitea-backup-offsite-restore")).toBeLessThan(ran(report).indexOf("create gitea-health"));
    expect(await s.vm.root(`cat /var/lib/gitea-homelab/instance/${USER}/restored-from`)).toBe(pushedId);
    // The same CA: runners and browsers that trusted it still do (this file's requests trust only it).
    expect(s.server.lastOutputs().caCertificate).toBe(ca);
    await healthy(s);
    expect(await digestOfKeys(s.vm)).toBe(keysDigest);
    expect((await giteaApi(s.web(), "/users/alice", { auth: s.admin() })).status).toBe(200);
    // The laptop clones over SSH with Gitea's SSH host key pinned on VM 1: it came back too.
    await asOperator(s.vm, "base64 -d | tar -C ~ -xzf -", laptop);
    expect(await timings.time("VM 2: a fresh clone over SSH", () => s.forge.cloneHistory(REPO, cloneUrl(s)))).toEqual(history);
    // No local backup came with it: only the copy out there did.
    expect(await s.vm.root(`ls -A ${BACKUPS} | grep -c '^gitea-backup-' || true`)).toBe("0");

    await timings.time("VM 2: wsl fresh up", () => s.wsl.up(wslConfig(s.vm, { role: "wsl", serverStack: s.server.qualifiedName, runnerName: "offsite-runner-2" })));
    await waitFor("the runner online in Gitea", 180_000, async () => (await runners(s)).find((r) => r.name === "offsite-runner-2" && r.status === "online"));
    expect(await timings.time("VM 2: a workflow run reading the secret", () => secretHashAfterPush(s, "after the server was lost"))).toBe(VAULT.hash);

    // restoreFrom left set: the data is there, nothing runs.
    const again = await timings.time("VM 2: second up", () => s.server.up(restoring));
    expect(again.commands).toEqual([]);
  });

  it("the off-site password and SSH key never show: CLI output, Pulumi state, process lists, journals, the repository out there", async () => {
    const s = two!;
    const b64 = (text: string) => Buffer.from(text, "utf8").toString("base64");
    const keyLines = sftp.clientPrivateKey.split("\n").filter((l) => /^[A-Za-z0-9+/=]{20,}$/.test(l));
    expect(keyLines.length).toBeGreaterThan(2);
    // The forms they travel in: as given, and base64 on the commands' stdin (a slice past the PEM header every key shares).
    const secrets = [OFFSITE_PASSWORD, b64(OFFSITE_PASSWORD), ...keyLines, b64(`${sftp.clientPrivateKey.trim()}\n`).slice(80, 160)];
    // The samplers saw restic at work (init and push on VM 1, restore on VM 2) with the SFTP options.
    expect(processSamples.map((p) => /^(timeout \d+ )?restic -o sftp\.args=-F \/dev\/null -i \S+\/ssh-key /m.test(p))).toEqual([true, true, true]);
    const stackFiles = (ws: Workspace) =>
      readdirSync(ws.project)
        .filter((f) => /^Pulumi\..+\.yaml$/.test(f))
        .map((f) => readFileSync(join(ws.project, f), "utf8"))
        .join("\n");
    const visible = {
      "the CLI's output": log.join("\n"),
      "Pulumi's state (VM 1's workspace)": filesBelow(one.ws.backend),
      "Pulumi's state (VM 2's workspace)": filesBelow(s.ws.backend),
      "the stacks' config files": stackFiles(one.ws) + stackFiles(s.ws),
      "the process lists sampled while restic ran": processSamples.join("\n"),
      "VM 1's process list and journal": [await one.vm.root("ps -eww -o args"), await one.vm.root(`journalctl --no-pager --after-cursor=${shq(journalCursor)}`)].join("\n"),
      "VM 2's process list and journal": [await s.vm.root("ps -eww -o args"), await s.vm.root("journalctl --no-pager")].join("\n"),
    };
    // The secrets are in the config (encrypted) at all, so the search means something.
    expect(stackFiles(s.ws)).toMatch(/offsitePassword:\s*\n\s*secure:/);
    for (const [where, text] of Object.entries(visible)) {
      for (const secret of secrets) expect(text.includes(secret), `${where} holds a secret (${secret.slice(0, 6)}…)`).toBe(false);
    }
    expect(await s.vm.root("ls /tmp/offsite-canary 2>&1 || true")).toMatch(/No such file/);
    // restic encrypts (and compresses) what it stores: neither a manifest nor the keys file reads in
    // the repository's files, whose packs hold the backup.
    const repository = join(sftp.dataDir, "gitea-homelab");
    const packs = readdirSync(join(repository, "data"), { recursive: true, encoding: "utf8" }).filter((f) => /^[0-9a-f]{2}\/[0-9a-f]{64}$/.test(f));
    expect(packs.length).toBeGreaterThan(0);
    const packBytes = packs.reduce((sum, f) => sum + statSync(join(repository, "data", f)).size, 0);
    timings.note(`the repository out there: ${packs.length} packs, ${packBytes} B (restic compresses the backup's tars)`);
    const stored = filesBelow(repository);
    expect(stored).not.toContain("gitea-homelab-backup-1");
    expect(stored).not.toContain("GITEA__security__SECRET_KEY");
  });
});
