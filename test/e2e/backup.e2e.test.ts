/**
 * Data safety on the Debian 13 VM with the real Gitea and the real runner: Gitea's keys outlive
 * Pulumi state (an Actions secret still decrypts after destroy and an up from a new, empty state),
 * the backup timer makes a backup and keeps `backupKeep`, a disabled timer is drift, an upgrade to
 * an image that never becomes healthy rolls back image and data, and a backup comes back onto the
 * empty volumes `destroy` with destroyData leaves (repositories cloned over SSH, users, the secret).
 * The runner (wsl stack on the same VM, as in wsl.e2e.test.ts) runs the workflow that reads the
 * secret and prints its hash.
 */
import { createHash } from "crypto";
import { readFileSync } from "fs";
import { join } from "path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DeploymentError, Engine, freshEngine } from "./harness/engine";
import { Forge } from "./harness/forge";
import { GITEA_START_MS, GiteaAuth, giteaApi } from "./harness/gitea";
import { resolveGiteaTestLocally, serverConfig, TestVm, testVm, waitForStatus, wslConfig } from "./harness/vm";

const rundir = process.env.GITEA_HOMELAB_VM_RUNDIR;

const USER = "keeper";
const BACKUPS = "/var/backups/gitea-e2e";
const REPO = "vault";
/** The Actions secret; the workflow prints a hash of it, never the value. */
const SECRET = "correct horse $battery 'staple'";
const SECRET_HASH = createHash("sha256").update(SECRET).digest("hex").slice(0, 16);
const WORKFLOW = `on: [push]
jobs:
  read-secret:
    runs-on: debian-local
    steps:
      - run: echo "vault-hash $(printf '%s' "$VAULT" | sha256sum | cut -c1-16)"
        env:
          VAULT: \${{ secrets.VAULT_TOKEN }}
`;

