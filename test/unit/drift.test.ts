import { describe, expect, it } from "vitest";
import { registrationFingerprint, renderRunnerConfig, renderRunnerUnit, runnerInstallDrift, runnerRegistrationDrift } from "../../components/actRunner";
import { portDrift } from "../../components/firewallPort";
import { giteaContainerCheck, imageDrift } from "../../components/giteaContainer";
import { volumeDrift } from "../../components/podmanVolume";
import { Facts } from "../../components/render/probe";
import { rootlessUserDrift } from "../../components/rootlessUser";
import { fileDigest, unitDrift } from "../../components/systemdUserUnit";
import { CONTAINER_SPEC, RUNNER_SETTINGS } from "../helpers/fixtures";

/** Facts that are not what any probe prints. */
const GARBAGE: Facts = { "<html>": "x", runtime: "maybe", account: "?", volume: "", image: "🙂" };

describe("firewall port drift", () => {
  const spec = { port: 4111, protocol: "tcp" as const };
  it("is empty when open at runtime and permanently", () => {
    expect(portDrift(spec, { firewalld: "running", zone: "", runtime: "open", permanent: "open" })).toEqual([]);
  });
  it("says closed, and which half is missing", () => {
    expect(portDrift(spec, { firewalld: "running", zone: "", runtime: "closed", permanent: "closed" })).toEqual(["firewall 4111/tcp: closed, expected open"]);
    expect(portDrift({ ...spec, zone: "FedoraServer" }, { firewalld: "running", zone: "FedoraServer", runtime: "closed", permanent: "closed" })).toEqual([
      "firewall 4111/tcp: closed in zone FedoraServer, expected open",
    ]);
    expect(portDrift(spec, { firewalld: "running", runtime: "closed", permanent: "open" })[0]).toMatch(/closed at runtime .*expected open/);
    expect(portDrift(spec, { firewalld: "running", runtime: "open", permanent: "closed" })[0]).toMatch(/not in the permanent config .*closes at reboot/);
  });
  it("says when firewalld is stopped or missing", () => {
    expect(portDrift(spec, { firewalld: "stopped" })).toEqual(["firewall 4111/tcp: firewalld is not running, expected open"]);
    expect(portDrift(spec, { firewalld: "missing" })).toEqual(["firewall 4111/tcp: firewalld is not installed, expected open"]);
  });
  it("counts empty or garbage output as unknown, which converges again", () => {
    for (const facts of [undefined, {}, GARBAGE]) expect(portDrift(spec, facts)).toEqual(["firewall 4111/tcp: state unknown (probe output unreadable)"]);
  });
});

describe("rootless user drift", () => {
  const ok = { account: "present", linger: "on", subuid: "present", subgid: "present" };
  it("is empty for an account with linger and subordinate ranges", () => {
    expect(rootlessUserDrift("rootless", ok)).toEqual([]);
  });
  it("says linger is off, ranges are gone, or the account is", () => {
    expect(rootlessUserDrift("rootless", { ...ok, linger: "off" })).toEqual([
      "user rootless: linger off, expected on (without it Gitea stops at logout and does not start at boot)",
    ]);
    expect(rootlessUserDrift("rootless", { ...ok, subgid: "missing" })).toEqual(["user rootless: no /etc/subgid range, expected one"]);
    expect(rootlessUserDrift("rootless", { account: "missing" })).toEqual(["user rootless: account missing, expected present"]);
  });
  it("counts empty or garbage output as unknown", () => {
    for (const facts of [undefined, {}, GARBAGE]) expect(rootlessUserDrift("rootless", facts)).toEqual(["user rootless: state unknown (probe output unreadable)"]);
  });
});

describe("volume drift", () => {
  it("is empty when the volume exists", () => {
    expect(volumeDrift("gitea-data", { volume: "present" })).toEqual([]);
  });
  it("says loudly that a missing volume may mean lost data and comes back empty", () => {
    const [text] = volumeDrift("gitea-data", { volume: "missing" });
    expect(text).toMatch(/^volume gitea-data: MISSING; the data it held may be lost; .*EMPTY/);
  });
  it("leaves a volume it could not check to the user's drift (linger off: no user manager, no podman)", () => {
    expect(volumeDrift("gitea-data", { volume: "unchecked" })).toEqual([]);
    expect(imageDrift("img", { image: "unchecked" })).toEqual([]);
  });

  it("counts a podman error, empty or garbage output as unknown", () => {
    expect(volumeDrift("v", { volume: "unknown (podman exit 125)" })).toEqual(["volume v: state unknown (unknown (podman exit 125))"]);
    for (const facts of [undefined, {}, GARBAGE]) expect(volumeDrift("v", facts)[0]).toMatch(/^volume v: state unknown/);
  });
});

