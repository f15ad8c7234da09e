/**
 * The owner's Gitea settings through the whole server stack, under Pulumi's mocks: where plain and
 * secret settings go (the unit file, or only the 0600 environment file), the defaults and an
 * override of one, a secret value on the wire and in every input, and bad settings refused before
 * anything is registered, naming the config path.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { listen } from "../helpers/fakeSshd";
import { isSecretValue, leaksOutsideSecrets, ProgramRun, runExpectingError, runWithMocks } from "../helpers/pulumiMocks";

const PASSWORD = "smtp-Pa55word-$(touch /tmp/canary)";
const BASE = { host: "127.0.0.1", user: "root", adminEmail: "admin@example.com" };

let sshd: Awaited<ReturnType<typeof listen>>;
beforeAll(async () => {
  sshd = await listen("SSH-2.0-OpenSSH_9.9\r\n");
});
afterAll(() => sshd.close());

const program = async () => (await import("../../program")).main();

async function server(gitea: unknown, opts: { secret?: boolean; preview?: boolean } = {}): Promise<ProgramRun> {
  return runWithMocks({ ...BASE, port: String(sshd.port), gitea: JSON.stringify(gitea) }, program, {
    secretKeys: opts.secret ? ["gitea"] : [],
    preview: opts.preview,
    unknownComputedOutputs: opts.preview,
  });
}


describe("Gitea settings in the unit file (plain config)", () => {
  let run: ProgramRun;
  beforeAll(async () => {
    run = await server({ APP_NAME: "Home forge", service: { REQUIRE_SIGNIN_VIEW: false }, "repository.signing": { DEFAULT_TRUST_MODEL: "committer" } });
  });

  it("sets the defaults and the owner's settings as the unit's GITEA__ variables, an override replacing its default", () => {
    const script = run.byName("gitea-service-unit").script as string;
    expect(script).toContain('Environment="GITEA__SERVICE__DISABLE_REGISTRATION=true"');
    expect(script).toContain('Environment="GITEA__OTHER__SHOW_FOOTER_VERSION=false"');
    expect(script).toContain('Environment="GITEA____APP_NAME=Home forge"');
    expect(script).toContain('Environment="GITEA__REPOSITORY_0X2E_SIGNING__DEFAULT_TRUST_MODEL=committer"');
    expect(script.match(/Environment="GITEA__SERVICE__REQUIRE_SIGNIN_VIEW=[a-z]*"/g)).toEqual(['Environment="GITEA__SERVICE__REQUIRE_SIGNIN_VIEW=false"']);
    // The environment file keeps only the runner token.
    expect(run.byName("gitea-service-unit").payload).not.toContain("GITEA__");
  });

  it("records what it manages on the host, so a setting later dropped is removed from app.ini", () => {
    const script = run.byName("gitea-service-unit").script as string;
    expect(script).toContain("forget_dropped_settings");
    const recorded = "[]APP_NAME,[other]SHOW_FOOTER_VERSION,[repository.signing]DEFAULT_TRUST_MODEL,[service]DEFAULT_KEEP_EMAIL_PRIVATE,[service]DISABLE_REGISTRATION,[service]REQUIRE_SIGNIN_VIEW";
    // In the unit, so Gitea's image writes it into app.ini at each start; and in the script that compares.
    expect(script).toContain(`Environment="GITEA__GITEA_0X2D_HOMELAB__MANAGED_SETTINGS=${recorded}"`);
    expect(script).toContain("local managed=");
    expect(script.split(recorded).length - 1, "the unit, the container's expected facts and the comparison").toBe(3);
  });
});

describe("Gitea settings set with --secret", () => {
  let run: ProgramRun;
  beforeAll(async () => {
    run = await server({ APP_NAME: "Home forge", mailer: { ENABLED: true, SMTP_ADDR: "smtp.example.com", PASSWD: PASSWORD } }, { secret: true });
  });

  it("go only into the 0600 environment file, delivered as a secret stdin; the unit file names none of their values", () => {
    const unit = run.byName("gitea-service-unit");
    expect(isSecretValue(unit.wireInputs.stdin)).toBe(true);
    expect(unit.payload).toContain(`GITEA__MAILER__PASSWD=${PASSWORD}\n`);
    expect(unit.payload).toContain("GITEA____APP_NAME=Home forge\n");
    expect(unit.script).not.toContain("smtp.example.com");
    expect(unit.script).not.toContain("Home forge");
    // The names are recorded (no secret), and the program's defaults stay in the unit.
    expect(unit.script).toContain("[mailer]PASSWD");
    expect(unit.script).toContain('Environment="GITEA__SERVICE__DISABLE_REGISTRATION=true"');
    expect(unit.secretInputs).not.toContain("create");
    expect(unit.additionalSecretOutputs).toEqual(expect.arrayContaining(["stdout", "stderr"]));
    expect(unit.inputs.logging).toBe("none");
  });

  it("appear in no input that is not secret, in no invoke and no output", async () => {
    expect(await leaksOutsideSecrets(run, "Pa55word")).toEqual([]);
  });

  it("hold no secret below an input's top level in a fresh preview, where the engine would refuse it", async () => {
    const preview = await server({ mailer: { PASSWD: PASSWORD } }, { secret: true, preview: true });
    const nested = (v: unknown, depth: number): boolean =>
      isSecretValue(v) ? depth > 0 || nested(v.value, depth) : typeof v === "object" && v !== null && Object.values(v).some((x) => nested(x, depth + 1));
    expect(preview.resources.filter((r) => Object.values(r.wireInputs).some((v) => nested(v, 0))).map((r) => r.name)).toEqual([]);
  });
});

describe("bad Gitea settings", () => {
  it("fail the program before anything is registered, one problem per config path, values of a secret never repeated", async () => {
    const { run, error } = await runExpectingError(
      { ...BASE, port: String(sshd.port), gitea: JSON.stringify({ server: { ROOT_URL: "https://x/" }, Mailer: { FROM: "a@b" }, mailer: { PASSWD: "two\nlines-s3cret" } }) },
      program,
      { secretKeys: ["gitea"] },
    );
    expect(run.resources).toEqual([]);
    expect(error?.message).toContain("invalid stack config (3 problems)");
    expect(error?.message).toContain("gitea-homelab:gitea.server.ROOT_URL: is set by gitea-homelab itself: set gitea-homelab:rootUrl");
    expect(error?.message).toContain("gitea-homelab:gitea.Mailer.FROM: section \"Mailer\" must be lower case");
    expect(error?.message).toContain("gitea-homelab:gitea.mailer.PASSWD: must be one line without control characters");
    expect(error?.message).not.toContain("s3cret");
  });
});
