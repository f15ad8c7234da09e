/**
 * Pure helpers for the bash scripts the components send to hosts. Every script is built by
 * `renderScript`, so each one starts the same way (strict mode, the managed-by header, the
 * shared functions) and passes `bash -n` and shellcheck.
 */
import { createHash } from "crypto";

export const MANAGED_HEADER = "Managed by gitea-homelab: edits are overwritten by `pulumi up`.";

declare const bashBrand: unique symbol;
/**
 * Bash source text. Only `sh`, `shq`, `heredoc` and the helpers built on them make it, so a
 * plain string (a config value, a host's answer) cannot become code by accident: the compiler
 * refuses it in `sh` and in `renderScript`. Values reach a script through `vars` (quoted).
 */
export type Bash = string & { readonly [bashBrand]: true };

/** A string literal written in this program's source, never a computed one (`string`). */
export type Literal<S extends string> = S & (string extends S ? never : unknown);

/** Values no script, unit or file on a host can carry: NUL and the other control characters. */
export const CONTROL_CHARACTERS = /[\x00-\x1f\x7f-\x9f\u2028\u2029]/;

/**
 * Tag for bash text in TypeScript: backslashes stay as written (like String.raw), `\${…}` is
 * bash's own expansion and `${…}` interpolates other bash text (never a plain string).
 */
export function sh(strings: TemplateStringsArray, ...values: Bash[]): Bash {
  const raw = strings.raw.map((part) => part.replace(/\\\$\{/g, "${").replace(/\\`/g, "`"));
  return String.raw({ raw }, ...values) as Bash;
}

/** Bash text without its leading and trailing blank lines. */
export function trimBash(code: Bash): Bash {
  return code.trim() as Bash;
}

/** Quotes a value for bash: the result is always one word, whatever the value holds. */
export function shq(value: string | number): Bash {
  const s = String(value);
  if (s.includes("\0")) throw new Error("a NUL byte cannot be passed to bash");
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(s)) return s as Bash;
  return `'${s.replace(/'/g, `'\\''`)}'` as Bash;
}

export type ShellVars = Record<string, string | number | boolean>;

/** A value in single quotes, always (shq leaves a plain word bare). */
function quoted(text: string): Bash {
  if (text.includes("\0")) throw new Error("a NUL byte cannot be passed to bash");
  return `'${text.replace(/'/g, `'\\''`)}'` as Bash;
}

/**
 * `name=value` assignments, one per line (`local name=value` with `local`), every value quoted.
 * A value holding `$`, a backtick or a backslash is literal on purpose: shellcheck is told so.
 */
