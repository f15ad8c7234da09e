import { readFileSync } from "fs";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { RawTls, SERVER_DEFAULTS, SERVER_KEYS, validateServerConfig } from "../../stacks/serverConfig";
import { resolveRole } from "../../program";
import { validateWslConfig } from "../../stacks/wslConfig";

const MINIMAL = { host: "gitea.lan", adminEmail: "admin@example.com" };

describe("validateServerConfig", () => {
  it("fills the tutorial's defaults and derives ROOT_URL from the public host and HTTP port", () => {
    const { settings, problems } = validateServerConfig(MINIMAL);
    expect(problems).toEqual([]);
    expect(settings.httpPort).toBe(4111);
    expect(settings.sshPort).toBe(3333);
    expect(settings.rootlessUser).toBe("rootless");
    expect(settings.publicHost).toBe("gitea.lan");
    expect(settings.rootUrl).toBe("https://gitea.lan:4111/");
    expect(settings.tls.mode).toBe("own-ca");
    expect(settings.rootUrlNote).toBeUndefined();
    expect(settings.image).not.toMatch(/nightly|latest/);
  });

  it("reports every problem at once, each naming its key", () => {
    const { problems } = validateServerConfig({
      host: "",
      port: "0",
      httpPort: "70000",
      sshPort: "abc",
      rootUrl: "ftp://x",
      rootlessUser: "Bad User",
      image: "docker.gitea.com/gitea",
      adminUsername: "admin",
      adminEmail: "not-an-email",
      unitStyle: "docker",
      firewall: "ufw",
      destroyData: "yes",
      hostKey: "AAAA",
      userns: "auto",
      storageDriver: "zfs",
    });
    const keys = problems.map((p) => p.split(":")[1]);
    expect(keys.sort()).toEqual(
      ["host", "port", "httpPort", "sshPort", "rootUrl", "rootlessUser", "image", "adminUsername", "adminEmail", "unitStyle", "firewall", "destroyData", "hostKey", "userns", "storageDriver"].sort(),
    );
    expect(problems.find((p) => p.startsWith("gitea-homelab:host:"))).toMatch(/required/);
    expect(problems.find((p) => p.startsWith("gitea-homelab:image:"))).toMatch(/tag/);
  });

  it("checks the backup settings, each problem naming its key", () => {
    const defaults = validateServerConfig(MINIMAL).settings;
    expect(defaults).toMatchObject({ backupDir: "/var/backups/gitea-homelab", backupKeep: 7, backupSchedule: "daily", allowDowngrade: false });
    expect(defaults.restoreFrom).toBeUndefined();
    const { problems } = validateServerConfig({
      ...MINIMAL,
      backupDir: "backups",
      backupKeep: "0",
      backupSchedule: "daily; reboot",
      restoreFrom: "/var/backups/../etc",
      allowDowngrade: "maybe",
    });
    expect(problems.map((p) => p.split(":")[1]).sort()).toEqual(["allowDowngrade", "backupDir", "backupKeep", "backupSchedule", "restoreFrom"]);
    expect(validateServerConfig({ ...MINIMAL, backupDir: "/etc" }).problems).toEqual([expect.stringMatching(/^gitea-homelab:backupDir: must be a directory of its own/)]);
    expect(validateServerConfig({ ...MINIMAL, backupKeep: "1001" }).problems).toEqual([expect.stringMatching(/^gitea-homelab:backupKeep:/)]);
    const fine = validateServerConfig({ ...MINIMAL, backupDir: "/srv/backups/gitea/", backupSchedule: "Sun *-*-* 04:00:00", restoreFrom: "/srv/backups/gitea/gitea-backup-20261127T030000Z-scheduled/" });
    expect(fine.problems).toEqual([]);
    // A trailing slash is dropped: the directory is the same either way.
    expect(fine.settings).toMatchObject({ backupDir: "/srv/backups/gitea", restoreFrom: "/srv/backups/gitea/gitea-backup-20261127T030000Z-scheduled" });
  });

  it("rejects equal ports and a root rootless user", () => {
    const { problems } = validateServerConfig({ ...MINIMAL, httpPort: "3000", sshPort: "3000", rootlessUser: "root" });
    expect(problems).toEqual([expect.stringMatching(/^gitea-homelab:sshPort: must differ from httpPort/), expect.stringMatching(/^gitea-homelab:rootlessUser: must not be root/)]);
  });

  it("accepts an explicit ROOT_URL behind a proxy and says so instead of failing", () => {
    const { settings, problems } = validateServerConfig({ ...MINIMAL, rootUrl: "https://git.example.com" });
    expect(problems).toEqual([]);
    expect(settings.rootUrl).toBe("https://git.example.com/");
    expect(settings.rootUrlNote).toMatch(/reverse proxy.*http:\/\/gitea\.lan:4111\//);
    expect(validateServerConfig({ ...MINIMAL, rootUrl: "http://gitea.lan:4111/" }).settings.rootUrlNote).toBeUndefined();
  });

  it("warns about a missing host key and a moving image tag", () => {
    const { warnings } = validateServerConfig({ ...MINIMAL, image: "docker.io/gitea/gitea:nightly-rootless" });
    expect(warnings).toEqual([expect.stringMatching(/^gitea-homelab:hostKey: .*not checked/), expect.stringMatching(/^gitea-homelab:image: .*moving tag/)]);
  });

  it("brackets IPv6 hosts in URLs", () => {
    expect(validateServerConfig({ ...MINIMAL, host: "2001:db8::10" }).settings.rootUrl).toBe("https://[2001:db8::10]:4111/");
  });
});

describe("tls: HTTPS by default, off behind a reverse proxy or by choice", () => {
  const resolved = (raw: Record<string, string>) => {
    const { settings, problems, warnings } = validateServerConfig({ ...MINIMAL, ...raw });
    return { mode: settings.tls.mode, rootUrl: settings.rootUrl, problems, warnings };
  };

  it("auto serves https with the server's own CA when Gitea is reached directly", () => {
    expect(resolved({})).toMatchObject({ mode: "own-ca", rootUrl: "https://gitea.lan:4111/", problems: [] });
    expect(resolved({ rootUrl: "https://gitea.lan:4111/" })).toMatchObject({ mode: "own-ca", rootUrl: "https://gitea.lan:4111/", problems: [] });
  });

  it("auto leaves TLS to a reverse proxy that rootUrl names, and to the owner who asks for plain http (with a warning)", () => {
    expect(resolved({ rootUrl: "https://git.example.com/" })).toMatchObject({ mode: "off", rootUrl: "https://git.example.com/", problems: [] });
    const plain = resolved({ rootUrl: "http://gitea.lan:4111/" });
    expect(plain).toMatchObject({ mode: "off", rootUrl: "http://gitea.lan:4111/", problems: [] });
    expect(plain.warnings).toEqual(expect.arrayContaining([expect.stringMatching(/^gitea-homelab:rootUrl: is plain http:\/\/ to Gitea itself: passwords and tokens cross the network in clear/)]));
    expect(resolved({ tls: "off" })).toMatchObject({ mode: "off", rootUrl: "http://gitea.lan:4111/", problems: [] });
  });

  it("refuses an http:// rootUrl to Gitea itself when TLS is on, and a mode it does not know", () => {
    expect(resolved({ tls: "own-ca", rootUrl: "http://gitea.lan:4111/" }).problems).toEqual([
      "gitea-homelab:rootUrl: is http:// but gitea-homelab:tls is own-ca: Gitea serves https on that address; make it https://gitea.lan:4111/ or unset it",
    ]);
    expect(resolved({ tls: "letsencrypt" }).problems).toEqual([expect.stringMatching(/^gitea-homelab:tls: must be one of auto, off, own-ca, given/)]);
  });

  it("given needs the certificate and the key, checked here, and says so naming both keys", () => {
    const { problems } = validateServerConfig({ ...MINIMAL, tls: "given" }, undefined, {});
    expect(problems.map((p) => p.split(":").slice(0, 2).join(":"))).toEqual(["gitea-homelab:tlsCertificate", "gitea-homelab:tlsKey"]);
    const garbage = validateServerConfig({ ...MINIMAL, tls: "given" }, undefined, { certificate: "not pem", key: "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----" });
    expect(garbage.problems).toEqual([expect.stringMatching(/^gitea-homelab:tlsCertificate: must be a PEM certificate/)]);
    // Set while another mode is chosen: ignored, and said.
    expect(validateServerConfig(MINIMAL, undefined, { certificate: "x" }).warnings).toEqual(expect.arrayContaining([expect.stringMatching(/^gitea-homelab:tls: is own-ca: gitea-homelab:tlsCertificate and tlsKey are used only when tls is given/)]));
  });
});

describe("tls acme: an ACME CA that checks publicHost on port 443, forwarded to httpPort", () => {
  const ACME = { tls: "acme", publicHost: "git.example.com", acmeEmail: "certs@example.com", acmeAcceptTerms: "true" };
  const check = (raw: Record<string, string>, tls: RawTls = {}) => validateServerConfig({ ...MINIMAL, ...ACME, ...raw }, undefined, tls);

  it("takes Let's Encrypt by default, and a rootUrl on 443 of publicHost as a forward, not a proxy", () => {
    const { settings, problems } = check({ rootUrl: "https://git.example.com/" });
    expect(problems).toEqual([]);
    expect(settings.tls).toEqual({ mode: "acme", givenChain: undefined, acme: { email: "certs@example.com", directory: "https://acme-v02.api.letsencrypt.org/directory", caRoot: undefined } });
    expect(settings.rootUrl).toBe("https://git.example.com/");
    expect(settings.rootUrlNote).toBe("ROOT_URL https://git.example.com/: the router or firewall is expected to forward its port to 4111 on this host");
    expect(check({}).settings.rootUrl).toBe("https://git.example.com:4111/");
  });

  it("refuses a rootUrl naming another host, and an acmeCaRoot that is not PEM, naming the keys", () => {
    expect(check({ rootUrl: "https://proxy.example.com/" }).problems).toEqual([expect.stringMatching(/^gitea-homelab:rootUrl: names proxy\.example\.com over https, but tls acme gets Gitea a certificate for git\.example\.com/)]);
    expect(check({}, { acmeCaRoot: "not a certificate" }).problems).toEqual([expect.stringMatching(/^gitea-homelab:acmeCaRoot: must be a PEM certificate .*the root the ACME CA's own HTTPS certificate chains to/)]);
    expect(check({ acmeAcceptTerms: "yes" }).problems).toEqual(["gitea-homelab:acmeAcceptTerms: must be true or false, got \"yes\""]);
  });

  it("says a publicHost that is no host name under its key, with a rootUrl, never as a stack trace", () => {
    // Found by the hostile-value property test: the forward check parsed the derived URL.
    const { problems } = check({ publicHost: "`gh_canary`oEbDN%u,2Z", rootUrl: "https://git.example.com/" });
    expect(problems).toEqual(expect.arrayContaining([expect.stringMatching(/^gitea-homelab:publicHost: must be a hostname or IP address/)]));
  });

  it("warns, naming them, when the acme keys are set under another mode", () => {
    const { warnings, problems } = validateServerConfig({ ...MINIMAL, acmeEmail: "certs@example.com" }, undefined, { acmeCaRoot: "x" });
    expect(problems).toEqual([]);
    expect(warnings).toEqual(expect.arrayContaining(["gitea-homelab:tls: is own-ca: gitea-homelab:acmeEmail, acmeCaRoot are used only when tls is acme"]));
  });
});

describe("Pulumi.yaml", () => {
  const project = parse(readFileSync(`${__dirname}/../../Pulumi.yaml`, "utf8"));
  it("declares every server key with the code's defaults", () => {
    const declared = project.config as Record<string, { type: string; default?: unknown; description: string }>;
    for (const key of SERVER_KEYS) expect(declared[key], key).toBeDefined();
    for (const [key, value] of Object.entries(SERVER_DEFAULTS)) expect(declared[key].default, key).toEqual(value);
    for (const [key, decl] of Object.entries(declared)) expect(decl.description, key).toBeTruthy();
  });

  it("gives every key a default but host, since the Pulumi CLI requires a key declared without one", () => {
    const declared = project.config as Record<string, { default?: unknown }>;
    const withoutDefault = Object.entries(declared).filter(([, decl]) => !("default" in decl)).map(([key]) => key);
    expect(withoutDefault).toEqual(["host"]);
    // ...and host is what every role needs.
    expect(validateServerConfig({}).problems).toContain("gitea-homelab:host: is required (the SSH address of the host, e.g. 192.168.1.10)");
    expect(validateWslConfig({}).problems).toContain("gitea-homelab:host: is required (the SSH address of the host, e.g. 192.168.1.10)");
  });

  it("has example server stacks (Fedora, Alpine) that validate", () => {
    for (const file of ["Pulumi.server.yaml", "Pulumi.alpine.yaml"]) {
      const { "gitea-homelab:gitea": gitea, ...stack } = parse(readFileSync(`${__dirname}/../../${file}`, "utf8")).config as Record<string, unknown>;
      const raw = Object.fromEntries(Object.entries(stack).map(([k, v]) => [k.replace(/^gitea-homelab:/, ""), String(v)]));
      const { problems, settings } = validateServerConfig(raw, { json: gitea === undefined ? undefined : JSON.stringify(gitea), secret: false });
      expect(problems, file).toEqual([]);
      if (file === "Pulumi.server.yaml") expect(settings.gitea.settings).toEqual([{ section: "", key: "APP_NAME", value: "Home forge" }]);
    }
  });

  it("wants the image's registry named, since Podman resolves short names per host", () => {
    const { problems } = validateServerConfig({ host: "h", adminEmail: "a@b.c", image: "gitea/gitea:1.22-rootless" });
    expect(problems).toEqual([expect.stringMatching(/^gitea-homelab:image: must name its registry/)]);
    expect(validateServerConfig({ host: "h", adminEmail: "a@b.c", image: "localhost/gitea-standin:1" }).problems).toEqual([]);
  });

  it("turns userns keep-id into the mapping for the image's user 1000", () => {
    const { settings } = validateServerConfig({ host: "h", adminEmail: "a@b.c", userns: "keep-id", storageDriver: "vfs" });
    expect(settings.userns).toBe("keep-id:uid=1000,gid=1000");
    expect(settings.storageDriver).toBe("vfs");
    expect(validateServerConfig({ host: "h", adminEmail: "a@b.c" }).settings.userns).toBeUndefined();
  });
});

describe("resolveRole", () => {
  it("uses the role key, else the stack name, and names the key when neither is a role", () => {
    expect(resolveRole(undefined, "server")).toBe("server");
    expect(resolveRole("server", "prod")).toBe("server");
    expect(() => resolveRole(undefined, "prod")).toThrow(/gitea-homelab:role: .*supported roles: server/);
    expect(() => resolveRole("mail", "server")).toThrow(/"mail" is not a role/);
    expect(() => resolveRole("server\n", "wsl")).toThrow(/gitea-homelab:role: must not contain control characters/);
  });
});
