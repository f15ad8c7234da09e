import { readFileSync } from "fs";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { defaultRunnerUrl, instanceUrlProblem, RUNNER_BEFORE_RENAME, validateWslConfig, WSL_DEFAULTS, WSL_KEYS } from "../../stacks/wslConfig";

const ROOT = `${__dirname}/../..`;

describe("validateWslConfig", () => {
  it("needs a sha256 to download, or a binary on the host", () => {
    const { problems } = validateWslConfig({ host: "wsl.lan" });
    expect(problems).toEqual([expect.stringMatching(/^gitea-homelab:runnerSha256: must be the sha256 of the runner binary/)]);
    expect(validateWslConfig({ host: "wsl.lan", runnerSourcePath: "/root/act_runner" }).problems).toEqual([]);
    expect(validateWslConfig({ host: "wsl.lan", runnerSha256: "B".repeat(64) }).problems).toEqual([]);
  });

  it("takes the jobs' network and a CA to trust, refusing what is neither, naming the keys", () => {
    const base = { host: "wsl.lan", runnerSourcePath: "/x" };
    expect(validateWslConfig({ ...base, runnerNetwork: "host" }).settings.network).toBe("host");
    expect(validateWslConfig(base).settings.network).toBe("");
    expect(validateWslConfig({ ...base, runnerNetwork: "host;id" }).problems).toEqual([expect.stringMatching(/^gitea-homelab:runnerNetwork: must be a Podman network name, or host/)]);
    expect(validateWslConfig(base, "not a certificate").problems).toEqual([expect.stringMatching(/^gitea-homelab:caCertificate: must be a PEM certificate/)]);
    expect(validateWslConfig(base, "").settings.caCertificate).toBeUndefined();
  });

  it("defaults to the runner CI builds and runs: gitea.com/gitea/runner's version in tools/gitea-runner/go.mod, as tools/build.sh names it", () => {
    const pinned = /^\s*gitea\.com\/gitea\/runner (v\S+)/m.exec(readFileSync(`${ROOT}/tools/gitea-runner/go.mod`, "utf8"))?.[1];
    expect(pinned).toBeDefined();
    expect(WSL_DEFAULTS.runnerVersion).toBe(pinned!.replace(/^v/, ""));
    expect(readFileSync(`${ROOT}/tools/build.sh`, "utf8")).toContain(`-o "$out/${WSL_DEFAULTS.runnerBinaryName}"`);
  });

  it("downloads the defaults from Gitea's layout, to a path named after the binary; the old default's binary is the one it replaces", () => {
    const { settings, problems } = validateWslConfig({ host: "wsl.lan", runnerSha256: "a".repeat(64) });
    expect(problems).toEqual([]);
    expect(settings.source).toEqual({ url: "https://dl.gitea.com/gitea-runner/1.0.8/gitea-runner-1.0.8-linux-amd64", sha256: "a".repeat(64) });
    expect(settings.binaryPath).toBe("/usr/local/bin/gitea-runner");
    expect(settings.replacedBinaryPath).toBe("/usr/local/bin/act_runner");
    // A tag's v is not in the layout (goreleaser's .Version).
    expect(defaultRunnerUrl("gitea-runner", "v1.0.8")).toBe(defaultRunnerUrl("gitea-runner", "1.0.8"));
  });

  it("keeps a stack that set act_runner 0.2.13: the old URL and path, nothing to replace", () => {
    const { settings, problems } = validateWslConfig({ host: "wsl.lan", runnerSha256: "a".repeat(64), runnerBinaryName: RUNNER_BEFORE_RENAME.binaryName, runnerVersion: RUNNER_BEFORE_RENAME.version });
    expect(problems).toEqual([]);
    expect(settings.source).toEqual({ url: "https://dl.gitea.com/act_runner/0.2.13/act_runner-0.2.13-linux-amd64", sha256: "a".repeat(64) });
    expect(settings.binaryPath).toBe("/usr/local/bin/act_runner");
    expect("replacedBinaryPath" in settings).toBe(false);
  });

  it("warns of a default URL for a name and version never released together, naming the key to set", () => {
    const check = (raw: Record<string, string>) => {
      const { problems, warnings } = validateWslConfig({ host: "wsl.lan", runnerSha256: "a".repeat(64), ...raw });
      return { problems, warnings: warnings.filter((w) => w.includes(":runnerVersion:")) };
    };
    // Each value is valid alone (and "" is the default): a warning, not a problem.
    expect(check({ runnerVersion: "0.2.13" })).toMatchObject({
      problems: [],
      warnings: [expect.stringMatching(/^gitea-homelab:runnerVersion: "0\.2\.13" is a release of act_runner, .*names no release, and the download will fail; to keep that runner set gitea-homelab:runnerBinaryName to act_runner/)],
    });
    expect(check({ runnerBinaryName: "act_runner" })).toMatchObject({
      problems: [],
      warnings: [expect.stringMatching(/^gitea-homelab:runnerVersion: "1\.0\.8" is a release of gitea-runner .*set gitea-homelab:runnerBinaryName to gitea-runner, or runnerVersion to 0\.2\.13/)],
    });
    expect(check({ runnerBinaryName: "act_runner", runnerVersion: "0.2.13" }).warnings).toEqual([]);
    expect(check({}).warnings).toEqual([]);
    // Where the binary comes from otherwise, the version names no URL.
    expect(check({ runnerVersion: "0.2.13", runnerUrl: "https://mirror.lan/gitea-runner" }).warnings).toEqual([]);
    expect(check({ runnerSha256: "", runnerSourcePath: "/root/act_runner", runnerVersion: "0.2.13" })).toEqual({ problems: [], warnings: [] });
    expect(check({ runnerBinaryName: "forgejo-runner", runnerVersion: "0.9.0" }).warnings).toEqual([]);
  });

  it("documents the default runner in Pulumi.wsl.yaml, its version pinned with its sha256", () => {
    const example = parse(readFileSync(`${ROOT}/Pulumi.wsl.yaml`, "utf8")).config;
    expect([example["gitea-homelab:runnerBinaryName"], example["gitea-homelab:runnerVersion"]]).toEqual([WSL_DEFAULTS.runnerBinaryName, WSL_DEFAULTS.runnerVersion]);
  });

  it("derives every path to the binary from its name and install dir", () => {
    const { settings } = validateWslConfig({ host: "wsl.lan", runnerSourcePath: "/x", runnerBinaryName: "gitea-runner", runnerInstallDir: "/opt/bin/" });
    expect(settings.binaryPath).toBe("/opt/bin/gitea-runner");
  });

  it("refuses a localhost instance URL and bad labels, naming the keys", () => {
    const { problems } = validateWslConfig({ host: "wsl.lan", runnerSourcePath: "/x", instanceUrl: "http://127.0.0.1:4111/", runnerLabels: "ok:host,bad label" });
    expect(problems).toEqual([expect.stringMatching(/^gitea-homelab:instanceUrl: must not be 127\.0\.0\.1/), expect.stringMatching(/^gitea-homelab:runnerLabels: /)]);
    expect(instanceUrlProblem("http://localhost:3000")).toMatch(/must not be localhost/);
    expect(instanceUrlProblem("http://[::1]:3000")).toMatch(/must not be \[::1\]/);
    expect(instanceUrlProblem("http://192.168.1.10:4111/")).toBeUndefined();
  });

  it("is declared in Pulumi.yaml with the same defaults", () => {
    const declared = parse(readFileSync(`${__dirname}/../../Pulumi.yaml`, "utf8")).config;
    for (const key of WSL_KEYS) expect(declared[key], key).toBeDefined();
    for (const [key, value] of Object.entries(WSL_DEFAULTS)) expect(declared[key].default, key).toEqual(value);
  });
});
