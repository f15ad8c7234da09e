/**
 * Runs generated scripts the way a host would run them, but harmlessly: every command that
 * changes a system (useradd, systemctl, podman, firewall-cmd, install, rm, …) is a stub that
 * only logs its arguments (with canned answers where a script needs one to go on), read-only
 * tools (cat, grep, awk, sha256sum, …) are the real ones, and anything else is logged by
 * bash's command_not_found_handle. Everything here runs as nobody when this process is root,
 * in the sandbox directory, so a stray redirection cannot write to the machine. `install`
 * stubs keep a copy of each file a script installs.
 *
 * Two worlds: "present" (the user, image, units exist and run) and "absent" (queries fail, so
 * scripts take their create/load/start branches). Commands that run other commands (runuser,
 * timeout, `podman exec … sh -c`) run them, through the stubs, so a value that became code in
 * an inner shell fires the canary too.
 *
 * A canary command `gh_canary` and the canary path mark injected code: if a config value ever
 * runs, `canaryFired()` is true.
 */
import { spawnSync } from "child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "fs";
import { tmpdir } from "os";
import { join } from "path";

/** Commands run for real: they only read, or write inside the sandbox's temp dir. */
const REAL_TOOLS = ["bash", "cat", "grep", "sed", "awk", "sort", "cut", "head", "tail", "tr", "wc", "cmp", "stat", "sha256sum", "dirname", "basename", "mktemp", "true", "false", "printf", "env", "date", "uniq", "base64", "od", "comm"];
/**
 * Read-only tools a test may make real (realTool): absent otherwise, since a script that finds
 * one may run much longer (the ACME check asks openssl for Gitea's certificate until it times out).
 */
const OPTIONAL_REAL_TOOLS = ["openssl"];

/** Commands that change a host: logged, never run. */
const STUBBED = [
  "id", "getent", "runuser", "sudo", "systemctl", "loginctl", "journalctl", "useradd", "usermod", "userdel", "pkill", "pgrep",
  "podman", "firewall-cmd", "firewall-offline-cmd", "busctl", "install", "cp", "mv", "rm", "rmdir", "chmod", "chown", "mkdir", "touch", "ln",
  "curl", "timeout", "sleep", "modprobe", "rc-service", "rc-update", "apk", "dnf", "apt-get", "openrc-run", "ssh", "sh", "dash", "restic",
];

/**
 * Runs first in every curl, the stub and a test's own (override): records the call's arguments
 * (curlCalls) and, like a curl that cannot verify the server, fails a request told not to verify
 * (-k, --insecure, on the command line or in a config read from stdin). Scripts must never turn
 * verification off, and a test that only answers a status code would not see it.
 */
const CURL_GUARD = `if [[ \${0##*/} == curl ]]; then
  calls=("$GH_SANDBOX"/curl-calls/*)
  [[ -e \${calls[0]} ]] || calls=()
  printf '%s\\0' "$@" >"$GH_SANDBOX/curl-calls/$(printf '%06d' "\${#calls[@]}")"
  unverified=
  prev=
  for arg; do
    case $arg in
      --insecure | --proxy-insecure | --doh-insecure) unverified=$arg ;;
      --*) ;;
      -*k*) unverified=$arg ;;
    esac
    if [[ ($prev == --config || $prev == -K) && $arg == - ]]; then
      config=$(cat)
      if grep -Eq '^[[:space:]]*-{0,2}(insecure|proxy-insecure|k)([[:space:]=:]|$)' <<<"$config"; then unverified="insecure in its config"; fi
      exec < <(printf '%s\\n' "$config")
    fi
    prev=$arg
  done
  if [[ -n $unverified ]]; then
    echo "curl: (60) the sandbox refuses a request that does not verify the server ($unverified)" >&2
    printf 000
    exit 60
  fi
fi`;

