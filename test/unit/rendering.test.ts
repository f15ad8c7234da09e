import { execFileSync, spawnSync } from "child_process";
import { describe, expect, it } from "vitest";
import { renderClosePortScript, renderOpenPortScript } from "../../components/firewallPort";
import {
  renderAdminScript,
  renderGiteaQuadlet,
  renderGiteaSecretEnv,
  renderGiteaService,
  renderHealthScript,
  renderImageScript,
} from "../../components/giteaContainer";
import { renderHostPreflightScript } from "../../components/host";
import { renderVolumeCreateScript, renderVolumeDeleteScript } from "../../components/podmanVolume";
import { asRootCommand, heredoc, MANAGED_HEADER, renderScript, sh, shq } from "../../components/render/shell";
import { renderIni, unit } from "../../components/render/unitFile";
import { CONTAINER_SPEC } from "../helpers/fixtures";
import { expectCleanScript } from "../helpers/scripts";
import { renderRootlessUserDeleteScript, renderRootlessUserScript } from "../../components/rootlessUser";
import { renderUnitInstallScript, renderUnitRemoveScript } from "../../components/systemdUserUnit";

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
    const env = renderGiteaSecretEnv({ secretKey: "sk", internalToken: "it", jwtSecret: "jwt", runnerRegistrationToken: "rt" });
    expect(lines(env)).toEqual([`# ${MANAGED_HEADER}`, "GITEA__security__SECRET_KEY=sk", "GITEA__security__INTERNAL_TOKEN=it", "GITEA__oauth2__JWT_SECRET=jwt", "GITEA_RUNNER_REGISTRATION_TOKEN=rt", ""]);
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

describe("shell helpers", () => {
  it("quotes any value into one word", () => {
    for (const v of ["plain", "with space", "it's", "$(reboot)", "a\nb", ""]) {
      expect(execFileSync("bash", ["-c", `printf '%s' ${shq(v)}`]).toString()).toBe(v);
    }
  });

  it("keeps bash expansions and interpolates bash text in sh``", () => {
    const x = shq("a value");
    expect(sh`echo \${HOME} ${x} \`date\``).toBe("echo ${HOME} 'a value' `date`");
  });

  it("refuses, at compile time, a plain string as bash code or as a script's purpose", () => {
    const fromConfig: string = "$(touch /tmp/pwn)";
    // @ts-expect-error a plain string is not bash text: it must go through vars or shq
    expect(sh`echo ${fromConfig}`).toContain("touch");
    // @ts-expect-error a computed purpose could carry a config value into a comment
    expect(() => renderScript({ purpose: `user ${fromConfig}` }, sh`true`)).not.toThrow();
    // At run time too: a purpose is one printable line.
    expect(() => renderScript({ purpose: "two\nlines" }, sh`true`)).toThrow(/one printable line/);
  });

  it("picks a heredoc delimiter the content cannot end", () => {
    const h = heredoc("GITEA_HOMELAB_EOF\nx");
    const out = execFileSync("bash", ["-c", `cat ${h.open}\n${h.body}\n`]).toString();
    expect(out).toBe("GITEA_HOMELAB_EOF\nx\n");
  });

  it("runs a script as root with stdin left for secrets", () => {
    const script = renderScript({ purpose: "test", vars: { greeting: "hello world" } }, sh`read -r secret; echo "$greeting $(id -u) $secret"`);
    const res = spawnSync("bash", ["-c", asRootCommand(script)], { input: "s3cret\n" });
    expect(res.stderr.toString()).toBe("");
    // CI and developers run as root here, so the script runs directly; sudo is exercised on the VM.
    expect(res.stdout.toString()).toBe(`hello world ${process.getuid!()} s3cret\n`);
  });
});

/** Every script the server stack can send, rendered with awkward values. */
const SCRIPTS: Record<string, string> = {
  preflight: renderHostPreflightScript({ requireFirewalld: true, requireQuadlet: true }),
  preflightNoFirewall: renderHostPreflightScript({ requireFirewalld: false, requireQuadlet: false }),
  user: renderRootlessUserScript("rootless", 120),
  userDelete: renderRootlessUserDeleteScript("rootless", true),
  volume: renderVolumeCreateScript("rootless", "gitea-data"),
  volumeDelete: renderVolumeDeleteScript("rootless", "gitea-data"),
  image: renderImageScript("rootless", SPEC.image, "/opt/images/gitea.tar"),
  unitQuadlet: renderUnitInstallScript({ user: "rootless", name: "gitea", style: "quadlet", content: renderGiteaQuadlet(SPEC), hasEnvironment: true }),
  unitService: renderUnitInstallScript({ user: "rootless", name: "gitea", style: "service", content: renderGiteaService(SPEC), hasEnvironment: false }),
  unitRemove: renderUnitRemoveScript({ user: "rootless", name: "gitea", style: "quadlet" }),
  health: renderHealthScript({ user: "rootless", service: "gitea.service", logFile: "/var/log/gitea-homelab/gitea.log", httpPort: 4111, timeoutSeconds: 300 }),
  admin: renderAdminScript({ user: "rootless", containerName: "gitea", username: "gitea-admin", email: "o'brien@example.com" }),
  portOpen: renderOpenPortScript({ port: 4111, protocol: "tcp" }),
  portClose: renderClosePortScript({ port: 4111, protocol: "tcp", zone: "FedoraServer" }),
};

describe("generated scripts", () => {
  it.each(Object.entries(SCRIPTS))("%s is strict, marked as managed, and passes bash -n and shellcheck", (_name, script) => {
    expectCleanScript(script);
  });

  it("runs the unit script's heredoc verbatim, so the file on the host is what was rendered", () => {
    // The unit file in the install script must be byte-for-byte the rendered one.
    const content = renderGiteaQuadlet(SPEC);
    expect(SCRIPTS.unitQuadlet).toContain(content);
  });
});
