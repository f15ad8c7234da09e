/**
 * Both stacks on the Debian 13 VM, with the real Gitea and the real runner (both built from
 * their Go modules): a server stack (rootless user "forge") and the wsl stack on the same VM
 * playing the WSL host, which takes Gitea's URL, its registration token and its admin from the
 * server stack through a StackReference. A repository with a workflow is pushed over SSH to
 * the server stack's sshCloneBase, and the job runs in Podman through the socket, on a job
 * image baked into the VM (nothing can be pulled). On the VM `gitea.test` resolves to
 * 127.0.0.1 (its /etc/hosts): both stacks share one host here, and rootless Podman's pasta
 * does not forward a connection the host makes to its own LAN address (the container has that
 * address too), so on one machine only loopback reaches the published ports. A runner on
 * another machine, as in the tutorial, uses the LAN name.
 * Both stacks are driven by the real Pulumi CLI (test/e2e/harness/pulumiCli.ts): "server-forge"
 * and "wsl-forge" (the run's other suite files share the file backend, so the names are this
 * file's own and the config sets each stack's `role`); the wsl stack names the server stack by
 * its qualified name in `serverStack`.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { shq } from "../../components/render/shell";
import { GITEA_START_MS, GiteaAuth, giteaApi, waitFor } from "./harness/gitea";
import { CliStack, openWorkspace } from "./harness/pulumiCli";
import { acceptedSshSessions, jobLabel, resolveGiteaTestLocally, serverConfig, TestVm, testVm, waitForStatus, wslConfig } from "./harness/vm";

const rundir = process.env.GITEA_HOMELAB_VM_RUNDIR;

/** A job's container is slow to start under TCG. */
const RUN_MS = 600_000;
const RUNNER = "wsl-runner";
const MARKER = "gitea-homelab-ci-marker";
const WORKFLOW = `on: [push]
jobs:
  hello:
    runs-on: debian-local
    steps:
      - run: echo "${MARKER} $(uname -s) $((6 * 7))"
`;

