/**
 * SystemdUserUnit: the service that runs a rootless user's container. On systemd hosts a unit of
 * the user's systemd manager, as a Quadlet `.container` file or a classic `.service`; on OpenRC
 * hosts (Alpine) a system service that runs it as the user. With an optional 0600 environment
 * file for secrets. Installed, started and started at boot; a change of a file restarts it.
 */
import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import { createHash } from "crypto";
import { Host } from "./host";
import { ConfiguredUnitStyle, resolveUnitStyle, UnitStyle } from "./platform";
import { renderOpenrcConf } from "./render/openrc";
import { Facts, ProbeSection } from "./render/probe";
import { installContent, renderScript, sh, trimBash } from "./render/shell";

export type { UnitStyle } from "./platform";
/** The styles a systemd host can be given (an OpenRC host always gets an OpenRC service). */
export const UNIT_STYLES = ["quadlet", "service"] as const;

export interface UnitPaths {
  /** The unit file: relative to the user's home, or absolute (OpenRC's init script). */
  unitFile: string;
  /** The environment file, relative to the user's home. */
  envFile: string;
  /** The service name (Quadlet generates NAME.service from NAME.container). */
  service: string;
  /** OpenRC only: the service's settings, and the log supervise-daemon writes. */
  confFile?: string;
  logFile?: string;
}

export function unitPaths(style: UnitStyle, name: string): UnitPaths {
  const envFile = `.config/gitea-homelab/${name}.env`;
  if (style === "openrc") {
    return { unitFile: `/etc/init.d/${name}`, confFile: `/etc/conf.d/${name}`, logFile: `/var/log/gitea-homelab/${name}.log`, envFile, service: name };
  }
  return {
    unitFile: style === "quadlet" ? `.config/containers/systemd/${name}.container` : `.config/systemd/user/${name}.service`,
    envFile,
    service: `${name}.service`,
  };
}

/** Seconds OpenRC's supervise-daemon waits before restarting a crashed container. */
export const OPENRC_RESPAWN_DELAY = 10;

/** /etc/conf.d/NAME of an OpenRC service: as whom it runs, the restart delay, its log. */
export function renderUnitConf(user: string, name: string): string {
  return renderOpenrcConf({ user, respawnDelay: OPENRC_RESPAWN_DELAY, logFile: unitPaths("openrc", name).logFile! });
}

export interface SystemdUserUnitArgs {
  host: Host;
  user: pulumi.Input<string>;
  name: pulumi.Input<string>;
  /** The style on systemd hosts; an OpenRC host always gets an OpenRC service. */
  style: pulumi.Input<ConfiguredUnitStyle>;
  /** The unit file's content for the style the host gets (see `resolveUnitStyle`). */
  content: pulumi.Input<string>;
  /** Content of the unit's environment file (secret), delivered through stdin. */
  environment?: pulumi.Input<string>;
  /** The container the unit runs: a running one that differs from this is restarted. */
  container?: pulumi.Input<ContainerCheck>;
}

/** What a unit's container must look like, in `container_facts` lines. */
export interface ContainerCheck {
  name: string;
  /** The environment variables compared; never list secret ones (they would be printed). */
  envKeys: string[];
  /** The expected `container_facts` output (see `renderContainerFacts`). */
  facts: string;
}

export interface ContainerShape {
  image: string;
  ports: Array<{ host: number; container: number }>;
  environment: Record<string, string>;
}

/** What `container_facts` prints for a container of this shape. */
export function renderContainerFacts(c: ContainerShape, envKeys: string[]): string {
  const ports = c.ports
    .map((p) => ({ key: `${p.container}/tcp`, text: `${p.host}:${p.container}/tcp` }))
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
    .map((p) => p.text)
    .join(" ");
  const env = envKeys
    .filter((k) => k in c.environment)
    .map((k) => `env.${k}=${c.environment[k]}`)
    .sort();
  // Sorted like `LC_ALL=C sort` sorts container_facts' lines.
  return [`image=${c.image}`, `ports=${ports}`, ...env].sort().join("\n");
}

