import { afterEach, describe, expect, it } from "vitest";
import { probeSsh } from "../../stacks/reachability";
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
