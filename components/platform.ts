/**
 * The one place the host's OS makes a difference: which OS family and init system the host
 * runs (read from /etc/os-release and PID 1 by the probe session, before anything changes),
 * which packages provide what, and which kind of unit runs the container.
 *
 * Fedora and Debian run systemd: a Quadlet or classic user unit under a lingering user
 * manager. Alpine runs OpenRC (no systemd, Quadlet patched out of its Podman): a system
 * service that runs the container as the rootless user under supervise-daemon.
 */
import { Facts } from "./render/probe";

export const OS_FAMILIES = ["fedora", "debian", "alpine"] as const;
export type OsFamily = (typeof OS_FAMILIES)[number];

export interface Platform {
  family: OsFamily | "unknown";
  /** The OS id from /etc/os-release, for messages. */
  osId: string;
  init: "systemd" | "openrc" | "unknown";
}

/** Probe key of the host facts the session prints first, in POSIX sh (before bash may exist). */
export const HOST_FACTS_KEY = "@host";

/** POSIX sh lines printing the host facts detectPlatform reads (runs before bash may exist). */
export const HOST_FACTS_SH = [
  "# shellcheck source=/dev/null",
  '(. /etc/os-release 2>/dev/null; echo "os_id=${ID:-}"; echo "os_like=${ID_LIKE:-}")',
  "if [ -d /run/systemd/system ]; then echo init=systemd",
  "elif [ -d /run/openrc ] || [ -x /sbin/openrc-run ]; then echo init=openrc",
  'else echo "init=$(cat /proc/1/comm 2>/dev/null)"; fi',
  'if command -v bash >/dev/null 2>&1; then echo bash=present; else echo bash=missing; fi',
].join("\n");

/** Reads /etc/os-release's ID and ID_LIKE into a family, the way the preflight does. */
export function osFamily(id: string, idLike: string): OsFamily | "unknown" {
  const words = ` ${id} ${idLike} `;
  if (words.includes(" alpine ")) return "alpine";
  if (words.includes(" fedora ") || words.includes(" rhel ")) return "fedora";
  if (words.includes(" debian ") || words.includes(" ubuntu ")) return "debian";
  return "unknown";
}

export function detectPlatform(facts: Facts | undefined): Platform {
  const id = facts?.os_id ?? "";
  const init = facts?.init === "systemd" || facts?.init === "openrc" ? facts.init : "unknown";
  return { family: osFamily(id, facts?.os_like ?? ""), osId: id || "unknown", init };
}

export type ConfiguredUnitStyle = "quadlet" | "service";
export type UnitStyle = ConfiguredUnitStyle | "openrc";

/** An OpenRC host always gets an OpenRC service; a systemd host gets the configured style. */
export function resolveUnitStyle(configured: ConfiguredUnitStyle, platform: Platform): UnitStyle {
  return platform.init === "openrc" ? "openrc" : configured;
}

/** `firewall: auto` means firewalld where the OS ships it, and none on Alpine. */
export function usesFirewalld(firewall: "auto" | "firewalld" | "none", platform: Platform): boolean {
  return firewall === "firewalld" || (firewall === "auto" && platform.family !== "alpine");
}

/**
 * Commands the server needs, and the package that provides each, per package manager ("" where
 * the OS has it anyway: Fedora and Debian ship useradd, runuser and a runtime with Podman).
 */
export const REQUIRED_TOOLS: Array<{ command: string; fedora: string; debian: string; alpine: string }> = [
  { command: "podman", fedora: "podman", debian: "podman", alpine: "podman" },
  { command: "curl", fedora: "curl", debian: "curl", alpine: "curl" },
  { command: "newuidmap", fedora: "shadow-utils", debian: "uidmap", alpine: "shadow-subids" },
  { command: "pasta", fedora: "passt", debian: "passt", alpine: "passt" },
  // Alpine's busybox has adduser, but neither useradd/usermod --add-subuids nor runuser.
  { command: "usermod", fedora: "", debian: "", alpine: "shadow" },
  { command: "runuser", fedora: "", debian: "", alpine: "runuser" },
  { command: "crun", fedora: "", debian: "", alpine: "crun" },
  { command: "fuse-overlayfs", fedora: "", debian: "", alpine: "fuse-overlayfs" },
];
