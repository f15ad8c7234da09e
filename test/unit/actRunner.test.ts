import { readFileSync } from "fs";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import {
  registrationFingerprint,
  renderRunnerConfig,
  renderRunnerInstallScript,
  renderRunnerRegisterScript,
  renderRunnerRemoveScript,
  renderRunnerUnit,
  renderRunnerUnregisterScript,
  RunnerSettings,
} from "../../components/actRunner";
import { MANAGED_HEADER } from "../../components/render/shell";
import { RUNNER_SETTINGS } from "../helpers/fixtures";
import { expectCleanScript } from "../helpers/scripts";
import { instanceUrlProblem, validateWslConfig, WSL_DEFAULTS, WSL_KEYS } from "../../stacks/wslConfig";

const SETTINGS = RUNNER_SETTINGS;

describe("runner rendering", () => {
  it("renders config.yaml with an absolute runner.file, the Podman socket and no network name", () => {
    const text = renderRunnerConfig(SETTINGS);
    expect(text.startsWith(`# ${MANAGED_HEADER}\n`)).toBe(true);
    const doc = parse(text);
    expect(doc.runner.file).toBe("/var/lib/act_runner/.runner");
    expect(doc.runner.capacity).toBe(2);
    expect(doc.runner.timeout).toBe("3h");
    expect(doc.runner.labels).toEqual(SETTINGS.labels);
    expect(doc.container.docker_host).toBe("unix:///run/podman/podman.sock");
    expect(doc.container.network).toBe("");
    // A fetch that times out is taken as "no work" even when Gitea handed out a job meanwhile.
    expect(doc.runner.fetch_timeout).toBe("30s");
  });

  it("renders a system unit that runs the installed binary after podman.socket and restarts", () => {
    const unit = renderRunnerUnit(SETTINGS).split("\n");
    expect(unit).toContain("ExecStart=/opt/runner/bin/forgejo-like daemon --config /etc/act_runner/config.yaml");
    expect(unit).toContain("Requires=podman.socket");
    expect(unit).toContain("After=podman.socket network-online.target");
    expect(unit).toContain("Restart=always");
    expect(unit).toContain("RestartSec=10");
    expect(unit).toContain("WantedBy=multi-user.target");
  });

  it("fingerprints what a registration depends on, not the rest", () => {
    const base = registrationFingerprint(SETTINGS);
    expect(registrationFingerprint({ ...SETTINGS, labels: ["other:host"] })).not.toBe(base);
    expect(registrationFingerprint({ ...SETTINGS, instanceUrl: "http://gitea.lan:4111/" })).not.toBe(base);
    expect(registrationFingerprint({ ...SETTINGS, name: "other" })).not.toBe(base);
    expect(registrationFingerprint({ ...SETTINGS, capacity: 5 } as RunnerSettings)).toBe(base);
  });

  const scripts = {
    installFromUrl: renderRunnerInstallScript(SETTINGS),
    installFromHost: renderRunnerInstallScript({ ...SETTINGS, source: { sourcePath: "/root/act_runner" } }),
    register: renderRunnerRegisterScript(SETTINGS, 120),
    remove: renderRunnerRemoveScript(SETTINGS),
    unregister: renderRunnerUnregisterScript(SETTINGS),
  };
  it.each(Object.entries(scripts))("%s is strict, marked as managed, and passes bash -n and shellcheck", (_name, script) => {
    expectCleanScript(script);
  });

  it("bounds registration and checks the download", () => {
    expect(scripts.register).toContain('timeout "$timeout_seconds" "$binary" register --config');
    expect(scripts.installFromUrl).toContain("sha256sum --check");
  });
});

describe("validateWslConfig", () => {
  it("needs a sha256 to download, or a binary on the host", () => {
    const { problems } = validateWslConfig({ host: "wsl.lan" });
    expect(problems).toEqual([expect.stringMatching(/^gitea-homelab:runnerSha256: must be the sha256 of the runner binary/)]);
    expect(validateWslConfig({ host: "wsl.lan", runnerSourcePath: "/root/act_runner" }).problems).toEqual([]);
    expect(validateWslConfig({ host: "wsl.lan", runnerSha256: "B".repeat(64) }).problems).toEqual([]);
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
