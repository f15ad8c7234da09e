import { createHash } from "crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { listen } from "../helpers/fakeSshd";
import type { ProgramRun, RecordedResource } from "../helpers/pulumiMocks";
import { runWithMocks } from "../helpers/pulumiMocks";
import { SERVER_COMMAND_NAMES } from "../helpers/fixtures";

const CONFIG: Record<string, string> = {
  host: "127.0.0.1",
  user: "operator",
  hostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExampleExampleExampleExampleExampleExample",
  adminEmail: "admin@example.com",
  privateKey: "-----BEGIN OPENSSH PRIVATE KEY-----\nnot-a-real-key\n-----END OPENSSH PRIVATE KEY-----\n",
};

const COMMAND = "command:remote:Command";
let run: ProgramRun;

function commandNamed(name: string): RecordedResource {
  return run.byName(name);
}

function dependsOnTransitively(from: RecordedResource, to: RecordedResource): boolean {
  const seen = new Set<string>();
  const queue = [from.urn];
  while (queue.length > 0) {
    const urn = queue.pop()!;
    if (urn === to.urn) return true;
    if (seen.has(urn)) continue;
    seen.add(urn);
    const r = run.resources.find((x) => x.urn === urn);
    if (r) queue.push(...r.dependencies);
  }
  return false;
}

let sshd: Awaited<ReturnType<typeof listen>>;
beforeAll(async () => {
  // The stack checks that the host answers SSH before registering anything.
  sshd = await listen("SSH-2.0-OpenSSH_9.9\r\n");
  CONFIG.port = String(sshd.port);
  run = await runWithMocks(
    CONFIG,
    async () => {
      const { main } = await import("../../program");
      return main();
    },
    { secretKeys: ["privateKey"] },
  );
});
afterAll(() => sshd.close());

