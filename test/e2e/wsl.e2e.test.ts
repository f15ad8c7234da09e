/**
 * The wsl stack on the same Debian 13 VM playing the WSL host: the runner stand-in
 * (test/e2e/standin/act_runner) is copied onto the host and installed through runnerSourcePath,
 * as on a host without internet. The instance URL and token come from config here; the
 * StackReference path is covered by the unit tests.
 */
import { randomBytes } from "crypto";
import { readFileSync } from "fs";
import { join } from "path";
import { beforeAll, describe, expect, it } from "vitest";
import { Engine, freshEngine } from "./harness/engine";
import { sshRun } from "./harness/ssh";
import { connectionConfig, TestVm, testVm } from "./harness/vm";

const rundir = process.env.GITEA_HOMELAB_VM_RUNDIR;
const STANDIN = "/opt/gitea-homelab-test/act_runner-standin";

describe.runIf(rundir)("wsl stack on the VM", () => {
  let vm: TestVm;
  let engine: Engine;
  let config: Record<string, string>;
  const log: string[] = [];
  const token = randomBytes(24).toString("hex");

  const registrations = async () => Number(await vm.root("wc -l </var/log/act_runner-standin/registrations.log 2>/dev/null || echo 0"));
  const serviceState = () => vm.root("echo $(systemctl is-active act_runner.service) $(systemctl is-enabled act_runner.service 2>/dev/null)");

  beforeAll(async () => {
    vm = testVm(rundir!);
    engine = freshEngine(join(rundir!, "engine-state-wsl.json"), log);
    const standin = readFileSync(join(__dirname, "standin/act_runner/act_runner-standin"), "utf8");
    const copied = await sshRun(vm.operator, `sudo -n install -D -m 755 /dev/stdin ${STANDIN}`, standin);
    expect(copied.code).toBe(0);
    await vm.root("rm -f /var/log/act_runner-standin/registrations.log");
    config = {
      ...connectionConfig(vm),
      // The VM's own address on its network: not localhost, as the stack demands.
      instanceUrl: "http://10.0.2.15:4111/",
      registrationToken: token,
      runnerSourcePath: STANDIN,
      runnerLabels: "ubuntu-latest:docker://docker.gitea.com/runner-images:ubuntu-latest",
    };
  });

  it("a fresh up installs, registers once and runs the runner with Podman's socket", async () => {
    const report = await engine.up(config, "wsl");
    expect(report.commands.map((c) => `${c.operation} ${c.resource}`).sort()).toEqual(["create runner-install", "create runner-register", "create wsl-preflight"]);
    expect(await serviceState()).toBe("active enabled");
    expect(await vm.root("systemctl is-active podman.socket")).toBe("active");
    expect(await registrations()).toBe(1);
    expect(await vm.root("grep -c 'token_sha256=' /var/log/act_runner-standin/registrations.log")).toBe("1");
    expect(await vm.root("cat /var/lib/act_runner/.runner")).toContain('"address": "http://10.0.2.15:4111/"');
    expect(await vm.root("grep -E 'docker_host|file:' /etc/act_runner/config.yaml | tr -s ' '")).toBe("file: /var/lib/act_runner/.runner\n docker_host: unix:///run/podman/podman.sock");
    expect(await vm.root("journalctl -u act_runner.service --no-pager")).toContain("act_runner-standin daemon: config=/etc/act_runner/config.yaml");
    const visible = [await vm.root("cat /etc/act_runner/config.yaml /etc/systemd/system/act_runner.service /var/lib/act_runner/.runner"), await vm.root("ps -eo args"), log.join("\n")].join("\n");
    expect(visible).not.toContain(token);
  });

  it("a second up registers nothing and runs nothing", async () => {
    const report = await engine.up(config, "wsl");
    expect(report.commands).toEqual([]);
    expect(await registrations()).toBe(1);
  });

  it("a label change registers again and restarts the runner", async () => {
    config = { ...config, runnerLabels: "ubuntu-latest:docker://docker.gitea.com/runner-images:ubuntu-latest,self:host" };
    const report = await engine.up(config, "wsl");
    expect(report.commands.map((c) => `${c.operation} ${c.resource}`).sort()).toEqual(["update runner-install", "update runner-register"]);
    expect(await registrations()).toBe(2);
    expect(await vm.root("tail -n1 /var/log/act_runner-standin/registrations.log")).toContain("labels=ubuntu-latest:docker://docker.gitea.com/runner-images:ubuntu-latest,self:host");
    expect(await serviceState()).toBe("active enabled");
  });

  it("comes back after a reboot", async () => {
    vm.reboot();
    let state = "";
    for (let i = 0; i < 30 && state !== "active enabled"; i++) {
      state = await serviceState();
      if (state !== "active enabled") await new Promise((r) => setTimeout(r, 3000));
    }
    expect(state).toBe("active enabled");
    expect(await registrations()).toBe(2);
  });

  it("destroy leaves nothing behind", async () => {
    await engine.destroy();
    expect(await serviceState()).toMatch(/^inactive( not-found)?$/);
    expect(await vm.root("ls -d /etc/act_runner /var/lib/act_runner /usr/local/bin/act_runner /etc/systemd/system/act_runner.service 2>/dev/null | wc -l")).toBe("0");
  });
});
