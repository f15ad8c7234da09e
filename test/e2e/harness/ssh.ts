/**
 * Runs a remote.Command's command line over SSH exactly as @pulumi/command 1.2.1 would: with
 * the resource's own connection (key, pinned host key, user), the command line as the SSH
 * command and `stdin` piped in. Uses the OpenSSH client.
 */
import { spawn } from "child_process";
import { mkdtempSync, rmSync, writeFileSync } from "fs";
import { tmpdir } from "os";
import { join } from "path";

export interface Connection {
  host: string;
  port: number;
  user: string;
  privateKey?: string;
  hostKey?: string;
  perDialTimeout?: number;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
  bytesSent: number;
  /** With `markSession`: whether the remote shell started (a failure after that is no dial failure). */
  started?: boolean;
}

/** What the remote shell prints first to stderr when asked to (`markSession`), removed from the result. */
const SESSION_STARTED = "gitea-homelab-ssh-session-started";

/**
 * The credentials are the provider's and only those: `privateKey` when set, and the agent at
 * SSH_AUTH_SOCK when that is set; never ssh_config or ~/.ssh/id_* (the provider reads neither)
 * and no environment variables. `markSession` tells a dial failure from a session that started.
 */
export async function sshRun(conn: Connection, commandLine: string, stdin?: string, opts: { markSession?: boolean } = {}): Promise<RunResult> {
  const dir = mkdtempSync(join(tmpdir(), "gitea-homelab-ssh-"));
  try {
    const args = ["-F", "/dev/null", "-p", String(conn.port), "-o", "BatchMode=yes", "-o", `ConnectTimeout=${conn.perDialTimeout ?? 15}`, "-o", "LogLevel=ERROR"];
    if (conn.privateKey) {
      writeFileSync(join(dir, "key"), conn.privateKey.endsWith("\n") ? conn.privateKey : `${conn.privateKey}\n`, { mode: 0o600 });
      args.push("-i", join(dir, "key"));
    } else {
      // A file that never exists: with one named, ssh tries no default identity.
      args.push("-o", `IdentityFile=${join(dir, "no-key")}`);
    }
    if (!process.env.SSH_AUTH_SOCK) args.push("-o", "IdentityAgent=none");
    if (conn.hostKey) {
      const hostPattern = conn.port === 22 ? conn.host : `[${conn.host}]:${conn.port}`;
      writeFileSync(join(dir, "known_hosts"), `${hostPattern} ${conn.hostKey}\n`);
      args.push("-o", `UserKnownHostsFile=${join(dir, "known_hosts")}`, "-o", "StrictHostKeyChecking=yes");
    } else {
      args.push("-o", "UserKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=no");
    }
    args.push(`${conn.user}@${conn.host}`, opts.markSession ? `echo ${SESSION_STARTED} >&2; ${commandLine}` : commandLine);
    const started = Date.now();
    return await new Promise<RunResult>((resolve, reject) => {
      const child = spawn("ssh", args, { stdio: ["pipe", "pipe", "pipe"] });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (d) => (stdout += d));
      child.stderr.on("data", (d) => (stderr += d));
      child.on("error", reject);
      child.on("close", (code) => {
        const marked = opts.markSession === true && stderr.startsWith(`${SESSION_STARTED}\n`);
        resolve({
          code: code ?? 255,
          stdout,
          stderr: marked ? stderr.slice(SESSION_STARTED.length + 1) : stderr,
          ms: Date.now() - started,
          bytesSent: Buffer.byteLength(commandLine) + Buffer.byteLength(stdin ?? ""),
          ...(opts.markSession ? { started: marked } : {}),
        });
      });
      child.stdin.end(stdin ?? "");
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
