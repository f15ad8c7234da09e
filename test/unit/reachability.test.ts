import { afterEach, describe, expect, it } from "vitest";
import { createServer, AddressInfo } from "net";
import { probeSsh, requireSsh, SSH_PROBE_TRIES } from "../../stacks/reachability";
import { listen } from "../helpers/fakeSshd";

const servers: Array<{ close: () => Promise<void> }> = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

describe("probeSsh", () => {
  it("accepts a host that greets like sshd", async () => {
    const s = await listen("SSH-2.0-OpenSSH_9.9\r\n");
    servers.push(s);
    expect(await probeSsh("127.0.0.1", s.port)).toEqual({ ok: true });
  });

  it("names the port when something else answers there", async () => {
    const s = await listen("HTTP/1.1 400 Bad Request\r\n\r\n");
    servers.push(s);
    const r = await probeSsh("127.0.0.1", s.port);
    expect(r.ok).toBe(false);
    expect(r.problem).toMatch(/^gitea-homelab:port: 127\.0\.0\.1:\d+ answers but is not an SSH server/);
  });

  it("names the port when the connection closes without a greeting", async () => {
    const s = await listen("");
    servers.push(s);
    const r = await probeSsh("127.0.0.1", s.port);
    expect(r.problem).toMatch(/^gitea-homelab:port: 127\.0\.0\.1:\d+ closed the connection without an SSH greeting/);
  });

  it("names the port when nothing listens", async () => {
    const s = await listen("");
    const port = s.port;
    await s.close();
    const r = await probeSsh("127.0.0.1", port);
    expect(r.problem).toMatch(/^gitea-homelab:port: nothing listens on 127\.0\.0\.1:\d+/);
  });

  it("names the host when it stays silent", async () => {
    const silent = await import("net").then(({ createServer }) => createServer(() => undefined));
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    const port = (silent.address() as import("net").AddressInfo).port;
    try {
      const r = await probeSsh("127.0.0.1", port, 300);
      expect(r.problem).toMatch(/^gitea-homelab:host: 127\.0\.0\.1:\d+ did not answer within 0\.3 s/);
    } finally {
      silent.close();
    }
  });
});

describe("requireSsh", () => {
  /** A server that drops the first `drops` connections without a word, then greets like sshd. */
  async function flaky(drops: number) {
    let seen = 0;
    const server = createServer((socket) => {
      seen++;
      if (seen <= drops) socket.end();
      else socket.end("SSH-2.0-OpenSSH_9.9\r\n");
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    servers.push({ close: () => new Promise<void>((resolve) => server.close(() => resolve())) });
    return { port: (server.address() as AddressInfo).port, seen: () => seen };
  }

  it("tries a dropped connection again before it counts, and passes when the host comes back", async () => {
    const s = await flaky(SSH_PROBE_TRIES - 1);
    await requireSsh({ host: "127.0.0.1", port: s.port }, 10);
    expect(s.seen()).toBe(SSH_PROBE_TRIES);
  });

  it("says what happened when the host keeps dropping it, without blaming the config", async () => {
    const s = await flaky(99);
    const err = await requireSsh({ host: "127.0.0.1", port: s.port }, 10).catch((e: Error) => e);
    expect(s.seen()).toBe(SSH_PROBE_TRIES);
    expect((err as Error).message).toBe(
      `cannot reach the host (1 problem):\n  - gitea-homelab:port: 127.0.0.1:${s.port} closed the connection without an SSH greeting (dropped by sshd, a firewall or the network); if this host answered SSH before, run the command again; else check that ${s.port} is sshd's port`,
    );
  });

  it("does not try again where nothing listens: that is the config", async () => {
    const s = await listen("");
    const port = s.port;
    await s.close();
    const started = Date.now();
    const err = await requireSsh({ host: "127.0.0.1", port }, 5000).catch((e: Error) => e);
    expect(Date.now() - started).toBeLessThan(4000);
    expect((err as Error).message).toMatch(/^invalid stack config \(1 problem\):\n  - gitea-homelab:port: nothing listens on 127\.0\.0\.1:\d+ \(connection refused\)/);
  });
});
