/**
 * TEST DOUBLE of the `command` provider plugin, version 1.2.1 (pulumi-resource-command), written
 * for this repository's end-to-end tests, which run the real Pulumi CLI where the real plugin is
 * not available (CI). It is not the real provider and implements only what this program uses,
 * with the semantics @pulumi/command 1.2.1 has (learned from its source, none of it copied):
 *
 * `command:remote:Command`
 *   - check: takes the new inputs as they are, with the connection's defaults filled in (user
 *     root, port 22, dialErrorLimit 10, perDialTimeout 15) and the connection marked secret, as
 *     the real schema does. Inputs the double cannot honour fail the check by name: `environment`
 *     (the program never sets it), and the connection's password, privateKeyPassword,
 *     agentSocketPath and proxy.
 *   - diff: a change of `triggers` (deep equality) replaces; a change of any other input
 *     updates; the outputs `stdout`/`stderr` the old state carries are not compared. The changed
 *     inputs reach the engine's events as `diffs`, as the real provider's do (serve.ts).
 *   - create runs `create`; update runs `update`, else `create`, with the NEW inputs (connection
 *     and stdin included); delete runs the STORED `delete` with the stored connection and stdin.
 *     A missing script runs nothing. `stdin` is piped in. Outputs: the inputs (secret ones still
 *     secret) plus `stdout` and `stderr`, each with one trailing newline trimmed.
 *   - a non-zero exit fails the step with the real provider's text:
 *       Process exited with status N: running "<script, Go-quoted>":
 *       <stdout><stderr>
 *     (The real provider interleaves the two streams as they arrive; the double's SSH helper
 *     returns them apart, so stdout comes first, then stderr.)
 *   - SSH is the OpenSSH client through the harness's `sshRun`: the key in a 0600 temporary file,
 *     the pinned host key checked strictly when `hostKey` is set. A dial failure (ssh's exit 255
 *     with nothing on stdout and one of the client's own connection/handshake/authentication
 *     errors on stderr) is retried as the real provider retries its dial: up to `dialErrorLimit`
 *     retries (-1: no limit), waits growing 1.5x from 150 ms up to 5 s, an ephemeral
 *     "Dial i/N failed: retrying" status each time, then fails with
 *     "after N failed attempts: <ssh's last line>". A remote command of its own exiting 255 is
 *     never retried (it prints something else), so a script never runs twice.
 *   - addPreviousOutputInEnv (default true): the real provider asks sshd to set
 *     PULUMI_COMMAND_STDOUT/STDERR to the previous outputs and warns when sshd refuses, which a
 *     stock sshd (AcceptEnv) does. The OpenSSH client cannot pass multi-line values, so the double
 *     never sends them and always warns, as the real one does against a stock sshd.
 *   - logging: the command's output lines go to the engine as ephemeral status lines, honouring
 *     `logging` (none: nothing), after the command ends, not streamed live as the real provider
 *     does.
 * `command:local:run` (invoke, runs on every preview and up)
 *   - `/bin/sh -c COMMAND` (or `interpreter` + COMMAND) in `dir` (default: the plugin's working
 *     directory) with `environment` added and `stdin` piped in; returns the inputs plus
 *     `stdout`/`stderr` (one trailing newline trimmed); a non-zero exit fails the invoke with
 *     "exit status N: running "<command>":\n<output as it arrived>", as the real provider.
 *     assetPaths/archivePaths are not implemented (the invoke fails if they are set).
 * Not implemented: the local Command and CopyToRemote resources, live output streaming,
 * cancellation; `read` (refresh) keeps the state as it is, as the real provider does.
 *
 * Secrets: the connection (key) and stdin may arrive as secret wrappers or plain values; the
 * double reads both (wire.ts), keeps the wrappers in its outputs, and never prints either; the
 * key only ever goes to sshRun's 0600 temporary file.
 *
 * Run as a plugin by the launcher that install.ts writes; imported by the unit test.
 */
import { spawn } from "child_process";
import { randomBytes } from "crypto";
import { statSync } from "fs";
import * as provider from "@pulumi/pulumi/provider";
import { unknownValue } from "@pulumi/pulumi/runtime/rpc";
import { connect } from "net";
import { Connection, RunResult, sshRun } from "../harness/ssh";
import { Diagnostics, engineAddress, engineDiagnostics, silentDiagnostics } from "./diagnostics";
import { serveDouble } from "./serve";
import { Props, asSecret, changedKeys, hasUnknowns, nameOf, reveal, sameValue } from "./wire";

