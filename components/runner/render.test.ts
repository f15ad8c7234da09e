import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { registrationFingerprint, renderRunnerConfig, renderRunnerInstallScript, renderRunnerRegisterScript, renderRunnerRemoveScript, renderRunnerUnit, renderRunnerUnregisterScript, RunnerSettings } from "./render";
import { MANAGED_HEADER } from "../render/shell";
import { RUNNER_SETTINGS } from "../../test/helpers/fixtures";
import { expectCleanScript } from "../../test/helpers/scripts";

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
