/**
 * The server stack's scripts on a real Debian 13 VM (systemd, Podman, firewalld, sshd), with
 * the Gitea stand-in image loaded from an archive: a fresh up, checked on the host itself, then
 * the recorded delete scripts. Needs GITEA_HOMELAB_VM_RUNDIR (a VM booted by test/e2e/vm/start-vm.sh
 * with guest port 4111 forwarded).
 */
import { execFileSync } from "child_process";
import { readFileSync } from "fs";
import { join } from "path";
import { describe, expect, it } from "vitest";
import { applyOnce, ExecutedCommand } from "./harness/applyOnce";
import { Connection, sshRun } from "./harness/ssh";

const rundir = process.env.GITEA_HOMELAB_VM_RUNDIR;

function vmEnv(dir: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of readFileSync(join(dir, "vm.env"), "utf8").split("\n")) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line);
    if (m) env[m[1]] = m[2].replace(/^'(.*)'$/, "$1").replace(/^"(.*)"$/, "$1");
  }
  return env;
}

describe.runIf(rundir)("server stack on the Debian 13 VM", () => {
  const env = vmEnv(rundir!);
  const privateKey = readFileSync(env.VM_SSH_KEY, "utf8");
  const operator: Connection = { host: "127.0.0.1", port: Number(env.VM_SSH_PORT), user: env.VM_SSH_USER, privateKey, hostKey: env.VM_HOST_KEY };
  const onHost = async (cmd: string) => (await sshRun(operator, `sudo -n bash -c ${JSON.stringify(cmd)}`)).stdout.trim();
  const executed: ExecutedCommand[] = [];
  const log: string[] = [];

  const config = {
    host: "127.0.0.1",
    port: env.VM_SSH_PORT,
    user: env.VM_SSH_USER,
    privateKey,
    hostKey: env.VM_HOST_KEY,
    publicHost: "gitea.test",
    adminEmail: "admin@gitea.test",
    image: "localhost/gitea-standin:1.27.3-rootless",
    imageArchive: "/opt/gitea-homelab-test/gitea-standin.tar",
  };
  const print = (line: string) => {
    log.push(line);
    process.stdout.write(`${line}\n`);
  };
  const rootlessExists = () => onHost("id -u rootless >/dev/null 2>&1 && echo yes || echo no");

  it("refuses a user without passwordless sudo, naming the setting, and changes nothing", async () => {
    await expect(applyOnce({ ...config, user: "nosudo" }, print)).rejects.toThrow(/SSH user nosudo needs passwordless sudo .*gitea-homelab:user/);
    expect(await rootlessExists()).toBe("no");
  });

  it("refuses a host whose firewalld is stopped, and changes nothing", async () => {
    await onHost("systemctl stop firewalld");
    try {
      await expect(applyOnce(config, print)).rejects.toThrow(/firewalld is not running.*gitea-homelab:firewall/);
      expect(await rootlessExists()).toBe("no");
    } finally {
      await onHost("systemctl start firewalld");
    }
  });

  it("converges a fresh host", async () => {
    await applyOnce(config, print, executed);
    expect(executed.map((e) => e.result.code)).toEqual(executed.map(() => 0));
    expect(await onHost("loginctl show-user rootless --property=Linger --value")).toBe("yes");
    expect(await onHost("systemctl --user -M rootless@ is-active gitea.service")).toBe("active");
    expect(await onHost("firewall-cmd --list-ports")).toMatch(/4111\/tcp.*3333\/tcp|3333\/tcp.*4111\/tcp/);
    expect(await onHost("stat -c '%a %U' ~rootless/.config/gitea-homelab/gitea.env")).toBe("600 rootless");
    const recorded = await onHost("cd / && runuser -u rootless -- env XDG_RUNTIME_DIR=/run/user/$(id -u rootless) podman exec gitea cat /var/lib/gitea/standin/env.txt");
    expect(recorded).toContain("GITEA__server__ROOT_URL=http://gitea.test:4111/");
    expect(recorded).toContain("GITEA__server__SSH_PORT=3333");
    expect(recorded).toMatch(/^GITEA__security__SECRET_KEY=[A-Za-z0-9]{64}$/m);
    expect(recorded).toMatch(/^GITEA__oauth2__JWT_SECRET=[A-Za-z0-9_-]{43}$/m);
    expect(recorded).toMatch(/^GITEA_RUNNER_REGISTRATION_TOKEN=[A-Za-z0-9]{48}$/m);
    const unitFile = await onHost("cat ~rootless/.config/containers/systemd/gitea.container");
    expect(unitFile).not.toMatch(/SECRET_KEY|REGISTRATION_TOKEN/);
    const secretKey = /^GITEA__security__SECRET_KEY=(\S+)$/m.exec(recorded)![1];
    expect(await onHost("ps -eo args")).not.toContain(secretKey);
    expect(log.join("\n")).not.toContain(secretKey);
    const admins = await onHost("cd / && runuser -u rootless -- env XDG_RUNTIME_DIR=/run/user/$(id -u rootless) podman exec gitea gitea admin user list --admin");
    expect(admins).toContain("gitea-admin");
    const res = await fetch(`http://127.0.0.1:${env.VM_FWD_4111}/api/healthz`);
    expect(res.status).toBe(200);
  });

  it("comes back after a reboot without anyone logging in", async () => {
    execFileSync("bash", [join(__dirname, "vm/reboot-vm.sh"), rundir!], { stdio: "inherit" });
    const deadline = Date.now() + 300_000;
    let status = 0;
    while (Date.now() < deadline && status !== 200) {
      status = await fetch(`http://127.0.0.1:${env.VM_FWD_4111}/api/healthz`).then((r) => r.status, () => 0);
      if (status !== 200) await new Promise((r) => setTimeout(r, 3000));
    }
    expect(status).toBe(200);
    expect(await onHost("systemctl --user -M rootless@ is-active gitea.service")).toBe("active");
  });

  /** Runs the recorded delete scripts newest first, as destroy does; volumes only when not retained. */
  async function destroy(withVolumes: boolean): Promise<void> {
    expect(executed.length, "commands ran before").toBeGreaterThan(0);
    for (const e of [...executed].reverse()) {
      if (!e.deleteCommand || (e.name.endsWith("-volume") && !withVolumes)) continue;
      const r = await sshRun(e.connection, e.deleteCommand);
      process.stdout.write(`< ${e.name}: exit ${r.code}\n${r.stdout}${r.stderr}`);
      expect(r.code, e.name).toBe(0);
    }
    executed.length = 0;
  }

  it("tears down with the delete scripts and keeps the volumes", async () => {
    await destroy(false);
    expect(await onHost("loginctl show-user rootless --property=Linger --value 2>/dev/null || echo no")).toMatch(/no/);
    expect(await onHost("firewall-cmd --list-ports; firewall-cmd --permanent --list-ports")).not.toMatch(/4111|3333/);
    expect(await onHost("test -e ~rootless/.config/containers/systemd/gitea.container && echo present || echo gone")).toBe("gone");
    // Linger is off, so the user's runtime dir is gone: look at the volumes on disk.
    expect(await onHost("ls ~rootless/.local/share/containers/storage/volumes | grep gitea | tr '\\n' ' '")).toBe("gitea-config gitea-data");
  });

  it("converges again as a classic service unit and finds the old data", async () => {
    await applyOnce({ ...config, unitStyle: "service", destroyData: "true", removeUserOnDestroy: "true" }, print, executed);
    expect(await onHost("systemctl --user -M rootless@ is-enabled gitea.service")).toBe("enabled");
    expect(await onHost("systemctl --user -M rootless@ is-active gitea.service")).toBe("active");
    expect(executed.find((e) => e.name === "gitea-admin")!.result.stdout).toContain("admin gitea-admin exists");
    const starts = await onHost("cd / && runuser -u rootless -- env XDG_RUNTIME_DIR=/run/user/$(id -u rootless) podman exec gitea grep -c start /var/lib/gitea/standin/starts.log");
    expect(Number(starts)).toBeGreaterThanOrEqual(3);
  });

  it("destroys the data and the account when told to", async () => {
    await destroy(true);
    expect(await rootlessExists()).toBe("no");
    expect(await onHost("test -e /home/rootless && echo present || echo gone")).toBe("gone");
    expect(await onHost("grep -c '^rootless:' /etc/subuid || true")).toBe("0");
  });
});
