import { writeFileSync } from "fs";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { PRINT_RUNNER_VERSION, registrationFingerprint, renderRunnerConfig, renderRunnerInstallScript, reportedRunnerVersion, renderRunnerRegisterScript, renderRunnerRemoveScript, renderRunnerUnit, renderRunnerUnregisterScript, RunnerSettings } from "./render";
import { MANAGED_HEADER, shellFunctions, shellVars } from "../render/shell";
import { renderRunnerInstallProbe } from "./drift";
import { ScriptSandbox } from "../../test/helpers/scriptSandbox";
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

  it("with Gitea's CA: the daemon, register and every job container trust it besides the usual roots", () => {
    const ca = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    const withCa = { ...SETTINGS, caCertificate: ca, network: "host" };
    const doc = parse(renderRunnerConfig(withCa));
    expect(doc.container.network).toBe("host");
    expect(doc.container.options).toBe("-v /etc/act_runner/ca-bundle.crt:/etc/ssl/certs/ca-certificates.crt:ro");
    // The runner drops any mount valid_volumes does not list.
    expect(doc.container.valid_volumes).toEqual(["/etc/act_runner/ca-bundle.crt"]);
    expect(doc.runner.envs).toEqual({ SSL_CERT_FILE: "/etc/ssl/certs/ca-certificates.crt", GIT_SSL_CAINFO: "/etc/ssl/certs/ca-certificates.crt", NODE_EXTRA_CA_CERTS: "/etc/ssl/certs/ca-certificates.crt" });
    expect(renderRunnerUnit(withCa).split("\n")).toContain(`Environment="SSL_CERT_FILE=/etc/act_runner/ca-bundle.crt"`);
    expect(renderRunnerRegisterScript(withCa, 60)).toContain("export SSL_CERT_FILE=$ca_bundle CURL_CA_BUNDLE=$ca_bundle");
    expect(renderRunnerInstallScript(withCa)).toMatch(/cat "\$system_bundle"; printf '%s' "\$ca_certificate"; \} >"\$tmp"/);
    expectCleanScript(renderRunnerInstallScript(withCa));
    // Without one: nothing of it, and what an earlier one left is removed.
    const plain = parse(renderRunnerConfig(SETTINGS));
    expect([plain.container.options, plain.container.valid_volumes, plain.runner.envs]).toEqual([undefined, undefined, undefined]);
    expect(renderRunnerUnit(SETTINGS)).not.toContain("SSL_CERT_FILE");
    expect(renderRunnerInstallScript(SETTINGS)).toContain('rm -f "$ca_file" "$ca_bundle"');
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

describe("the runner version the host runs", () => {
  it("is read from what the binary prints, the install's output first", () => {
    expect(reportedRunnerVersion("...\nrunner binary version: act_runner version v1.0.8\n", "act_runner version v0.2.13")).toBe("1.0.8");
    expect(reportedRunnerVersion("", "gitea-runner version v1.1.0-rc.1")).toBe("1.1.0-rc.1");
    expect(reportedRunnerVersion(undefined, "act_runner version 0.2.13")).toBe("0.2.13");
    expect(reportedRunnerVersion("runner binary version: missing", "missing")).toBe("unknown");
    expect(reportedRunnerVersion(undefined, undefined)).toBe("unknown");
  });

  it("is printed by the install script and the probe from the binary itself", () => {
    const box = new ScriptSandbox();
    try {
      const binary = `${box.dir}/tmp/act_runner`;
      writeFileSync(binary, '#!/bin/bash\necho "act_runner version v1.0.8"\n', { mode: 0o755 });
      // The sandbox's timeout stub runs only bare names; this one runs the fake binary too.
      box.override("timeout", 'shift; exec "$@"');
      const settings: RunnerSettings = { ...RUNNER_SETTINGS, binaryPath: binary, source: { sourcePath: binary } };
      const install = box.runBash(renderRunnerInstallScript(settings));
      expect(install.status, install.stderr).toBe(0);
      expect(reportedRunnerVersion(install.stdout, undefined)).toBe("1.0.8");
      const probe = renderRunnerInstallProbe(settings);
      const facts = box.runBash(`${shellVars(probe.vars ?? {})}\n${shellFunctions("file_digest")}\n${probe.body}`);
      expect(facts.stdout).toContain("version=act_runner version v1.0.8\n");
      const missing = box.runBash(`binary=/nonexistent\necho "version=$(${PRINT_RUNNER_VERSION})"`);
      expect(missing.stdout).toBe("version=missing\n");
    } finally {
      box.dispose();
    }
  });
});
