/**
 * Data safety on the Debian 13 VM with the real Gitea and the real runner: Gitea's keys outlive
 * Pulumi state (an Actions secret still decrypts after destroy and an up from a new, empty state),
 * the backup timer makes a backup and keeps `backupKeep`, a disabled timer is drift, and a backup
 * comes back onto the empty volumes `destroy` with destroyData leaves (repositories cloned over
 * SSH, users, the secret). An upgrade that rolls back is in the lifecycle suite (CI runs it).
 * The runner (wsl stack on the same VM, as in wsl.e2e.test.ts) runs the workflow that reads the
 * secret and prints its hash. Both stacks are driven by the real Pulumi CLI
 * (test/e2e/harness/pulumiCli.ts): "server-keeper" and "wsl-keeper" (the run's other suite files
 * share the file backend, so the names are this file's own and the config sets each `role`).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { filesBelow } from "./harness/cliOutput";
import { Forge, VAULT } from "./harness/forge";
import { Timings } from "./harness/timings";
import { GITEA_START_MS, GiteaAuth, giteaApi } from "./harness/gitea";
import { CliStack, openWorkspace, Workspace } from "./harness/pulumiCli";
import { acceptedSshSessions, resolveGiteaTestLocally, serverConfig, TestVm, testVm, waitForStatus, wslConfig } from "./harness/vm";

const rundir = process.env.GITEA_HOMELAB_VM_RUNDIR;

const USER = "keeper";
const BACKUPS = "/var/backups/gitea-e2e";
const REPO = "vault";
describe.runIf(rundir)("backups, their timer and a restore: the data and its keys survive", () => {
  let vm: TestVm;
  let ws: Workspace;
  let server: CliStack;
  let wsl: CliStack;
  let config: Record<string, string>;
  let forge: Forge;
  let history: string[] = [];
  const log: string[] = [];
  const timings = new Timings();

  const web = () => `http://127.0.0.1:${vm.forwarded(4111)}`;
  const admin = (): GiteaAuth => ({ username: "gitea-admin", password: server.lastOutputs().adminPassword as string });
  const cloneUrl = () => `${server.lastOutputs().sshCloneBase as string}gitea-admin/${REPO}.git`;
  const keysDigest = () => vm.root(`sha256sum </home/${USER}/.config/gitea-homelab/gitea-keys.env | cut -c1-64`);
  const backups = async () => (await vm.root(`ls -1 ${BACKUPS} | grep '^gitea-backup-' || true`)).split("\n").filter((l) => l !== "");
  // Sign-in is needed to view (the default), the API included.
  const userExists = async (name: string) => (await giteaApi(web(), `/users/${name}`, { auth: admin() })).status === 200;

  /** Pushes a commit and returns the secret's hash the workflow printed for it. */
  async function secretHashAfterPush(message: string): Promise<string> {
    const { sha, hash } = await forge.vaultHashAfterPush(REPO, message);
    history = [sha, ...history];
    return hash;
  }


  beforeAll(async () => {
    vm = testVm(rundir!);
    ws = await openWorkspace(rundir!, { suite: "backup suite", sshSessions: () => acceptedSshSessions(vm) });
    server = await new CliStack(ws, "server-keeper", log).init();
    wsl = await new CliStack(ws, "wsl-keeper", log).init();
    forge = new Forge(vm, web, admin);
    await resolveGiteaTestLocally(vm);
    await vm.root(`podman image exists ${vm.env.JOB_IMAGE} || podman load -q -i ${vm.env.JOB_IMAGE_ARCHIVE}`);
    config = { ...serverConfig(vm), role: "server", rootlessUser: USER, backupDir: BACKUPS, backupKeep: "3" };
  });

  afterAll(async () => {
    timings.print("backup suite");
    await wsl?.destroy().catch(() => undefined);
    await server?.up({ ...config, destroyData: "true", removeUserOnDestroy: "true" }).catch(() => undefined);
    await server?.destroy().catch(() => undefined);
    await vm?.root(`rm -rf ${BACKUPS}`).catch(() => undefined);
  });

  it("a fresh up makes Gitea's keys on the host, 0600, never in Pulumi's state, and turns the backup timer on", async () => {
    const report = await timings.time("fresh up", () => server.up(config));
    expect(await waitForStatus(`${web()}/api/healthz`, 200, GITEA_START_MS)).toBe(200);
    expect(await vm.root(`stat -c '%a %U' /home/${USER}/.config/gitea-homelab/gitea-keys.env`)).toBe(`600 ${USER}`);
    const secretKey = await vm.root(`sed -n 's/^GITEA__security__SECRET_KEY=//p' /home/${USER}/.config/gitea-homelab/gitea-keys.env`);
    expect(secretKey.length).toBeGreaterThanOrEqual(32);
    // The key Gitea runs with is that one, and it is nowhere in the state (every file of the CLI's
    // file backend) or in what the CLI printed.
    expect(await vm.root(`grep -c -F -- ${JSON.stringify(secretKey)} /home/${USER}/.local/share/containers/storage/volumes/gitea-config/_data/app.ini || true`)).toBe("1");
    expect(filesBelow(ws.backend)).not.toContain(secretKey);
    expect(log.join("\n")).not.toContain(secretKey);
    expect(await vm.asUser(USER, "systemctl --user is-active gitea-backup.timer")).toBe("active");
    expect(await vm.asUser(USER, "systemctl --user is-enabled gitea-backup.timer")).toBe("enabled");
    expect(await vm.root(`stat -c '%a %U' ${BACKUPS}`)).toBe(`700 ${USER}`);
    expect(report.outputs.backupDir).toBeDefined();
    expect(server.lastOutputs()).toMatchObject({ backupDir: BACKUPS, lastBackup: "none yet" });
  });

  it("a workflow reads an Actions secret (the runner from the wsl stack)", async () => {
    await wsl.up(wslConfig(vm, { role: "wsl", serverStack: server.qualifiedName, runnerName: "keeper-runner" }));
    await forge.addOperatorKey();
    expect((await giteaApi(web(), "/admin/users", { auth: admin(), method: "POST", body: { username: "alice", email: "alice@gitea.test", password: "alice-password-1", must_change_password: false } })).status).toBe(201);
    // The secret is set before the first push, so the first run already reads it.
    expect((await giteaApi(web(), "/user/repos", { auth: admin(), method: "POST", body: { name: "placeholder" } })).status).toBe(201);
    const first = await forge.pushNewRepository(REPO, cloneUrl(), { ".gitea/workflows/ci.yml": VAULT.workflow }, "vault with a workflow");
    history = [first];
    expect((await giteaApi(web(), `/repos/gitea-admin/${REPO}/actions/secrets/VAULT_TOKEN`, { auth: admin(), method: "PUT", body: { data: VAULT.secret } })).status).toBeLessThan(300);
    expect(await secretHashAfterPush("read the secret")).toBe(VAULT.hash);
  });

  it("keys outlive Pulumi state: destroy, then up from a new, empty state; the secret still decrypts", async () => {
    const digest = await keysDigest();
    await timings.time("destroy (data kept)", () => server.destroy());
    expect(await vm.root(`test -f /home/${USER}/.config/gitea-homelab/gitea-keys.env && echo kept`)).toBe("kept");
    await server.forgetState();
    await timings.time("up from a new, empty state on the kept data", () => server.up(config));
    expect(await keysDigest()).toBe(digest);
    expect(await secretHashAfterPush("after a new state")).toBe(VAULT.hash);
    expect(await forge.cloneHistory(REPO, cloneUrl())).toEqual(history);
  });

  it("the timer's backup keeps the newest backupKeep, and the stack output says when the last one was made", async () => {
    const started = Date.now();
    // The timer's own service, started now instead of at midnight.
    await vm.asUser(USER, "systemctl --user start gitea-backup.service");
    timings.note(`scheduled backup (gitea-backup.service, Gitea stopped and started): ${((Date.now() - started) / 1000).toFixed(1)} s`);
    expect(await waitForStatus(`${web()}/api/healthz`, 200, GITEA_START_MS)).toBe(200);
    const names = await backups();
    expect(names.length).toBe(1);
    expect(names[0]).toMatch(/^gitea-backup-\d{8}T\d{6}Z-scheduled$/);
    expect((await vm.root(`ls -1 ${BACKUPS}/${names[0]}`)).split("\n").sort()).toEqual(["gitea-config.tar", "gitea-data.tar", "keys.env", "manifest"]);
    expect(await vm.root(`stat -c '%a %U' ${BACKUPS}/${names[0]} ${BACKUPS}/${names[0]}/keys.env`)).toBe(`700 ${USER}\n600 ${USER}`);
    timings.note(`backup size: ${await vm.root(`du -sh ${BACKUPS}/${names[0]} | cut -f1`)}`);
    for (let i = 0; i < 3; i++) await vm.asUser(USER, "systemctl --user start gitea-backup.service");
    const kept = await backups();
    expect(kept.length).toBe(3);
    expect(kept).not.toContain(names[0]);
    const preview = await server.preview(config);
    expect(preview.steps).toEqual([]);
    // A preview saves no outputs: `pulumi stack output` after a no-change up, which re-reads the probe's facts.
    expect((await server.up(config)).commands).toEqual([]);
    expect(server.lastOutputs().lastBackup).toMatch(new RegExp(`^${kept[2]} at \\d{4}-\\d\\d-\\d\\dT`));
  });

  it("a disabled timer is drift: preview shows it, up turns it back on", async () => {
    await vm.asUser(USER, "systemctl --user disable --now gitea-backup.timer");
    const preview = await server.preview(config);
    expect(preview.steps.map((s) => `${s.operation} ${s.resource}`)).toEqual(["update gitea-backup-schedule"]);
    expect(preview.steps[0].drift).toMatch(/timer gitea-backup\.timer: inactive, expected active; timer gitea-backup\.timer: disabled at boot, expected enabled/);
    const repair = await server.up(config);
    expect(repair.commands.map((c) => `${c.operation} ${c.resource}`)).toEqual(["update gitea-backup-schedule"]);
    expect(await vm.asUser(USER, "systemctl --user is-enabled gitea-backup.timer")).toBe("enabled");
    expect((await server.preview(config)).steps).toEqual([]);
  });

  it("a backup comes back onto the empty volumes destroy with destroyData leaves: repositories, users and the secret", async () => {
    await vm.asUser(USER, "systemctl --user start gitea-backup.service");
    const latest = (await backups()).pop()!;
    // destroyData is a resource option: an up records it before the destroy.
    await server.up({ ...config, destroyData: "true" });
    await timings.time("destroy with destroyData", () => server.destroy());
    expect(await vm.asUser(USER, "podman volume ls -q")).toBe("");
    expect(await vm.root(`test -e /home/${USER}/.config/gitea-homelab/gitea-keys.env && echo present || echo gone`)).toBe("gone");
    // So is the record of the Gitea version the data last ran on: new volumes are not an upgrade.
    expect(await vm.root(`test -e /var/lib/gitea-homelab/instance/${USER} && echo present || echo gone`)).toBe("gone");
    expect(await backups()).toContain(latest);

    await server.forgetState();
    const restoring = { ...config, restoreFrom: `${BACKUPS}/${latest}` };
    // The CLI reports no time per command: the restore command's own time is in this whole up's.
    const report = await timings.time("up with restoreFrom (whole up, the restore command included; the CLI gives no per-command time)", () => server.up(restoring));
    const restore = report.commands.find((c) => c.resource === "gitea-backup-restore");
    expect(restore).toMatchObject({ operation: "create", exitCode: 0 });
    expect(await waitForStatus(`${web()}/api/healthz`, 200, GITEA_START_MS)).toBe(200);
    // The same history over SSH (Gitea's SSH host key came back too: the pinned one still matches).
    expect(await forge.cloneHistory(REPO, cloneUrl())).toEqual(history);
    expect(await userExists("alice")).toBe(true);
    expect(await secretHashAfterPush("after the restore")).toBe(VAULT.hash);
    // restoreFrom left set: the next up finds the data and runs nothing.
    expect((await server.up(restoring)).commands).toEqual([]);
  });
});
