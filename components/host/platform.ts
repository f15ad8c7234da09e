/**
 * The one place the host's OS makes a difference. The probe session reads /etc/os-release and
 * PID 1 before anything changes; `decidePlatform` turns those facts and the stack's choices into
 * every platform decision at once (OS family, package manager, init system, unit style,
 * firewall). Components and their scripts receive the decided values; no script detects them
 * again (the preflight asserts the init system once).
 *
 * Fedora and Debian run systemd: a Quadlet or classic user unit under a lingering user
 * manager. Alpine runs OpenRC (no systemd, Quadlet patched out of its Podman): a system
 * service that runs the container as the rootless user under supervise-daemon.
 */
import { ConfigError, PROJECT } from "./configError";
import { Facts } from "./probeSession";

export const OS_FAMILIES = ["fedora", "debian", "alpine"] as const;
export type OsFamily = (typeof OS_FAMILIES)[number];

export const PACKAGE_MANAGERS: Record<OsFamily, "dnf" | "apt" | "apk"> = { fedora: "dnf", debian: "apt", alpine: "apk" };

export type ConfiguredUnitStyle = "quadlet" | "service";
export type UnitStyle = ConfiguredUnitStyle | "openrc";
/** The styles a systemd host can be given (an OpenRC host always gets an OpenRC service). */
export const UNIT_STYLES = ["quadlet", "service"] as const;
export type FirewallChoice = "auto" | "firewalld" | "none";

/** Everything decided about a host, once, from the probe's facts and the stack's choices. */
export interface Platform {
  family: OsFamily;
  /** The OS id from /etc/os-release, for messages. */
  osId: string;
  packageManager: "dnf" | "apt" | "apk";
  init: "systemd" | "openrc";
  /** How the container runs: an OpenRC host always gets an OpenRC service. */
  unitStyle: UnitStyle;
  /** `auto` means firewalld where the OS ships it, and none on Alpine. */
  firewall: "firewalld" | "none";
}

/** What the stack chose; the host decides the rest. */
export interface PlatformChoices {
  unitStyle: ConfiguredUnitStyle;
  firewall: FirewallChoice;
  /** What to tell the user when systemd is not PID 1. */
  systemdAdvice?: string;
  /** Refuse OpenRC hosts (the runner is a systemd service). */
  requireSystemd?: boolean;
}

export const DEFAULT_SYSTEMD_ADVICE = "gitea-homelab needs a host whose PID 1 is systemd, or an Alpine host with OpenRC (check gitea-homelab:host)";

/** Probe key of the host facts the session prints first, in POSIX sh (before bash may exist). */
export const HOST_FACTS_KEY = "@host";

/**
 * POSIX sh lines printing the host facts decidePlatform reads (they run before bash may exist).
 * They set `host_init`, which the probe session hands to every probe: the one look at PID 1.
 */
export const HOST_FACTS_SH = [
  "# shellcheck source=/dev/null",
  '(. /etc/os-release 2>/dev/null; echo "os_id=${ID:-}"; echo "os_like=${ID_LIKE:-}")',
  "if [ -d /run/systemd/system ]; then host_init=systemd",
  "elif [ -d /run/openrc ] || [ -x /sbin/openrc-run ]; then host_init=openrc",
  'else host_init=$(cat /proc/1/comm 2>/dev/null); fi',
  'echo "init=$host_init"',
].join("\n");

/** Reads /etc/os-release's ID and ID_LIKE into a family. */
export function osFamily(id: string, idLike: string): OsFamily | "unknown" {
  const words = ` ${id} ${idLike} `;
  if (words.includes(" alpine ")) return "alpine";
  if (words.includes(" fedora ") || words.includes(" rhel ")) return "fedora";
  if (words.includes(" debian ") || words.includes(" ubuntu ")) return "debian";
  return "unknown";
}

/**
 * Every platform decision, or a ConfigError naming what to fix when this is no host
 * gitea-homelab can run on (raised at preview, before anything on the host changes).
 */
export function decidePlatform(facts: Facts | undefined, choices: PlatformChoices): Platform {
  const osId = facts?.os_id || "unknown";
  const family = osFamily(facts?.os_id ?? "", facts?.os_like ?? "");
  if (family === "unknown") {
    throw new ConfigError([`${PROJECT}:host: unsupported OS '${osId}': gitea-homelab supports Fedora (dnf), Debian (apt) and Alpine (apk) hosts`]);
  }
  let init: Platform["init"];
  if (family === "alpine") {
    if (choices.requireSystemd) throw new ConfigError([`${PROJECT}:host: this is an Alpine (OpenRC) host; ${choices.systemdAdvice ?? DEFAULT_SYSTEMD_ADVICE}`]);
    if (facts?.init !== "openrc") throw new ConfigError([`${PROJECT}:host: this Alpine host has no OpenRC (openrc-run); gitea-homelab runs Gitea as an OpenRC service there`]);
    init = "openrc";
  } else {
    if (facts?.init !== "systemd") throw new ConfigError([`${PROJECT}:host: systemd is not running as PID 1 on this host (PID 1: ${facts?.init || "unknown"}): ${choices.systemdAdvice ?? DEFAULT_SYSTEMD_ADVICE}`]);
    init = "systemd";
  }
  return {
    family,
    osId,
    packageManager: PACKAGE_MANAGERS[family],
    init,
    unitStyle: init === "openrc" ? "openrc" : choices.unitStyle,
    firewall: choices.firewall === "firewalld" || (choices.firewall === "auto" && family !== "alpine") ? "firewalld" : "none",
  };
}

/**
 * Commands the server needs, and the package that provides each, per package manager ("" where
 * the OS has it anyway: Fedora and Debian ship useradd, runuser and a runtime with Podman).
 */
export const REQUIRED_TOOLS: Array<{ command: string; fedora: string; debian: string; alpine: string }> = [
  { command: "podman", fedora: "podman", debian: "podman", alpine: "podman" },
  { command: "curl", fedora: "curl", debian: "curl", alpine: "curl" },
  // Gitea's certificate (tls own-ca, given): the CA, the certificate, their checks.
  { command: "openssl", fedora: "openssl", debian: "openssl", alpine: "openssl" },
  { command: "newuidmap", fedora: "shadow-utils", debian: "uidmap", alpine: "shadow-subids" },
  { command: "pasta", fedora: "passt", debian: "passt", alpine: "passt" },
  // Alpine's busybox has adduser, but neither useradd/usermod --add-subuids nor runuser.
  { command: "usermod", fedora: "", debian: "", alpine: "shadow" },
  { command: "runuser", fedora: "", debian: "", alpine: "runuser" },
  { command: "crun", fedora: "", debian: "", alpine: "crun" },
  { command: "fuse-overlayfs", fedora: "", debian: "", alpine: "fuse-overlayfs" },
];
