import { readFileSync } from "fs";
import { join } from "path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ScriptSandbox } from "../../test/helpers/scriptSandbox";
import { Facts } from "../host/probeSession";
import { fileDigest } from "../render/shell";
import { lastOffsiteBackupOf, offsiteDrift } from "./drift";
import { renderSchedulePeriodic, renderScheduleService, renderScheduleTimer } from "../host/schedule";
import { knownHostsLine, OFFSITE_DIR, offsiteCheckSchedule, OffsiteInstallSpec, renderOffsiteInstallScript, renderOffsitePayload } from "./render";

const HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExampleExampleExampleExampleExampleExample";
const TOOL = "/usr/local/libexec/gitea-homelab/gitea-backup-rootless";
const SPEC: OffsiteInstallSpec = { init: "systemd", packageManager: "dnf", user: "rootless", tool: TOOL, backend: "sftp", check: "weekly", knownHosts: knownHostsLine(HOST_KEY), caCertificate: "" };
const FILES = { environment: true, sshKey: true };
const NEWEST = "gitea-backup-20261207T030000Z-scheduled";

/** A host whose setup is as rendered and whose newest backup is in the repository. */
const IN_SYNC: Facts = {
  restic: "installed",
  newest_local: NEWEST,
  status_push: "ok",
  status_pushed: NEWEST,
  status_snapshot: "4bd2a3f1",
  status_pushed_at: "2026-12-07T03:00:20Z",
  status_check: "ok",
  "file.password": "600 rootless",
  "file.environment": "600 rootless",
  "file.ssh-key": "600 rootless",
  known_hosts: fileDigest(knownHostsLine(HOST_KEY)),
  ca: "missing",
  service_unit: fileDigest(renderScheduleService(offsiteCheckSchedule(SPEC))),
  timer_unit: fileDigest(renderScheduleTimer(offsiteCheckSchedule(SPEC))),
  manager: "active",
  timer_active: "active",
  timer_enabled: "enabled",
};

describe("off-site copies: drift", () => {
  it("is in sync when the newest backup is in the repository and the setup is as rendered", () => {
    expect(offsiteDrift(SPEC, FILES, IN_SYNC)).toEqual([]);
    expect(lastOffsiteBackupOf(IN_SYNC)).toBe(`4bd2a3f1 (${NEWEST}) at 2026-12-07T03:00:20Z`);
    // A fresh host: no backup yet, nothing to push.
    const fresh = { ...IN_SYNC, newest_local: undefined, status_push: undefined, status_pushed: undefined, status_snapshot: undefined } as unknown as Facts;
    expect(offsiteDrift(SPEC, FILES, fresh)).toEqual([]);
    expect(lastOffsiteBackupOf(fresh)).toBe("none yet");
  });

  it("shows a push that failed, with restic's reason, and a failed check", () => {
    const failed = { ...IN_SYNC, newest_local: "gitea-backup-20261208T030000Z-scheduled", status_push: "failed", status_push_failed_at: "2026-12-08T03:00:21Z", status_push_error: "Fatal: unable to open repository: connection refused" };
    expect(offsiteDrift(SPEC, FILES, failed)).toEqual([
      `off-site copy: the newest backup gitea-backup-20261208T030000Z-scheduled is not in the repository (last copied: ${NEWEST}); the last push failed at 2026-12-08T03:00:21Z: Fatal: unable to open repository: connection refused; pulumi up copies it`,
    ]);
    expect(offsiteDrift(SPEC, FILES, { ...IN_SYNC, status_check: "failed", status_check_at: "2026-12-06T05:00:00Z", status_check_error: "Fatal: repository contains errors" })).toEqual([
      "off-site check: restic check failed at 2026-12-06T05:00:00Z: Fatal: repository contains errors",
    ]);
  });

  it("shows secrets files gone or loosened, a changed pin, restic removed and the check's timer stopped", () => {
    expect(offsiteDrift(SPEC, FILES, { ...IN_SYNC, "file.password": "644 rootless", "file.ssh-key": "missing" })).toEqual([
      "off-site password file: mode and owner 644 rootless, expected 600 rootless",
      "off-site ssh-key file: missing, expected 600 rootless",
    ]);
    expect(offsiteDrift(SPEC, FILES, { ...IN_SYNC, known_hosts: fileDigest("gitea-homelab-offsite ssh-ed25519 AAAAother") })).toEqual(["off-site known_hosts: edited (gitea-homelab:offsiteHostKey)"]);
    expect(offsiteDrift(SPEC, FILES, { ...IN_SYNC, restic: "missing" })).toEqual(["restic: not installed (off-site backups need it)"]);
    expect(offsiteDrift(SPEC, FILES, { ...IN_SYNC, timer_active: "inactive" })).toEqual(["timer gitea-offsite-check.timer: inactive, expected active"]);
    expect(offsiteDrift(SPEC, FILES, undefined)).toEqual(["off-site backups: state unknown (probe output unreadable)"]);
  });

  it("on OpenRC, expects the check in cron's periodic directory", () => {
    const openrc: OffsiteInstallSpec = { ...SPEC, init: "openrc", packageManager: "apk" };
    const facts: Facts = { ...IN_SYNC, service_unit: undefined, timer_unit: undefined, crond: "enabled", "periodic.weekly": fileDigest(renderSchedulePeriodic(offsiteCheckSchedule(openrc))) } as unknown as Facts;
    expect(offsiteDrift(openrc, FILES, facts)).toEqual([]);
    expect(offsiteDrift(openrc, FILES, { ...facts, "periodic.weekly": undefined } as unknown as Facts)).toEqual(["/etc/periodic/weekly/gitea-offsite-check-rootless: deleted"]);
  });
});

