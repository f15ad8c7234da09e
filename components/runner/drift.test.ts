import { describe, expect, it } from "vitest";
import { registrationFingerprint, renderRunnerConfig, renderRunnerUnit } from "./render";
import { runnerInstallDrift, runnerRegistrationDrift } from "./drift";
import { Facts } from "../host/probeSession";
import { fileDigest } from "../render/shell";
import { RUNNER_SETTINGS } from "../../test/helpers/fixtures";

/** Facts that are not what any probe prints. */
const GARBAGE: Facts = { "<html>": "x", runtime: "maybe", account: "?", volume: "", image: "🙂" };

describe("runner drift", () => {
  const settings = RUNNER_SETTINGS;

  const inSync: Facts = {
    binary: "a".repeat(64),
    config: fileDigest(renderRunnerConfig(settings)),
    unit: fileDigest(renderRunnerUnit(settings)),
    active: "active",
    enabled: "enabled",
    podman_socket: "enabled/active",
    runner_file: "present",
    fingerprint: registrationFingerprint(settings),
  };

  it("is empty when installed, running and registered as configured", () => {
    expect(runnerInstallDrift(settings, inSync)).toEqual([]);
    expect(runnerRegistrationDrift(settings, inSync)).toEqual([]);
  });

  it("gives the install command a stopped service, an edited config.yaml or a replaced binary", () => {
    expect(runnerInstallDrift(settings, { ...inSync, active: "inactive" })).toEqual(["runner wsl-runner: act_runner.service inactive, expected active"]);
    expect(runnerInstallDrift(settings, { ...inSync, config: "f".repeat(64) })).toEqual(["runner wsl-runner: /etc/act_runner/config.yaml edited (differs from the rendered one)"]);
    expect(runnerInstallDrift(settings, { ...inSync, binary: "b".repeat(64) })).toEqual(["runner wsl-runner: /opt/runner/bin/forgejo-like differs from the configured binary"]);
    expect(runnerInstallDrift(settings, { ...inSync, podman_socket: "disabled/inactive" })).toEqual(["runner wsl-runner: podman.socket disabled/inactive, expected enabled/active"]);
  });

  it("compares a binary installed from a host file with that file", () => {
    const fromFile = { ...settings, source: { sourcePath: "/opt/act_runner" } };
    expect(runnerInstallDrift(fromFile, { ...inSync, source: "a".repeat(64) })).toEqual([]);
    expect(runnerInstallDrift(fromFile, { ...inSync, source: "c".repeat(64) })).toEqual(["runner wsl-runner: /opt/runner/bin/forgejo-like differs from the configured binary"]);
  });

  it("gives the register command a removed .runner or a registration for other settings", () => {
    expect(runnerRegistrationDrift(settings, { ...inSync, runner_file: "missing", active: "activating" })).toEqual([
      "runner wsl-runner: /var/lib/act_runner/.runner missing, expected registered",
    ]);
    // Without .runner the install command does not expect the service to run.
    expect(runnerInstallDrift(settings, { ...inSync, runner_file: "missing", active: "activating" })).toEqual([]);
    expect(runnerRegistrationDrift(settings, { ...inSync, fingerprint: "missing" })).toEqual(["runner wsl-runner: registered for another instance, name or labels"]);
  });

  it("counts empty or garbage output as unknown", () => {
    for (const facts of [undefined, {}, GARBAGE]) {
      expect(runnerInstallDrift(settings, facts)).toEqual(["runner wsl-runner: state unknown (probe output unreadable)"]);
      expect(runnerRegistrationDrift(settings, facts)).toEqual(["runner wsl-runner: registration state unknown (probe output unreadable)"]);
    }
  });
});
