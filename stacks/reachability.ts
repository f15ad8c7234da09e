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
    socket.on("end", () => finish({ ok: false, problem: `${PROJECT}:port: ${host}:${port} closed the connection without an SSH greeting; is ${port} sshd's port?` }));
    socket.on("error", (err: NodeJS.ErrnoException) =>
      finish({
        ok: false,
        problem:
          err.code === "ECONNREFUSED"
            ? `${PROJECT}:port: nothing listens on ${host}:${port}; is sshd running, and is ${port} its port?`
            : `${PROJECT}:host: cannot reach ${host}:${port} (${err.code ?? err.message})`,
      }),
    );
    socket.connect(port, address);
  });
}

/** Throws a ConfigError naming the key to fix unless the host answers SSH. */
export async function requireSsh(connection: Pick<ConnectionSettings, "host" | "port">): Promise<void> {
  const reachable = await probeSsh(connection.host, connection.port);
  if (!reachable.ok) throw new ConfigError([reachable.problem!]);
}
