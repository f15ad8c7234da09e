import { describe, expect, it } from "vitest";
import { giteaContainerCheck } from "./render";
import { Facts } from "../host/probeSession";
import { fileDigest } from "../render/shell";
import { unitDrift } from "./drift";
import { CONTAINER_SPEC } from "../../test/helpers/fixtures";

/** Facts that are not what any probe prints. */
const GARBAGE: Facts = { "<html>": "x", runtime: "maybe", account: "?", volume: "", image: "🙂" };

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
