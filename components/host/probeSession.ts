/**
 * The probe session, the pure half: one read-only SSH session per host per preview and up (a
 * `command:local:run` invoke) that prints the host facts the platform is decided from, then the
 * facts every checked command's probe prints about its part of the host, then the records those
 * commands left when they last succeeded (see checkedCommand.ts).
 */
import { Bash, MANAGED_HEADER, ROOT_PRELUDE, shellFunctions, shellVars, ShellVars, shq } from "../render/shell";

/** Where commands record the marker of their last successful converge (root-owned), per stack. */
export const STATE_DIR = "/var/lib/gitea-homelab/state";

/** This stack's record directory: stacks sharing a host keep theirs apart. */
export function recordDir(stack: string): string {
  return `${STATE_DIR}/${assertRecordName(stack)}`;
}

const SECTION = "@@gitea-homelab-probe";

const SESSION = "@@gitea-homelab-session";

/** Section name of the recorded markers. */
const RECORDS = "@records";

export type Facts = Record<string, string>;

/**
 * A read-only probe: bash printing `name=value` lines, run as root in the session. It may use
 * the session's functions (as_user, file_digest, cached, user_info,
 * has_subid_range, user_runtime_ready, user_manager_active, user_unit_state) and `$host_init`, the
 * init system the session found (systemd or openrc).
 */
export interface ProbeBody {
  body: Bash;
  /** Variables set (as locals) before the body. */
  vars?: ShellVars;
  /** Functions the body calls, defined once at the top of the session however many probes share them. */
  functions?: Bash;
}

/** A probe under the name of the command it checks (unique per host; also its record's name). */
export interface NamedProbe {
  name: string;
  probe: ProbeBody;
}

/** A name a command records its marker under: also a file name in STATE_DIR. */
export function assertRecordName(name: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) throw new Error(`bad state record name: ${name}`);
  return name;
}

/**
 * The remote half of the session: every probe in its own function, run with errors contained
 * so one broken probe cannot hide the others, then the commands' records. `$1` is the init
 * system the launcher found.
 */
