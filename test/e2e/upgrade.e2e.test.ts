/**
 * An upgrade across a real schema migration on the Debian 13 VM: two Gitea releases built from
 * their Go modules (tools/gitea-previous: 1.25.5, database version 323; tools/gitea: 1.26.4,
 * version 331). The older one starts, gets a repository, a user and an issue; changing `image` to
 * the newer one backs up first, migrates, and everything is still there; going back to the older
 * one is refused before anything changes. Driven by the real Pulumi CLI
 * (test/e2e/harness/pulumiCli.ts), stack "server-upgrader" (the run's other suite files share
 * the file backend; the config sets `role: server`).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Forge } from "./harness/forge";
import { GITEA_START_MS, GiteaAuth, giteaApi } from "./harness/gitea";
import { CliStack, DeploymentError, openWorkspace } from "./harness/pulumiCli";
import { acceptedSshSessions, resolveGiteaTestLocally, serverConfig, TestVm, testVm, waitForStatus } from "./harness/vm";

const rundir = process.env.GITEA_HOMELAB_VM_RUNDIR;

const USER = "upgrader";
const BACKUPS = "/var/backups/gitea-upgrade-e2e";
const REPO = "history";

describe.runIf(rundir)("upgrade across a real schema migration, and a refused downgrade", () => {
  let vm: TestVm;
  let server: CliStack;
  let forge: Forge;
  let config: Record<string, string>;
  let history: string[];
  const log: string[] = [];
  const timings: string[] = [];

  const web = () => `http://127.0.0.1:${vm.forwarded(4111)}`;
  const admin = (): GiteaAuth => ({ username: "gitea-admin", password: server.lastOutputs().adminPassword as string });
  const cloneUrl = () => `${server.lastOutputs().sshCloneBase as string}gitea-admin/${REPO}.git`;
  // Sign-in is needed to view (the default), the API included.
  const giteaVersion = async () => (await giteaApi(web(), "/version", { auth: admin() })).body.version as string;
  const unitFile = () => vm.root(`cat /home/${USER}/.config/containers/systemd/gitea.container`);

  beforeAll(async () => {
    vm = testVm(rundir!);
    const ws = await openWorkspace(rundir!, { suite: "upgrade suite", sshSessions: () => acceptedSshSessions(vm) });
    server = await new CliStack(ws, "server-upgrader", log).init();
    forge = new Forge(vm, web, admin);
    await resolveGiteaTestLocally(vm);
    config = { ...serverConfig(vm), role: "server", rootlessUser: USER, backupDir: BACKUPS, image: vm.env.GITEA_PREVIOUS_IMAGE, imageArchive: vm.env.GITEA_PREVIOUS_IMAGE_ARCHIVE };
  });

  afterAll(async () => {
    process.stdout.write(`upgrade suite timings:\n  ${timings.join("\n  ")}\n`);
    await server?.up({ ...config, destroyData: "true", removeUserOnDestroy: "true" }).catch(() => undefined);
    await server?.destroy().catch(() => undefined);
    await vm?.root(`rm -rf ${BACKUPS}`).catch(() => undefined);
  });

  it(`a fresh up runs the older release, which gets a repository, a user and an issue`, async () => {
    const started = Date.now();
    await server.up(config);
    timings.push(`fresh up on ${vm.env.GITEA_PREVIOUS_VERSION}: ${((Date.now() - started) / 1000).toFixed(1)} s`);
    expect(await waitForStatus(`${web()}/api/healthz`, 200, GITEA_START_MS)).toBe(200);
    expect(await giteaVersion()).toBe(vm.env.GITEA_PREVIOUS_VERSION);
    await forge.addOperatorKey();
    history = [await forge.pushNewRepository(REPO, cloneUrl(), { "README.md": "made before the upgrade\n" }, "before the upgrade")];
    expect((await giteaApi(web(), "/admin/users", { auth: admin(), method: "POST", body: { username: "bob", email: "bob@gitea.test", password: "bob-password-1", must_change_password: false } })).status).toBe(201);
    expect((await giteaApi(web(), `/repos/gitea-admin/${REPO}/issues`, { auth: admin(), method: "POST", body: { title: "survives the upgrade" } })).status).toBe(201);
  });

  it("changing image to the newer release backs up first, migrates, and keeps everything", async () => {
    config = { ...config, image: vm.env.GITEA_IMAGE, imageArchive: vm.env.GITEA_IMAGE_ARCHIVE };
    const started = Date.now();
    const report = await server.up(config);
    timings.push(`upgrade up ${vm.env.GITEA_PREVIOUS_VERSION} -> ${vm.env.GITEA_VERSION}: ${((Date.now() - started) / 1000).toFixed(1)} s`);
    // In the order the engine finished them (the service unit depends on gitea-upgrade).
    const order = report.commands.map((c) => c.resource);
    expect(order.indexOf("gitea-upgrade")).toBeGreaterThanOrEqual(0);
    expect(order.indexOf("gitea-upgrade")).toBeLessThan(order.indexOf("gitea-service-unit"));
    expect(await giteaVersion()).toBe(vm.env.GITEA_VERSION);
    const backups = await vm.root(`ls -1 ${BACKUPS}`);
    expect(backups).toMatch(/^gitea-backup-\d{8}T\d{6}Z-pre-upgrade$/m);
    const manifest = await vm.root(`cat ${BACKUPS}/gitea-backup-*-pre-upgrade/manifest`);
    expect(manifest).toContain(`gitea_version=${vm.env.GITEA_PREVIOUS_VERSION}`);
    expect(manifest).toContain(`image=${vm.env.GITEA_PREVIOUS_IMAGE}`);
    // Gitea's own record of the schema: the newer release's migrations ran.
    const migrated = await vm.asUser(USER, "podman logs gitea 2>&1 | grep -c 'Migration\\[' || true");
    expect(Number(migrated)).toBeGreaterThan(0);
    expect(await forge.cloneHistory(REPO, cloneUrl())).toEqual(history);
    expect((await giteaApi(web(), "/users/bob", { auth: admin() })).status).toBe(200);
    const issues = (await giteaApi(web(), `/repos/gitea-admin/${REPO}/issues?state=all`, { auth: admin() })).body as Array<{ title: string }>;
    expect(issues.map((i) => i.title)).toEqual(["survives the upgrade"]);
    history = [await forge.pushEmptyCommit(REPO, "after the upgrade"), ...history];
    expect((await server.up(config)).commands).toEqual([]);
  });

  it("going back to the older release is refused before anything changes", async () => {
    const unitBefore = await unitFile();
    const downgrade = { ...config, image: vm.env.GITEA_PREVIOUS_IMAGE, imageArchive: vm.env.GITEA_PREVIOUS_IMAGE_ARCHIVE };
    const error = await server.up(downgrade).then(() => undefined, (e: unknown) => e);
    expect(error).toBeInstanceOf(DeploymentError);
    // The versions are what the script printed (its text, which the provider's error quotes too,
    // has only "$previous_version"); the provider's own text now comes between the step's name
    // and the script's, so the failed step is checked in the report.
    expect((error as Error).message).toMatch(
      new RegExp(`refusing to downgrade Gitea from ${vm.env.GITEA_VERSION.replace(/\./g, "\\.")} .* to ${vm.env.GITEA_PREVIOUS_VERSION.replace(/\./g, "\\.")}.*gitea-homelab:allowDowngrade`),
    );
    expect((error as DeploymentError).report.commands.filter((c) => c.exitCode !== 0).map((c) => c.resource)).toEqual(["gitea-upgrade"]);
    expect(await unitFile()).toBe(unitBefore);
    expect(await giteaVersion()).toBe(vm.env.GITEA_VERSION);
    expect(await forge.cloneHistory(REPO, cloneUrl())).toEqual(history);
  });
});
