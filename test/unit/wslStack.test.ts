import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { foldedMarker } from "../../components/host/checkedCommand";
import { decidePlatform } from "../../components/host/platform";
import { WSL_SYSTEMD_ADVICE } from "../../stacks/wslConfig";
import { listen } from "../helpers/fakeSshd";
import type { ProgramRun } from "../helpers/pulumiMocks";
import { hostFactsSection, runWithMocks } from "../helpers/pulumiMocks";

const TOKEN = "T0kenT0kenT0kenT0kenT0kenT0kenT0kenT0ken";
const ADMIN_PASSWORD = "adm1n-pa55word";
let run: ProgramRun;
let sshd: Awaited<ReturnType<typeof listen>>;

beforeAll(async () => {
  sshd = await listen("SSH-2.0-OpenSSH_9.9\r\n");
  run = await runWithMocks(
    { host: "127.0.0.1", port: String(sshd.port), user: "root", runnerSourcePath: "/root/gitea-runner", runnerLabels: "ubuntu-latest:docker://node:20,self:host" },
    async () => (await import("../../program")).main(),
    {
      stack: "wsl",
      // The host already runs a runner binary other than the configured runnerVersion.
      probeStdout: () =>
        [hostFactsSection("fedora", "systemd"), "@@gitea-homelab-probe begin runner-install", "version=gitea-runner version v1.0.9", "@@gitea-homelab-probe end runner-install", "@@gitea-homelab-session exit 0"].join("\n"),
      stackReferences: {
        "organization/gitea-homelab/server": {
          outputs: { giteaUrl: "http://192.168.1.10:4111/", runnerRegistrationToken: TOKEN, adminUsername: "gitea-admin", adminPassword: ADMIN_PASSWORD },
          secret: ["runnerRegistrationToken", "adminPassword"],
        },
      },
    },
  );
});
afterAll(() => sshd.close());

describe("wsl stack", () => {
  it("builds a Host and an ActRunner: install, then register, both after the preflight", () => {
    const runner = run.resources.find((r) => r.type === "gitea-homelab:components:ActRunner")!;
    const install = run.byName("runner-install");
    const register = run.byName("runner-register");
    expect(install.parent).toBe(runner.urn);
    expect(register.dependencies).toContain(install.urn);
    expect(install.dependencies).toContain(run.byName("wsl-preflight").urn);
    expect(run.ofType("gitea-homelab:components:FirewallPort")).toEqual([]);
  });

  it("probes the runner's host in one session, and folds its drift into install and register", () => {
    const probes = run.invokes.filter((i) => i.token === "command:local:run");
    expect(probes).toHaveLength(1);
    expect(probes[0].inputs.command).toContain("run_probe runner-install ");
    expect(probes[0].inputs.command).toContain("run_probe runner-register ");
    for (const name of ["runner-install", "runner-register"]) {
      expect(foldedMarker(run.byName(name).inputs.create)?.check).toBe(1);
      expect(foldedMarker(run.byName(name).inputs.create)?.text).toMatch(/^runner /);
    }
  });

  it("tells a user without systemd what to put in wsl.conf, and leaves the firewall alone", () => {
    expect(() => decidePlatform({ os_id: "fedora", init: "init" }, { unitStyle: "service", firewall: "none", systemdAdvice: WSL_SYSTEMD_ADVICE })).toThrow(
      /systemd=true[\s\S]*wsl --shutdown[\s\S]*vmIdleTimeout=-1/,
    );
    expect(run.byName("wsl-preflight").script as string).toContain("firewall='none'");
  });

  it("registers with the server stack's URL and secret token, and unregisters with its admin: secrets only on stdin", () => {
    const register = run.byName("runner-register");
    expect(register.script).toContain("instance='http://192.168.1.10:4111/'");
    for (const script of [register.inputs.create, register.script, register.deleteScript, run.byName("runner-install").script]) {
      expect(script).not.toContain(TOKEN);
      expect(script).not.toContain(ADMIN_PASSWORD);
    }
    expect(register.deleteScript).toContain("/api/v1/admin/actions/runners/");
    expect(register.payload).toBe(`${TOKEN}\ngitea-admin:${ADMIN_PASSWORD}\n`);
    expect(register.secretInputs).toContain("stdin");
    expect(register.inputs.logging).toBe("none");
    expect(register.additionalSecretOutputs).toEqual(expect.arrayContaining(["stdout", "stderr"]));
  });

  it("installs from the host's file to one path the unit runs", () => {
    // Whole lines: the script also names the act_runner an earlier default installed.
    const install = (run.byName("runner-install").script as string).split("\n");
    expect(install).toContain("source_path='/root/gitea-runner'");
    expect(install).toContain("binary='/usr/local/bin/gitea-runner'");
    expect(install).toContain("ExecStart=/usr/local/bin/gitea-runner daemon --config /etc/act_runner/config.yaml");
    expect(install).toContain("systemctl enable --now --quiet podman.socket");
  });

  it("exports the runner's name, labels, instance and version", async () => {
    expect(await run.value(run.outputs.runnerName)).toBe("wsl-runner");
    expect(await run.value(run.outputs.labels)).toEqual(["ubuntu-latest:docker://node:20", "self:host"]);
    expect(await run.value(run.outputs.instanceUrl)).toBe("http://192.168.1.10:4111/");
    // What the host's binary says, not the runnerVersion default (1.0.8).
    expect(await run.value(run.outputs.binaryVersion)).toBe("1.0.9");
    expect(await run.value(run.outputs.runnerRecordOnDestroy)).toMatch(/from this host and from Gitea/);
  });
});