export const COMMAND_PROVIDER_DOUBLE_VERSION = "1.2.1";
const REMOTE_COMMAND = "command:remote:Command";
const LOCAL_RUN = "command:local:run";
/** How the double names itself in what it reports. */
const WHO = "command provider double";

const LOGGING = ["stdout", "stderr", "stdoutAndStderr", "none"];
const CONNECTION_DEFAULTS = { user: "root", port: 22, dialErrorLimit: 10, perDialTimeout: 15 };
const UNSUPPORTED_CONNECTION = ["password", "privateKeyPassword", "agentSocketPath", "proxy"];

/** The OpenSSH client's own errors before a command runs: the real provider's dial errors. */
const DIAL_FAILURE =
  /^(ssh: connect to host |ssh: Could not resolve hostname |kex_exchange_identification: |ssh_exchange_identification: |banner exchange: |Connection (closed|reset) by |Connection timed out during banner exchange|Host key verification failed\.|\S+: Permission denied \()/m;

export type SshRunner = (conn: Connection, commandLine: string, stdin?: string, opts?: { markSession?: boolean }) => Promise<RunResult>;

export interface CommandProviderDoubleOptions {
  diagnostics?: Diagnostics;
  /** Runs a command line over SSH; sshRun unless a unit test stands in for sshd. */
  ssh?: SshRunner;
  sleep?: (ms: number) => Promise<void>;
}

/** `s` quoted as Go's %q quotes it (the real provider's error text quotes the script so). */
export function goQuote(s: string): string {
  const escapes: Record<string, string> = { '"': '\\"', "\\": "\\\\", "\x07": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v" };
  let out = '"';
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    if (escapes[ch]) out += escapes[ch];
    else if (cp < 0x20 || cp === 0x7f) out += `\\x${cp.toString(16).padStart(2, "0")}`;
    else if (ch === " " || /[\p{L}\p{M}\p{N}\p{P}\p{S}]/u.test(ch)) out += ch;
    else if (cp <= 0xffff) out += `\\u${cp.toString(16).padStart(4, "0")}`;
    else out += `\\U${cp.toString(16).padStart(8, "0")}`;
  }
  return `${out}"`;
}

function trimOneNewline(s: string): string {
  return s.endsWith("\n") ? s.slice(0, -1) : s;
}

function shouldLog(logging: string | undefined, stream: "stdout" | "stderr"): boolean {
  return logging === undefined || logging === stream || logging === "stdoutAndStderr";
}

/** Go's os/exec text for how a local process ended. */
function exitText(code: number | null, signal: NodeJS.Signals | null): string {
  const described: Partial<Record<NodeJS.Signals, string>> = { SIGKILL: "killed", SIGTERM: "terminated", SIGINT: "interrupt", SIGHUP: "hangup", SIGPIPE: "broken pipe", SIGABRT: "aborted", SIGSEGV: "segmentation fault" };
  return signal ? `signal: ${described[signal] ?? signal}` : `exit status ${code}`;
}

/** The inputs a diff finds changed: all but the outputs `stdout`/`stderr` the old state carries. */
export function commandChangedKeys(olds: Props, news: Props): string[] {
  return changedKeys(olds, news, ["stdout", "stderr"]);
}

/** Fails as the real provider does when SSH_AUTH_SOCK is set but no agent answers there. */
async function requireAgent(socketPath = process.env.SSH_AUTH_SOCK): Promise<void> {
  if (!socketPath) return;
  await new Promise<void>((resolve, reject) => {
    const socket = connect(socketPath, () => {
      socket.destroy();
      resolve();
    });
    socket.on("error", (err: NodeJS.ErrnoException) =>
      reject(new Error(`dial unix ${socketPath}: connect: ${err.code === "ENOENT" ? "no such file or directory" : err.code === "ECONNREFUSED" ? "connection refused" : err.message}`)),
    );
  });
}

export function commandProviderDouble(opts: CommandProviderDoubleOptions = {}): provider.Provider {
  const diagnostics = opts.diagnostics ?? silentDiagnostics();
  const ssh = opts.ssh ?? sshRun;
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));

  /** Sends a command's output to the engine as status lines, as `logging` allows. */
  async function logOutput(logging: string | undefined, stdout: string, stderr: string, urn?: string): Promise<void> {
    const lines = [...(shouldLog(logging, "stdout") ? stdout.split("\n") : []), ...(shouldLog(logging, "stderr") ? stderr.split("\n") : [])];
    for (const line of lines.filter((l) => l !== "")) await diagnostics.log("info", line, { urn, ephemeral: true });
  }

  /**
   * Runs `script` on the host of `props.connection` (props revealed), with `props.stdin`;
   * `previous` are the outputs of the last create/update (for update and delete).
   */
  async function runRemote(urn: string, props: Props, script: string, previous?: { stdout?: string; stderr?: string }): Promise<{ stdout: string; stderr: string }> {
    if (props.environment && Object.keys(props.environment).length > 0) {
      throw new Error(`${WHO}: \`environment\` is not implemented by this test double (the program never sets it)`);
    }
    if (props.addPreviousOutputInEnv !== false && previous) {
      for (const [name, value] of [["PULUMI_COMMAND_STDOUT", previous.stdout], ["PULUMI_COMMAND_STDERR", previous.stderr]] as const) {
        if (value) {
          await diagnostics.log(
            "warning",
            `${WHO}: ${name} was not set for this command: a stock sshd refuses such variables (AcceptEnv), which the real provider reports as a warning, and this double never sends them. Set addPreviousOutputInEnv: false, or prefix the command with VAR=value.`,
            { urn },
          );
        }
      }
    }
    const c = { ...CONNECTION_DEFAULTS, ...props.connection };
    const conn: Connection = { host: c.host, port: Number(c.port), user: c.user, privateKey: c.privateKey || undefined, hostKey: c.hostKey || undefined, perDialTimeout: c.perDialTimeout };
    const limit = Number(c.dialErrorLimit);
    const stdin = props.stdin ? String(props.stdin) : undefined;
    let delay = 100;
    let result: RunResult;
    // The real provider dials the agent at SSH_AUTH_SOCK before anything and fails when none answers.
    await requireAgent();
    for (let attempt = 0; ; attempt++) {
      result = await ssh(conn, script, stdin, { markSession: true });
      // Only a dial is retried, as the real provider does: never a script whose session started.
      if (result.started || !(result.code === 255 && result.stdout === "" && DIAL_FAILURE.test(result.stderr))) break;
      const dials = attempt + 1;
      // ssh's last line is its verdict (a host key mismatch comes after a banner of warnings).
      if (limit > -1 && dials > limit) throw new Error(`after ${attempt} failed attempts: ${result.stderr.trim().split("\n").pop()}`);
      await diagnostics.log("info", `${WHO}: Dial ${dials}/${limit === -1 ? "inf" : limit} failed: retrying`, { urn, ephemeral: true });
      delay = Math.min(delay * 1.5, 5000);
      await sleep(delay);
    }
    await logOutput(props.logging, result.stdout, result.stderr, urn);
    if (result.code !== 0) throw new Error(`Process exited with status ${result.code}: running ${goQuote(script)}:\n${result.stdout}${result.stderr}`);
    return { stdout: trimOneNewline(result.stdout), stderr: trimOneNewline(result.stderr) };
  }

  /** `command:local:run`: the command on this machine, as the real provider runs it. */
  async function localRun(inputs: Props): Promise<{ stdout: string; stderr: string }> {
    const args = reveal(inputs);
    for (const unsupported of ["assetPaths", "archivePaths"]) {
      if (args[unsupported] !== undefined) throw new Error(`${WHO}: \`${unsupported}\` of ${LOCAL_RUN} is not implemented by this test double`);
    }
    const argv: string[] = [...(args.interpreter?.length ? args.interpreter : ["/bin/sh", "-c"]), String(args.command)];
    const dir: string = args.dir ?? process.cwd();
    if (!statSync(dir, { throwIfNoEntry: false })?.isDirectory()) throw new Error(`chdir ${dir}: no such file or directory`);
    const env = { ...process.env, ...(args.environment ?? {}) };
    return new Promise((resolve, reject) => {
      const child = spawn(argv[0], argv.slice(1), { cwd: dir, env, stdio: ["pipe", "pipe", "pipe"] });
      let stdout = "";
      let stderr = "";
      let both = "";
      child.stdout.on("data", (d) => ((stdout += d), (both += d)));
      child.stderr.on("data", (d) => ((stderr += d), (both += d)));
      child.on("error", (err: NodeJS.ErrnoException) =>
        reject(new Error(err.code === "ENOENT" && !argv[0].includes("/") ? `exec: ${goQuote(argv[0])}: executable file not found in $PATH` : `fork/exec ${argv[0]}: ${err.message}`)),
      );
      // A command that does not read its stdin may exit before we finish writing it.
      child.stdin.on("error", () => undefined);
      child.on("close", async (code, signal) => {
        await logOutput(args.logging, stdout, stderr);
        if (code !== 0) reject(new Error(`${exitText(code, signal)}: running ${goQuote(String(args.command))}:\n${both}`));
        else resolve({ stdout: trimOneNewline(stdout), stderr: trimOneNewline(stderr) });
      });
      child.stdin.end(args.stdin ? String(args.stdin) : "");
    });
  }

  function requireRemoteCommand(urn: string): void {
    const type = urn.split("::")[2]?.split("$").pop();
    if (type !== REMOTE_COMMAND) throw new Error(`${WHO}: resource type ${type} is not implemented by this test double (only ${REMOTE_COMMAND})`);
  }

  return {
    version: COMMAND_PROVIDER_DOUBLE_VERSION,

    async check(urn, _olds, news) {
      requireRemoteCommand(urn);
      const failures: provider.CheckFailure[] = [];
      const plain = reveal(news);
      if (plain.environment !== undefined && plain.environment !== null) {
        failures.push({ property: "environment", reason: `${WHO}: \`environment\` is not implemented by this test double (the program never sets it)` });
      }
      if (plain.logging !== undefined && plain.logging !== unknownValue && !LOGGING.includes(plain.logging)) {
        failures.push({ property: "logging", reason: `${WHO}: logging must be one of ${LOGGING.join(", ")}` });
      }
      let connection = news.connection;
      const conn = plain.connection;
      if (typeof conn === "object" && conn !== null) {
        for (const key of UNSUPPORTED_CONNECTION) {
          if (conn[key] !== undefined && conn[key] !== null) failures.push({ property: `connection.${key}`, reason: `${WHO}: connection.${key} is not implemented by this test double` });
        }
        if (conn.host === undefined || conn.host === null) failures.push({ property: "connection.host", reason: `${WHO}: connection.host is required` });
        // Defaults filled in, and secret, as the real schema makes the connection; still
        // unknown parts (preview) stay unknown.
        const filled: Props = { ...conn };
        for (const [k, v] of Object.entries(CONNECTION_DEFAULTS)) if (filled[k] === undefined || filled[k] === null) filled[k] = v;
        connection = asSecret(filled);
      } else if (conn !== undefined && conn !== unknownValue) {
        failures.push({ property: "connection", reason: `${WHO}: connection must be an object` });
      }
      return { inputs: { ...news, connection }, failures };
    },

    async diff(_id, urn, olds, news) {
      requireRemoteCommand(urn);
      const changed = commandChangedKeys(olds, news);
      const replaces = sameValue(olds.triggers, news.triggers) ? [] : ["triggers"];
      return { changes: changed.length > 0, replaces, deleteBeforeReplace: false };
    },

    async create(urn, inputs) {
      requireRemoteCommand(urn);
      const id = `${nameOf(urn)}${randomBytes(4).toString("hex")}`;
      const props = reveal(inputs);
      if (props.create === undefined || props.create === null) return { id, outs: { ...inputs, stdout: "", stderr: "" } };
      const out = await runRemote(urn, props, String(props.create));
      return { id, outs: { ...inputs, ...out } };
    },

    async read(id, _urn, props) {
      // As the real provider: nothing to read on the host; the state stays as it is.
      return { id, props };
    },

    async update(_id, urn, olds, news) {
      requireRemoteCommand(urn);
      const props = reveal(news);
      const previous = { stdout: reveal(olds.stdout), stderr: reveal(olds.stderr) };
      const script = props.update ?? props.create;
      if (script === undefined || script === null) return { outs: { ...news, ...previous } };
      const out = await runRemote(urn, props, String(script), previous);
      return { outs: { ...news, ...out } };
    },

    async delete(_id, urn, props) {
      requireRemoteCommand(urn);
      const stored = reveal(props);
      if (stored.delete === undefined || stored.delete === null) return;
      await runRemote(urn, stored, String(stored.delete), { stdout: stored.stdout, stderr: stored.stderr });
    },

    async invoke(token, inputs) {
      if (token !== LOCAL_RUN) throw new Error(`${WHO}: function ${token} is not implemented by this test double (only ${LOCAL_RUN})`);
      if (hasUnknowns(inputs)) throw new Error(`${WHO}: ${LOCAL_RUN} got unknown inputs`);
      const out = await localRun(inputs);
      return { outputs: { ...inputs, ...out } };
    },
  };
}

if (require.main === module) {
  const args = process.argv.slice(2);
  void serveDouble(commandProviderDouble({ diagnostics: engineDiagnostics(engineAddress(args)) }), (_urn, olds, news) => commandChangedKeys(olds, news), args);
}
