import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { foldedMarker } from "../../components/host/checkedCommand";
import { listen } from "../helpers/fakeSshd";
import type { ProgramRun } from "../helpers/pulumiMocks";
import { runWithMocks } from "../helpers/pulumiMocks";

const KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nnot-a-real-key\n-----END OPENSSH PRIVATE KEY-----\n";
const CONFIG: Record<string, string> = {
  host: "127.0.0.1",
  user: "operator",
  hostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExampleExampleExampleExampleExampleExample",
  adminEmail: "admin@example.com",
  privateKey: KEY,
};

/** A probe that finds the HTTP port closed, the SSH port open, and records for both commands. */
const PROBE_STDOUT = [
  "@@gitea-homelab-probe begin firewall:gitea-http",
  "firewalld=running",
  "zone=",
  "runtime=closed",
  "permanent=closed",
  "@@gitea-homelab-probe end firewall:gitea-http",
  "@@gitea-homelab-probe begin firewall:gitea-ssh",
  "firewalld=running",
  "zone=",
  "runtime=open",
  "permanent=open",
  "@@gitea-homelab-probe end firewall:gitea-ssh",
  "@@gitea-homelab-probe begin @records",
  "gitea-http-port=4 in sync",
  "gitea-ssh-port=2 firewall 3333/tcp: closed, expected open",
  "@@gitea-homelab-probe end @records",
  "@@gitea-homelab-session exit 0",
].join("\n");

let run: ProgramRun;
let sshd: Awaited<ReturnType<typeof listen>>;
const warnings: string[] = [];

beforeAll(async () => {
  sshd = await listen("SSH-2.0-OpenSSH_9.9\r\n");
  CONFIG.port = String(sshd.port);
  const warn = console.warn;
  console.warn = (...args: unknown[]) => warnings.push(args.join(" "));
  try {
    run = await runWithMocks(
      CONFIG,
      async () => {
        const { main } = await import("../../program");
        return main();
      },
      { secretKeys: ["privateKey"], preview: true, probeStdout: () => PROBE_STDOUT },
    );
  } finally {
    console.warn = warn;
  }
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
    expect(probes[0].inputs.command).toContain(`target=operator@127.0.0.1`);
    expect(probes[0].inputs.command).toContain(`port=${sshd.port}`);
    expect(probes[0].inputs.command).toContain(`[127.0.0.1]:${sshd.port} ${CONFIG.hostKey}`);
    for (const key of ["firewall:gitea-http", "firewall:gitea-ssh", "user:gitea-user", "volume:gitea-data", "volume:gitea-config", "image:gitea", "unit:gitea-service"]) {
      expect(probes[0].inputs.command).toContain(`run_probe ${key} `);
    }
  });

  it("folds the drift into the drifted command with the next check number", () => {
    const create = run.byName("gitea-http-port").inputs.create as string;
    expect(foldedMarker(create)).toEqual({ check: 5, text: "firewall 4111/tcp: closed, expected open" });
  });

  it("reproduces the recorded marker of a command in sync, so it shows no change", () => {
    const create = run.byName("gitea-ssh-port").inputs.create as string;
    expect(foldedMarker(create)).toEqual({ check: 2, text: "firewall 3333/tcp: closed, expected open" });
  });

  it("warns about drift of a command converged before, naming the drift", () => {
    expect(warnings.some((w) => w.includes("gitea-http-port: drift on the host: firewall 4111/tcp: closed, expected open"))).toBe(true);
    expect(warnings.some((w) => w.includes("gitea-ssh-port"))).toBe(false);
  });

  it("keeps the drift readable: the converge command line is not secret", () => {
    expect(run.byName("gitea-http-port").secretInputs).toEqual(["connection"]);
  });
});
