/**
 * The holes found in issue 10, one case each: every one is now a config problem naming its key
 * (before anything is registered), or renders safely where it is legitimate.
 */
import { readFileSync } from "fs";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { renderGiteaOpenrc, renderGiteaService } from "../../components/giteaService/render";
import { giteaEnvironment } from "../../components/gitea/render";
import { isLoopbackOrUnspecified, isEncryptedPrivateKey, parseImageReference, RawConfig, secretProblems } from "../../stacks/config";
import { SERVER_KEYS, validateServerConfig } from "../../stacks/serverConfig";
import { instanceUrlProblem, validateWslConfig, WSL_KEYS } from "../../stacks/wslConfig";
import { CONTAINER_SPEC } from "../helpers/fixtures";

const SERVER: RawConfig = { host: "192.168.1.10", adminEmail: "admin@example.com" };
const WSL: RawConfig = { host: "192.168.1.20", runnerSourcePath: "/root/act_runner" };

const serverProblems = (extra: RawConfig) => validateServerConfig({ ...SERVER, ...extra }).problems;
const wslProblems = (extra: RawConfig) => validateWslConfig({ ...WSL, ...extra }).problems;
const naming = (key: string, text?: RegExp) => expect.arrayContaining([expect.stringMatching(new RegExp(`^gitea-homelab:${key}: .*${text?.source ?? ""}`))]);

describe("control characters", () => {
  it("are refused in every string key of both stacks, naming the key, never trimmed away", () => {
    for (const key of SERVER_KEYS) {
      expect(serverProblems({ [key]: "a\nb" }), key).toEqual(naming(key, /must not contain control characters/));
      expect(serverProblems({ [key]: "ok\t" }), key).toEqual(naming(key, /must not contain control characters/));
    }
    for (const key of WSL_KEYS) expect(wslProblems({ [key]: "x\u0000y" }), key).toEqual(naming(key, /must not contain control characters/));
  });

  it("the newline that ran `touch /tmp/pwn` as root is a config error", () => {
    expect(wslProblems({ instanceUrl: "http://ex.test/a\ntouch /tmp/pwn #" })).toEqual(naming("instanceUrl", /must not contain control characters/));
    expect(serverProblems({ rootUrl: "https://ex.test/\ntouch /tmp/pwn" })).toEqual(naming("rootUrl", /must not contain control characters/));
  });
});

