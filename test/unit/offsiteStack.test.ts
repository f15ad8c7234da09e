/**
 * The server stack with off-site copies, under the mocks: which commands exist, in which order,
 * where the secrets go (stdin only, secret in state), the outputs, and restoreFrom offsite:.
 */
import { execFileSync } from "child_process";
import { createHash } from "crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { listen } from "../helpers/fakeSshd";
import { waitsFor } from "../helpers/dependencyOrder";
import { ScriptSandbox } from "../helpers/scriptSandbox";
import { offsiteDrift } from "../../components/offsite/drift";
import { OffsiteInstallSpec } from "../../components/offsite/render";
import { isSecretValue, leaksOutsideSecrets, ProgramRun, runExpectingError, runWithMocks } from "../helpers/pulumiMocks";

const PASSWORD = "correct horse battery staple";
const AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const REPOSITORY = "s3:https://minio.lan:9000/forge-backups/gitea";
const BASE = {
  host: "127.0.0.1",
  user: "root",
  adminEmail: "admin@example.com",
  offsiteRepository: REPOSITORY,
  offsitePassword: PASSWORD,
  offsiteEnvironment: JSON.stringify({ AWS_ACCESS_KEY_ID: "AKIAEXAMPLE", AWS_SECRET_ACCESS_KEY: AWS_SECRET }),
};
const SECRET_KEYS = ["offsitePassword", "offsiteEnvironment"];
const program = async () => (await import("../../program")).main();

let sshd: Awaited<ReturnType<typeof listen>>;
let run: ProgramRun;
let restoring: ProgramRun;
beforeAll(async () => {
  sshd = await listen("SSH-2.0-OpenSSH_9.9\r\n");
  run = await runWithMocks({ ...BASE, port: String(sshd.port) }, program, { secretKeys: SECRET_KEYS });
  restoring = await runWithMocks({ ...BASE, port: String(sshd.port), restoreFrom: "offsite:latest" }, program, { secretKeys: SECRET_KEYS });
});
afterAll(() => sshd.close());

describe("the server stack with an off-site repository", () => {
  it("sets the repository up after the backup tool, and Gitea starts only after it (a pre-upgrade backup pushes)", () => {
    const offsite = run.byName("gitea-backup-offsite-repository");
    expect(run.resources.find((r) => r.urn === offsite.parent)?.type).toBe("gitea-homelab:components:OffsiteCopy");
    expect(waitsFor(run, offsite, run.byName("gitea-backup-schedule"))).toBe(true);
    expect(waitsFor(run, run.byName("gitea-image"), offsite)).toBe(true);
    expect(offsite.script).toContain(`"$tool" offsite-init\n"$tool" offsite-sync`);
    // The tool pushes: it is rendered with the repository.
    expect(run.byName("gitea-backup-schedule").script).toContain(`offsite_repository='${REPOSITORY}'`);
  });

  it("sends the password and the credentials on stdin only, which is secret, and logs nothing of the command", () => {
    const offsite = run.byName("gitea-backup-offsite-repository");
    expect(isSecretValue(offsite.wireInputs.stdin)).toBe(true);
    expect(offsite.wireInputs.logging).toBe("none");
    const lines = Object.fromEntries(offsite.payload!.trim().split("\n").map((l) => [l.slice(0, l.indexOf("=")), Buffer.from(l.slice(l.indexOf("=") + 1), "base64").toString()]));
    expect(lines.password).toBe(PASSWORD);
    expect(lines.environment).toBe(`AWS_ACCESS_KEY_ID=AKIAEXAMPLE\nAWS_SECRET_ACCESS_KEY=${AWS_SECRET}\n`);
    expect(offsite.inputs.create).not.toContain(PASSWORD);
  });

  it("keeps the password and the credentials out of every input that is not secret, every invoke and every output", async () => {
    expect(await leaksOutsideSecrets(run, PASSWORD)).toEqual([]);
    expect(await leaksOutsideSecrets(run, AWS_SECRET)).toEqual([]);
    expect(await leaksOutsideSecrets(restoring, PASSWORD)).toEqual([]);
  });

  it("outputs the repository and the last off-site backup the host recorded", async () => {
    expect(await run.value(run.outputs.offsiteRepository)).toBe(REPOSITORY);
    expect(await run.value(run.outputs.lastOffsiteBackup)).toBe("none yet");
  });

  it("restoreFrom offsite:latest fetches the snapshot after the repository is set up, before the keys, the certificate and Gitea", () => {
    const restore = restoring.byName("gitea-backup-offsite-restore");
    expect(restore.script).toContain(`"$tool" offsite-restore "$snapshot"`);
    expect(restore.script).toContain("snapshot='latest'");
    expect(waitsFor(restoring, restore, restoring.byName("gitea-backup-offsite-repository"))).toBe(true);
    for (const name of ["gitea-keys", "gitea-https-certificate", "gitea-image"]) expect(waitsFor(restoring, restoring.byName(name), restore), name).toBe(true);
    // No local restore, and no look for a local directory at preview.
    expect(restoring.resources.some((r) => r.name === "gitea-backup-restore")).toBe(false);
  });

  it("refuses a password or credentials not set with --secret, before anything is registered, naming the key", async () => {
    const { run: refused, error } = await runExpectingError({ ...BASE, port: String(sshd.port) }, program, { secretKeys: ["offsiteEnvironment"] });
    expect(refused.resources).toEqual([]);
    expect(error?.message).toContain("gitea-homelab:offsitePassword: is stored in plain text in the stack's file; set it again with --secret");
    expect(error?.message).not.toContain("gitea-homelab:offsiteEnvironment");
    expect(error?.message).not.toContain(PASSWORD);
  });

  it("takes the repository's CA as a PEM of several lines (read raw, as tlsCertificate is) and installs it", async () => {
    const ca = execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "/dev/null", "-days", "30", "-subj", "/CN=Bucket CA"], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    const withCa = await runWithMocks({ ...BASE, port: String(sshd.port), offsiteCaCertificate: ca }, program, { secretKeys: SECRET_KEYS });
    const offsite = withCa.byName("gitea-backup-offsite-repository");
    expect(offsite.script).toContain(`ca_certificate='${ca.trim()}`);
    // What the install writes is what the drift check expects: no drift right after an up.
    const box = new ScriptSandbox();
    try {
      box.runBash(offsite.script!, offsite.payload ?? "");
      const installed = box.takeInstalled();
      const written = Object.entries(installed).find(([path]) => path.endsWith("/offsite/ca.pem"))?.[1];
      expect(written).toBe(`${ca.trim()}\n`);
      const spec: OffsiteInstallSpec = { init: "systemd", packageManager: "dnf", user: "rootless", tool: "/t", backend: "s3", check: "weekly", knownHosts: "", caCertificate: ca };
      const facts = { restic: "installed", known_hosts: "missing", ca: createHash("sha256").update(written!).digest("hex") };
      expect(offsiteDrift(spec, { environment: true, sshKey: false }, facts).filter((d) => d.includes("CA"))).toEqual([]);
    } finally {
      box.dispose();
    }
  });

  it("registers no off-site command without a repository", async () => {
    const plain = await runWithMocks({ host: "127.0.0.1", user: "root", adminEmail: "admin@example.com", port: String(sshd.port) }, program);
    expect(plain.resources.filter((r) => r.name.includes("offsite"))).toEqual([]);
    expect(plain.outputs.offsiteRepository).toBeUndefined();
  });
});
