import { spawnSync } from "child_process";
import { describe, expect, it } from "vitest";
import { Facts } from "../host/probeSession";
import { ALPINE, BACKUP_SPEC, FEDORA } from "../../test/helpers/fixtures";
import { fileDigest } from "../render/shell";
import { backupDrift, deployedDrift, lastBackupOf } from "./drift";
import {
  BackupInstallSpec,
  checkScheduleFor,
  GITEA_VERSION_FUNCTIONS,
  renderBackupServiceUnit,
  renderBackupTimerUnit,
  renderBackupTool,
  renderPeriodicScript,
  renderUpgradeScript,
} from "./render";

const SPEC: BackupInstallSpec = BACKUP_SPEC;

/** What the probe prints for a systemd host whose tool and timer are as rendered. */
const IN_SYNC: Facts = {
  tool: fileDigest(renderBackupTool(SPEC)),
  backup_dir: "700 rootless",
  service_unit: fileDigest(renderBackupServiceUnit("rootless")),
  timer_unit: fileDigest(renderBackupTimerUnit("daily")),
  manager: "active",
  timer_active: "active",
  timer_enabled: "enabled",
};

/** Runs bash with the tool's version functions defined. */
function bash(code: string): { status: number | null; stdout: string } {
  const run = spawnSync("bash", ["-c", `set -euo pipefail\n${GITEA_VERSION_FUNCTIONS}\n${code}`], { encoding: "utf8" });
  return { status: run.status, stdout: run.stdout.trim() };
}

describe("backups: the tool and its schedule", () => {
  it("is in sync when the tool, the units and the timer's state are as rendered", () => {
    expect(backupDrift(SPEC, IN_SYNC)).toEqual([]);
  });

  it("calls a disabled or stopped timer, an edited tool and a loosened backup directory drift", () => {
    expect(backupDrift(SPEC, { ...IN_SYNC, timer_active: "inactive", timer_enabled: "disabled" })).toEqual([
      "timer gitea-backup.timer: inactive, expected active",
      "timer gitea-backup.timer: disabled at boot, expected enabled",
    ]);
    expect(backupDrift(SPEC, { ...IN_SYNC, tool: "missing" })).toEqual(["backup tool /usr/local/libexec/gitea-homelab/gitea-backup-rootless: deleted"]);
    expect(backupDrift(SPEC, { ...IN_SYNC, tool: fileDigest("#!/bin/sh\nexit 0") })[0]).toMatch(/edited/);
    expect(backupDrift(SPEC, { ...IN_SYNC, backup_dir: "755 rootless" })).toEqual(["backup directory /var/backups/gitea-homelab: mode and owner 755 rootless, expected 700 rootless"]);
    expect(backupDrift(SPEC, undefined)).toEqual(["backups: state unknown (probe output unreadable)"]);
    // Linger off stops every user unit: the account's drift says so once, not each unit again.
    expect(backupDrift(SPEC, { ...IN_SYNC, manager: "inactive", timer_active: "inactive", timer_enabled: "" })).toEqual([]);
  });

  it("with the schedule off, expects no timer at all", () => {
    const off = { ...SPEC, schedule: "off" };
    const facts = { ...IN_SYNC, tool: fileDigest(renderBackupTool(off)), timer_unit: "missing", timer_active: "inactive", timer_enabled: "" };
    expect(backupDrift(off, facts)).toEqual([]);
    expect(backupDrift(off, { ...facts, timer_unit: IN_SYNC.timer_unit })).toEqual(["timer gitea-backup.timer: present, expected none (gitea-homelab:backupSchedule is off)"]);
  });

  it("on OpenRC, expects cron's periodic script and crond in the default runlevel", () => {
    const openrc: BackupInstallSpec = { ...SPEC, init: "openrc", unitStyle: "openrc", schedule: "weekly" };
    const facts = { tool: fileDigest(renderBackupTool(openrc)), backup_dir: "700 rootless", "periodic.weekly": fileDigest(renderPeriodicScript("rootless")), crond: "enabled" };
    expect(backupDrift(openrc, facts)).toEqual([]);
    expect(backupDrift(openrc, { ...facts, "periodic.weekly": undefined as unknown as string, crond: "disabled" })).toEqual([
      "/etc/periodic/weekly/gitea-backup-rootless: deleted",
      "crond: not in the default runlevel, expected enabled (it runs the backups)",
    ]);
  });

  it("takes any systemd calendar time on systemd, only cron's periodic names on OpenRC (naming the key)", () => {
    expect(checkScheduleFor(FEDORA, "Sun *-*-* 04:00:00")).toBe("Sun *-*-* 04:00:00");
    expect(checkScheduleFor(ALPINE, "weekly")).toBe("weekly");
    expect(checkScheduleFor(ALPINE, "off")).toBe("off");
    expect(() => checkScheduleFor(ALPINE, "03:00")).toThrow(/gitea-homelab:backupSchedule: on an OpenRC host \(alpine\) it must be one of hourly, daily, weekly, monthly or off/);
  });

  it("says when the last backup was made, or that there is none yet", () => {
    expect(lastBackupOf(undefined)).toBe("none yet");
    expect(lastBackupOf({ last_backup_name: "gitea-backup-20261127T030000Z-scheduled", last_backup_created: "2026-11-27T03:00:04Z" })).toBe(
      "gitea-backup-20261127T030000Z-scheduled at 2026-11-27T03:00:04Z",
    );
  });

  it("puts the tool's settings in quoted variables, never in its text", () => {
    const tool = renderBackupTool({ ...SPEC, backupDir: "/srv/it's $HOME" });
    expect(tool).toContain(`backup_dir='/srv/it'\\''s $HOME'`);
    expect(tool.split("\n").filter((l) => l.includes("$HOME") && !l.startsWith("backup_dir="))).toEqual([]);
    expect(renderBackupTimerUnit("Sun *-*-* 04:00:00")).toContain("OnCalendar=Sun *-*-* 04:00:00");
    expect(renderBackupTimerUnit("%h")).toContain("OnCalendar=%%h");
  });
});