describe("URLs", () => {
  it("refuse a user name or password, without echoing it", () => {
    const problems = serverProblems({ rootUrl: "https://user:s3cret@ex.test/" });
    expect(problems).toEqual(naming("rootUrl", /must not contain a user name or password/));
    expect(problems.join()).not.toContain("s3cret");
    expect(wslProblems({ instanceUrl: "http://u:p4ss@ex.test/" })).toEqual(naming("instanceUrl", /must not contain a user name or password/));
    expect(wslProblems({ runnerSourcePath: "", runnerSha256: "a".repeat(64), runnerUrl: "https://u:p@dl.example.com/x" })).toEqual(naming("runnerUrl", /user name or password/));
  });

  it("never echo a credential, even in a URL refused for another reason", () => {
    for (const rootUrl of ["ftp://alice:hunter2@git.example.com/", "http://alice:hunter2@git.example.com:99999/", "http://alice:hunter2@ex.test/\n"]) {
      const problems = serverProblems({ rootUrl });
      expect(problems).toEqual(naming("rootUrl"));
      expect(problems.join()).not.toContain("hunter2");
    }
  });

  it("normalise runnerUrl for curl", () => {
    const { settings } = validateWslConfig({ ...WSL, runnerSourcePath: "", runnerSha256: "a".repeat(64), runnerUrl: "https://DL.example.com/a b/x" });
    expect(settings.source).toEqual({ url: "https://dl.example.com/a%20b/x", sha256: "a".repeat(64) });
  });

  it("refuse a query or fragment in a base URL", () => {
    expect(serverProblems({ rootUrl: "https://ex.test/?a=1" })).toEqual(naming("rootUrl", /base URL/));
  });

  it("refuse what Gitea's URL parser (Go's net/url) refuses, though WHATWG parsing keeps it", () => {
    // Seen on a real host: Gitea exits with 'Invalid ROOT_URL ... invalid URL escape "%h;"'.
    for (const rootUrl of ["http://gitea.test:4111/g$HOME%h;id...", "https://ex.test/100%", "https://ex.test/%zz/", "https://ex.test/%4/"]) {
      expect(serverProblems({ rootUrl }), rootUrl).toEqual(naming("rootUrl", /% that is not followed by two hex digits.*%25/));
    }
    expect(wslProblems({ instanceUrl: "http://192.168.1.10:4111/git%/" })).toEqual(naming("instanceUrl", /% that is not followed by two hex digits/));
    // Seen on the VM: ROOT_URL .../%25h/ made Gitea exit with 'Unable to parse STATIC_URL_PREFIX:
    // ... invalid URL escape "%h/"', since it decodes its path once and parses it again.
    for (const rootUrl of ["https://ex.test/%25h/", "https://ex.test/a%20b/%25/", "https://ex.test/100%25"]) {
      expect(serverProblems({ rootUrl }), rootUrl).toEqual(naming("rootUrl", /once decoded, holds a % not followed by two hex digits.*remove the %25/));
    }
    for (const rootUrl of ["http://gi{t}ea.test/", "http://a$b.test/", "http://a`id`.test/"]) {
      expect(serverProblems({ rootUrl }), rootUrl).toEqual(naming("rootUrl", /must name its host by a DNS name or an IP address/));
    }
    for (const rootUrl of ["https://ex.test/a%20b/%2541/", "http://a_b.test/", "http://bücher.example/", "http://ex%41mple.test/", "http://[fd00::1]:4111/"]) {
      expect(serverProblems({ rootUrl }), rootUrl).toEqual([]);
    }
  });

  it("keep $ and % in rootUrl as text, in a classic unit's ExecStart= and on Alpine", () => {
    const { settings, problems } = validateServerConfig({ ...SERVER, rootUrl: "https://ex.test/${HOME}/$USER/%2541h/" });
    expect(problems).toEqual([]);
    const environment = giteaEnvironment({ publicHost: "ex.test", rootUrl: settings.rootUrl, sshPort: 3333, database: "sqlite3" });
    const exec = renderGiteaService({ ...CONTAINER_SPEC, environment }).split("\n").find((l) => l.startsWith("ExecStart="))!;
    expect(exec).toContain("--env=GITEA__server__ROOT_URL=https://ex.test/$$%%7BHOME%%7D/$$USER/%%2541h/");
    expect(() => renderGiteaOpenrc({ ...CONTAINER_SPEC, environment })).not.toThrow();
  });
});

