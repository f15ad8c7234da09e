/**
 * The service that runs Gitea, the pure half: where its files go for each unit style, the
 * unit file itself (Quadlet `.container`, classic `.service`, or an OpenRC init script), and the
 * scripts that install and remove it. Which style a host gets is decided once (host/platform.ts).
 */
import { UnitStyle } from "../host/platform";
import { renderOpenrcConf, renderOpenrcInitScript } from "../render/openrc";
import { Bash, installContent, renderScript, sh, trimBash } from "../render/shell";
import { IniEntries, renderIni, unit, UnitValue } from "../render/unitFile";

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
export const CONTAINER_FACTS_FUNCTION = trimBash(sh`
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
  /** Bash run once the files are installed, before the service is (re)started; may set changed=1. */
  beforeStart?: Bash;
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
home=$(home_of "$user")
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

${spec.beforeStart ?? sh``}

userctl "$user" daemon-reload
if [[ $style == quadlet ]]; then
  # (systemctl cat refuses to work with -M, so ask for the load state)
  [[ $(userctl "$user" show --property=LoadState --value "$service") == loaded ]] ||
    die "Quadlet generated no $service from ~$user/$unit_file; run '/usr/libexec/podman/quadlet -dryrun -user' as $user to see why"
else
  userctl "$user" enable --quiet "$service"
fi

# A container that differs from what the unit runs (replaced or changed by hand) is restarted.
if [[ -n $container ]] && userctl "$user" is-active --quiet "$service" &&
  [[ $(container_facts "$user" "$container" "$env_keys" 2>/dev/null) != "$expected_container" ]]; then
  echo "container $container differs from the unit's settings"
  changed=1
fi
converge_service "$service" userctl "$user"
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
home=$(home_of "$user")
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
${spec.beforeStart ?? sh``}
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
converge_service "$service" openrc_ctl
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
if home=$(home_of "$user"); then rm -f "$home/$env_file"; fi
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
home=$(home_of "$user")
# Without linger the user's manager may not run; then there is nothing to stop or reload.
manager_running=false
userctl "$user" list-units >/dev/null 2>&1 && manager_running=true
if [[ $manager_running == true ]]; then
  userctl "$user" stop "$service" 2>/dev/null || true
  [[ $style == quadlet ]] || userctl "$user" disable --quiet "$service" 2>/dev/null || true
fi
rm -f "$home/$unit_file" "$home/$env_file"
[[ $manager_running == false ]] || userctl "$user" daemon-reload
echo "$service removed"
`,
  );
}
export interface ContainerSpec {
  containerName: string;
  image: string;
  ports: Array<{ host: number; container: number }>;
  /** Named volumes; `options` replaces the default relabel (Z), e.g. ro,Z,U. */
  volumes: Array<{ name: string; path: string; options?: string }>;
  /** The secret environment files (the service's own, Gitea's keys), relative to the rootless user's home. */
  envFiles: string[];
  environment: Record<string, string>;
  /** Podman's --userns, e.g. keep-id:uid=1000,gid=1000 (bind-mounted host dirs keep their owner). */
  userns?: string;
}

const UNIT_DESCRIPTION = "Gitea (rootless Podman, managed by gitea-homelab)";

/** [Unit] lines both unit styles share. */
function unitSection(): IniEntries {
  return [
    ["Description", unit.literal(UNIT_DESCRIPTION)],
    ["Wants", unit.literal("network-online.target")],
    ["After", unit.literal("network-online.target")],
  ];
}

const installSection = { name: "Install", entries: [["WantedBy", unit.literal("default.target")]] as IniEntries };

/** Volumes are relabelled (:Z) for SELinux; Podman skips the relabel where SELinux is off. */
function volumeArg(v: { name: string; path: string; options?: string }): string {
  return `${v.name}:${v.path}:${v.options ?? "Z"}`;
}

/** The env file as systemd sees it: %h is the rootless user's home. */
function homeRelative(path: string): UnitValue {
  return unit.concat(unit.literal("%h/"), unit.text(path));
}