export function renderProbeSessionScript(probes: NamedProbe[], records: string): string {
  const seen = new Set<string>();
  const functions = probes.map((p, i) => {
    assertRecordName(p.name);
    if (seen.has(p.name)) throw new Error(`duplicate probe name: ${p.name}`);
    seen.add(p.name);
    // Not indented: a quoted value must stay exactly as it is, line breaks and all.
    const vars = p.probe.vars;
    const locals = vars && Object.keys(vars).length > 0 ? `${shellVars(vars, { local: true })}\n` : "";
    return `probe_${i}() {\n${locals}${p.probe.body.trim()}\n}`;
  });
  const calls = probes.map((p, i) => `run_probe ${shq(p.name)} probe_${i}`);
  const shared = [...new Set(probes.map((p) => p.probe.functions?.trim()).filter((f): f is Bash => !!f))];
  return [
    ["#!/usr/bin/env bash", `# ${MANAGED_HEADER}`, "# Read-only probe of this host's state for drift detection; changes nothing.", "set -euo pipefail"].join("\n"),
    "# shellcheck disable=SC2034 # read by the probes\nhost_init=${1:-unknown}",
    shellFunctions("die", "as_user", "file_digest", "user_info"),
    `# Every process costs tens of milliseconds on a small or emulated host, so the session reads
# files with bash's own builtins where it can.
probe_cache=$(mktemp -d)
trap 'rm -rf "$probe_cache"' EXIT
# Runs a read-only command once per session, for facts several probes share; later
# calls with the same KEY print the same output and return the same status. Usage: cached KEY CMD...
cached() {
  local file=$probe_cache/$1 status=0 output=
  shift
  if [[ ! -f $file.status ]]; then
    "$@" >"$file" 2>/dev/null || status=$?
    echo "$status" >"$file.status"
  fi
  IFS= read -r -d '' output <"$file" || true
  printf '%s' "$output"
  read -r status <"$file.status"
  return "$status"
}

# True when FILE (/etc/subuid, /etc/subgid) gives USER a range.
has_subid_range() {
  local name _rest
  [[ -r $1 ]] || return 1
  while IFS=: read -r name _rest; do
    [[ $name != "$2" ]] || return 0
  done <"$1"
  return 1
}

# True when rootless podman can answer for USER without making a runtime dir: /run/user/UID
# exists (and, under systemd, the user manager that owns it runs).
user_runtime_ready() {
  # shellcheck disable=SC2034 # user_info sets both
  local user_uid user_home
  user_info "$1" || return 1
  if [[ $host_init == systemd ]]; then user_manager_active "$user_uid" || return 1; fi
  [[ -d /run/user/$user_uid ]]
}

# True when the systemd manager of the user with UID runs; asked once per session.
user_manager_active() {
  cached "user-manager-$1" systemctl is-active --quiet "user@$1.service"
}

# Prints "active=STATE" and "enabled=STATE" of a user's unit (with PREFIX before each name), in
# one call through the manager's own socket (-M USER@ takes three times as long); inactive and
# empty when the manager does not run. Usage: user_unit_state USER UID UNIT [PREFIX]
user_unit_state() {
  local user=$1 uid=$2 unit=$3 prefix=\${4:-} property value active=inactive enabled=
  if user_manager_active "$uid"; then
    while IFS='=' read -r property value; do
      case $property in
        ActiveState) active=$value ;;
        UnitFileState) enabled=$value ;;
      esac
    done < <(
      cd /
      timeout 30 runuser -u "$user" -- env XDG_RUNTIME_DIR="/run/user/$uid" systemctl --user show "$unit" --property=ActiveState --property=UnitFileState 2>/dev/null || true
    )
  fi
  echo "\${prefix}active=$active"
  echo "\${prefix}enabled=$enabled"
}

# Runs one probe in a subshell with errors fatal there only: a probe that fails prints no end
# line, so its facts count as unreadable, and the next probe still runs.
run_probe() {
  local key=$1 fn=$2 status=0
  echo "${SECTION} begin $key"
  set +e
  (
    set -e
    "$fn"
  ) </dev/null
  status=$?
  set -e
  if ((status == 0)); then echo "${SECTION} end $key"; fi
}`,
    ...shared,
    ...functions,
    ...calls,
    `echo "${SECTION} begin ${RECORDS}"
for name in ${probes.map((p) => shq(p.name)).join(" ")}; do
  file=${shq(records)}/$name
  if [[ -f $file ]] && IFS= read -r record <"$file"; then printf '%s=%s\\n' "$name" "$record"; fi
done
echo "${SECTION} end ${RECORDS}"`,
  ].join("\n\n") + "\n";
}

/**
 * The command line of the session: POSIX sh that prints the host facts section (`hostFacts`,
 * no root needed, which sets `host_init`) and then, when the host has bash (a bare Alpine host does not yet), runs the
 * session script as root. Read-only: it never installs bash; the first command does.
 */
export function renderProbeRemoteCommand(sessionScript: string, hostFactsKey: string, hostFacts: string): string {
  const launcher = [
    ROOT_PRELUDE,
    `echo "${SECTION} begin ${hostFactsKey}"`,
    hostFacts,
    `echo "${SECTION} end ${hostFactsKey}"`,
    "command -v bash >/dev/null 2>&1 || exit 0",
    'as_root bash -c "$1" gitea-homelab "$host_init"',
  ].join("\n");
  return `sh -c ${shq(launcher)} gitea-homelab ${shq(sessionScript)}`;
}

/** How the session reaches the host: the same settings as the commands' connection. */
export interface ProbeConnection {
  host: string;
  port: number;
  user: string;
  hostKey?: string;
  perDialTimeout?: number;
}

/**
 * The local half, run by `command:local:run` with /bin/sh: writes the private key (arriving on
 * stdin, never in argv or the environment) to a 0600 file in a private temp dir, pins the host
 * key when one is set, runs `remoteCommand` in one SSH session and always exits 0, reporting
 * the SSH exit status on a line of its own (a failing invoke would hide the reason).
 */