/** The stub: logs `name args`, answers what the scripts ask so they run on to their end. */
const STUB = `#!/bin/bash
name=\${0##*/}
${CURL_GUARD}
printf '%s\\0' "$name" "$@" >>"$GH_SANDBOX/log"
printf '\\n' >>"$GH_SANDBOX/log"
# Commands that run a command: run it (only a bare name, which resolves to a stub or a read-only tool).
case $name in
  runuser)
    while (($# > 0)) && [[ $1 != -- ]]; do shift; done
    shift
    [[ \${1:-} == */* ]] || exec "$@" ;;
  timeout)
    shift
    [[ \${1:-} == */* ]] || exec "$@" ;;
  podman)
    if [[ \${1:-} == exec ]]; then
      for ((i = 2; i < $#; i++)); do
        if [[ \${!i} == sh && \${*:i+1:1} == -c ]]; then exec /bin/dash "\${@:i+1}"; fi
      done
    fi ;;
esac
if [[ $GH_STUB_MODE == absent ]]; then
  case "$name $*" in
    "id "* | "getent "* | "pgrep "*) exit 1 ;;
    *" exists "* | *" is-active"* | *" is-enabled"* | *"--query-port"* | *" status"* | "systemctl --user list-units"*) exit 1 ;;
    "busctl "*" queryPort "*) echo "b false"; exit 0 ;;
    "firewall-cmd --state"*) exit 252 ;;
  esac
fi
case "$name $*" in
  # Units run (present) or do not exist (absent): in neither world has one failed.
  *" is-failed"*) exit 1 ;;
  "id -u"*) echo 1000 ;;
  "id -gn"*) echo gitea ;;
  "id -un"*) echo root ;;
  "getent passwd"*) echo "$2:x:1000:1000::$GH_SANDBOX/home:/bin/bash" ;;
  "curl "*) echo 200 ;;
  "pgrep "*) exit 1 ;;
  "systemctl --user is-system-running"*) echo running ;;
  "systemctl --user show "*) echo loaded ;;
  "busctl "*" get-property "*" state"*) echo 's "RUNNING"' ;;
  "busctl "*" getDefaultZone"*) echo 's "public"' ;;
  "busctl "*" getZoneByName "*) echo 'o "/org/fedoraproject/FirewallD1/config/zone/0"' ;;
  "busctl "*" queryPort "*) echo "b true" ;;
  "podman --version"*) echo "podman version 5.4.2" ;;
  "restic version"*) echo "restic 0.18.0 compiled with go1.24.4 on linux/amd64" ;;
  "podman volume inspect"*) echo "$GH_SANDBOX/volume" ;;
  "firewall-cmd --state"*) echo running ;;
  "firewall-cmd --get-default-zone"* | "firewall-offline-cmd --get-default-zone"*) echo public ;;
  "install "*)
    # install [-m M] [-o O] [-g G] SRC DEST: keep a copy of what a script installs.
    if [[ $1 != -d ]]; then
      dest=\${!#}; src=\${*: -2:1}
      cat "$src" >"$GH_SANDBOX/installed/\${dest//\\//%2F}" 2>/dev/null || true
    fi ;;
  "ssh "*) printf '%s' "\${!#}" >"$GH_SANDBOX/ssh-remote" ;;
esac
exit 0
`;

export type StubMode = "present" | "absent";

/**
 * Whether a run was stopped by the timeout. A script that exits without reading all its stdin
 * (most never read it) makes writing the rest fail with EPIPE: that is no failure of the script,
 * only a race with the write, lost more often on a busy machine. Anything else is thrown.
 */
function timedOut(error: Error | undefined): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (error === undefined || code === "EPIPE") return false;
  if (code === "ETIMEDOUT") return true;
  throw error;
}

/** As nobody when this process is root: nothing it runs can write outside the sandbox. */
function unprivileged(argv: string[]): string[] {
  return process.getuid?.() === 0 ? ["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--", ...argv] : argv;
}

export interface ScriptRun {
  status: number | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

export class ScriptSandbox {
  readonly dir: string;
  readonly canary: string;
  private readonly bin: string;

  constructor() {
    this.dir = mkdtempSync(join(tmpdir(), "gh-sandbox-"));
    this.bin = join(this.dir, "bin");
    this.canary = join(this.dir, "canary", "CANARY");
    for (const d of ["bin", "canary", "installed", "home", "tmp", "volume", "curl-calls"]) mkdirSync(join(this.dir, d));
    writeFileSync(join(this.bin, ".stub"), STUB, { mode: 0o755 });
    for (const name of STUBBED) symlinkSync(".stub", join(this.bin, name));
    for (const name of REAL_TOOLS) {
      const path = ["/usr/bin", "/bin"].map((d) => join(d, name)).find((p) => existsSync(p));
      if (path) symlinkSync(path, join(this.bin, name));
    }
    writeFileSync(join(this.bin, "gh_canary"), `#!/bin/bash\n: >${JSON.stringify(this.canary)}\n`, { mode: 0o755 });
    // nobody must be able to use the sandbox (and only it).
    for (const d of [this.dir, join(this.dir, "canary"), join(this.dir, "installed"), join(this.dir, "home"), join(this.dir, "tmp"), join(this.dir, "volume"), join(this.dir, "curl-calls")]) chmodSync(d, 0o777);
    writeFileSync(join(this.dir, "log"), "");
    chmodSync(join(this.dir, "log"), 0o666);
  }

  private env(mode: StubMode = "present"): NodeJS.ProcessEnv {
    return {
      GH_STUB_MODE: mode,
      PATH: this.bin,
      HOME: join(this.dir, "home"),
      TMPDIR: join(this.dir, "tmp"),
      LC_ALL: "C.UTF-8",
      GH_SANDBOX: this.dir,
      // Commands no stub names are logged and succeed.
      "BASH_FUNC_command_not_found_handle%%": `() { printf '%s\\0' "not-found:$1" "\${@:2}" >>"$GH_SANDBOX/log"; printf '\\n' >>"$GH_SANDBOX/log"; return 0; }`,
    };
  }