/**
 * Bash: prints a user's container's image, published ports and the listed environment
 * variables (only those: the others hold secrets), in the form renderContainerFacts expects.
 */
const CONTAINER_FACTS_FUNCTION = trimBash(sh`
container_facts() {
  local user=$1 name=$2 env_keys=$3 facts
  # shellcheck disable=SC2016 # a Go template, not a shell expansion
  facts=$(as_user "$user" timeout 60 podman container inspect "$name" --format \
    'image={{.ImageName}}{{"\n"}}ports={{range $p, $b := .HostConfig.PortBindings}}{{range $b}}{{.HostPort}}:{{$p}} {{end}}{{end}}{{"\n"}}{{range .Config.Env}}env.{{println .}}{{end}}') ||
    return 1
  printf '%s\n' "$facts" | sed 's/ *$//' | grep -E "^(image|ports)=|^env\.($env_keys)=" | LC_ALL=C sort
}
`);

function containerVars(c: ContainerCheck | undefined): Record<string, string> {
  return { container: c?.name ?? "", env_keys: c ? c.envKeys.join("|") : "", expected_container: c?.facts ?? "" };
}

export interface UnitScriptSpec {
  user: string;
  name: string;
  style: UnitStyle;
  content: string;
  hasEnvironment: boolean;
  container?: ContainerCheck;
}

/** sha256 of a file as install_file writes it from `content` (a heredoc adds the final newline). */
export function fileDigest(content: string): string {
  return createHash("sha256").update(content.endsWith("\n") ? content : `${content}\n`).digest("hex");
}

export function renderUnitInstallScript(spec: UnitScriptSpec): string {
  if (spec.style === "openrc") return renderOpenrcInstallScript(spec);
  const paths = unitPaths(spec.style, spec.name);
  return renderScript(
    {
      purpose: "Systemd user unit (Quadlet or classic) of the rootless user, with its 0600 environment file.",
      vars: {
        user: spec.user,
        style: spec.style,
        service: paths.service,
        unit_file: paths.unitFile,
        env_file: spec.hasEnvironment ? paths.envFile : "",
        ...containerVars(spec.container),
      },
    },
    sh`
${CONTAINER_FACTS_FUNCTION}
home=$(getent passwd "$user" | cut -d: -f6)
group=$(id -gn "$user")
as_user "$user" mkdir -p "$home/$(dirname "$unit_file")" "$home/$(dirname "$env_file")"
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT

${installContent(spec.content, sh`"$home/$unit_file"`, sh`644`, sh`"$user"`, sh`"$group"`)}

if [[ -n $env_file ]]; then
  # The environment file holds secrets: it arrives on stdin and is only readable by the user.
  (umask 077 && cat >"$tmp")
  install_file "$tmp" "$home/$env_file" 600 "$user" "$group"
fi

userctl() { systemctl --user -M "$user@" "$@"; }
userctl daemon-reload
if [[ $style == quadlet ]]; then
  # (systemctl cat refuses to work with -M, so ask for the load state)
  [[ $(userctl show --property=LoadState --value "$service") == loaded ]] ||
    die "Quadlet generated no $service from ~$user/$unit_file; run '/usr/libexec/podman/quadlet -dryrun -user' as $user to see why"
else
  userctl enable --quiet "$service"
fi

# A container that differs from what the unit runs (replaced or changed by hand) is restarted.
if [[ -n $container ]] && userctl is-active --quiet "$service" &&
  [[ $(container_facts "$user" "$container" "$env_keys" 2>/dev/null) != "$expected_container" ]]; then
  echo "container $container differs from the unit's settings"
  changed=1
fi
converge_service userctl "$service"
`,
  );
}

