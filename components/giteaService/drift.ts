/** The service that runs Gitea, its probe and comparison: files, state, and the running container. */
import { HostCheck } from "../host/checkedCommand";
import { ConfiguredUnitStyle, Platform } from "../host/platform";
import { Facts, ProbeBody } from "../host/probeSession";
import { fileDigest, sh } from "../render/shell";
import { CONTAINER_FACTS_FUNCTION, ContainerCheck, renderUnitConf, UnitScriptSpec, unitPaths } from "./render";

/**
 * Read-only: the unit's files, its state, and its container. The probe is rendered before the
 * platform is decided, so it looks at the style systemd hosts get when the session found
 * systemd (`$host_init`), and at the OpenRC service's files on an OpenRC host.
 */
export function renderUnitProbe(spec: Omit<UnitScriptSpec, "content" | "style"> & { style: ConfiguredUnitStyle }): ProbeBody {
  const systemd = unitPaths(spec.style, spec.name);
  const openrc = unitPaths("openrc", spec.name);
  return {
    vars: {
      user: spec.user,
      systemd_service: systemd.service,
      systemd_unit_file: systemd.unitFile,
      openrc_service: openrc.service,
      openrc_unit_file: openrc.unitFile,
      openrc_conf_file: openrc.confFile!,
      env_file: spec.hasEnvironment ? systemd.envFile : "",
      container: spec.container?.name ?? "",
      env_keys: spec.container?.envKeys.join("|") ?? "",
    },
    body: sh`
${CONTAINER_FACTS_FUNCTION}
if ! user_info "$user"; then
  echo account=missing
  return 0
fi
if [[ -n $env_file ]]; then
  echo "env_file=$(file_digest "$user_home/$env_file")"
  echo "env_mode=$(stat -c '%a' "$user_home/$env_file" 2>/dev/null || echo missing)"
fi
if [[ $host_init != systemd ]]; then
  echo "unit_file=$(file_digest "$openrc_unit_file")"
  echo "conf_file=$(file_digest "$openrc_conf_file")"
  echo manager=active
  if rc-service "$openrc_service" status >/dev/null 2>&1; then echo active=active; else echo active=inactive; fi
  if rc-update show default 2>/dev/null | grep -qE "^ *$openrc_service \|"; then echo enabled=enabled; else echo enabled=disabled; fi
else
  echo "unit_file=$(file_digest "$user_home/$systemd_unit_file")"
  if user_manager_active "$user_uid"; then echo manager=active; else echo manager=inactive; fi
  user_unit_state "$user" "$user_uid" "$systemd_service"
fi
if [[ -n $container ]]; then
  if ! user_runtime_ready "$user"; then
    # Asking podman now would make a runtime dir; the unit's state above says what is wrong.
    echo container=unchecked
  elif facts=$(container_facts "$user" "$container" "$env_keys" 2>/dev/null); then
    echo container=present
    while IFS= read -r line; do echo "container.$line"; done <<<"$facts"
  else
    echo container=missing
  fi
fi
`,
  };
}

export interface UnitExpectation {
  unitDigest: string;
  /** OpenRC: sha256 of the conf.d file. */
  confDigest?: string;
  /** sha256 of the environment file's content, when the unit has one. */
  envDigest?: string;
}

/** How the probed unit differs from the rendered one: files, active, enabled, its container. */
export function unitDrift(spec: Omit<UnitScriptSpec, "content">, expected: UnitExpectation, facts: Facts | undefined): string[] {
  const service = unitPaths(spec.style, spec.name).service;
  const what = `unit ${service}`;
  if (facts === undefined) return [`${what}: state unknown (probe output unreadable)`];
  if (facts.account === "missing") return [`${what}: user ${spec.user} missing`];
  if (facts.unit_file === undefined || facts.active === undefined) return [`${what}: state unknown (probe output unreadable)`];
  const drift: string[] = [];
  if (facts.manager !== "active") drift.push(`${what}: the systemd user manager of ${spec.user} is not running (${facts.manager || "unknown"}), expected the unit active`);
  if (facts.unit_file === "missing") drift.push(`${what}: unit file deleted`);
  else if (facts.unit_file !== expected.unitDigest) drift.push(`${what}: unit file edited (differs from the rendered one)`);
  if (expected.confDigest !== undefined) {
    if (facts.conf_file === "missing") drift.push(`${what}: conf.d file deleted`);
    else if (facts.conf_file !== expected.confDigest) drift.push(`${what}: conf.d file edited`);
  }
  if (expected.envDigest !== undefined) {
    if (facts.env_file === "missing") drift.push(`${what}: environment file deleted`);
    else if (facts.env_file !== expected.envDigest) drift.push(`${what}: environment file edited`);
    else if (facts.env_mode !== "600") drift.push(`${what}: environment file mode ${facts.env_mode}, expected 600`);
  }
  if (facts.manager !== "active") return drift;
  if (facts.active !== "active") drift.push(`${what}: ${facts.active || "not loaded"}, expected active`);
  // Quadlet units are enabled by generation ([Install] in the .container file); OpenRC services by rc-update.
  const enabledStates = spec.style === "quadlet" ? ["generated", "enabled"] : ["enabled"];
  if (facts.unit_file !== "missing" && !enabledStates.includes(facts.enabled)) drift.push(`${what}: ${facts.enabled || "not loaded"} at boot, expected enabled`);
  if (spec.container !== undefined && facts.active === "active") drift.push(...containerDrift(spec.container, facts));
  return drift;
}

function containerDrift(check: ContainerCheck, facts: Facts): string[] {
  const what = `container ${check.name}`;
  if (facts.container === "unchecked") return [];
  if (facts.container !== "present") return [`${what}: missing, expected running`];
  const actual: Facts = {};
  for (const [k, v] of Object.entries(facts)) if (k.startsWith("container.")) actual[k.slice("container.".length)] = v;
  const expected: Facts = {};
  for (const line of check.facts.split("\n")) {
    const eq = line.indexOf("=");
    expected[line.slice(0, eq)] = line.slice(eq + 1);
  }
  const drift: string[] = [];
  for (const key of [...new Set([...Object.keys(expected), ...Object.keys(actual)])].sort()) {
    if (actual[key] === expected[key]) continue;
    const label = key.startsWith("env.") ? key.slice(4) : key;
    drift.push(`${what}: ${label} ${JSON.stringify(actual[key] ?? "unset")}, expected ${JSON.stringify(expected[key] ?? "unset")}`);
  }
  return drift;
}

/**
 * The check of a unit whose files are rendered for the decided platform by `render`; `probe` is
 * its `renderUnitProbe`, made apart because the probe must not wait for `envDigest`.
 */
export function unitCheck(
  spec: Omit<UnitScriptSpec, "content" | "style">,
  probe: ProbeBody,
  render: (platform: Platform) => string,
  envDigest: string | undefined,
): HostCheck {
  return {
    probe,
    compare: (facts, platform) => {
      const style = platform.unitStyle;
      const confDigest = style === "openrc" ? fileDigest(renderUnitConf(spec.user, spec.name)) : undefined;
      return unitDrift({ ...spec, style }, { unitDigest: fileDigest(render(platform)), confDigest, envDigest }, facts);
    },
  };
}