describe("off-site copies: the install script and its drift check agree", () => {
  let sandbox: ScriptSandbox;
  beforeEach(() => (sandbox = new ScriptSandbox()));
  afterEach(() => sandbox.dispose());

  it("an sftp repository without offsiteEnvironment still gets its (empty) 0600 environment file, so a preview after the up shows no drift", () => {
    const tool = join(sandbox.standIn(["gitea-backup-rootless"]), "gitea-backup-rootless");
    const spec: OffsiteInstallSpec = { ...SPEC, tool, packageManager: "apt" };
    const run = sandbox.runBash(renderOffsiteInstallScript(spec), renderOffsitePayload({ password: "a password of 16+ characters", environment: {}, sshKey: "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----" }), "present");
    expect(run.status, run.stderr).toBe(0);
    const installed = Object.entries(sandbox.takeInstalled()).filter(([path]) => path.includes(`/${OFFSITE_DIR}/`));
    const byName = Object.fromEntries(installed.map(([path, content]) => [path.slice(path.lastIndexOf("/") + 1), content]));
    expect(Object.keys(byName).sort()).toEqual(["environment", "known_hosts", "password", "ssh-key"]);
    expect(byName.environment).toBe("");
    expect(byName.password).toBe("a password of 16+ characters");
    // Each secret file installed 0600 for the user, as the drift check expects of all three.
    const modes = readFileSync(join(sandbox.dir, "log"), "utf8")
      .split("\n")
      .map((l) => l.split("\0"))
      .filter((a) => a[0] === "install" && /\/(password|environment|ssh-key)$/.test(a[a.length - 2] ?? ""))
      .map((a) => `${a[a.length - 2].slice(a[a.length - 2].lastIndexOf("/") + 1)} ${a.slice(1, 7).join(" ")}`);
    expect(modes.sort()).toEqual(["environment -m 600 -o rootless -g gitea", "password -m 600 -o rootless -g gitea", "ssh-key -m 600 -o rootless -g gitea"]);
    expect(offsiteDrift(SPEC, FILES, IN_SYNC)).toEqual([]);
  });
});