export function renderGiteaQuadlet(spec: ContainerSpec): string {
  const container: IniEntries = [
    ["ContainerName", unit.execToken(spec.containerName)],
    ["Image", unit.execToken(spec.image)],
    ...spec.ports.map((p): [string, UnitValue] => ["PublishPort", unit.execToken(`${p.host}:${p.container}`)]),
    ...spec.volumes.map((v): [string, UnitValue] => ["Volume", unit.execToken(volumeArg(v))]),
    ...spec.envFiles.map((f): [string, UnitValue] => ["EnvironmentFile", homeRelative(f)]),
    ...(spec.userns ? [["UserNS", unit.execToken(spec.userns)] as [string, UnitValue]] : []),
    ...Object.entries(spec.environment).map(([k, v]): [string, UnitValue] => ["Environment", unit.containerEnvironment(k, v)]),
  ];
  return renderIni([
    { name: "Unit", entries: unitSection() },
    { name: "Container", entries: container },
    // A first start may pull the image; Restart=always brings Gitea back after a crash.
    { name: "Service", entries: [["Restart", unit.literal("always")], ["TimeoutStartSec", 900]] },
    installSection,
  ]);
}

/** `podman run` options both command-line styles share: name, ports, volumes, userns (the env file differs). */
function containerRunArgs(spec: ContainerSpec): string[] {
  return [
    `--name=${spec.containerName}`,
    ...spec.ports.map((p) => `--publish=${p.host}:${p.container}`),
    ...spec.volumes.map((v) => `--volume=${volumeArg(v)}`),
    ...(spec.userns ? [`--userns=${spec.userns}`] : []),
  ];
}

/** The classic unit `podman generate systemd --new` would write, for Podman older than 4.4. */
export function renderGiteaService(spec: ContainerSpec): string {
  const run = unit.command([
    unit.literal("/usr/bin/podman run --cidfile=%t/%n.ctr-id --cgroups=no-conmon --rm --sdnotify=conmon --replace --detach"),
    ...containerRunArgs(spec).map(unit.execWord),
    ...spec.envFiles.map((f) => unit.concat(unit.literal("--env-file=%h/"), unit.execWord(f))),
    ...Object.entries(spec.environment).map(([k, v]) => unit.execWord(`--env=${k}=${v}`)),
    unit.execWord(spec.image),
  ]);
  return renderIni([
    { name: "Unit", entries: [...unitSection(), ["RequiresMountsFor", unit.literal("%t/containers")]] },
    {
      name: "Service",
      entries: [
        ["Environment", unit.literal("PODMAN_SYSTEMD_UNIT=%n")],
        ["Restart", unit.literal("always")],
        ["TimeoutStartSec", 900],
        ["TimeoutStopSec", 70],
        ["ExecStart", run],
        ["ExecStop", unit.literal("/usr/bin/podman stop --ignore --time=10 --cidfile=%t/%n.ctr-id")],
        ["ExecStopPost", unit.literal("/usr/bin/podman rm --force --ignore --time=10 --cidfile=%t/%n.ctr-id")],
        ["Type", unit.literal("notify")],
        ["NotifyAccess", unit.literal("all")],
      ],
    },
    installSection,
  ]);
}

/**
 * The OpenRC service for Alpine: `podman run` in the foreground under supervise-daemon, as the
 * rootless user, restarted after a crash. `envFiles` are relative to the user's home.
 */
export function renderGiteaOpenrc(spec: ContainerSpec): string {
  return renderOpenrcInitScript({
    description: UNIT_DESCRIPTION,
    command: "/usr/bin/podman",
    args: [
      "run",
      "--rm",
      "--replace",
      ...containerRunArgs(spec),
      ...spec.envFiles.map((f) => `--env-file=${f}`),
      ...Object.entries(spec.environment).map(([k, v]) => ({ value: `--env=${k}=${v}` })),
      { value: spec.image },
    ],
    need: ["net", "cgroups"],
    containerName: spec.containerName,
  });
}

/** Renders the unit file for the resolved style. */
export function renderGiteaUnit(style: UnitStyle, spec: ContainerSpec): string {
  if (style === "openrc") return renderGiteaOpenrc(spec);
  return style === "quadlet" ? renderGiteaQuadlet(spec) : renderGiteaService(spec);
}

/** The container as the unit runs it, compared on the non-secret settings only. */
export function giteaContainerCheck(spec: ContainerSpec): ContainerCheck {
  const envKeys = Object.keys(spec.environment).sort();
  return { name: spec.containerName, envKeys, facts: renderContainerFacts(spec, envKeys) };
}
