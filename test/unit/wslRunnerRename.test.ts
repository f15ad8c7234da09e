/**
 * The wsl stack's runner binary before and after its defaults moved from act_runner 0.2.13 to
 * gitea-runner 1.0.8 (the runner CI runs), with Pulumi.yaml's defaults applied as the CLI does.
 * A stack that set act_runner 0.2.13 gets exactly the scripts it had (nothing updated or
 * re-created); one that took the defaults gets the new binary under the same unit, config and
 * registration, and the old binary goes.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { renderRunnerInstallScript, renderRunnerRegisterScript, renderRunnerRemoveScript, renderRunnerUnregisterScript, RunnerSettings } from "../../components/runner/render";
import { listen } from "../helpers/fakeSshd";
import { RecordedResource, runWithMocks } from "../helpers/pulumiMocks";

const SHA256 = "0123456789abcdef".repeat(4);
const OLD_URL = "https://dl.gitea.com/act_runner/0.2.13/act_runner-0.2.13-linux-amd64";
const NEW_URL = "https://dl.gitea.com/gitea-runner/1.0.8/gitea-runner-1.0.8-linux-amd64";
const program = async () => (await import("../../program")).main();
let sshd: Awaited<ReturnType<typeof listen>>;

beforeAll(async () => {
  sshd = await listen("SSH-2.0-OpenSSH_9.9\r\n");
});
afterAll(() => sshd.close());

const wsl = (config: Record<string, string>) =>
  runWithMocks({ host: "127.0.0.1", port: String(sshd.port), user: "root", ...config }, program, {
    stack: "wsl",
    stackReferences: {
      "organization/gitea-homelab/server": { outputs: { giteaUrl: "http://192.168.1.10:4111/", runnerRegistrationToken: "T0ken".repeat(8) }, secret: ["runnerRegistrationToken"] },
    },
  });

/** A remote command's script and delete script, as the recorder reads them back from its stdin. */
const scriptOf = (r: RecordedResource) => r.script ?? "";
const deleteScriptOf = (r: RecordedResource) => r.deleteScript ?? "";
/** A script's variable, as its own line. */
const assignment = (name: string, value: string) => `${name}='${value}'`;
const lines = (text: string) => text.split("\n");

/** What the wsl stack gave the runner before the rename, for act_runner 0.2.13 downloaded. */
const BEFORE: RunnerSettings = {
  binaryPath: "/usr/local/bin/act_runner",
  source: { url: OLD_URL, sha256: SHA256 },
  configDir: "/etc/act_runner",
  stateDir: "/var/lib/act_runner",
  name: "wsl-runner",
  labels: ["ubuntu-latest:docker://docker.gitea.com/runner-images:ubuntu-latest"],
  capacity: 1,
  timeout: "3h",
  instanceUrl: "http://192.168.1.10:4111/",
  serviceName: "act_runner.service",
  network: "",
};

describe("the runner's defaults: gitea-runner 1.0.8, the one CI runs", () => {
  it("downloads gitea-runner 1.0.8 from Gitea's layout to /usr/local/bin/gitea-runner, under the unit and paths of before", async () => {
    const run = await wsl({ runnerSha256: SHA256 });
    expect(run.warnings.filter((w) => w.includes("runner"))).toEqual([]);
    const install = lines(scriptOf(run.byName("runner-install")));
    expect(install).toContain(assignment("url", NEW_URL));
    expect(install).toContain(assignment("binary", "/usr/local/bin/gitea-runner"));
    expect(install).toContain("ExecStart=/usr/local/bin/gitea-runner daemon --config /etc/act_runner/config.yaml");
    expect(install).not.toContain("ExecStart=/usr/local/bin/act_runner daemon --config /etc/act_runner/config.yaml");
    // Fixed names: the binary's new name orphans no unit, config or registration.
    for (const [name, value] of [["service", "act_runner.service"], ["config_dir", "/etc/act_runner"], ["state_dir", "/var/lib/act_runner"], ["runner_file", "/var/lib/act_runner/.runner"]]) {
      expect(install, name).toContain(assignment(name, value));
    }
    // The act_runner the old default installed goes once the unit runs gitea-runner, or on destroy.
    expect(install).toContain(assignment("replaced_binary", "/usr/local/bin/act_runner"));
    expect(lines(deleteScriptOf(run.byName("runner-install")))).toContain(assignment("replaced_binary", "/usr/local/bin/act_runner"));
    const register = lines(scriptOf(run.byName("runner-register")));
    expect(register).toContain(assignment("binary", "/usr/local/bin/gitea-runner"));
    expect(register).toContain(assignment("runner_file", "/var/lib/act_runner/.runner"));
    expect(register).toContain(assignment("service", "act_runner.service"));
  });

  it("installs a binary copied to the host as gitea-runner too", async () => {
    const install = lines(scriptOf((await wsl({ runnerSourcePath: "/root/gitea-runner" })).byName("runner-install")));
    expect(install).toContain(assignment("source_path", "/root/gitea-runner"));
    expect(install).toContain(assignment("binary", "/usr/local/bin/gitea-runner"));
  });
});

describe("a stack that set act_runner 0.2.13 keeps it exactly", () => {
  it("renders the scripts it had before the rename: the old URL, binary, unit and paths, nothing removed", async () => {
    const run = await wsl({ runnerSha256: SHA256, runnerBinaryName: "act_runner", runnerVersion: "0.2.13" });
    expect(run.warnings.filter((w) => w.includes("runner"))).toEqual([]);
    const install = { create: scriptOf(run.byName("runner-install")), delete: deleteScriptOf(run.byName("runner-install")) };
    const register = { create: scriptOf(run.byName("runner-register")), delete: deleteScriptOf(run.byName("runner-register")) };
    expect(lines(install.create)).toContain(assignment("url", OLD_URL));
    expect(lines(install.create)).toContain(assignment("binary", "/usr/local/bin/act_runner"));
    expect(lines(install.create)).toContain("ExecStart=/usr/local/bin/act_runner daemon --config /etc/act_runner/config.yaml");
    for (const text of [install.create, install.delete, register.create, register.delete]) expect(text).not.toMatch(/replaced|gitea-runner/);
    // Whole scripts, as the settings of before render them: the same inputs, so no update.
    expect(install.create).toContain(renderRunnerInstallScript(BEFORE));
    expect(install.delete).toContain(renderRunnerRemoveScript(BEFORE));
    expect(register.create).toContain(renderRunnerRegisterScript(BEFORE, 120));
    expect(register.delete).toContain(renderRunnerUnregisterScript(BEFORE));
  });

});

describe("a stack that set only runnerVersion 0.2.13 (as Pulumi.wsl.yaml once showed)", () => {
  it("is warned at preview that gitea-runner 0.2.13 is no release, naming the key that keeps act_runner", async () => {
    const run = await wsl({ runnerSha256: SHA256, runnerVersion: "0.2.13" });
    expect(run.warnings.filter((w) => w.includes("runnerVersion"))).toEqual([expect.stringMatching(/gitea-homelab:runnerVersion: "0\.2\.13" is a release of act_runner, .* set gitea-homelab:runnerBinaryName to act_runner/)]);
    // The install would fail at the download, before it changes the runner.
    expect(lines(scriptOf(run.byName("runner-install")))).toContain(assignment("url", "https://dl.gitea.com/gitea-runner/0.2.13/gitea-runner-0.2.13-linux-amd64"));
  });
});
