import { describe, expect, it } from "vitest";
import { validateServerConfig } from "../../stacks/serverConfig";
import { keepArguments, OffsiteInput, OffsiteRawInput, parseKeep, readOffsite } from "./settings";

const HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExampleExampleExampleExampleExampleExample";
const SSH_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ==\n-----END OPENSSH PRIVATE KEY-----";
const PASSWORD = "correct horse battery staple";

function read(input: OffsiteInput, secrets: OffsiteRawInput = { password: PASSWORD }) {
  const problems: string[] = [];
  const settings = readOffsite(input, secrets, (key, message) => problems.push(`gitea-homelab:${key}: ${message}`));
  return { settings, problems };
}

describe("off-site settings", () => {
  it("reads the four kinds of repository restic documents", () => {
    expect(read({ repository: "s3:https://s3.eu-central-003.backblazeb2.com/forge-backups/gitea" }).settings?.backend).toBe("s3");
    expect(read({ repository: "rest:https://backup.lan:8000/gitea" }).settings?.backend).toBe("rest");
    expect(read({ repository: "/mnt/usb/gitea-restic" }).settings?.backend).toBe("local");
    for (const repository of ["sftp:backup@nas.lan:/srv/restic/gitea", "sftp://backup@nas.lan:2222//srv/restic/gitea", "sftp:nas.lan:restic"]) {
      const { settings, problems } = read({ repository, hostKey: HOST_KEY }, { password: PASSWORD, sshKey: SSH_KEY });
      expect(problems, repository).toEqual([]);
      expect(settings?.backend).toBe("sftp");
    }
  });

  it("is off when no repository is set, and says so about a password or key set without one", () => {
    expect(read({}, {})).toEqual({ settings: undefined, problems: [] });
    // Pulumi.yaml's default of the credentials object is {}.
    expect(read({}, { environment: "{}" }).problems).toEqual([]);
    expect(read({ hostKey: HOST_KEY }, { password: PASSWORD }).problems).toEqual([
      "gitea-homelab:offsitePassword: is set but gitea-homelab:offsiteRepository is not: set the repository too, or unset this",
      "gitea-homelab:offsiteHostKey: is set but gitea-homelab:offsiteRepository is not: set the repository too, or unset this",
    ]);
  });

  it("names the key of every bad value", () => {
    const cases: Array<[OffsiteInput, OffsiteRawInput, string]> = [
      [{ repository: "b2:bucket:path" }, { password: PASSWORD }, "offsiteRepository"],
      [{ repository: "s3:https://minio.lan/" }, { password: PASSWORD }, "offsiteRepository"],
      [{ repository: "s3:https://key:secret@minio.lan/bucket" }, { password: PASSWORD }, "offsiteRepository"],
      [{ repository: "rest:https://minio.lan/a b" }, { password: PASSWORD }, "offsiteRepository"],
      [{ repository: "/mnt/usb/../etc" }, { password: PASSWORD }, "offsiteRepository"],
      [{ repository: "sftp:nas.lan:/srv/$(id)" }, { password: PASSWORD }, "offsiteRepository"],
      [{ repository: "/mnt/usb/r" }, {}, "offsitePassword"],
      [{ repository: "/mnt/usb/r" }, { password: "short" }, "offsitePassword"],
      [{ repository: "/mnt/usb/r" }, { password: `${PASSWORD}\n` }, "offsitePassword"],
      [{ repository: "/mnt/usb/r" }, { password: PASSWORD, environment: "[1]" }, "offsiteEnvironment"],
      [{ repository: "/mnt/usb/r" }, { password: PASSWORD, environment: '{"LD_PRELOAD":"/tmp/x.so"}' }, "offsiteEnvironment"],
      [{ repository: "/mnt/usb/r" }, { password: PASSWORD, environment: '{"RESTIC_PASSWORD_COMMAND":"sh -c id"}' }, "offsiteEnvironment"],
      [{ repository: "/mnt/usb/r" }, { password: PASSWORD, environment: '{"AWS_ACCESS_KEY_ID":"a\\nb"}' }, "offsiteEnvironment"],
      [{ repository: "sftp:nas.lan:/r" }, { password: PASSWORD, sshKey: SSH_KEY }, "offsiteHostKey"],
      [{ repository: "sftp:nas.lan:/r", hostKey: "AAAA" }, { password: PASSWORD, sshKey: SSH_KEY }, "offsiteHostKey"],
      [{ repository: "sftp:nas.lan:/r", hostKey: HOST_KEY }, { password: PASSWORD }, "offsiteSshKey"],
      [{ repository: "sftp:nas.lan:/r", hostKey: HOST_KEY }, { password: PASSWORD, sshKey: "ssh-ed25519 AAAA" }, "offsiteSshKey"],
      [{ repository: "/mnt/usb/r", hostKey: HOST_KEY }, { password: PASSWORD }, "offsiteHostKey"],
      [{ repository: "/mnt/usb/r", caCertificate: "-----BEGIN CERTIFICATE-----" }, { password: PASSWORD }, "offsiteCaCertificate"],
      [{ repository: "s3:https://minio.lan/b", caCertificate: "not a certificate" }, { password: PASSWORD }, "offsiteCaCertificate"],
      [{ repository: "/mnt/usb/r", keep: "7 days" }, { password: PASSWORD }, "offsiteKeep"],
      [{ repository: "/mnt/usb/r", keep: "0 daily" }, { password: PASSWORD }, "offsiteKeep"],
      [{ repository: "/mnt/usb/r", check: "$(reboot)" }, { password: PASSWORD }, "offsiteCheck"],
    ];
    for (const [input, secrets, key] of cases) {
      const { problems } = read(input, secrets);
      expect(problems.length, `${JSON.stringify(input)} ${key}`).toBeGreaterThan(0);
      expect(problems.every((p) => p.startsWith(`gitea-homelab:${key}: `)), `${JSON.stringify(input)}: ${problems.join("; ")}`).toBe(true);
      // A secret is never repeated back.
      for (const secret of [secrets.password, secrets.sshKey].filter((s): s is string => (s ?? "").length > 8)) for (const p of problems) expect(p).not.toContain(secret.trim());
    }
  });

  it("turns the retention policy into restic forget's options", () => {
    const policy = parseKeep("12 monthly, 7 daily,4 weekly, 2 last", () => expect.fail("valid"));
    expect(keepArguments(policy)).toEqual(["--keep-last", "2", "--keep-daily", "7", "--keep-weekly", "4", "--keep-monthly", "12"]);
    const problems: string[] = [];
    parseKeep("7 daily, 3 daily", (_k, m) => problems.push(m));
    expect(problems).toHaveLength(1);
  });

  it("restoreFrom offsite:… needs the repository, and names a snapshot or latest", () => {
    const base = { host: "192.168.1.10", adminEmail: "admin@example.com", hostKey: HOST_KEY };
    expect(validateServerConfig({ ...base, restoreFrom: "offsite:latest" }).problems).toEqual([
      expect.stringMatching(/^gitea-homelab:restoreFrom: "offsite:latest" restores from the off-site repository, but gitea-homelab:offsiteRepository is not set/),
    ]);
    const withRepository = { ...base, offsiteRepository: "/mnt/usb/r" };
    const secrets = { password: PASSWORD };
    expect(validateServerConfig({ ...withRepository, restoreFrom: "offsite:latest" }, undefined, undefined, secrets).problems).toEqual([]);
    expect(validateServerConfig({ ...withRepository, restoreFrom: "offsite:4bd2a3f1" }, undefined, undefined, secrets).settings.restoreFrom).toBe("offsite:4bd2a3f1");
    expect(validateServerConfig({ ...withRepository, restoreFrom: "offsite:newest" }, undefined, undefined, secrets).problems).toEqual([expect.stringMatching(/^gitea-homelab:restoreFrom: must be offsite:latest or offsite:SNAPSHOT/)]);
  });
});