describe("server stack resource graph", () => {
  it("registers each component under its own type, children parented to it", () => {
    const types = run.resources.map((r) => r.type);
    for (const t of ["Host", "RootlessUser", "PodmanVolume", "GiteaContainer", "GiteaService", "FirewallPort"]) {
      expect(types).toContain(`gitea-homelab:components:${t}`);
    }
    expect(run.ofType("gitea-homelab:components:PodmanVolume").map((r) => r.name).sort()).toEqual(["gitea-config", "gitea-data", "gitea-tls"]);
    expect(run.ofType("gitea-homelab:components:FirewallPort").map((r) => r.name).sort()).toEqual(["gitea-http", "gitea-ssh"]);
    const component = (name: string) => run.resources.find((r) => r.name === name && r.type.startsWith("gitea-homelab:"))!;
    expect(commandNamed("server-preflight").parent).toBe(component("server").urn);
    expect(commandNamed("gitea-user-account").parent).toBe(component("gitea-user").urn);
    expect(commandNamed("gitea-data-volume").parent).toBe(component("gitea-data").urn);
    expect(commandNamed("gitea-service-unit").parent).toBe(component("gitea-service").urn);
    expect(component("gitea-service").parent).toBe(component("gitea").urn);
    expect(commandNamed("gitea-health").parent).toBe(component("gitea").urn);
    expect(commandNamed("gitea-http-port").parent).toBe(component("gitea-http").urn);
  });

  it("orders the work: preflight, user, volumes, image, unit, health, admin, firewall", () => {
    const preflight = commandNamed("server-preflight");
    const account = commandNamed("gitea-user-account");
    const unit = commandNamed("gitea-service-unit");
    for (const name of ["gitea-user-account", "gitea-data-volume", "gitea-config-volume", "gitea-image", "gitea-service-unit", "gitea-http-port"]) {
      expect(dependsOnTransitively(commandNamed(name), preflight), name).toBe(true);
    }
    expect(dependsOnTransitively(commandNamed("gitea-data-volume"), account)).toBe(true);
    expect(dependsOnTransitively(unit, commandNamed("gitea-data-volume"))).toBe(true);
    expect(dependsOnTransitively(unit, commandNamed("gitea-config-volume"))).toBe(true);
    expect(dependsOnTransitively(unit, commandNamed("gitea-image"))).toBe(true);
    expect(dependsOnTransitively(commandNamed("gitea-health"), unit)).toBe(true);
    expect(dependsOnTransitively(commandNamed("gitea-admin"), commandNamed("gitea-health"))).toBe(true);
    expect(dependsOnTransitively(commandNamed("gitea-http-port"), unit)).toBe(true);
    // Gitea's keys exist before its unit starts, and are never made before a restore could bring them.
    const keys = commandNamed("gitea-keys-file");
    expect(dependsOnTransitively(unit, keys)).toBe(true);
    expect(dependsOnTransitively(keys, commandNamed("gitea-data-volume"))).toBe(true);
    expect(dependsOnTransitively(keys, commandNamed("gitea-backup-schedule"))).toBe(true);
    // An image change is checked and backed up before the unit switches; the tool is there first.
    const upgrade = commandNamed("gitea-upgrade");
    expect(dependsOnTransitively(unit, upgrade)).toBe(true);
    expect(dependsOnTransitively(upgrade, commandNamed("gitea-image"))).toBe(true);
    expect(dependsOnTransitively(upgrade, commandNamed("gitea-backup-schedule"))).toBe(true);
    // and not the other way round
    expect(dependsOnTransitively(account, unit)).toBe(false);
  });

  it("keeps the keys with the data: kept on destroy unless destroyData, made on the host, never in state", () => {
    expect(commandNamed("gitea-keys-file").retainOnDelete).toBe(true);
    expect(run.ofType("random:index/randomPassword:RandomPassword").map((r) => r.name).sort()).toEqual(["gitea-admin-password", "gitea-runner-registration-token"]);
    expect(run.ofType("random:index/randomBytes:RandomBytes")).toEqual([]);
  });

  it("keeps the volumes on destroy by default and closes ports before reopening", () => {
    expect(commandNamed("gitea-data-volume").retainOnDelete).toBe(true);
    expect(commandNamed("gitea-config-volume").retainOnDelete).toBe(true);
    expect(commandNamed("gitea-service-unit").retainOnDelete).toBe(false);
    expect(commandNamed("gitea-http-port").deleteBeforeReplace).toBe(true);
    expect(commandNamed("gitea-service-unit").deleteBeforeReplace).toBe(true);
    expect(commandNamed("gitea-health").deleteBeforeReplace).toBe(false);
  });

  it("sends every command through one secret connection with every field set", () => {
    const commands = run.ofType(COMMAND);
    expect(commands.map((c) => c.name).sort()).toEqual([...SERVER_COMMAND_NAMES].sort());
    for (const c of commands) {
      expect(c.secretInputs, c.name).toContain("connection");
      expect(c.inputs.connection).toEqual({
        host: "127.0.0.1",
        port: sshd.port,
        user: "operator",
        privateKey: CONFIG.privateKey,
        hostKey: CONFIG.hostKey,
        dialErrorLimit: 10,
        perDialTimeout: 15,
      });
      expect(c.inputs.create, c.name).toMatch(/^sh -c /);
      expect(c.inputs.environment, c.name).toBeUndefined();
    }
  });

  it("marks commands that handle secrets: secret stdin, no logging, secret stdout/stderr", () => {
    for (const name of ["gitea-service-unit", "gitea-admin"]) {
      const c = commandNamed(name);
      expect(c.secretInputs, name).toContain("stdin");
      expect(c.inputs.logging, name).toBe("none");
      expect(c.additionalSecretOutputs, name).toEqual(expect.arrayContaining(["stderr", "stdout"]));
    }
    expect(commandNamed("gitea-admin").payload).toMatch(/^generated-gitea-admin-password/);
    // commands without secrets keep their output visible
    expect(commandNamed("gitea-image").additionalSecretOutputs).not.toContain("stdout");
    expect(commandNamed("gitea-image").inputs.logging).toBeUndefined();
  });

  it("puts no secret in a script, a unit file or a trigger", () => {
    const secretValues = ["generated-gitea-runner-registration-token", "generated-gitea-admin-password"];
    for (const c of run.ofType(COMMAND)) {
      const visible = JSON.stringify([c.inputs.create, c.script, c.deleteScript]);
      for (const s of secretValues) expect(visible, `${c.name} shows ${s}`).not.toContain(s);
    }
    const unitScript = commandNamed("gitea-service-unit").script as string;
    expect(unitScript).toContain("GITEA__server__ROOT_URL=https://127.0.0.1:4111/");
    expect(unitScript).toContain("GITEA__server__PROTOCOL=https");
    expect(unitScript).toContain("Volume=gitea-tls:/etc/gitea-homelab/tls:ro,Z,U");
    expect(unitScript).toContain("EnvironmentFile=%h/.config/gitea-homelab/gitea.env");
    expect(unitScript).toContain("EnvironmentFile=%h/.config/gitea-homelab/gitea-keys.env");
    const unitStdin = commandNamed("gitea-service-unit").payload as string;
    // The keys Gitea encrypts with never pass through Pulumi: they are made on the host.
    expect(unitStdin).not.toMatch(/SECRET_KEY|INTERNAL_TOKEN|JWT_SECRET/);
    expect(unitStdin).toMatch(/^GITEA_RUNNER_REGISTRATION_TOKEN=generated-gitea-runner-registration-token/m);
    // The health wait is triggered by the env file's digest: no secret, so never a secret input
    // (a secret unknown inside a list fails a fresh preview; commandInputs.test.ts).
    const health = commandNamed("gitea-health");
    expect(health.secretInputs).not.toContain("triggers");
    expect(health.inputs.triggers[1]).toBe(createHash("sha256").update(unitStdin).digest("hex"));
    for (const s of secretValues) expect(JSON.stringify(health.inputs.triggers)).not.toContain(s);
  });

  it("exports the outputs, secrets as secrets", async () => {
    const o = run.outputs;
    expect(await run.value(o.giteaUrl)).toBe("https://127.0.0.1:4111/");
    expect(await run.value(o.tls)).toBe("own-ca");
    expect(await run.value(o.sshCloneBase)).toBe("ssh://git@127.0.0.1:3333/");
    expect(await run.value(o.adminUsername)).toBe("gitea-admin");
    expect(await run.value(o.image)).toBe("docker.gitea.com/gitea:1.27.3-rootless");
    expect(await run.value(o.backupDir)).toBe("/var/backups/gitea-homelab");
    expect(await run.value(o.lastBackup)).toBe("none yet");
    expect(await run.isSecret(o.adminPassword)).toBe(true);
    expect(await run.isSecret(o.runnerRegistrationToken)).toBe(true);
    expect((await run.value<string>(o.runnerRegistrationToken)).length).toBeGreaterThanOrEqual(32);
    expect(o.rootUrlNote).toBeUndefined();
  });
});