export function renderLocalProbeCommand(conn: ProbeConnection, remoteCommand: string): string {
  const host = conn.host.replace(/^\[(.*)\]$/, "$1");
  const knownHostsName = conn.port === 22 ? host : `[${host}]:${conn.port}`;
  const vars = shellVars({
    target: `${conn.user}@${host}`,
    port: conn.port,
    known_host: conn.hostKey ? `${knownHostsName} ${conn.hostKey}` : "",
    connect_timeout: conn.perDialTimeout ?? 15,
    remote: remoteCommand,
  });
  return `# ${MANAGED_HEADER}
# gitea-homelab drift probe: one read-only SSH session to the host.
${vars}
report() { echo "${SESSION} $*"; }
command -v ssh >/dev/null 2>&1 || { report no-ssh-client; exit 0; }
umask 077
dir=$(mktemp -d) || { report local-error cannot create a temporary directory; exit 0; }
trap 'rm -rf "$dir"' EXIT
trap 'exit 1' INT TERM HUP
cat >"$dir/key"
if [ -s "$dir/key" ] && [ -n "$(tail -c 1 "$dir/key")" ]; then echo >>"$dir/key"; fi
# The credentials Pulumi's command provider uses, and only those: privateKey when set, and the
# ssh-agent at SSH_AUTH_SOCK when that is set (it fails every command when no agent answers
# there). Never ~/.ssh/id_* or ssh_config, which the provider does not read.
agent='none'
if [ -n "\${SSH_AUTH_SOCK:-}" ]; then
  agent_status=0
  ssh-add -l >/dev/null 2>&1 || agent_status=$?
  case $agent_status in
    0) agent='keys' ;;
    1) agent='empty' ;;
    *) agent='dead' ;;
  esac
fi
if [ -s "$dir/key" ]; then key='set'; else key='unset'; fi
report credentials "key=$key" "agent=$agent"
if [ "$agent" = dead ]; then report exit 255; exit 0; fi
set -- -F /dev/null -p "$port" -o BatchMode=yes -o ConnectTimeout="$connect_timeout" -o ConnectionAttempts=3 -o LogLevel=ERROR
# A file that never exists stands for "no key": with one named, ssh tries no default identity.
if [ "$key" = set ]; then set -- "$@" -i "$dir/key"; else set -- "$@" -o IdentityFile="$dir/no-key"; fi
if [ "$agent" = none ]; then set -- "$@" -o IdentityAgent=none; fi
if [ -n "$known_host" ]; then
  printf '%s\\n' "$known_host" >"$dir/known_hosts"
  set -- "$@" -o UserKnownHostsFile="$dir/known_hosts" -o StrictHostKeyChecking=yes
else
  set -- "$@" -o UserKnownHostsFile=/dev/null -o StrictHostKeyChecking=no
fi
status=0
# shellcheck disable=SC2029 # the remote command line is built and quoted here on purpose
ssh "$@" "$target" "$remote" </dev/null 2>"$dir/stderr" || status=$?
report exit "$status"
tail -n 5 "$dir/stderr" | while IFS= read -r line; do report stderr "$line"; done
exit 0
`;
}

export interface ProbeSession {
  /** False when the session did not run to the end; `problem` says why, naming the setting. */
  ok: boolean;
  problem?: string;
  /** Facts per probe key, only for probes that ran to their end line. */
  sections: Record<string, Facts>;
  /** Recorded marker per command name. */
  records: Record<string, string>;
}

