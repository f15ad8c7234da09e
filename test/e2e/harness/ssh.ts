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
}

export async function sshRun(conn: Connection, commandLine: string, stdin?: string): Promise<RunResult> {
  const dir = mkdtempSync(join(tmpdir(), "gitea-homelab-ssh-"));
  try {
    const args = ["-p", String(conn.port), "-o", "BatchMode=yes", "-o", `ConnectTimeout=${conn.perDialTimeout ?? 15}`, "-o", "LogLevel=ERROR"];
    if (conn.privateKey) {
      writeFileSync(join(dir, "key"), conn.privateKey.endsWith("\n") ? conn.privateKey : `${conn.privateKey}\n`, { mode: 0o600 });
      args.push("-i", join(dir, "key"), "-o", "IdentitiesOnly=yes");
    }
    if (conn.hostKey) {
      const hostPattern = conn.port === 22 ? conn.host : `[${conn.host}]:${conn.port}`;
      writeFileSync(join(dir, "known_hosts"), `${hostPattern} ${conn.hostKey}\n`);
      args.push("-o", `UserKnownHostsFile=${join(dir, "known_hosts")}`, "-o", "StrictHostKeyChecking=yes");
    } else {
      args.push("-o", "UserKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=no");
    }
    args.push(`${conn.user}@${conn.host}`, commandLine);
    const started = Date.now();
    return await new Promise<RunResult>((resolve, reject) => {
      const child = spawn("ssh", args, { stdio: ["pipe", "pipe", "pipe"] });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (d) => (stdout += d));
      child.stderr.on("data", (d) => (stderr += d));
      child.on("error", reject);
      child.on("close", (code) => resolve({ code: code ?? 255, stdout, stderr, ms: Date.now() - started, bytesSent: Buffer.byteLength(commandLine) + Buffer.byteLength(stdin ?? "") }));
      child.stdin.end(stdin ?? "");
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
