import { readFileSync } from "fs";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { instanceUrlProblem, validateWslConfig, WSL_DEFAULTS, WSL_KEYS } from "../../stacks/wslConfig";

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