  /**
   * The sandbox's stand-in directory for an absolute directory of the host that scripts run
   * programs from (e.g. the backup tool's): scripts get this path instead, where each program
   * named in `names` is a logging stub.
   */
  standIn(names: string[]): string {
    const dir = join(this.dir, "stand-in");
    if (!existsSync(dir)) {
      mkdirSync(dir);
      chmodSync(dir, 0o755);
    }
    for (const name of names) if (!existsSync(join(dir, name))) symlinkSync(join(this.bin, ".stub"), join(dir, name));
    return dir;
  }

  /**
   * Replaces the stub of a command with a bash script of the test's (it may keep state in
   * $GH_SANDBOX/tmp), for a world the two standard ones do not describe.
   */
  override(name: string, script: string): void {
    if (!STUBBED.includes(name)) throw new Error(`${name} is not a stubbed command`);
    const path = join(this.bin, name);
    rmSync(path);
    writeFileSync(path, `#!/bin/bash\n${name === "curl" ? `${CURL_GUARD}\n` : ""}${script}\n`, { mode: 0o755 });
  }

  /** Makes an optional read-only tool (OPTIONAL_REAL_TOOLS) real for the runs that follow, or absent again. */
  realTool(name: string, real: boolean): void {
    if (!OPTIONAL_REAL_TOOLS.includes(name)) throw new Error(`${name} is not an optional real tool`);
    const link = join(this.bin, name);
    rmSync(link, { force: true });
    if (!real) return;
    const path = ["/usr/bin", "/bin"].map((d) => join(d, name)).find((p) => existsSync(p));
    if (!path) throw new Error(`${name} is not installed on this machine`);
    symlinkSync(path, link);
  }

  /** The arguments of each curl the scripts ran, in order (the stub's or an override's). */
  curlCalls(): string[][] {
    const dir = join(this.dir, "curl-calls");
    return readdirSync(dir)
      .sort()
      .map((name) => readFileSync(join(dir, name), "utf8").split("\0").slice(0, -1));
  }

  /** Runs a bash script with the stubs in one of the two worlds, with ARGS as its arguments. */
  runBash(script: string, stdin = "", mode: StubMode = "present", args: string[] = []): ScriptRun {
    const file = join(this.dir, "tmp", "script.sh");
    writeFileSync(file, script, { mode: 0o644 });
    const argv = unprivileged(["/bin/bash", file, ...args]);
    const run = spawnSync(argv[0], argv.slice(1), { input: stdin, encoding: "utf8", env: this.env(mode), cwd: this.dir, timeout: 120_000 });
    return { status: run.status, stdout: run.stdout ?? "", stderr: run.stderr ?? "", timedOut: timedOut(run.error) };
  }

  /** Runs a POSIX sh script (the drift probe's local half) with the stubs; `ssh` records its remote command. */
  runSh(script: string, stdin = ""): ScriptRun & { remote?: string } {
    const argv = unprivileged(["/bin/sh", "-c", script]);
    const run = spawnSync(argv[0], argv.slice(1), { input: stdin, encoding: "utf8", env: this.env(), cwd: this.dir, timeout: 120_000 });
    const remoteFile = join(this.dir, "ssh-remote");
    const remote = existsSync(remoteFile) ? readFileSync(remoteFile, "utf8") : undefined;
    rmSync(remoteFile, { force: true });
    return { status: run.status, stdout: run.stdout ?? "", stderr: run.stderr ?? "", timedOut: timedOut(run.error), remote };
  }

  /**
   * The arguments a command line gives its first command, as the host's login shell parses it:
   * for `sh -c LAUNCHER gitea-homelab SCRIPT [AFTER]`, [-c, LAUNCHER, gitea-homelab, SCRIPT, AFTER].
   */
  argv(commandLine: string): string[] {
    const capture = join(this.dir, "canary", "argv");
    const bin = join(this.dir, "capture-bin");
    if (!existsSync(bin)) {
      mkdirSync(bin);
      writeFileSync(join(bin, "sh"), `#!/bin/bash\nfor a; do printf '%s\\0' "$a"; done >${JSON.stringify(capture)}\n`, { mode: 0o755 });
      symlinkSync(join(this.bin, "gh_canary"), join(bin, "gh_canary"));
      chmodSync(bin, 0o755);
    }
    rmSync(capture, { force: true });
    const argv = unprivileged(["/bin/bash", "-c", commandLine]);
    const run = spawnSync(argv[0], argv.slice(1), { encoding: "utf8", env: { PATH: bin }, cwd: this.dir, timeout: 10_000 });
    if (run.status !== 0 || !existsSync(capture)) throw new Error(`command line did not run its launcher: ${run.stderr}`);
    return readFileSync(capture, "utf8").split("\0").slice(0, -1);
  }

  canaryFired(): boolean {
    return existsSync(this.canary);
  }

  /** Files the scripts installed since the last call, by destination path. */
  takeInstalled(): Record<string, string> {
    const dir = join(this.dir, "installed");
    const files: Record<string, string> = {};
    for (const name of readdirSync(dir)) {
      files[name.replace(/%2F/g, "/")] = readFileSync(join(dir, name), "utf8");
      rmSync(join(dir, name));
    }
    return files;
  }

  dispose(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