describe("loopback", () => {
  it.each([
    "http://localhost:3000/",
    "http://localhost.:3000/",
    "http://LOCALHOST/",
    "http://gitea.localhost/",
    "http://127.0.0.1:3000/",
    "http://127.1/",
    "http://2130706433/",
    "http://0x7f.0.0.1/",
    "http://0.0.0.0/",
    "http://[::1]:3000/",
    "http://[0:0:0:0:0:0:0:1]/",
    "http://[::]/",
    "http://[::ffff:127.0.0.1]:3000/",
    "http://[::ffff:7f00:1]/",
    "http://[::127.0.0.1]/",
  ])("refuses %s as the runner's instance URL", (url) => {
    expect(instanceUrlProblem(url)).toMatch(/must not be .*reach themselves/);
  });

  it.each(["http://192.168.1.10:4111/", "http://[fd00::1]:4111/", "http://127-0-0-1.example.com/", "https://git.example.com/"])("accepts %s", (url) => {
    expect(instanceUrlProblem(url)).toBeUndefined();
  });

  it("warns (only) when the server's public host is loopback", () => {
    const { problems, warnings, settings } = validateServerConfig({ ...SERVER, publicHost: "[::1]" });
    expect(problems).toEqual([]);
    expect(warnings).toEqual(expect.arrayContaining([expect.stringMatching(/^gitea-homelab:publicHost: ::1 is this machine's own address/)]));
    // IPv6 kept bare for DOMAIN, bracketed in URLs; renders on Alpine too.
    expect(settings.rootUrl).toBe("https://[::1]:4111/");
    expect(() => renderGiteaOpenrc({ ...CONTAINER_SPEC, environment: giteaEnvironment({ publicHost: settings.publicHost, rootUrl: settings.rootUrl, sshPort: 3333, database: "sqlite3" }) })).not.toThrow();
    expect(isLoopbackOrUnspecified("::1")).toBe(true);
  });
});

describe("ports", () => {
  it("refuses published ports below 1024, saying why and what to do", () => {
    expect(serverProblems({ httpPort: "80" })).toEqual(naming("httpPort", /must be 1024 or higher, got 80: rootless Podman cannot publish ports below 1024; .*reverse proxy/));
    expect(serverProblems({ sshPort: "22" })).toEqual(naming("sshPort", /must be 1024 or higher/));
  });

  it("refuses a published port that is the host's own SSH port", () => {
    expect(serverProblems({ port: "2222", sshPort: "2222" })).toEqual(naming("sshPort", /must differ from gitea-homelab:port \(2222\)/));
    expect(serverProblems({ port: "4111" })).toEqual(naming("httpPort", /must differ from gitea-homelab:port/));
  });
});

describe("names, paths and versions", () => {
  it("refuses an image that is not an image reference (%h, $, spaces)", () => {
    for (const image of ["docker.gitea.com/gitea:%h", "docker.gitea.com/gitea:$TAG", "docker.gitea.com/gi tea:1", "docker.gitea.com/Gitea:1"]) {
      expect(serverProblems({ image }), image).toEqual(naming("image", /must be an image reference/));
    }
    expect(parseImageReference("registry:5000/gitea/gitea:1.27.3-rootless")).toEqual({ registry: "registry:5000", path: "gitea/gitea", tag: "1.27.3-rootless", digest: undefined });
    expect(serverProblems({ image: "gitea/gitea:1.27.3-rootless" })).toEqual(naming("image", /must name its registry/));
  });

  it("refuses an image tag Quadlet would read as a unit name", () => {
    for (const image of ["docker.io/library/alpine:v.image", "docker.io/library/alpine:x.build"]) expect(serverProblems({ image }), image).toEqual(naming("image", /Quadlet reads that as a unit name/));
  });

  it("refuses addresses no URL can hold, and names them once", () => {
    for (const publicHost of ["1.2.3.256", "fe80::1%eth0", "999", "host.123"]) expect(serverProblems({ publicHost }), publicHost).toEqual(naming("publicHost", /must be a hostname or IP address/));
    expect(serverProblems({ host: "8.8.8" })).toEqual([expect.stringMatching(/^gitea-homelab:host: must be a hostname or IP address/)]);
    for (const publicHost of ["git.example.com", "10.0.0.1", "[fd00::1]", "fd00::1", "git2"]) expect(serverProblems({ publicHost }), publicHost).toEqual([]);
  });

  it("refuses e-mail addresses Gitea would refuse late", () => {
    for (const adminEmail of ["a..b@example.com", "a.@example.com", ".a@example.com", "a b@example.com", "a@"]) expect(serverProblems({ adminEmail }), adminEmail).toEqual(naming("adminEmail"));
    expect(serverProblems({ adminEmail: "ops`x`$USER'x&y|z@example.com" })).toEqual([]);
  });

  it("refuses a binary name that is a directory or an option", () => {
    for (const runnerBinaryName of ["..", ".", "-rf", "a/b"]) expect(wslProblems({ runnerBinaryName }), runnerBinaryName).toEqual(naming("runnerBinaryName"));
  });

  it("refuses paths with specifiers, variables, spaces or ..", () => {
    for (const dir of ["/opt/%h/bin", "/opt/$HOME", "/opt/my bin", "/opt/../etc", "relative/bin"]) {
      expect(wslProblems({ runnerInstallDir: dir }), dir).toEqual(naming("runnerInstallDir", /must be the directory the runner binary is installed to/));
    }
    expect(serverProblems({ imageArchive: "/tmp/%h.tar" })).toEqual(naming("imageArchive"));
  });

  it("refuses a version that is not a version", () => {
    for (const v of ["..", "../../x", "1.2", "latest"]) expect(wslProblems({ runnerVersion: v }), v).toEqual(naming("runnerVersion", /must be a release version/));
    expect(wslProblems({ runnerVersion: "v1.0.0-rc.1" })).toEqual([]);
  });

  it("refuses a label image that is not an image reference", () => {
    expect(wslProblems({ runnerLabels: "ubuntu:docker://img$(x)" })).toEqual(naming("runnerLabels"));
    expect(wslProblems({ runnerLabels: "ubuntu-latest:docker://node:20,self:host" })).toEqual([]);
  });

  it("says a sha256 YAML turned into a number must be quoted", () => {
    expect(wslProblems({ runnerSourcePath: "", runnerSha256: "0" })).toEqual(naming("runnerSha256", /looks like a number YAML converted: quote the value/));
    const example = parse(readFileSync(`${__dirname}/../../Pulumi.wsl.yaml`, "utf8")).config["gitea-homelab:runnerSha256"];
    expect(typeof example).toBe("string");
  });
});

describe("secrets", () => {
  it("refuses a runner token Gitea would refuse, and never repeats a secret", () => {
    expect(secretProblems({ registrationToken: "x" })).toEqual([expect.stringMatching(/^gitea-homelab:registrationToken: must be at least 32 characters/)]);
    expect(secretProblems({ registrationToken: "T".repeat(32) })).toEqual([]);
    const problems = secretProblems({ adminPassword: "short1", registrationToken: "has space".repeat(5) });
    expect(problems).toEqual([expect.stringMatching(/^gitea-homelab:adminPassword: must be at least 8/), expect.stringMatching(/^gitea-homelab:registrationToken: must not contain spaces/)]);
    expect(problems.join()).not.toMatch(/short1|has space/);
  });

  it("refuses a private key that is not one, or needs a passphrase", () => {
    expect(secretProblems({ privateKey: "hunter2" })).toEqual([expect.stringMatching(/^gitea-homelab:privateKey: must be an OpenSSH or PEM private key/)]);
    // openssh-key-v1 with cipher aes256-ctr
    const encrypted = Buffer.concat([Buffer.from("openssh-key-v1\0"), Buffer.from([0, 0, 0, 10]), Buffer.from("aes256-ctr")]).toString("base64");
    const key = `-----BEGIN OPENSSH PRIVATE KEY-----\n${encrypted}\n-----END OPENSSH PRIVATE KEY-----\n`;
    expect(isEncryptedPrivateKey(key)).toBe(true);
    expect(secretProblems({ privateKey: key })).toEqual([expect.stringMatching(/is protected by a passphrase/)]);
    const plain = Buffer.concat([Buffer.from("openssh-key-v1\0"), Buffer.from([0, 0, 0, 4]), Buffer.from("none")]).toString("base64");
    expect(secretProblems({ privateKey: `-----BEGIN OPENSSH PRIVATE KEY-----\n${plain}\n-----END OPENSSH PRIVATE KEY-----` })).toEqual([]);
  });
});
