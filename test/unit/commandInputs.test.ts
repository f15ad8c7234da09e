/**
 * A fresh stack's first preview: every random password is unknown and secret. The command
 * provider hands a secret unknown that sits inside a list or object back without its value, and
 * the engine then fails the preview ("triggers[1]: malformed secret: missing value"). So no
 * input of any resource may hold a secret below its top level, known or not, and a command's
 * triggers hold no secret at all. The inputs are checked as the engine receives them. Also what
 * the real command provider needs of every remote command's inputs.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { listen } from "../helpers/fakeSshd";
import { isSecretValue as isSecretWrapper, runWithMocks, UNKNOWN_ON_THE_WIRE as UNKNOWN } from "../helpers/pulumiMocks";

let sshd: Awaited<ReturnType<typeof listen>>;
beforeAll(async () => {
  sshd = await listen("SSH-2.0-OpenSSH_9.9\r\n");
});
afterAll(() => sshd.close());

function holdsUnknown(v: unknown): boolean {
  if (v === UNKNOWN) return true;
  return typeof v === "object" && v !== null && Object.values(v).some(holdsUnknown);
}

/** Paths of secrets nested below an input's top level (a top-level secret is fine). */
function nestedSecrets(value: unknown, path: string, depth = 0, out: string[] = []): string[] {
  if (isSecretWrapper(value)) {
    if (depth > 0) out.push(`${path}${holdsUnknown(value.value) ? " (unknown)" : ""}`);
    return nestedSecrets(value.value, path, depth, out);
  }
  if (Array.isArray(value)) value.forEach((v, i) => nestedSecrets(v, `${path}[${i}]`, depth + 1, out));
  else if (typeof value === "object" && value !== null) for (const [k, v] of Object.entries(value)) nestedSecrets(v, `${path}.${k}`, depth + 1, out);
  return out;
}

const program = async () => (await import("../../program")).main();

describe("a fresh stack's preview, with every generated secret unknown", () => {
  it("server stack: no input holds a nested secret, triggers hold none", async () => {
    const run = await runWithMocks(
      { host: "127.0.0.1", port: String(sshd.port), user: "root", adminEmail: "admin@example.com", privateKey: "-----BEGIN OPENSSH PRIVATE KEY-----\nKEY\n-----END OPENSSH PRIVATE KEY-----\n" },
      program,
      { secretKeys: ["privateKey"], preview: true, unknownComputedOutputs: true },
    );
    const nested = run.resources.flatMap((r) => Object.entries(r.wireInputs).flatMap(([key, v]) => nestedSecrets(v, `${r.name}.${key}`)));
    expect(nested).toEqual([]);
    const commands = run.ofType("command:remote:Command");
    // The health command waits again when the secret env file changes: its digest is a trigger.
    const health = run.byName("gitea-health");
    expect(health.wireInputs.triggers).toBe(UNKNOWN);
    expect(commands.length).toBeGreaterThan(10);
    // Which commands have triggers, so that the check of each cannot pass by finding none.
    const triggered = commands.filter((c) => c.wireInputs.triggers !== undefined);
    expect(triggered.map((c) => c.name).sort()).toEqual(
      ["gitea-config-volume", "gitea-data-volume", "gitea-health", "gitea-http-port", "gitea-service-unit", "gitea-ssh-port", "gitea-tls-volume", "gitea-user-account"].sort(),
    );
    for (const c of triggered) expect(isSecretWrapper(c.wireInputs.triggers), c.name).toBe(false);
    // No script reads PULUMI_COMMAND_STDOUT/STDERR, and sshd refuses them by default: the
    // provider would warn on every update and delete.
    for (const c of commands) expect(c.inputs.addPreviousOutputInEnv, c.name).toBe(false);
    // The admin's password is unknown, secret and delivered on stdin: a top-level secret.
    expect(isSecretWrapper(run.byName("gitea-admin").wireInputs.stdin)).toBe(true);
    // The host is looked at even now: no probe waits for a generated value (credentials, OS and drift are checked).
    expect(run.invokes.map((i) => i.token)).toEqual(["command:local:run"]);
  });

  it("wsl stack: the same, with the server's secrets read from a stack reference", async () => {
    const run = await runWithMocks(
      { host: "127.0.0.1", port: String(sshd.port), user: "root", runnerSourcePath: "/root/act_runner" },
      program,
      {
        stack: "wsl",
        preview: true,
        unknownComputedOutputs: true,
        stackReferences: {
          "organization/gitea-homelab/server": {
            outputs: { giteaUrl: "http://192.168.1.10:4111/", runnerRegistrationToken: "T".repeat(40), adminUsername: "gitea-admin", adminPassword: "Adm1n-Pa55word" },
            secret: ["runnerRegistrationToken", "adminPassword"],
          },
        },
      },
    );
    const nested = run.resources.flatMap((r) => Object.entries(r.wireInputs).flatMap(([key, v]) => nestedSecrets(v, `${r.name}.${key}`)));
    expect(nested).toEqual([]);
    const commands = run.ofType("command:remote:Command");
    expect(commands.map((c) => c.name).sort()).toEqual(["runner-install", "runner-register", "wsl-preflight"]);
    for (const c of commands) expect(c.inputs.addPreviousOutputInEnv, c.name).toBe(false);
    // No command of the wsl stack has triggers: one that gets some is named here, and checked below.
    const triggered = commands.filter((c) => c.wireInputs.triggers !== undefined);
    expect(triggered.map((c) => c.name)).toEqual([]);
    // Triggers are a plain list: a secret in it (the token, the admin password) would fail this preview.
    for (const c of triggered) expect(isSecretWrapper(c.wireInputs.triggers), c.name).toBe(false);
    // The token and the admin password reach the host only on stdin, secret at the top level.
    expect(isSecretWrapper(run.byName("runner-register").wireInputs.stdin)).toBe(true);
    expect(run.invokes.map((i) => i.token)).toEqual(["command:local:run"]);
  });
});

describe("plainTriggers", () => {
  it("keeps plain triggers as they are and a secret one as its digest, in a list that is not secret", async () => {
    const pulumi = await import("@pulumi/pulumi");
    const { plainTriggers } = await import("../../components/host/host");
    const triggers = plainTriggers(["unit-file", pulumi.secret("s3cret-value")]);
    const value = await new Promise<string[]>((resolve) => triggers.apply(resolve));
    expect(value[0]).toBe("unit-file");
    expect(value[1]).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(value.join()).not.toContain("s3cret-value");
    expect(await pulumi.isSecret(triggers)).toBe(false);
  });
});
