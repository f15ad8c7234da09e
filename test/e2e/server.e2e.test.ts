/**
 * The whole server lifecycle on a real Debian 13 VM (systemd, Podman, firewalld, sshd), driven
 * by the real Pulumi CLI (test/e2e/harness/pulumiCli.ts), with real Gitea (built from its Go
 * module, image loaded from an archive baked into the VM). Every check looks at the host or at
 * Gitea itself. Needs GITEA_HOMELAB_VM_RUNDIR: a VM booted by test/e2e/vm/start-vm.sh with guest
 * ports 4111, 3333 and 4112 forwarded (test/e2e/with-vm.sh does that, and builds the CLI).
 * The stack is "server-suite" (the run's other suite files share its file backend), so its
 * config sets `role: server`.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GITEA_START_MS, GiteaAuth, giteaApi, iniValue } from "./harness/gitea";
import { CliStack, DeploymentError, openWorkspace, RunReport } from "./harness/pulumiCli";
import { acceptedSshSessions, serverConfig, TestVm, testVm, waitForStatus } from "./harness/vm";

const rundir = process.env.GITEA_HOMELAB_VM_RUNDIR;

describe.runIf(rundir)("server stack lifecycle on the Debian 13 VM", () => {
  let vm: TestVm;
  let stack: CliStack;
  const log: string[] = [];
  let config: Record<string, string>;
  /** The adminPassword output before destroy, which forgets it. */
  let passwordBeforeDestroy: string | undefined;

  const gitea = (args: string) => vm.asUser("rootless", `podman exec gitea ${args}`);
  const appIni = () => gitea("cat /etc/gitea/app.ini");
  const web = (port: number) => `http://127.0.0.1:${vm.forwarded(port)}`;
  const admin = (): GiteaAuth => ({ username: "gitea-admin", password: stack.lastOutputs().adminPassword as string });
  const rootlessExists = () => vm.root("id -u rootless >/dev/null 2>&1 && echo yes || echo no");
  const openPorts = () => vm.root("echo runtime: $(firewall-cmd --list-ports) permanent: $(firewall-cmd --permanent --list-ports)");
  const commandsRun = (r: RunReport) => r.commands.map((c) => `${c.operation} ${c.resource}`).sort();
  async function failingUp(overrides: Record<string, string>): Promise<DeploymentError> {
    const err = await stack.up({ ...config, ...overrides }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(DeploymentError);
    return err as DeploymentError;
  }

  // Whatever failed, the next suite must find port 4111 free (a no-op after the last test's destroy).
  afterAll(async () => {
    await stack?.destroy().catch(() => undefined);
  });

  beforeAll(async () => {
    vm = testVm(rundir!);
    const ws = await openWorkspace(rundir!, { suite: "server suite", sshSessions: () => acceptedSshSessions(vm) });
    stack = await new CliStack(ws, "server-suite", log).init();
    config = { ...serverConfig(vm), role: "server" };
  });

  describe("6. bad input fails clearly, changes nothing, and a fixed up converges (below)", () => {
    it("an SSH port where nothing answers SSH names the port", async () => {
      const err = await failingUp({ port: String(vm.forwarded(4112)) });
      // A port firewalld drops stays silent; one it rejects or forwards elsewhere closes at once.
      // The program's own check, before any SSH session: sshd accepted none.
      expect(err.message).toMatch(/gitea-homelab:(port|host): 127\.0\.0\.1:\d+ (closed the connection without an SSH greeting|did not answer within .*gitea-homelab:port)/);
      expect(err.report.sshSessions).toBe(0);
    });

    it("a user without passwordless sudo names the setting", async () => {
      const err = await failingUp({ user: "nosudo" });
      expect(err.message).toMatch(/SSH user nosudo needs passwordless sudo .*gitea-homelab:user/);
      expect(await rootlessExists()).toBe("no");
    });

    it("a stopped firewalld names the setting", async () => {
      await vm.root("systemctl stop firewalld");
      try {
        const err = await failingUp({});
        // What the preflight printed (the provider's error also quotes the script, which holds
        // the same words with quotes between them: this form is only in the output).
        expect(err.message).toMatch(/firewalld is not running: start it with 'systemctl enable --now firewalld' or set gitea-homelab:firewall to none/);
        expect(err.report.commands.filter((c) => c.exitCode !== 0).map((c) => c.resource)).toEqual(["server-preflight"]);
        expect(await rootlessExists()).toBe("no");
      } finally {
        await vm.root("systemctl start firewalld");
      }
    });
  });

  describe("1-3. up, up again, change the HTTP port", () => {
    let first: RunReport;

    it("1. a fresh up converges the host", async () => {
      first = await stack.up(config);
      expect(commandsRun(first)).toEqual(
        [
          "server-preflight",
          "gitea-user-account",
          "gitea-data-volume",
          "gitea-config-volume",
          "gitea-backup-schedule",
          "gitea-keys-file",
          "gitea-image",
          "gitea-upgrade",
          "gitea-service-unit",
          "gitea-health",
          "gitea-admin",
          "gitea-http-port",
          "gitea-ssh-port",
        ]
          .map((n) => `create ${n}`)
          .sort(),
      );
      expect(await waitForStatus(`${web(4111)}/api/healthz`, 200, GITEA_START_MS)).toBe(200);
      expect(await openPorts()).toMatch(/^runtime: (?=.*4111\/tcp)(?=.*3333\/tcp).* permanent: (?=.*4111\/tcp)(?=.*3333\/tcp)/);
      expect(await vm.root("loginctl show-user rootless --property=Linger --value")).toBe("yes");
      expect(await vm.root("systemctl --user -M rootless@ is-active gitea.service")).toBe("active");
      expect(await vm.root("systemctl --user -M rootless@ is-enabled gitea.service")).toMatch(/^(enabled|generated)$/);
      expect(await vm.asUser("rootless", "podman volume ls --format '{{.Name}}' | sort | tr '\\n' ' '")).toBe("gitea-config gitea-data");
      expect(await gitea("gitea admin user list --admin")).toMatch(/\bgitea-admin\b/);
      // The admin logs in through the API with the stack's adminPassword output: no web installer, no copied password.
      const me = await giteaApi(web(4111), "/user", { auth: admin() });
      expect([me.status, me.body.login, me.body.is_admin]).toEqual([200, "gitea-admin", true]);
      expect((await giteaApi(web(4111), "/user", { auth: { ...admin(), password: "not-the-password" } })).status).toBe(401);

      // Gitea's own config, as its image wrote it from our GITEA__* variables.
      const ini = await appIni();
      expect(iniValue(ini, "server", "ROOT_URL")).toBe("http://gitea.test:4111/");
      expect(iniValue(ini, "server", "SSH_PORT")).toBe("3333");
      expect(iniValue(ini, "server", "SSH_DOMAIN")).toBe("gitea.test");
      expect(iniValue(ini, "server", "DOMAIN")).toBe("gitea.test");
      expect(iniValue(ini, "security", "INSTALL_LOCK")).toBe("true");
      const secrets = [iniValue(ini, "security", "SECRET_KEY"), iniValue(ini, "security", "INTERNAL_TOKEN"), iniValue(ini, "oauth2", "JWT_SECRET")].map((v) => v ?? "");
      expect(secrets.map((v) => v.length)).toEqual([64, 64, 43]);
      secrets.push(stack.lastOutputs().runnerRegistrationToken as string, admin().password);
      const visible = [
        await vm.root("cat ~rootless/.config/containers/systemd/gitea.container"),
        await vm.root("ps -eo args"),
        await vm.root("journalctl --no-pager -n 2000"),
        // What the CLI printed (not the outputs the harness reads with --show-secrets).
        log.join("\n"),
      ].join("\n");
      for (const s of secrets) expect(visible).not.toContain(s);
      expect(await vm.root("stat -c '%a %U' ~rootless/.config/gitea-homelab/gitea.env")).toBe("600 rootless");
      // Gitea's keys were made on the host: the file Podman reads holds exactly what app.ini has.
      expect(await vm.root("stat -c '%a %U' ~rootless/.config/gitea-homelab/gitea-keys.env")).toBe("600 rootless");
      expect(await vm.root("sed -n 's/^GITEA__security__SECRET_KEY=//p' ~rootless/.config/gitea-homelab/gitea-keys.env")).toBe(secrets[0]);
    });

    it("2. a second up with the same config runs no remote command; only the drift probe's SSH sessions", async () => {
      const second = await stack.up(config);
      expect(second.commands).toEqual([]);
      // `up` runs the program twice (its preview, then the update): one probe session each, nothing else.
      expect(second.sshSessions).toBe(2);
    });

    it("3. a new HTTP port runs only what it affects: old port closed, new one open and answering", async () => {
      config = { ...config, httpPort: "4112" };
      const moved = await stack.up(config);
      // The backup tool waits for Gitea on the published port after a rollback: it follows.
      expect(commandsRun(moved)).toEqual(["delete gitea-http-port", "replace gitea-health", "replace gitea-http-port", "update gitea-backup-schedule", "update gitea-service-unit"]);
      expect(await openPorts()).toMatch(/^runtime: (?!.*4111)(?=.*4112\/tcp).* permanent: (?!.*4111)(?=.*4112\/tcp)/);
      expect(await waitForStatus(`${web(4112)}/api/healthz`, 200, GITEA_START_MS)).toBe(200);
      expect(iniValue(await appIni(), "server", "ROOT_URL")).toBe("http://gitea.test:4112/");
    });
  });

  it("4. after a reboot the container is back without anyone logging in", async () => {
    vm.reboot();
    expect(await waitForStatus(`${web(4112)}/api/healthz`, 200, GITEA_START_MS)).toBe(200);
    // systemd 256+ lists the lingering user manager as a session of class "manager"; no login session.
    expect(await vm.root("loginctl list-sessions --no-legend | grep rootless | grep -vc manager || true")).toBe("0");
    expect(await vm.root("systemctl --user -M rootless@ is-active gitea.service")).toBe("active");
  });

  describe("5. destroy", () => {
    it("removes the unit, closes the ports and disables linger, but keeps the volumes", async () => {
      const made = await giteaApi(web(4112), "/user/repos", { auth: admin(), method: "POST", body: { name: "kept", auto_init: true } });
      expect(made.status).toBe(201);
      passwordBeforeDestroy = admin().password;
      expect(passwordBeforeDestroy).toBeTruthy();
      await stack.destroy();
      expect(await vm.root("test -e ~rootless/.config/containers/systemd/gitea.container && echo present || echo gone")).toBe("gone");
      expect(await vm.root("test -e ~rootless/.config/gitea-homelab/gitea.env && echo present || echo gone")).toBe("gone");
      expect(await openPorts()).toBe("runtime: permanent:");
      expect(await vm.root("loginctl show-user rootless --property=Linger --value 2>/dev/null || echo no")).toBe("no");
      expect(await vm.root("ls ~rootless/.local/share/containers/storage/volumes | grep gitea | tr '\\n' ' '")).toBe("gitea-config gitea-data");
    });

    it("a later up finds the old data, and the admin made before destroy takes the new stack's password", async () => {
      const again = await stack.up(config);
      expect(again.commands.map((c) => `${c.operation} ${c.resource}`)).toEqual(expect.arrayContaining(["create gitea-service-unit", "create gitea-admin"]));
      // Destroy forgot the generated password; a new one was made and set on the kept account.
      expect(admin().password).toBeTruthy();
      expect(admin().password).not.toBe(passwordBeforeDestroy);
      expect(await waitForStatus(`${web(4112)}/api/healthz`, 200, GITEA_START_MS)).toBe(200);
      const repo = await giteaApi(web(4112), "/repos/gitea-admin/kept", { auth: admin() });
      expect([repo.status, repo.body.full_name]).toEqual([200, "gitea-admin/kept"]);
      // Set by `change-password`, which would otherwise mark it "must change": the API must still let it in.
      expect((await giteaApi(web(4112), "/user", { auth: admin() })).status).toBe(200);
    });

    it("switching to a classic unit replaces the Quadlet file with an enabled service", async () => {
      config = { ...config, unitStyle: "service", destroyData: "true", removeUserOnDestroy: "true" };
      const switched = await stack.up(config);
      expect(commandsRun(switched)).toContain("replace gitea-service-unit");
      expect(await vm.root("systemctl --user -M rootless@ is-enabled gitea.service")).toBe("enabled");
      expect(await vm.root("test -e ~rootless/.config/containers/systemd/gitea.container && echo present || echo gone")).toBe("gone");
      expect(await waitForStatus(`${web(4112)}/api/healthz`, 200, GITEA_START_MS)).toBe(200);
    });

    it("a classic unit disabled by hand shows as drift, and up enables it again", async () => {
      await vm.root("systemctl --user -M rootless@ disable gitea.service");
      const preview = await stack.preview(config);
      expect(preview.steps.map((s) => `${s.operation} ${s.resource}: ${s.drift}`)).toEqual(["update gitea-service-unit: unit gitea.service: disabled at boot, expected enabled"]);
      expect(commandsRun(await stack.up(config))).toEqual(["update gitea-service-unit"]);
      expect(await vm.root("systemctl --user -M rootless@ is-enabled gitea.service")).toBe("enabled");
      expect((await stack.preview(config)).steps).toEqual([]);
    });

    it("with destroyData and removeUserOnDestroy removes the volumes and the account", async () => {
      await stack.destroy();
      expect(await rootlessExists()).toBe("no");
      expect(await vm.root("test -e /home/rootless && echo present || echo gone")).toBe("gone");
      expect(await vm.root("grep -c '^rootless:' /etc/subuid || true")).toBe("0");
      expect(await openPorts()).toBe("runtime: permanent:");
    });
  });
});
