/**
 * No secret or credential in a non-secret place: every input of every resource both stacks
 * register, every invoke's inputs and every stack output are walked, and each secret value
 * (configured or generated) may appear only where Pulumi keeps it secret.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { listen } from "../helpers/fakeSshd";
import { mockState, ProgramRun, runWithMocks } from "../helpers/pulumiMocks";

const PRIVATE_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ==PRIVATEKEYBODY\n-----END OPENSSH PRIVATE KEY-----\n";
const ADMIN_PASSWORD = "Adm1n-Pa55word-Secret";
const TOKEN = "RunnerTokenRunnerTokenRunnerToken42";

let sshd: Awaited<ReturnType<typeof listen>>;
beforeAll(async () => {
  sshd = await listen("SSH-2.0-OpenSSH_9.9\r\n");
});
afterAll(() => sshd.close());

/** Strings inside a value, with the path to each. */
function strings(value: unknown, path: string, out: Array<[string, string]> = []): Array<[string, string]> {
  if (typeof value === "string") out.push([path, value]);
  else if (Array.isArray(value)) value.forEach((v, i) => strings(v, `${path}[${i}]`, out));
  else if (value && typeof value === "object") for (const [k, v] of Object.entries(value)) strings(v, `${path}.${k}`, out);
  return out;
}

async function expectSecretsOnlyInSecretPlaces(run: ProgramRun, secrets: string[]): Promise<void> {
  const leaks: string[] = [];
  const check = (path: string, text: string) => {
    for (const s of secrets) if (text.includes(s)) leaks.push(`${path} holds a secret`);
  };
  for (const r of run.resources) {
    for (const [key, value] of Object.entries(r.inputs)) {
      if (r.secretInputs.includes(key)) continue;
      for (const [path, text] of strings(value, `${r.name}.${key}`)) check(path, text);
    }
    // A command that handles a secret keeps its output secret and out of the logs.
    if (r.type === "command:remote:Command" && r.secretInputs.includes("stdin")) {
      expect(r.additionalSecretOutputs, r.name).toEqual(expect.arrayContaining(["stdout", "stderr"]));
      expect(r.inputs.logging, r.name).toBe("none");
    }
  }
  for (const invoke of run.invokes) {
    const { stdin: _stdin, ...rest } = invoke.inputs;
    for (const [path, text] of strings(rest, `invoke ${invoke.token}`)) check(path, text);
  }
  for (const [name, output] of Object.entries(run.outputs)) {
    if (await run.isSecret(output)) continue;
    for (const [path, text] of strings(await run.value(output), `output ${name}`)) check(path, text);
  }
  expect(leaks).toEqual([]);
}

describe("secrets stay secret", () => {
  it("server stack: private key, admin password and every generated secret", async () => {
    const run = await runWithMocks(
      { host: "127.0.0.1", port: String(sshd.port), user: "root", adminEmail: "admin@example.com", privateKey: PRIVATE_KEY, adminPassword: ADMIN_PASSWORD },
      async () => (await import("../../program")).main(),
      { secretKeys: ["privateKey", "adminPassword"] },
    );
    const generated = run.ofType("random:index/randomPassword:RandomPassword").map((r) => mockState(r.type, r.name, r.inputs).result as string);
    // The admin password and the runner token; Gitea's keys are made on the host, never in state.
    expect(generated.length).toBe(2);
    await expectSecretsOnlyInSecretPlaces(run, [PRIVATE_KEY.trim().split("\n")[1], ADMIN_PASSWORD, ...generated]);
    expect(await run.isSecret(run.outputs.adminPassword)).toBe(true);
    expect(await run.isSecret(run.outputs.runnerRegistrationToken)).toBe(true);
  });

  it("wsl stack: private key and the registration token from config", async () => {
    const run = await runWithMocks(
      { host: "127.0.0.1", port: String(sshd.port), user: "root", instanceUrl: "http://192.168.1.10:4111/", registrationToken: TOKEN, runnerSourcePath: "/root/act_runner", privateKey: PRIVATE_KEY },
      async () => (await import("../../program")).main(),
      { stack: "wsl", secretKeys: ["privateKey", "registrationToken"] },
    );
    await expectSecretsOnlyInSecretPlaces(run, [PRIVATE_KEY.trim().split("\n")[1], TOKEN]);
  });
});