export function parseFacts(lines: string[]): Facts {
  const facts: Facts = {};
  for (const line of lines) {
    const eq = line.indexOf("=");
    if (eq > 0 && /^[A-Za-z0-9_.:-]+$/.test(line.slice(0, eq))) facts[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return facts;
}

/** Which credentials the session had, as the local half reported them (`credentials key=… agent=…`). */
export interface SessionCredentials {
  key: "set" | "unset";
  /** none: SSH_AUTH_SOCK unset; keys/empty: an agent with keys or none; dead: no agent answers there. */
  agent: "none" | "keys" | "empty" | "dead";
}

const SET_KEY = "pulumi config set --secret gitea-homelab:privateKey < ~/.ssh/id_ed25519";

/** What to do when the host refused every credential the provider would offer. */
function refusedProblem(target: string, creds: SessionCredentials | undefined, text: string): string {
  if (creds?.key === "set") return `gitea-homelab:privateKey: ${target} refused the key in gitea-homelab:privateKey (is its public key in ~/.ssh/authorized_keys of gitea-homelab:user there?): ${text}`;
  if (creds?.agent === "none") {
    return `gitea-homelab:privateKey: is unset and no ssh-agent runs (SSH_AUTH_SOCK is unset), so Pulumi has no key to log in to ${target} with (it never reads ~/.ssh); set it: ${SET_KEY}, or load the key into an agent: eval "$(ssh-agent)" && ssh-add`;
  }
  if (creds?.agent === "empty") return `gitea-homelab:privateKey: is unset and the ssh-agent at SSH_AUTH_SOCK holds no key; add yours with ssh-add, or set it: ${SET_KEY}`;
  return `gitea-homelab:privateKey: is unset and ${target} refused every key of the ssh-agent at SSH_AUTH_SOCK (ssh-add -l lists them); ssh-add the key it takes, or set it: ${SET_KEY}`;
}

/** Why an SSH session failed, in terms of the setting to fix. */
export function sessionProblem(exitCode: number | undefined, stderr: string[], target: string, creds?: SessionCredentials): string {
  const text = stderr.join(" ");
  if (exitCode === undefined) return `the drift probe of ${target} printed no result (local shell failed?): ${text || "no output"}`;
  if (creds?.agent === "dead") {
    return `gitea-homelab:privateKey: SSH_AUTH_SOCK is set but no ssh-agent answers there, and Pulumi's command provider then fails every command; start the agent (eval "$(ssh-agent)" && ssh-add) or unset SSH_AUTH_SOCK`;
  }
  if (exitCode === 64) return `gitea-homelab:user: ${text || "the SSH user needs passwordless sudo"}`;
  if (/Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED|host key .* differs/i.test(text)) {
    return `gitea-homelab:hostKey: ${target} did not present the pinned host key (${text})`;
  }
  if (/Permission denied|Too many authentication failures|no mutual signature/i.test(text)) return refusedProblem(target, creds, text);
  if (exitCode === 255) return `gitea-homelab:host: cannot open an SSH session to ${target} (check gitea-homelab:host and gitea-homelab:port): ${text || "ssh exited 255"}`;
  return `the drift probe on ${target} failed (exit ${exitCode}): ${text || "no error output"}`;
}

/** Reads the local command's stdout. Sections without an end line are left out. */
export function parseProbeSession(stdout: string, target: string): ProbeSession {
  const sections: Record<string, Facts> = {};
  let records: Record<string, string> = {};
  let open: { key: string; lines: string[] } | undefined;
  let exitCode: number | undefined;
  let sawExit = false;
  let noClient = false;
  let creds: SessionCredentials | undefined;
  const stderr: string[] = [];
  for (const line of stdout.split("\n")) {
    if (line.startsWith(`${SECTION} begin `)) {
      open = { key: line.slice(`${SECTION} begin `.length), lines: [] };
    } else if (line.startsWith(`${SECTION} end `)) {
      const key = line.slice(`${SECTION} end `.length);
      if (open && open.key === key) {
        if (key === RECORDS) records = parseFacts(open.lines);
        else sections[key] = parseFacts(open.lines);
      }
      open = undefined;
    } else if (line.startsWith(`${SESSION} `)) {
      const [word, ...rest] = line.slice(SESSION.length + 1).split(" ");
      if (word === "exit" && /^\d+$/.test(rest[0] ?? "")) {
        sawExit = true;
        exitCode = Number(rest[0]);
      } else if (word === "stderr") stderr.push(oneLine(rest.join(" ")));
      else if (word === "no-ssh-client") noClient = true;
      else if (word === "credentials") {
        const facts = parseFacts(rest);
        creds = { key: facts.key === "set" ? "set" : "unset", agent: (["none", "keys", "empty", "dead"].includes(facts.agent) ? facts.agent : "none") as SessionCredentials["agent"] };
      }
      else stderr.push(oneLine(line.slice(SESSION.length + 1)));
    } else if (open) {
      open.lines.push(line);
    }
  }
  if (noClient) {
    return { ok: false, problem: "pulumi preview and up need the OpenSSH client (ssh) on this machine to probe hosts for drift; install it", sections: {}, records: {} };
  }
  if (!sawExit || exitCode !== 0) return { ok: false, problem: sessionProblem(sawExit ? exitCode : undefined, stderr, target, creds), sections, records };
  return { ok: true, sections, records };
}

/** Single-line, bounded text for a marker. */
export function oneLine(text: string): string {
  return text.replace(/[\x00-\x1f\x7f]+/g, " ").replace(/\s+/g, " ").trim().slice(0, 480);
}
