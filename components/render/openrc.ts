/**
 * OpenRC services (Alpine): an init script run by supervise-daemon, which restarts the command
 * when it exits, and its /etc/conf.d file. Both are POSIX sh that openrc-run sources: values
 * are quoted with `shq`.
 *
 * openrc-run's supervise_start passes `command_args` through an unquoted expansion and then
 * `eval` (sh/supervise-daemon.sh), so a value written there is split, globbed and parsed as
 * code a second time. Every argument that is not a plain safe word is therefore kept in a
 * variable of its own, set (quoted, once) at the top of the init script, and `command_args`
 * holds only `"$gitea_homelab_arg_N"`: eval expands it inside double quotes, and the value is
 * never parsed again.
 */
import { MANAGED_HEADER, shellVars, shq } from "./shell";

export interface OpenrcService {
  description: string;
  /** Absolute path of the program, run in the foreground (supervise-daemon must not see it fork). */
  command: string;
  /** Fixed words of this program (must be plain safe words), and values (any text) as `{ value }`. */
  args: Array<string | { value: string }>;
  /** Services it needs started first, e.g. net, cgroups. */
  need: string[];
  /** A container `command` runs: removed after a stop, in case Podman's client went first. */
  containerName?: string;
}

export interface OpenrcConf {
  /** The user the command runs as; its runtime dir is made before each start. */
  user: string;
  /** Seconds between a crash and the restart. */
  respawnDelay: number;
  logFile: string;
}

/** Words that mean the same to sh before and after eval: no quotes, spaces, globs or `$`. */
const SAFE_WORD = /^[A-Za-z0-9_@%+=:,./-]+$/;

/**
 * The init script's value variables and the `command_args` text that refers to them. Every
 * value gets a variable, whatever it holds, so the script's shape never depends on a value.
 */
export function openrcCommandArgs(args: OpenrcService["args"]): { vars: Record<string, string>; commandArgs: string } {
  const vars: Record<string, string> = {};
  const words = args.map((arg) => {
    if (typeof arg === "string") {
      if (!SAFE_WORD.test(arg)) throw new Error(`a fixed OpenRC argument must be a plain word: ${JSON.stringify(arg)}`);
      return arg;
    }
    const name = `gitea_homelab_arg_${Object.keys(vars).length + 1}`;
    vars[name] = arg.value;
    return `"$${name}"`;
  });
  return { vars, commandArgs: words.join(" ") };
}

export function renderOpenrcInitScript(s: OpenrcService): string {
  if (!SAFE_WORD.test(s.command)) throw new Error(`the OpenRC command must be a plain path: ${JSON.stringify(s.command)}`);
  const args = openrcCommandArgs(s.args);
  const argVars = Object.keys(args.vars).length === 0 ? "" : `# Values eval must not parse again (see command_args).\n${shellVars(args.vars, { directives: false })}\n`;
  return `#!/sbin/openrc-run
# ${MANAGED_HEADER}
# Settings: /etc/conf.d/$RC_SVCNAME (run_as_user, respawn_delay, log_file).
# SC2016: values and command_args hold $ literally (expanded by openrc-run's eval, if at all).
# shellcheck shell=sh disable=SC2034,SC2154,SC2016,SC1003 # openrc-run reads these; conf.d sets the others
description=${shq(s.description)}
supervisor=supervise-daemon
command=${shq(s.command)}
${argVars}command_args=${shq(args.commandArgs)}
command_user="$run_as_user"
# Restart after a crash, without limit, like systemd's Restart=always.
respawn_delay="\${respawn_delay:-10}"
respawn_max=0
output_log="$log_file"
error_log="$log_file"

depend() {
  need ${s.need.join(" ")}
  after firewall
}

start_pre() {
  uid=$(id -u "$run_as_user") || return 1
  # Rootless Podman keeps its runtime state here; /run is empty after a boot.
  checkpath --directory --mode 0700 --owner "$run_as_user" "/run/user/$uid"
  checkpath --directory --mode 0755 "\${log_file%/*}"
  checkpath --file --mode 0640 --owner "$run_as_user" "$log_file"
  export XDG_RUNTIME_DIR="/run/user/$uid"
  HOME=$(getent passwd "$run_as_user" | cut -d: -f6)
  export HOME
  # Relative paths in command_args (the env file) are relative to the user's home.
  directory=$HOME
  supervise_daemon_args="--env XDG_RUNTIME_DIR=$XDG_RUNTIME_DIR --env HOME=$HOME"
}
${
  s.containerName === undefined
    ? ""
    : `
# Give Podman time to stop the container, then make sure it is gone (it holds the ports).
retry="SIGTERM/30/SIGKILL/5"
stop_post() {
  uid=$(id -u "$run_as_user") || return 0
  runuser -u "$run_as_user" -- env XDG_RUNTIME_DIR="/run/user/$uid" /usr/bin/podman rm --force --ignore --time 10 ${shq(s.containerName)} >/dev/null 2>&1 || true
}
`
}`;
}

export function renderOpenrcConf(c: OpenrcConf): string {
  return `# ${MANAGED_HEADER}\n# shellcheck shell=sh disable=SC2034 # read by /etc/init.d/$RC_SVCNAME\n${shellVars({ run_as_user: c.user, respawn_delay: c.respawnDelay, log_file: c.logFile })}\n`;
}
