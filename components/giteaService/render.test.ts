import { describe, expect, it } from "vitest";
import { renderGiteaSecretEnv } from "../gitea/render";
import { renderGiteaQuadlet, renderGiteaService } from "./render";
import { MANAGED_HEADER } from "../render/shell";
import { renderIni, unit } from "../render/unitFile";
import { CONTAINER_SPEC } from "../../test/helpers/fixtures";

const SPEC = CONTAINER_SPEC;

function lines(text: string): string[] {
  return text.split("\n");
}

describe("unit files", () => {
  it("renders a Quadlet container started at boot, with ports, relabelled volumes and the env file", () => {
    const q = lines(renderGiteaQuadlet(SPEC));
    expect(q[0]).toBe(`# ${MANAGED_HEADER}`);
    expect(q).toContain("[Container]");
    expect(q).toContain("Image=docker.gitea.com/gitea:1.27.3-rootless");
    expect(q).toContain("PublishPort=4111:3000");
    expect(q).toContain("PublishPort=3333:2222");
    expect(q).toContain("Volume=gitea-data:/var/lib/gitea:Z");
    expect(q).toContain("EnvironmentFile=%h/.config/gitea-homelab/gitea.env");
    expect(q).toContain('Environment="GITEA__security__INSTALL_LOCK=true"');
    expect(q).toContain('Environment="GITEA__server__SSH_PORT=3333"');
    expect(q).toContain('Environment="GITEA__server__SSH_LISTEN_PORT=2222"');
    expect(q).toContain('Environment="GITEA__server__SSH_DOMAIN=git.example.com"');
    // systemd would expand a bare %
    expect(q).toContain('Environment="GITEA__server__ROOT_URL=https://git.example.com/100%%/"');
    expect(q).toContain("WantedBy=default.target");
    expect(q).toContain("After=network-online.target");
  });

  it("renders the classic service like `podman generate systemd --new`", () => {
    const s = renderGiteaService(SPEC);
    const exec = lines(s).find((l) => l.startsWith("ExecStart="))!;
    expect(exec).toContain("--sdnotify=conmon");
    expect(exec).toContain("--publish=4111:3000");
    expect(exec).toContain("--volume=gitea-config:/etc/gitea:Z");
    expect(exec).toContain("--env-file=%h/.config/gitea-homelab/gitea.env");
    expect(exec.endsWith(" docker.gitea.com/gitea:1.27.3-rootless")).toBe(true);
    expect(lines(s)).toContain("Type=notify");
    expect(lines(s)).toContain("WantedBy=default.target");
  });

  it("keeps secrets to the env file", () => {
    const env = renderGiteaSecretEnv({ runnerRegistrationToken: "rt" });
    // The keys Gitea encrypts with are kept on the host (components/keys), never rendered from state.
    expect(lines(env)).toEqual([`# ${MANAGED_HEADER}`, "GITEA_RUNNER_REGISTRATION_TOKEN=rt", ""]);
    expect(renderGiteaQuadlet(SPEC)).not.toMatch(/SECRET_KEY|INTERNAL_TOKEN|JWT_SECRET|REGISTRATION_TOKEN/);
  });

  it("escapes a value for each systemd context it goes to", () => {
    const v = `a b $X %h "q" \\ 'x' \${Y}`;
    // Quadlet copies Environment= onto ExecStart=, where systemd expands both % and $.
    expect(unit.containerEnvironment("K", v)).toBe(`"K=a b $$X %%h \\"q\\" \\\\ 'x' $\${Y}"`);
    // [Service] Environment= expands specifiers only.
    expect(unit.environment("K", v)).toBe(`"K=a b $X %%h \\"q\\" \\\\ 'x' \${Y}"`);
    expect(unit.execWord(v)).toBe(`"a b $$X %%h \\"q\\" \\\\ 'x' $\${Y}"`);
    expect(unit.execWord("/usr/local/bin/act_runner")).toBe("/usr/local/bin/act_runner");
    expect(unit.execToken("img:1%$")).toBe("img:1%%$$");
    expect(() => unit.execToken("two words")).toThrow(/one unquoted unit word/);
    expect(unit.text("/srv/100%")).toBe("/srv/100%%");
    // Config values cannot reach the classic unit's command line as specifiers or variables.
    const service = renderGiteaService({ ...SPEC, environment: { GITEA__server__ROOT_URL: "https://x.test/%h/$USER/${HOME}/" } });
    expect(lines(service).find((l) => l.startsWith("ExecStart="))).toContain("--env=GITEA__server__ROOT_URL=https://x.test/%%h/$$USER/$\${HOME}/");
  });

  it("refuses values that would break out of a line", () => {
    expect(() => renderIni([{ name: "Unit", entries: [["Description", unit.text("a\n[Service]")]] }])).toThrow(/single line/);
  });
});