/** OpenRC: the init script and its conf.d as root, the env file in the user's home, enabled in the default runlevel. */
function renderOpenrcInstallScript(spec: UnitScriptSpec): string {
  const paths = unitPaths("openrc", spec.name);
  return renderScript(
    {
      purpose: "OpenRC service running a container as the rootless user, with its 0600 environment file.",
      vars: { user: spec.user, service: paths.service, unit_file: paths.unitFile, conf_file: paths.confFile!, env_file: spec.hasEnvironment ? paths.envFile : "", ...containerVars(spec.container) },
    },
    sh`
${CONTAINER_FACTS_FUNCTION}
home=$(getent passwd "$user" | cut -d: -f6)
group=$(id -gn "$user")
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
${installContent(spec.content, sh`"$unit_file"`, sh`755`, sh`root`, sh`root`)}
${installContent(renderUnitConf(spec.user, spec.name), sh`"$conf_file"`, sh`644`, sh`root`, sh`root`)}
if [[ -n $env_file ]]; then
  # The environment file holds secrets: it arrives on stdin and is only readable by the user.
  as_user "$user" mkdir -p "$home/$(dirname "$env_file")"
  (umask 077 && cat >"$tmp")
  install_file "$tmp" "$home/$env_file" 600 "$user" "$group"
fi
rc-update add "$service" default >/dev/null
openrc_ctl() {
  case $1 in
    is-active) rc-service "$3" status >/dev/null 2>&1 ;;
    *) rc-service "$2" "$1" ;;
  esac
}
if [[ -n $container ]] && openrc_ctl is-active --quiet "$service" &&
  [[ $(container_facts "$user" "$container" "$env_keys" 2>/dev/null) != "$expected_container" ]]; then
  echo "container $container differs from the service's settings"
  changed=1
fi
converge_service openrc_ctl "$service"
`,
  );
}

export function renderUnitRemoveScript(spec: Omit<UnitScriptSpec, "content" | "hasEnvironment">): string {
  const paths = unitPaths(spec.style, spec.name);
  if (spec.style === "openrc") {
    return renderScript(
      { purpose: "Remove the OpenRC service, its conf.d and environment file.", vars: { user: spec.user, service: paths.service, unit_file: paths.unitFile, conf_file: paths.confFile!, env_file: paths.envFile } },
      sh`
if [[ -f $unit_file ]]; then
  rc-service "$service" stop 2>/dev/null || true
  rc-update del "$service" default 2>/dev/null || true
fi
rm -f "$unit_file" "$conf_file"
if home=$(getent passwd "$user" | cut -d: -f6); then rm -f "$home/$env_file"; fi
echo "$service removed"
`,
    );
  }
  return renderScript(
    { purpose: "Remove the systemd user unit and its environment file.", vars: { user: spec.user, style: spec.style, service: paths.service, unit_file: paths.unitFile, env_file: paths.envFile } },
    sh`
if ! id -u "$user" >/dev/null 2>&1; then
  echo "user $user is gone, and its units with it"
  exit 0
fi
home=$(getent passwd "$user" | cut -d: -f6)
userctl() { systemctl --user -M "$user@" "$@"; }
# Without linger the user's manager may not run; then there is nothing to stop or reload.
manager_running=false
userctl list-units >/dev/null 2>&1 && manager_running=true
if [[ $manager_running == true ]]; then
  userctl stop "$service" 2>/dev/null || true
  [[ $style == quadlet ]] || userctl disable --quiet "$service" 2>/dev/null || true
fi
rm -f "$home/$unit_file" "$home/$env_file"
[[ $manager_running == false ]] || userctl daemon-reload
echo "$service removed"
`,
  );
}

/**
 * Read-only: the unit's files, its state, and its container. The host's init system is found
 * in the same session, so the probe looks at the configured style's files on a systemd host
 * and at the OpenRC service's on an OpenRC host.
 */