describe("upgrades: versions and what Gitea last ran on", () => {
  it("reads Gitea's version from both spellings of its --version line", () => {
    expect(bash(`echo 'Gitea version 1.26.4 built with GNU Make 4.4.1, go1.25.4 : bindata, sqlite' | gitea_version_of`).stdout).toBe("1.26.4");
    expect(bash(`echo 'gitea version 1.25.5 built with go1.26.8 : sqlite, sqlite_unlock_notify' | gitea_version_of`).stdout).toBe("1.25.5");
    expect(bash(`echo 'no version here' | gitea_version_of`).stdout).toBe("");
  });

  it.each([
    ["1.25.5", "1.26.4", true],
    ["1.26.4", "1.25.5", false],
    ["1.26.4", "1.26.4", false],
    ["1.9.0", "1.10.0", true],
    ["1.26", "1.26.1", true],
    ["1.26.10", "1.26.9", false],
    ["2.0.0", "1.99.99", false],
  ])("older %s %s is %s (numeric, field by field)", (a, b, older) => {
    expect(bash(`older ${a} ${b}`).status).toBe(older ? 0 : 1);
  });

  it("is drift when Gitea last ran healthy on another image than the stack's (a rollback), never on a fresh host", () => {
    expect(deployedDrift("localhost/gitea:1.26.4-rootless", { deployed_image: "none", upgrade: "none" })).toEqual([]);
    expect(deployedDrift("localhost/gitea:1.26.4-rootless", { deployed_image: "localhost/gitea:1.26.4-rootless", upgrade: "none" })).toEqual([]);
    expect(deployedDrift("localhost/gitea:9-broken", { deployed_image: "localhost/gitea:1.26.4-rootless", upgrade: "none" })).toEqual([
      "Gitea last ran healthy on localhost/gitea:1.26.4-rootless, expected localhost/gitea:9-broken (an upgrade that rolled back or did not finish); pulumi up tries it again, backing up first",
    ]);
    expect(deployedDrift("x", undefined)[0]).toMatch(/state unknown/);
  });

  it("passes the image and the downgrade override to the tool as quoted values", () => {
    const script = renderUpgradeScript({ tool: "/usr/local/libexec/gitea-homelab/gitea-backup-rootless", image: "registry.example.com/gitea:1.26.4;reboot", allowDowngrade: false });
    expect(script).toContain("image='registry.example.com/gitea:1.26.4;reboot'");
    expect(script).toContain('"$tool" prepare-upgrade "$image" "$allow_downgrade"');
  });
});
