import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { listen } from "../helpers/fakeSshd";
import type { ProgramRun } from "../helpers/pulumiMocks";
import { runWithMocks } from "../helpers/pulumiMocks";
import { SERVER_COMMAND_NAMES } from "../helpers/fixtures";

/** A bare Alpine host: the session printed only the host facts (no bash yet, so no probes). */
const ALPINE_SESSION = ["@@gitea-homelab-probe begin @host", "os_id=alpine", "os_like=", "init=openrc", "bash=missing", "@@gitea-homelab-probe end @host", "@@gitea-homelab-session exit 0"].join("\n");

let run: ProgramRun;
let sshd: Awaited<ReturnType<typeof listen>>;

beforeAll(async () => {
  sshd = await listen("SSH-2.0-OpenSSH_9.9\r\n");
  run = await runWithMocks(
    { host: "127.0.0.1", port: String(sshd.port), user: "root", adminEmail: "admin@example.com", userns: "keep-id" },
    async () => {
      const { main } = await import("../../program");
      return main();
    },
    { probeStdout: () => ALPINE_SESSION },
  );
});
afterAll(() => sshd.close());

describe("server stack on an Alpine host (found by the probe session)", () => {
  it("keeps the same components and commands as on Fedora", () => {
    const commands = run.ofType("command:remote:Command").map((r) => r.name).sort();
    expect(commands).toEqual([...SERVER_COMMAND_NAMES].sort());
  });

  it("runs Gitea as an OpenRC service instead of a Quadlet unit, with keep-id", () => {
    const create = run.byName("gitea-service-unit").script as string;
    expect(create).toContain("unit_file='/etc/init.d/gitea'");
    expect(create).toContain("supervisor=supervise-daemon");
    expect(create).toContain("--userns=keep-id:uid=1000,gid=1000");
    expect(create).not.toContain("[Container]");
    expect(run.byName("gitea-service-unit").inputs.triggers).toEqual(["rootless/openrc/gitea"]);
  });

  it("leaves the firewall alone under firewall: auto, and says so", () => {
    for (const name of ["gitea-http-port", "gitea-ssh-port"]) {
      expect(run.byName(name).script).toContain("(gitea-homelab:firewall auto): $port not managed");
      expect(run.byName(name).script).not.toContain("firewall-cmd");
    }
  });
});
