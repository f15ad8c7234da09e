/**
 * A clean run says nothing: a stack that sets only what it must, with Pulumi.yaml's defaults
 * handed to the program as the real CLI hands them (runWithMocks applies them), logs no warning
 * in any TLS mode, nor does the runner's stack. The real CLI's side of this (no diagnostic at
 * all on a fresh and a no-change preview and up) is proven by the lifecycle e2e suite.
 */
import { execFileSync } from "child_process";
import { mkdtempSync, readFileSync, rmSync } from "fs";
import { tmpdir } from "os";
import { join } from "path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { listen } from "../helpers/fakeSshd";
import { projectDefaults, runWithMocks } from "../helpers/pulumiMocks";

const program = async () => (await import("../../program")).main();
const HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExampleExampleExampleExampleExampleExample";
/** What a server stack must set: where the host is, its pinned key, the admin's address; publicHost a name people use. */
const SERVER = { host: "127.0.0.1", hostKey: HOST_KEY, publicHost: "git.example.com", adminEmail: "admin@example.com" };

let sshd: Awaited<ReturnType<typeof listen>>;
let dir: string;
let given: { cert: string; key: string };
beforeAll(async () => {
  sshd = await listen("SSH-2.0-OpenSSH_9.9\r\n");
  dir = mkdtempSync(join(tmpdir(), "gh-quiet-"));
  execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "90", "-subj", "/O=test", "-addext", "subjectAltName=DNS:git.example.com", "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem")], {
    stdio: "ignore",
  });
  given = { cert: readFileSync(join(dir, "cert.pem"), "utf8"), key: readFileSync(join(dir, "key.pem"), "utf8") };
});
afterAll(() => {
  sshd.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("a clean run logs no warning, with the project's defaults as the CLI gives them", () => {
  it("the defaults reach the program as set values, as with the real CLI", () => {
    // What made every non-acme stack warn: these two have defaults that are not "".
    expect(projectDefaults()).toMatchObject({ acmeAcceptTerms: "false", acmeDirectory: "https://acme-v02.api.letsencrypt.org/directory", gitea: "{}", port: "22" });
  });

  const modes: Record<string, () => { config: Record<string, string>; secretKeys?: string[] }> = {
    "tls auto (own-ca)": () => ({ config: {} }),
    "tls off": () => ({ config: { tls: "off" } }),
    "tls given": () => ({ config: { tls: "given", tlsCertificate: given.cert, tlsKey: given.key }, secretKeys: ["tlsKey"] }),
    "tls acme": () => ({ config: { tls: "acme", acmeEmail: "certs@example.com", acmeAcceptTerms: "true" } }),
  };
  for (const [mode, make] of Object.entries(modes)) {
    it(`server stack, ${mode}`, async () => {
      const { config, secretKeys } = make();
      const run = await runWithMocks({ ...SERVER, port: String(sshd.port), ...config }, program, { secretKeys });
      expect(run.resources.length).toBeGreaterThan(10);
      expect(run.warnings).toEqual([]);
    });
  }

  it("wsl stack", async () => {
    const run = await runWithMocks(
      { host: "127.0.0.1", port: String(sshd.port), hostKey: HOST_KEY, instanceUrl: "https://git.example.com:4111/", registrationToken: "t".repeat(40), runnerSourcePath: "/root/gitea-runner" },
      program,
      { stack: "wsl", secretKeys: ["registrationToken"] },
    );
    expect(run.resources.length).toBeGreaterThan(3);
    expect(run.warnings).toEqual([]);
  });

  it("still warns about a setting that is the owner's choice and has no effect", async () => {
    const run = await runWithMocks({ ...SERVER, port: String(sshd.port), acmeDirectory: "https://acme-staging-v02.api.letsencrypt.org/directory" }, program);
    expect(run.warnings).toEqual(["gitea-homelab:tls: is own-ca: gitea-homelab:acmeDirectory is used only when tls is acme"]);
  });
});