describe("image drift", () => {
  it("says a missing image is missing", () => {
    expect(imageDrift("img", { image: "present" })).toEqual([]);
    expect(imageDrift("img", { image: "missing" })).toEqual(["image img: missing from the user's storage, expected present"]);
    for (const facts of [undefined, {}, GARBAGE]) expect(imageDrift("img", facts)[0]).toMatch(/^image img: state unknown/);
  });
});

describe("unit and container drift", () => {
  const container = CONTAINER_SPEC;

  const check = giteaContainerCheck(container);
  const spec = { user: "rootless", name: "gitea", style: "quadlet" as const, hasEnvironment: true, container: check };
  const expected = { unitDigest: fileDigest("[Unit]\nDescription=x"), envDigest: fileDigest("SECRET=1") };
  /** What the probe prints for a host in sync: the container facts exactly as container_facts would. */
  const inSync: Facts = {
    unit_file: expected.unitDigest,
    env_file: expected.envDigest,
    env_mode: "600",
    manager: "active",
    active: "active",
    enabled: "generated",
    container: "present",
    ...Object.fromEntries(check.facts.split("\n").map((l) => [`container.${l.slice(0, l.indexOf("="))}`, l.slice(l.indexOf("=") + 1)])),
  };

  it("renders the container's expected facts sorted, ports by container port, non-secret env only", () => {
    expect(check.facts.split("\n")[0]).toBe("env.GITEA__database__DB_TYPE=sqlite3");
    expect(check.facts).toContain("image=docker.gitea.com/gitea:1.27.3-rootless");
    expect(check.facts).toContain("ports=3333:2222/tcp 4111:3000/tcp");
    expect(check.envKeys).not.toContain("GITEA__security__SECRET_KEY");
  });

  it("is empty when files, state and container match", () => {
    expect(unitDrift(spec, expected, inSync)).toEqual([]);
  });

  it("names each difference: edited, deleted, stopped, disabled, env file, container", () => {
    expect(unitDrift(spec, expected, { ...inSync, unit_file: "0".repeat(64) })).toEqual(["unit gitea.service: unit file edited (differs from the rendered one)"]);
    expect(unitDrift(spec, expected, { ...inSync, unit_file: "missing", active: "active", enabled: "" })).toEqual(["unit gitea.service: unit file deleted"]);
    expect(unitDrift(spec, expected, { ...inSync, active: "inactive" })).toEqual(["unit gitea.service: inactive, expected active"]);
    expect(unitDrift({ ...spec, style: "service" }, expected, { ...inSync, enabled: "disabled" })).toEqual(["unit gitea.service: disabled at boot, expected enabled"]);
    expect(unitDrift(spec, expected, { ...inSync, env_file: "1".repeat(64) })).toEqual(["unit gitea.service: environment file edited"]);
    expect(unitDrift(spec, expected, { ...inSync, env_mode: "644" })).toEqual(["unit gitea.service: environment file mode 644, expected 600"]);
    expect(unitDrift(spec, expected, { ...inSync, "container.image": "localhost/other:1" })).toEqual([
      'container gitea: image "localhost/other:1", expected "docker.gitea.com/gitea:1.27.3-rootless"',
    ]);
    expect(unitDrift(spec, expected, { ...inSync, "container.env.GITEA__server__ROOT_URL": "http://localhost:3000/" })).toEqual([
      'container gitea: GITEA__server__ROOT_URL "http://localhost:3000/", expected "https://git.example.com/100%/"',
    ]);
    expect(unitDrift(spec, expected, { ...inSync, container: "missing" })).toEqual(["container gitea: missing, expected running"]);
    // No runtime dir: podman was not asked (it would have made one); the unit's state says the rest.
    expect(unitDrift(spec, expected, { ...inSync, container: "unchecked" })).toEqual([]);
    // With linger off the manager is gone: one line, not every symptom.
    expect(unitDrift(spec, expected, { ...inSync, manager: "inactive", active: "", enabled: "", container: "missing" })).toEqual([
      "unit gitea.service: the systemd user manager of rootless is not running (inactive), expected the unit active",
    ]);
  });

  it("counts empty or garbage output as unknown", () => {
    for (const facts of [undefined, {}, GARBAGE]) expect(unitDrift(spec, expected, facts)[0]).toMatch(/^unit gitea.service: (state unknown|user rootless missing)/);
  });
});

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