export function shellVars(vars: ShellVars, opts: { local?: boolean; directives?: boolean } = {}): Bash {
  return Object.entries(vars)
    .map(([name, value]) => {
      if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`bad shell variable name: ${name}`);
      const text = String(value);
      const codes = [/[$`]/.test(text) ? "SC2016" : "", text.includes("\\") ? "SC1003" : ""].filter((c) => c !== "");
      const directive = codes.length > 0 && opts.directives !== false ? `# shellcheck disable=${codes.join(",")} # a literal value\n` : "";
      // Always quoted: a bare word that names a command (x=pr) is a shellcheck warning (SC2209).
      return `${directive}${opts.local ? "local " : ""}${name}=${quoted(text)}`;
    })
    .join("\n") as Bash;
}

/** A heredoc that writes `content` verbatim; the delimiter is chosen so the content cannot end it. */
export function heredoc(content: string): { open: Bash; body: Bash } {
  if (content.includes("\0")) throw new Error("a NUL byte cannot be written through a heredoc");
  let delimiter = "GITEA_HOMELAB_EOF";
  while (content.split("\n").includes(delimiter)) delimiter += "_";
  const body = content.endsWith("\n") ? content : `${content}\n`;
  return { open: `<<'${delimiter}'` as Bash, body: `${body}${delimiter}` as Bash };
}

/** sha256 of a file as `installContent` writes it (a heredoc adds the final newline): what file_digest prints. */
export function fileDigest(content: string): string {
  return createHash("sha256").update(content.endsWith("\n") ? content : `${content}\n`).digest("hex");
}

/**
 * Bash that installs `content` verbatim at `dest` (a bash word, e.g. "$home/$unit_file") with
 * install_file, through the script's temp file "$tmp". Mode, owner and group are bash words too.
 */
export function installContent(content: string, dest: Bash, mode: Bash, owner: Bash, group: Bash): Bash {
  const doc = heredoc(content);
  return sh`cat >"$tmp" ${doc.open}
${doc.body}
install_file "$tmp" ${dest} ${mode} ${owner} ${group}`;
}

/** Functions scripts may call; `renderScript` includes the ones a script uses. */
const FUNCTIONS = {
  die: sh`
die() {
  echo "gitea-homelab: $*" >&2
  exit 1
}`,
  as_user: sh`
# Runs a command as a rootless user with that user's runtime dir and bus, which podman and
# systemctl --user need and which runuser from root does not set. Without a running user
# manager there is no /run/user/UID; podman then falls back to its own temporary one.
as_user() {
  local user=$1
  shift
  local uid runtime_dir
  uid=$(id -u "$user") || die "user $user does not exist"
  runtime_dir=/run/user/$uid
  [[ -d $runtime_dir ]] || runtime_dir=
  (cd / && runuser -u "$user" -- env XDG_RUNTIME_DIR="$runtime_dir" \
    DBUS_SESSION_BUS_ADDRESS="unix:path=/run/user/$uid/bus" "$@")
}`,
  install_file: sh`
# Installs a file only when its content or mode differs; sets changed=1 when it did.
# Usage: install_file SRC DEST MODE OWNER GROUP
install_file() {
  local src=$1 dest=$2 mode=$3 owner=$4 group=$5
  if [[ -f $dest ]] && cmp -s "$src" "$dest" && [[ $(stat -c '%a %U %G' "$dest") == "$mode $owner $group" ]]; then
    return 0
  fi
  install -m "$mode" -o "$owner" -g "$group" "$src" "$dest"
  # shellcheck disable=SC2034 # read by the scripts that call install_file
  changed=1
}`,
  converge_service: sh`
# Restarts SERVICE when this script changed its files (changed=1), starts it when inactive,
# and leaves an active, unchanged one alone: starting an active rootless Quadlet unit can block
# (podman issue 22197). CTL... is systemctl, or a command taking systemctl's verbs.
# Usage: converge_service SERVICE CTL...
converge_service() {
  local service=$1
  shift
  if "$@" is-active --quiet "$service"; then
    if ((changed)); then
      "$@" restart "$service"
      echo "$service restarted (its files changed)"
    else
      echo "$service active, unchanged"
    fi
  else
    "$@" start "$service"
    echo "$service started"
  fi
}`,
  user_info: sh`
# Sets user_uid and user_home of USER, or returns 1 when there is no such account. Reads
# /etc/passwd with bash's own read (each process costs tens of milliseconds on a small host),
# then asks NSS (LDAP, sssd). Usage: user_info USER
# shellcheck disable=SC2034 # read by the caller
user_info() {
  local name _password uid _gid _gecos home _shell entry
  while IFS=: read -r name _password uid _gid _gecos home _shell; do
    if [[ $name == "$1" ]]; then
      user_uid=$uid user_home=$home
      return 0
    fi
  done </etc/passwd
  entry=$(getent passwd "$1") || return 1
  IFS=: read -r name _password user_uid _gid _gecos user_home _shell <<<"$entry"
}`,
  home_of: sh`
# The home directory of USER. Usage: home_of USER
home_of() {
  # shellcheck disable=SC2034 # user_info sets both
  local user_uid user_home
  user_info "$1" || return 1
  printf '%s\n' "$user_home"
}`,
  userctl: sh`
# systemctl for USER's own systemd manager, from root, through the manager's own socket:
# a third of the time of systemctl --user -M USER@, which goes through machined.
# Usage: userctl USER ARGS...
userctl() {
  local user=$1
  shift
  as_user "$user" systemctl --user "$@"
}`,
  install_packages: sh`
# Installs packages with the host's package manager (decided once, from the probe).
# Usage: install_packages dnf|apt|apk PACKAGE...
install_packages() {
  local manager=$1
  shift
  case $manager in
    dnf) dnf install -y "$@" ;;
    apt)
      DEBIAN_FRONTEND=noninteractive apt-get update -q
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@"
      ;;
    apk) apk add --update-cache --quiet --no-progress "$@" ;;
  esac
}`,
  file_digest: sh`
# sha256 of a file's content, or "missing". Usage: file_digest PATH
file_digest() {
  if [[ -f $1 ]]; then sha256sum <"$1" | cut -d' ' -f1; else echo missing; fi
}`,
  wait_for: sh`
# Waits until a command succeeds. Usage: wait_for SECONDS DESCRIPTION CMD...
wait_for() {
  local timeout=$1 what=$2
  shift 2
  local deadline=$((SECONDS + timeout))
  until "$@"; do
    if ((SECONDS >= deadline)); then
      echo "gitea-homelab: timed out after $timeout seconds waiting for $what" >&2
      return 1
    fi
    sleep 2
  done
}`,
};

/** The named shared functions, for scripts that need only some of them. */
export function shellFunctions(...names: Array<keyof typeof FUNCTIONS>): Bash {
  return names.map((n) => FUNCTIONS[n].trim()).join("\n\n") as Bash;
}

/** The shared functions `code` calls, and those they call in turn. */
function functionsUsedBy(code: string): Bash {
  const names = Object.keys(FUNCTIONS) as Array<keyof typeof FUNCTIONS>;
  const used = new Set<keyof typeof FUNCTIONS>();
  let text = code;
  for (let grew = true; grew; ) {
    grew = false;
    for (const name of names) {
      if (!used.has(name) && new RegExp(`(^|[^A-Za-z0-9_-])${name}([^A-Za-z0-9_-]|$)`, "m").test(text)) {
        used.add(name);
        text += FUNCTIONS[name];
        grew = true;
      }
    }
  }
  return shellFunctions(...names.filter((n) => used.has(n)));
}

export interface ScriptOptions<P extends string> {
  /**
   * One line saying what the script is for; becomes its first comment. A literal of this
   * program's source: names and paths from config go in `vars`, never in a comment.
   */
  purpose: Literal<P>;
  /** Variables set at the top, quoted; the body refers to them instead of repeating values. */
  vars?: ShellVars;
}

/** Assembles a complete, strict bash script from a body. */
export function renderScript<P extends string>(opts: ScriptOptions<P>, body: Bash): string {
  if (!/^[\x20-\x7e]+$/.test(opts.purpose)) throw new Error(`a script's purpose must be one printable line: ${JSON.stringify(opts.purpose)}`);
  const parts = [
    ["#!/usr/bin/env bash", `# ${MANAGED_HEADER}`, `# ${opts.purpose}`, "set -euo pipefail"].join("\n"),
    "# shellcheck disable=SC2034 # install_file sets it; not every script reads it\nchanged=0",
  ];
  const used = functionsUsedBy(body);
  if (used !== "") parts.push(used);
  if (opts.vars && Object.keys(opts.vars).length > 0) parts.push(shellVars(opts.vars));
  parts.push(body.trim());
  return `${parts.join("\n\n")}\n`;
}

/**
 * POSIX sh (it runs before bash may exist): defines `as_root CMD...`, directly when the SSH user
 * is root, else through `sudo -n` (never a password prompt), failing with exit 64 and a message
 * that names the setting to fix.
 */
export const ROOT_PRELUDE = [
  'if [ "$(id -u)" -eq 0 ]; then',
  '  as_root() { "$@"; }',
  "else",
  "  if ! sudo -n true 2>/dev/null; then",
  '    echo "gitea-homelab: SSH user $(id -un) needs passwordless sudo on this host (NOPASSWD in sudoers), or set gitea-homelab:user to root" >&2',
  "    exit 64",
  "  fi",
  '  as_root() { sudo -n "$@"; }',
  "fi",
].join("\n");

/**
 * The one-line POSIX launcher every command line is (`sh -c LAUNCHER gitea-homelab ARG...`):
 * root's bash reads the program from stdin. It is short on purpose: the command provider quotes
 * the whole command line it ran above the script's own output when a command fails, so a
 * failed script's `gitea-homelab: …` line comes right after it. The probe session has checked
 * passwordless sudo (with a message naming the setting) before any command runs; Alpine has
 * no bash until the first command (the preflight) installs it with apk.
 */
export const STDIN_LAUNCHER =
  'if [ "$(id -u)" -eq 0 ]; then r() { "$@"; }; else r() { sudo -n "$@"; }; fi; ' +
  'command -v bash >/dev/null || r apk add --update-cache --quiet --no-progress bash >&2 || { echo "gitea-homelab: this host has no bash, which gitea-homelab needs; install it" >&2; exit 65; }; ' +
  'r bash -s "$@"';

/** A bash program's text run as one subshell, so bash has read all of it before it runs. */
function subshell(code: string): string {
  return `(\n${code.endsWith("\n") ? code : `${code}\n`})`;
}

/** What a command sends: the short command lines the provider runs (and quotes), and their stdin. */
export interface RootInvocation {
  command: string;
  /** The delete's command line, when the command has a delete script (it is in `stdin` too). */
  deleteCommand?: string;
  stdin: string;
}

/** The word that makes the stdin program run its delete script. */
const DELETE_WORD = "delete";

/**
 * Runs `script` (bash) as root: the command line is the one-line launcher (with `label`, a word
 * the command line carries for `pulumi preview --diff`, e.g. the drift marker); stdin holds the
 * script, then `after` (run as root only when the script succeeded, with no stdin: it records
 * drift state), then `payload` (secrets), which the script reads from its own stdin. Bash reads
 * a program from a pipe a byte at a time and runs the braced block only once it has read all of
 * it, so the script's reads start exactly at the payload, which is never run as code.
 * `onDelete`, when given, is in the same stdin, run instead when the command line's word is
 * `delete` (`deleteCommand`): the provider runs a delete with the stored stdin, so the delete
 * script reads the same payload.
 */
export function asRootCommand(script: string, opts: { after?: string; payload?: string; label?: string; onDelete?: string } = {}): RootInvocation {
  if (opts.label === DELETE_WORD) throw new Error(`a command's label cannot be ${DELETE_WORD}`);
  const program = [
    "{",
    ...(opts.onDelete === undefined ? [] : [`if [ "\${1:-}" = ${DELETE_WORD} ]; then`, subshell(opts.onDelete), "exit", "fi"]),
    subshell(script),
    "gitea_homelab_status=$?",
    '[ "$gitea_homelab_status" -eq 0 ] || exit "$gitea_homelab_status"',
    ...(opts.after === undefined ? [] : [`${subshell(opts.after)} </dev/null`]),
    "exit",
    "}",
    "",
  ].join("\n");
  return {
    command: `sh -c ${shq(STDIN_LAUNCHER)} gitea-homelab${opts.label === undefined ? "" : ` ${shq(opts.label)}`}`,
    deleteCommand: opts.onDelete === undefined ? undefined : `sh -c ${shq(STDIN_LAUNCHER)} gitea-homelab ${DELETE_WORD}`,
    stdin: program + (opts.payload ?? ""),
  };
}

/** The parts `asRootCommand` put in a command's stdin (for tests and the e2e harness); undefined for other text. */
export function parseRootInvocation(stdin: string): { script: string; after?: string; onDelete?: string; payload: string } | undefined {
  const m = /^\{\n(?:if \[ "\$\{1:-\}" = delete \]; then\n\(\n([\s\S]*?)\)\nexit\nfi\n)?\(\n([\s\S]*?)\)\ngitea_homelab_status=\$\?\n.*\n(?:\(\n([\s\S]*?)\) <\/dev\/null\n)?exit\n\}\n/.exec(stdin);
  return m ? { onDelete: m[1], script: m[2], after: m[3], payload: stdin.slice(m[0].length) } : undefined;
}