describe.runIf(rundir)("backups, restore and a failed upgrade: the data and its keys survive", () => {
  let vm: TestVm;
  let server: Engine;
  let wsl: Engine;
  let config: Record<string, string>;
  let forge: Forge;
  let history: string[] = [];
  const log: string[] = [];
  const timings: string[] = [];

  const web = () => `http://127.0.0.1:${vm.forwarded(4111)}`;
  const admin = (): GiteaAuth => ({ username: "gitea-admin", password: server.lastOutputs().adminPassword as string });
  const cloneUrl = () => `${server.lastOutputs().sshCloneBase as string}gitea-admin/${REPO}.git`;
  const keysDigest = () => vm.root(`sha256sum </home/${USER}/.config/gitea-homelab/gitea-keys.env | cut -c1-64`);
  const backups = async () => (await vm.root(`ls -1 ${BACKUPS} | grep '^gitea-backup-' || true`)).split("\n").filter((l) => l !== "");
  const giteaVersion = async () => (await giteaApi(web(), "/version")).body.version as string;
  const userExists = async (name: string) => (await giteaApi(web(), `/users/${name}`, { auth: admin() })).status === 200;

  /** Pushes a commit and returns the secret's hash the workflow printed for it. */
  async function secretHashAfterPush(message: string): Promise<string> {
    const sha = await forge.pushEmptyCommit(REPO, message);
    history = [sha, ...history];
    const run = await forge.runLog(REPO, sha);
    expect(run.conclusion, run.log).toBe("success");
    return /vault-hash ([0-9a-f]{16})/.exec(run.log)?.[1] ?? `no hash in the log: ${run.log}`;
  }

  async function timed<T>(what: string, f: () => Promise<T>): Promise<T> {
    const started = Date.now();
    try {
      return await f();
    } finally {
      timings.push(`${what}: ${((Date.now() - started) / 1000).toFixed(1)} s`);
    }
  }

  beforeAll(async () => {
    vm = testVm(rundir!);
    server = freshEngine(join(rundir!, "engine-state-keeper.json"), log);
    wsl = freshEngine(join(rundir!, "engine-state-keeper-wsl.json"), log, { server });
    forge = new Forge(vm, web, admin);
    await resolveGiteaTestLocally(vm);
    await vm.root(`podman image exists ${vm.env.JOB_IMAGE} || podman load -q -i ${vm.env.JOB_IMAGE_ARCHIVE}`);
    config = { ...serverConfig(vm), rootlessUser: USER, backupDir: BACKUPS, backupKeep: "3" };
  });

  afterAll(async () => {
    process.stdout.write(`backup suite timings:\n  ${timings.join("\n  ")}\n`);
    await wsl?.destroy().catch(() => undefined);
    await server?.up({ ...config, destroyData: "true", removeUserOnDestroy: "true" }).catch(() => undefined);
    await server?.destroy().catch(() => undefined);
    await vm?.root(`rm -rf ${BACKUPS}`).catch(() => undefined);
  });

  it("a fresh up makes Gitea's keys on the host, 0600, never in Pulumi's state, and turns the backup timer on", async () => {
    const report = await timed("fresh up", () => server.up(config));
    expect(await waitForStatus(`${web()}/api/healthz`, 200, GITEA_START_MS)).toBe(200);
    expect(await vm.root(`stat -c '%a %U' /home/${USER}/.config/gitea-homelab/gitea-keys.env`)).toBe(`600 ${USER}`);
    const secretKey = await vm.root(`sed -n 's/^GITEA__security__SECRET_KEY=//p' /home/${USER}/.config/gitea-homelab/gitea-keys.env`);
    expect(secretKey.length).toBeGreaterThanOrEqual(32);
    // The key Gitea runs with is that one, and it is nowhere in the state or the log.
    expect(await vm.root(`grep -c -F -- ${JSON.stringify(secretKey)} /home/${USER}/.local/share/containers/storage/volumes/gitea-config/_data/app.ini || true`)).toBe("1");
    expect(readFileSync(join(rundir!, "engine-state-keeper.json"), "utf8")).not.toContain(secretKey);
    expect(log.join("\n")).not.toContain(secretKey);
    expect(await vm.asUser(USER, "systemctl --user is-active gitea-backup.timer")).toBe("active");
    expect(await vm.asUser(USER, "systemctl --user is-enabled gitea-backup.timer")).toBe("enabled");
    expect(await vm.root(`stat -c '%a %U' ${BACKUPS}`)).toBe(`700 ${USER}`);
    expect(report.outputs.backupDir).toBeDefined();
    expect(server.lastOutputs()).toMatchObject({ backupDir: BACKUPS, lastBackup: "none yet" });
  });

  it("a workflow reads an Actions secret (the runner from the wsl stack)", async () => {
    await wsl.up(wslConfig(vm, { serverStack: "server", runnerName: "keeper-runner" }), "wsl");
    await forge.addOperatorKey();
    expect((await giteaApi(web(), "/admin/users", { auth: admin(), method: "POST", body: { username: "alice", email: "alice@gitea.test", password: "alice-password-1", must_change_password: false } })).status).toBe(201);
    // The secret is set before the first push, so the first run already reads it.
    expect((await giteaApi(web(), "/user/repos", { auth: admin(), method: "POST", body: { name: "placeholder" } })).status).toBe(201);
    const first = await forge.pushNewRepository(REPO, cloneUrl(), { ".gitea/workflows/ci.yml": WORKFLOW }, "vault with a workflow");
    history = [first];
    expect((await giteaApi(web(), `/repos/gitea-admin/${REPO}/actions/secrets/VAULT_TOKEN`, { auth: admin(), method: "PUT", body: { data: SECRET } })).status).toBeLessThan(300);
    expect(await secretHashAfterPush("read the secret")).toBe(SECRET_HASH);
  });

  it("keys outlive Pulumi state: destroy, then up from a new, empty state; the secret still decrypts", async () => {
    const digest = await keysDigest();
    await timed("destroy (data kept)", () => server.destroy());
    expect(await vm.root(`test -f /home/${USER}/.config/gitea-homelab/gitea-keys.env && echo kept`)).toBe("kept");
    server = freshEngine(join(rundir!, "engine-state-keeper.json"), log);
    await timed("up from a new, empty state on the kept data", () => server.up(config));
    expect(await keysDigest()).toBe(digest);
    expect(await secretHashAfterPush("after a new state")).toBe(SECRET_HASH);
    expect(await forge.cloneHistory(REPO, cloneUrl())).toEqual(history);
  });

  it("the timer's backup keeps the newest backupKeep, and the stack output says when the last one was made", async () => {
    const started = Date.now();
    // The timer's own service, started now instead of at midnight.
    await vm.asUser(USER, "systemctl --user start gitea-backup.service");
    timings.push(`scheduled backup (gitea-backup.service, Gitea stopped and started): ${((Date.now() - started) / 1000).toFixed(1)} s`);
    expect(await waitForStatus(`${web()}/api/healthz`, 200, GITEA_START_MS)).toBe(200);
    const names = await backups();
    expect(names.length).toBe(1);
    expect(names[0]).toMatch(/^gitea-backup-\d{8}T\d{6}Z-scheduled$/);
    expect((await vm.root(`ls -1 ${BACKUPS}/${names[0]}`)).split("\n").sort()).toEqual(["gitea-config.tar", "gitea-data.tar", "keys.env", "manifest"]);
    expect(await vm.root(`stat -c '%a %U' ${BACKUPS}/${names[0]} ${BACKUPS}/${names[0]}/keys.env`)).toBe(`700 ${USER}\n600 ${USER}`);
    timings.push(`backup size: ${await vm.root(`du -sh ${BACKUPS}/${names[0]} | cut -f1`)}`);
    for (let i = 0; i < 3; i++) await vm.asUser(USER, "systemctl --user start gitea-backup.service");
    const kept = await backups();
    expect(kept.length).toBe(3);
    expect(kept).not.toContain(names[0]);
    const preview = await server.preview(config);
    expect(preview.steps).toEqual([]);
    expect(preview.resolvedOutputs?.lastBackup ?? preview.outputs.lastBackup).toMatch(new RegExp(`^${kept[2]} at \\d{4}-\\d\\d-\\d\\dT`));
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

  it("an upgrade to an image that never becomes healthy rolls back to the old image and the pre-upgrade data", async () => {
    // A stand-in for a broken release: the same Gitea whose container never serves HTTP.
    const broken = vm.env.GITEA_IMAGE.replace(/-rootless$/, "-never-healthy");
    await vm.asUser(USER, `sh -c ${JSON.stringify(`printf 'FROM ${vm.env.GITEA_IMAGE}\\nENTRYPOINT ["/bin/sleep", "infinity"]\\n' | podman build --pull=never -q -t ${broken} -f - /tmp >/dev/null`)}`);
    const unitBefore = await vm.root(`cat /home/${USER}/.config/containers/systemd/gitea.container`);
    const failing = { ...config, image: broken, healthTimeoutSeconds: "60" };
    const error = await timed("up to a never-healthy image, with the rollback", () => server.up(failing).then(() => undefined, (e: unknown) => e));
    expect(error).toBeInstanceOf(DeploymentError);
    expect(String((error as Error).message)).toMatch(/gitea-health: .*ROLLED BACK to the previous image and the data backed up before the upgrade/);
    // The old image runs, on the old unit, with everything in place.
    expect(await waitForStatus(`${web()}/api/healthz`, 200, GITEA_START_MS)).toBe(200);
    expect(await vm.root(`cat /home/${USER}/.config/containers/systemd/gitea.container`)).toBe(unitBefore);
    expect(await vm.asUser(USER, "podman container inspect gitea --format '{{.ImageName}}'")).toBe(vm.env.GITEA_IMAGE);
    expect(await forge.cloneHistory(REPO, cloneUrl())).toEqual(history);
    expect(await userExists("alice")).toBe(true);
    expect((await backups()).some((n) => n.endsWith("-pre-upgrade"))).toBe(true);
    // The host runs another image than the config asks: preview says so, and up would try again.
    const preview = await server.preview(failing);
    expect(preview.steps.map((s) => s.resource)).toEqual(expect.arrayContaining(["gitea-upgrade"]));
    expect(preview.steps.find((s) => s.resource === "gitea-upgrade")?.drift).toMatch(/Gitea last ran healthy on .*-rootless, expected .*-never-healthy/);
    // Set back, the next up converges and the one after runs nothing.
    await server.up(config);
    expect((await server.up(config)).commands).toEqual([]);
    expect(await secretHashAfterPush("after the rollback")).toBe(SECRET_HASH);
  });

  it("a backup comes back onto the empty volumes destroy with destroyData leaves: repositories, users and the secret", async () => {
    await vm.asUser(USER, "systemctl --user start gitea-backup.service");
    const latest = (await backups()).pop()!;
    // destroyData is a resource option: an up records it before the destroy.
    await server.up({ ...config, destroyData: "true" });
    await timed("destroy with destroyData", () => server.destroy());
    expect(await vm.asUser(USER, "podman volume ls -q")).toBe("");
    expect(await vm.root(`test -e /home/${USER}/.config/gitea-homelab/gitea-keys.env && echo present || echo gone`)).toBe("gone");
    // So is the record of the Gitea version the data last ran on: new volumes are not an upgrade.
    expect(await vm.root(`test -e /var/lib/gitea-homelab/instance/${USER} && echo present || echo gone`)).toBe("gone");
    expect(await backups()).toContain(latest);

    server = freshEngine(join(rundir!, "engine-state-keeper.json"), log);
    const restoring = { ...config, restoreFrom: `${BACKUPS}/${latest}` };
    const report = await timed("up with restoreFrom (restore included)", () => server.up(restoring));
    const restore = report.commands.find((c) => c.resource === "gitea-backup-restore");
    expect(restore?.exitCode).toBe(0);
    timings.push(`restore command: ${((restore?.ms ?? 0) / 1000).toFixed(1)} s`);
    expect(await waitForStatus(`${web()}/api/healthz`, 200, GITEA_START_MS)).toBe(200);
    // The same history over SSH (Gitea's SSH host key came back too: the pinned one still matches).
    expect(await forge.cloneHistory(REPO, cloneUrl())).toEqual(history);
    expect(await userExists("alice")).toBe(true);
    expect(await secretHashAfterPush("after the restore")).toBe(SECRET_HASH);
    // restoreFrom left set: the next up finds the data and runs nothing.
    expect((await server.up(restoring)).commands).toEqual([]);
  });
});