export function renderUnitProbe(key: string, spec: Omit<UnitScriptSpec, "content" | "style"> & { style: ConfiguredUnitStyle }): ProbeSection {
  const systemd = unitPaths(spec.style, spec.name);
  const openrc = unitPaths("openrc", spec.name);
  return {
    key,
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
if ! id -u "$user" >/dev/null 2>&1; then
  echo account=missing
  return 0
fi
home=$(getent passwd "$user" | cut -d: -f6)
digest() { if [[ -f $1 ]]; then sha256sum <"$1" | cut -d' ' -f1; else echo missing; fi; }
if [[ -n $env_file ]]; then
  echo "env_file=$(digest "$home/$env_file")"
  echo "env_mode=$(stat -c '%a' "$home/$env_file" 2>/dev/null || echo missing)"
fi
if [[ ! -d /run/systemd/system ]]; then
  echo "unit_file=$(digest "$openrc_unit_file")"
  echo "conf_file=$(digest "$openrc_conf_file")"
  echo manager=active
  if rc-service "$openrc_service" status >/dev/null 2>&1; then echo active=active; else echo active=inactive; fi
  if rc-update show default 2>/dev/null | grep -qE "^ *$openrc_service \|"; then echo enabled=enabled; else echo enabled=disabled; fi
else
  echo "unit_file=$(digest "$home/$systemd_unit_file")"
  echo "manager=$(systemctl is-active "user@$(id -u "$user").service" 2>/dev/null || true)"
  userctl() { timeout 30 systemctl --user -M "$user@" "$@"; }
  echo "active=$(userctl is-active "$systemd_service" 2>/dev/null || true)"
  echo "enabled=$(userctl is-enabled "$systemd_service" 2>/dev/null || true)"
fi
if [[ -n $container ]]; then
  if ! user_runtime_ready "$user"; then
    # Asking podman now would make a runtime dir; the unit's state above says what is wrong.
    echo container=unchecked
  elif facts=$(container_facts "$user" "$container" "$env_keys" 2>/dev/null); then
    echo container=present
    printf '%s\n' "$facts" | sed 's/^/container./'
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

export class SystemdUserUnit extends pulumi.ComponentResource {
  readonly service: pulumi.Output<string>;
  readonly installed: command.remote.Command;

  constructor(name: string, args: SystemdUserUnitArgs, opts?: pulumi.ComponentResourceOptions) {
    super("gitea-homelab:components:SystemdUserUnit", name, {}, opts);
    const hasEnvironment = args.environment !== undefined;
    // The probe runs before the host's init system is known, so it is rendered from the
    // configured style; everything else uses the style the host gets.
    const probeSpec = pulumi
      .all([args.user, args.name, args.style, args.container])
      .apply(([user, unitName, style, container]) => ({ user, name: unitName, style, hasEnvironment, container }));
    const facts = args.host.probe(probeSpec.apply((s) => renderUnitProbe(`unit:${name}`, s)));
    const spec = pulumi
      .all([probeSpec, args.host.platform, args.content])
      .apply(([p, platform, content]): UnitScriptSpec => ({ ...p, style: resolveUnitStyle(p.style, platform), content }));
    const envDigest = args.environment === undefined ? undefined : pulumi.output(args.environment).apply(fileDigest);
    // The comparison reads the secret env file's digest; the drift descriptions hold no secret.
    const drift = pulumi.unsecret(
      pulumi.all([spec, envDigest, facts]).apply(([s, env, f]) =>
        unitDrift(s, { unitDigest: fileDigest(s.content), confDigest: s.style === "openrc" ? fileDigest(renderUnitConf(s.user, s.name)) : undefined, envDigest: env }, f),
      ),
    );
    this.service = spec.apply((s) => unitPaths(s.style, s.name).service);
    this.installed = args.host.run(
      `${name}-unit`,
      {
        create: spec.apply(renderUnitInstallScript),
        delete: spec.apply(renderUnitRemoveScript),
        stdin: args.environment,
        secret: hasEnvironment,
        drift,
        triggers: [spec.apply((s) => `${s.user}/${s.style}/${s.name}`)],
      },
      // Both styles make the same service and share the env file: remove the old before the new.
      { parent: this, dependsOn: opts?.dependsOn, deleteBeforeReplace: true },
    );
    this.registerOutputs({ service: this.service });
  }
}