describe.runIf(rundir)("server and wsl stacks: a pushed workflow runs on the real runner", () => {
  let vm: TestVm;
  let server: CliStack;
  let wsl: CliStack;
  let config: Record<string, string>;
  const log: string[] = [];

  const web = () => `http://127.0.0.1:${vm.forwarded(4111)}`;
  const admin = (): GiteaAuth => ({ username: "gitea-admin", password: server.lastOutputs().adminPassword as string });
  const runners = async () => (await giteaApi(web(), "/admin/actions/runners", { auth: admin() })).body.runners as Array<{ id: number; name: string; status: string; labels: Array<{ name: string }> }>;
  const onlineRunner = () =>
    waitFor(`runner ${RUNNER} online in Gitea`, 180_000, async () => (await runners()).find((r) => r.name === RUNNER && r.status === "online"));
  const serviceState = () => vm.root("echo $(systemctl is-active act_runner.service) $(systemctl is-enabled act_runner.service 2>/dev/null)");
  /** Runs `cmd` as the operator in the VM, where git pushes over SSH to Gitea. */
  const asOperator = (cmd: string) => vm.root(`cd /home/operator && runuser -u operator -- bash -c ${shq(`set -euo pipefail; ${cmd}`)}`);

  beforeAll(async () => {
    vm = testVm(rundir!);
    const ws = await openWorkspace(rundir!, { suite: "wsl suite", sshSessions: () => acceptedSshSessions(vm) });
    server = await new CliStack(ws, "server-forge", log).init();
    wsl = await new CliStack(ws, "wsl-forge", log).init();
    await resolveGiteaTestLocally(vm);
    // The runner's jobs run in root's Podman (the socket of a system service): load the job image there.
    await vm.root(`podman load -q -i ${vm.env.JOB_IMAGE_ARCHIVE}`);
    await server.up({ ...serverConfig(vm), role: "server", rootlessUser: "forge", destroyData: "true", removeUserOnDestroy: "true" });
    expect(await waitForStatus(`${web()}/api/healthz`, 200, GITEA_START_MS)).toBe(200);
    config = wslConfig(vm, { role: "wsl", serverStack: server.qualifiedName, runnerName: RUNNER });
  });

  afterAll(async () => {
    await wsl?.destroy().catch(() => undefined);
    await server?.destroy().catch(() => undefined);
  });

  it("a fresh up installs and registers the runner from the server stack's outputs; Gitea lists it online", async () => {
    // As a stack made before the runner's rename took the binary's default name, act_runner;
    // the next test moves it to the defaults.
    const report = await wsl.up({ ...config, runnerBinaryName: "act_runner" });
    expect(report.commands.map((c) => `${c.operation} ${c.resource}`).sort()).toEqual(["create runner-install", "create runner-register", "create wsl-preflight"]);
    expect(await serviceState()).toBe("active enabled");
    expect(await vm.root("systemctl is-active podman.socket")).toBe("active");
    const runner = await onlineRunner();
    expect(runner.labels.map((l) => l.name)).toEqual(["debian-local"]);
    expect(await vm.root("grep -E 'docker_host|file:' /etc/act_runner/config.yaml | tr -s ' '")).toBe("file: /var/lib/act_runner/.runner\n docker_host: unix:///run/podman/podman.sock");
    // Neither the registration token nor the admin password shows anywhere on the host or in what
    // the CLI printed (but for the outputs the harness reads with --show-secrets).
    const visible = [await vm.root("cat /etc/act_runner/config.yaml /etc/systemd/system/act_runner.service /var/lib/act_runner/.runner"), await vm.root("ps -eo args"), await vm.root("journalctl --no-pager -n 3000"), log.join("\n")].join("\n");
    expect(visible).not.toContain(server.lastOutputs().runnerRegistrationToken as string);
    expect(visible).not.toContain(admin().password);
  });

  it("the next up with the default binary name runs gitea-runner under the same unit and registration; act_runner goes", async () => {
    const before = await onlineRunner();
    const report = await wsl.up(config);
    expect(report.commands.map((c) => `${c.operation} ${c.resource}`).sort()).toEqual(["update runner-install", "update runner-register"]);
    expect(await vm.root("grep '^ExecStart=' /etc/systemd/system/act_runner.service")).toBe("ExecStart=/usr/local/bin/gitea-runner daemon --config /etc/act_runner/config.yaml");
    expect(await vm.root("ls /usr/local/bin/act_runner /usr/local/bin/gitea-runner 2>/dev/null || true")).toBe("/usr/local/bin/gitea-runner");
    expect(await serviceState()).toBe("active enabled");
    // Restarted: the service's process is the new binary.
    expect(await vm.root("readlink /proc/$(systemctl show -p MainPID --value act_runner.service)/exe")).toBe("/usr/local/bin/gitea-runner");
    // Not registered again: the same record, the only one.
    expect((await onlineRunner()).id).toBe(before.id);
    expect((await runners()).map((r) => r.id)).toEqual([before.id]);
    expect((await wsl.preview(config)).steps).toEqual([]);
  });

  it("a workflow pushed over SSH to sshCloneBase runs to success in a Podman container", async () => {
    const repo = await giteaApi(web(), "/user/repos", { auth: admin(), method: "POST", body: { name: "ci-demo" } });
    expect(repo.status).toBe(201);
    const cloneUrl = `${server.lastOutputs().sshCloneBase as string}gitea-admin/ci-demo.git`;
    expect(repo.body.ssh_url).toBe(cloneUrl);
    // Each Gitea makes its own SSH host key: a known_hosts of this run only.
    await asOperator("rm -rf .ssh/gitea_ed25519* .ssh/gitea_known_hosts ci-demo && ssh-keygen -q -t ed25519 -N '' -f .ssh/gitea_ed25519");
    const key = await giteaApi(web(), "/user/keys", { auth: admin(), method: "POST", body: { title: "operator", key: await asOperator("cat .ssh/gitea_ed25519.pub") } });
    expect(key.status).toBe(201);
    await asOperator(
      [
        "mkdir -p ci-demo/.gitea/workflows && cd ci-demo",
        `printf '%s' ${shq(WORKFLOW)} >.gitea/workflows/ci.yml`,
        "git init -q -b main && git add -A",
        "git -c user.name=operator -c user.email=operator@gitea.test commit -q -m 'CI demo'",
        `GIT_SSH_COMMAND='ssh -i ~/.ssh/gitea_ed25519 -o UserKnownHostsFile=~/.ssh/gitea_known_hosts -o StrictHostKeyChecking=accept-new' git push -q ${cloneUrl} main`,
      ].join(" && "),
    );
    // Gitea takes the push in, then marks the repository non-empty: until then the list is empty.
    const pushed = await waitFor("the pushed commit to show in the API", 60_000, async () => {
      const commits = (await giteaApi(web(), "/repos/gitea-admin/ci-demo/commits?limit=1", { auth: admin() })).body;
      return Array.isArray(commits) && commits.length > 0 ? commits[0] : undefined;
    });
    expect(pushed.commit.message.trim()).toBe("CI demo");

    const run = await waitFor("the workflow run to finish", RUN_MS, async () => {
      const runs = (await giteaApi(web(), "/repos/gitea-admin/ci-demo/actions/runs", { auth: admin() })).body.workflow_runs ?? [];
      return runs[0]?.status === "completed" ? runs[0] : undefined;
    });
    const jobs = (await giteaApi(web(), `/repos/gitea-admin/ci-demo/actions/runs/${run.id}/jobs`, { auth: admin() })).body.jobs;
    const logs = await giteaApi(web(), `/repos/gitea-admin/ci-demo/actions/jobs/${jobs[0].id}/logs`, { auth: admin() });
    expect({ conclusion: run.conclusion, log: String(logs.body) }).toMatchObject({ conclusion: "success", log: expect.stringContaining(`${MARKER} Linux 42`) });
  });

  it("a second up registers nothing and runs nothing", async () => {
    // The same records (busy/idle come and go on their own).
    const records = async () => (await runners()).map((r) => ({ id: r.id, name: r.name, labels: r.labels.map((l) => l.name) }));
    const before = await records();
    const report = await wsl.up(config);
    expect(report.commands).toEqual([]);
    // `up` runs the program twice (its preview, then the update): one probe session each, nothing else.
    expect(report.sshSessions).toBe(2);
    expect(await records()).toEqual(before);
  });

  it("a label change registers again, and the old record leaves Gitea", async () => {
    const old = await onlineRunner();
    config = { ...config, runnerLabels: `${jobLabel(vm)},self:host` };
    const report = await wsl.up(config);
    expect(report.commands.map((c) => `${c.operation} ${c.resource}`).sort()).toEqual(["update runner-install", "update runner-register"]);
    const renewed = await onlineRunner();
    expect(renewed.id).not.toBe(old.id);
    expect(renewed.labels.map((l) => l.name).sort()).toEqual(["debian-local", "self"]);
    expect((await runners()).map((r) => r.id)).toEqual([renewed.id]);
    expect(await serviceState()).toBe("active enabled");
  });

  describe("drift: changed by hand, shown by preview, repaired by up, then a clean preview", () => {
    async function driftCycle(name: string, text: RegExp): Promise<void> {
      const preview = await wsl.preview(config);
      expect(preview.steps.map((s) => `${s.operation} ${s.resource}`)).toEqual([`update ${name}`]);
      expect(preview.steps[0].drift).toMatch(text);
      // The probe's one session: a preview runs no command.
      expect(preview.sshSessions).toBe(1);
      const repair = await wsl.up(config);
      expect(repair.commands.map((c) => `${c.operation} ${c.resource}`)).toEqual([`update ${name}`]);
      expect((await wsl.preview(config)).steps).toEqual([]);
    }

    it("the runner service stopped", async () => {
      await vm.root("systemctl stop act_runner.service");
      await driftCycle("runner-install", /^runner wsl-runner: act_runner\.service inactive, expected active$/);
      expect(await serviceState()).toBe("active enabled");
    });

    it("config.yaml edited", async () => {
      await vm.root("echo '# edited by hand' >>/etc/act_runner/config.yaml");
      await driftCycle("runner-install", /^runner wsl-runner: \/etc\/act_runner\/config\.yaml edited/);
      expect(await vm.root("grep -c 'edited by hand' /etc/act_runner/config.yaml || true")).toBe("0");
    });

    it(".runner removed: registers again and comes back online", async () => {
      await vm.root("rm /var/lib/act_runner/.runner");
      await driftCycle("runner-register", /^runner wsl-runner: \/var\/lib\/act_runner\/\.runner missing, expected registered$/);
      expect(await serviceState()).toBe("active enabled");
      await onlineRunner();
    });
  });

  it("Gitea and the runner come back after a reboot", async () => {
    vm.reboot();
    expect(await waitForStatus(`${web()}/api/healthz`, 200, GITEA_START_MS)).toBe(200);
    await waitFor("act_runner active after the reboot", 120_000, async () => ((await serviceState()) === "active enabled" ? true : undefined));
    await onlineRunner();
  });

  it("destroy removes the runner from the host and from Gitea", async () => {
    const before = (await runners()).filter((r) => r.name === RUNNER);
    expect(before.length).toBeGreaterThan(0);
    await wsl.destroy();
    expect(await serviceState()).toMatch(/^inactive( not-found)?$/);
    expect(await vm.root("ls -d /etc/act_runner /var/lib/act_runner /usr/local/bin/gitea-runner /usr/local/bin/act_runner /etc/systemd/system/act_runner.service 2>/dev/null | wc -l")).toBe("0");
    // The record .runner named is gone; one orphaned by the hand-removed .runner above stays (offline).
    const after = await runners();
    expect(after.map((r) => r.id)).not.toContain(before.find((r) => r.status === "online")!.id);
    expect(after.filter((r) => r.status === "online")).toEqual([]);
  });
});
