/**
 * Checks, before any resource is registered, that the configured host answers SSH on the
 * configured port, so an unknown host or a wrong port fails with the setting to fix instead of
 * a dial error deep inside the first command.
 */
import { lookup } from "dns/promises";
import { Socket } from "net";
import { ConfigError, ConnectionSettings, PROJECT } from "./config";

export interface SshProbeResult {
  ok: boolean;
  /** Why not, naming the config key to fix. */
  problem?: string;
  /** A dropped connection, which may pass: worth another try. */
  transient?: boolean;
}

export async function probeSsh(host: string, port: number, timeoutMs = 10_000): Promise<SshProbeResult> {
  const address = host.replace(/^\[(.*)\]$/, "$1");
  try {
    await lookup(address);
  } catch {
    return { ok: false, problem: `${PROJECT}:host: cannot resolve ${JSON.stringify(host)}; check the name or use an IP address` };
  }
  return new Promise((resolve) => {
    const socket = new Socket();
    let banner = "";
    const finish = (result: SshProbeResult) => {
      socket.destroy();
      resolve(result);
    };
    socket.setTimeout(timeoutMs, () =>
      finish(
        banner === ""
          ? { ok: false, problem: `${PROJECT}:host: ${host}:${port} did not answer within ${timeoutMs / 1000} s (host down, firewalled, or wrong ${PROJECT}:port)` }
          : { ok: false, problem: `${PROJECT}:port: ${host}:${port} answers but is not an SSH server` },
      ),
    );
    socket.on("data", (chunk) => {
      banner += chunk.toString("latin1");
      if (banner.includes("\n")) {
        finish(banner.startsWith("SSH-") ? { ok: true } : { ok: false, problem: `${PROJECT}:port: ${host}:${port} answers but is not an SSH server (it said ${JSON.stringify(banner.trim().slice(0, 40))})` });
      }
    });
    // A connection that drops may be a passing fault (sshd restarting, a flaky link): say what
    // happened, and that running the command again is the likely fix when the host answered before.
    socket.on("end", () =>
      finish({
        ok: false,
        transient: true,
        problem: `${PROJECT}:port: ${host}:${port} closed the connection without an SSH greeting (dropped by sshd, a firewall or the network); if this host answered SSH before, run the command again; else check that ${port} is sshd's port`,
      }),
    );
    socket.on("error", (err: NodeJS.ErrnoException) =>
      finish(
        err.code === "ECONNREFUSED"
          ? { ok: false, problem: `${PROJECT}:port: nothing listens on ${host}:${port} (connection refused); is sshd running, and is ${port} its port?` }
          : err.code === "ECONNRESET" || err.code === "EPIPE"
            ? {
                ok: false,
                transient: true,
                problem: `${PROJECT}:host: the connection to ${host}:${port} was reset; if this host answered SSH before, run the command again (a passing network fault)`,
              }
            : { ok: false, problem: `${PROJECT}:host: cannot reach ${host}:${port} (${err.code ?? err.message})` },
      ),
    );
    socket.connect(port, address);
  });
}

/** Tries after a dropped connection, and the pause between them. */
export const SSH_PROBE_TRIES = 3;
const RETRY_PAUSE_MS = 2000;

/**
 * Throws a ConfigError naming the key to fix unless the host answers SSH. A dropped connection
 * is tried again twice, 2 s apart, before it counts.
 */
export async function requireSsh(connection: Pick<ConnectionSettings, "host" | "port">, pauseMs = RETRY_PAUSE_MS): Promise<void> {
  let reachable = await probeSsh(connection.host, connection.port);
  for (let tried = 1; !reachable.ok && reachable.transient && tried < SSH_PROBE_TRIES; tried++) {
    await new Promise((resolve) => setTimeout(resolve, pauseMs));
    reachable = await probeSsh(connection.host, connection.port);
  }
  if (!reachable.ok) throw new ConfigError([reachable.problem!], reachable.transient ? "cannot reach the host" : undefined);
}
