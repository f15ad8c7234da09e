/**
 * A restoreFrom that names no backup fails the preview from its look at the host, naming the
 * key, before any command: not the up, after the account, volumes and keys were made.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { listen } from "../helpers/fakeSshd";
import { hostFactsSection, runWithMocks } from "../helpers/pulumiMocks";

const program = async () => (await import("../../program")).main();
const CONFIG = { host: "127.0.0.1", user: "root", adminEmail: "admin@example.com", restoreFrom: "/var/backups/gitea-homelab/not-a-backup" };

let sshd: Awaited<ReturnType<typeof listen>>;
beforeAll(async () => {
  sshd = await listen("SSH-2.0-OpenSSH_9.9\r\n");
});
afterAll(() => sshd.close());

/** A probe session of a fresh Debian host where restoreFrom's look found SOURCE. */
const sessionWith = (facts: string[]) => () =>
  [hostFactsSection("debian", "systemd"), "@@gitea-homelab-probe begin gitea-backup-restore-source", ...facts, "@@gitea-homelab-probe end gitea-backup-restore-source", "@@gitea-homelab-session exit 0"].join("\n");

describe("restoreFrom in the preview", () => {
  it("looks at restoreFrom in the host's one probe session, before any command", async () => {
    const run = await runWithMocks({ ...CONFIG, port: String(sshd.port) }, program, { preview: true, probeStdout: sessionWith(["restored=no", "source_format=gitea-homelab-backup-1"]) });
    const session = run.invokes.filter((i) => i.token === "command:local:run");
    expect(session).toHaveLength(1);
    // The check's probe (its path a quoted value) is in the session the preview runs; what it
    // finds fails the preview (restoreSource.test.ts; on a real host: the lifecycle e2e suite).
    expect(session[0].inputs.command).toContain("gitea-backup-restore-source");
    expect(session[0].inputs.command).toContain("/var/backups/gitea-homelab/not-a-backup");
    const without = await runWithMocks({ ...CONFIG, restoreFrom: "", port: String(sshd.port) }, program, { preview: true });
    expect(without.invokes.find((i) => i.token === "command:local:run")!.inputs.command).not.toContain("restore-source");
  });

  it("passes a backup, and restores it before Gitea's keys", async () => {
    const run = await runWithMocks({ ...CONFIG, port: String(sshd.port) }, program, { preview: true, probeStdout: sessionWith(["restored=no", "source_format=gitea-homelab-backup-1"]) });
    expect(run.byName("gitea-backup-restore").script).toContain("restore \"$from\"");
  });
});
