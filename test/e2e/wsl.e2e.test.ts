/**
 * The wsl stack on the same Debian 13 VM playing the WSL host: the runner stand-in
 * (test/e2e/standin/act_runner) is copied onto the host and installed through runnerSourcePath,
 * as on a host without internet. The instance URL and token come from config here; the
 * StackReference path is covered by the unit tests.
 */
import { randomBytes } from "crypto";
import { join } from "path";
import { beforeAll, describe, expect, it } from "vitest";
import { Engine, freshEngine } from "./harness/engine";
import { installRunnerStandin, TestVm, testVm, wslConfig } from "./harness/vm";

const rundir = process.env.GITEA_HOMELAB_VM_RUNDIR;

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
    await installRunnerStandin(vm);
    await vm.root("rm -f /var/log/act_runner-standin/registrations.log");
    config = wslConfig(vm, token);
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
    expect(report.sshSessions).toBe(1);
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

  describe("drift: changed by hand, shown by preview, repaired by up, then a clean preview", () => {
    async function driftCycle(name: string, text: RegExp): Promise<void> {
      const preview = await engine.preview(config, "wsl");
      expect(preview.steps.map((s) => `${s.operation} ${s.resource}`)).toEqual([`update ${name}`]);
      expect(preview.steps[0].drift).toMatch(text);
      expect(preview.sshSessions).toBe(1);
      const repair = await engine.up(config, "wsl");
      expect(repair.commands.map((c) => `${c.operation} ${c.resource}`)).toEqual([`update ${name}`]);
      expect((await engine.preview(config, "wsl")).steps).toEqual([]);
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

    it(".runner removed: registers again", async () => {
      const before = await registrations();
      await vm.root("rm /var/lib/act_runner/.runner");
      await driftCycle("runner-register", /^runner wsl-runner: \/var\/lib\/act_runner\/\.runner missing, expected registered$/);
      expect(await registrations()).toBe(before + 1);
      expect(await serviceState()).toBe("active enabled");
    });
  });

  it("comes back after a reboot", async () => {
    vm.reboot();
    let state = "";
    for (let i = 0; i < 30 && state !== "active enabled"; i++) {
      state = await serviceState();
      if (state !== "active enabled") await new Promise((r) => setTimeout(r, 3000));
    }
    expect(state).toBe("active enabled");
    expect(await registrations()).toBe(3);
  });

  it("destroy leaves nothing behind", async () => {
    await engine.destroy();
    expect(await serviceState()).toMatch(/^inactive( not-found)?$/);
    expect(await vm.root("ls -d /etc/act_runner /var/lib/act_runner /usr/local/bin/act_runner /etc/systemd/system/act_runner.service 2>/dev/null | wc -l")).toBe("0");
  });
});
