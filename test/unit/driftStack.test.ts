import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { foldedMarker } from "../../components/host/checkedCommand";
import { parseRootInvocation } from "../../components/render/shell";
import { listen } from "../helpers/fakeSshd";
import type { ProgramRun } from "../helpers/pulumiMocks";
import { hostFactsSection, runWithMocks } from "../helpers/pulumiMocks";

const KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nnot-a-real-key\n-----END OPENSSH PRIVATE KEY-----\n";
const CONFIG: Record<string, string> = {
  host: "127.0.0.1",
  user: "operator",
  hostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExampleExampleExampleExampleExampleExample",
  adminEmail: "admin@example.com",
  privateKey: KEY,
};

const HTTP_CLOSED = "firewall 4111/tcp: closed in zone public, expected open";

function portSection(name: string, runtime: string, permanent: string): string[] {
  return [`@@gitea-homelab-probe begin ${name}`, "firewalld=running", "zone=public", `runtime=${runtime}`, `permanent=${permanent}`, `@@gitea-homelab-probe end ${name}`];
}

/** A session on a Fedora host: the given port facts, and the records the commands left. */
function session(sections: string[], records: Record<string, string>): string {
  return [
    hostFactsSection("fedora", "systemd"),
    ...sections,
    "@@gitea-homelab-probe begin @records",
    ...Object.entries(records).map(([k, v]) => `${k}=${v}`),
    "@@gitea-homelab-probe end @records",
    "@@gitea-homelab-session exit 0",
  ].join("\n");
}

async function preview(config: Record<string, string>, probeStdout: string): Promise<{ run: ProgramRun; warnings: string[] }> {
  const run = await runWithMocks(config, async () => (await import("../../program")).main(), { secretKeys: ["privateKey"], preview: true, probeStdout: () => probeStdout });
  return { run, warnings: run.warnings };
}

/** The digest a command's folded record script writes: what the host will say it applied. */
function applied(run: ProgramRun, name: string): string {
  return /applied=\W*sha256:([0-9a-f]{64})/.exec(parseRootInvocation(run.byName(name).inputs.stdin as string)!.after!)![1];
}

let run: ProgramRun;
let warnings: string[];
let configChange: { run: ProgramRun; warnings: string[] };
let sshd: Awaited<ReturnType<typeof listen>>;

beforeAll(async () => {
  sshd = await listen("SSH-2.0-OpenSSH_9.9\r\n");
  CONFIG.port = String(sshd.port);
  // What the last up applied: the same program on a host that had nothing yet.
  const first = await preview(CONFIG, session([], {}));
  const records = {
    "gitea-http-port": `sha256:${applied(first.run, "gitea-http-port")} 4 in sync`,
    "gitea-ssh-port": `sha256:${applied(first.run, "gitea-ssh-port")} 2 firewall 3333/tcp: closed, expected open`,
  };
  // Then someone closed the HTTP port by hand.
  ({ run, warnings } = await preview(CONFIG, session([...portSection("gitea-http-port", "closed", "closed"), ...portSection("gitea-ssh-port", "open", "open")], records)));
  // Or the user asked for another HTTP port: the host has not drifted, the config changed.
  configChange = await preview({ ...CONFIG, httpPort: "4112" }, session([...portSection("gitea-http-port", "closed", "closed"), ...portSection("gitea-ssh-port", "open", "open")], records));
});
afterAll(() => sshd.close());

describe("drift in the server stack (preview)", () => {
  it("probes the host once, in one local command, with the key on stdin only", () => {
    const probes = run.invokes.filter((i) => i.token === "command:local:run");
    expect(probes).toHaveLength(1);
    expect(probes[0].inputs.stdin).toBe(KEY);
    expect(probes[0].inputs.command).not.toContain("not-a-real-key");
    expect(probes[0].inputs.logging).toBe("none");
    // Same target and pinned key as the commands' connection.
    expect(probes[0].inputs.command).toContain(`target='operator@127.0.0.1'`);
    expect(probes[0].inputs.command).toContain(`port='${sshd.port}'`);
    expect(probes[0].inputs.command).toContain(`[127.0.0.1]:${sshd.port} ${CONFIG.hostKey}`);
    for (const key of ["gitea-http-port", "gitea-ssh-port", "gitea-user-account", "gitea-data-volume", "gitea-config-volume", "gitea-image", "gitea-service-unit"]) {
      expect(probes[0].inputs.command).toContain(`run_probe ${key} `);
    }
  });

  it("folds the drift into the drifted command with the next check number", () => {
    const create = run.byName("gitea-http-port").inputs.create as string;
    expect(foldedMarker(create)).toEqual({ check: 5, text: HTTP_CLOSED });
  });

  it("reproduces the recorded marker of a command in sync, so it shows no change", () => {
    const create = run.byName("gitea-ssh-port").inputs.create as string;
    expect(foldedMarker(create)).toEqual({ check: 2, text: "firewall 3333/tcp: closed, expected open" });
  });

  it("warns about drift of a command converged before, naming the drift", () => {
    expect(warnings.some((w) => w.includes(`gitea-http-port: drift on the host: ${HTTP_CLOSED}`))).toBe(true);
    expect(warnings.some((w) => w.includes("gitea-ssh-port"))).toBe(false);
  });

  it("does not call a config change drift: a new port is no hand-made change", () => {
    expect(configChange.warnings.filter((w) => w.includes("drift on the host"))).toEqual([]);
    const create = configChange.run.byName("gitea-http-port").inputs.create as string;
    expect(configChange.run.byName("gitea-http-port").script).toContain("port='4112'");
    expect(foldedMarker(create)).toEqual({ check: 4, text: "in sync" });
  });

  it("keeps the drift readable: the converge command line is not secret", () => {
    expect(run.byName("gitea-http-port").secretInputs).toEqual(["connection"]);
  });
});
