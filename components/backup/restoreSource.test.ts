/**
 * restoreFrom is checked in the preview's look at the host: the probe runs for real in bash on
 * scratch directories, and what it finds fails the preview naming the key, or passes.
 */
import { spawnSync } from "child_process";
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from "fs";
import { tmpdir } from "os";
import { join } from "path";
import { describe, expect, it } from "vitest";
import { parseProbeSession, renderProbeSessionScript } from "../host/probeSession";
import { restoreSourceCheck } from "./drift";

/** A user no host has, so the tool's restore record is absent. */
const USER = "gh-test-nobody";

function look(from: string): string[] {
  const check = restoreSourceCheck(USER, from);
  const script = renderProbeSessionScript([{ name: "restore-source", probe: check.probe }], mkdtempSync(join(tmpdir(), "gh-records-")));
  const run = spawnSync("bash", ["-c", script, "gitea-homelab", "systemd"], { encoding: "utf8" });
  expect(run.status).toBe(0);
  const parsed = parseProbeSession(`${run.stdout}\n@@gitea-homelab-session exit 0`, "root@host:22");
  return check.problems(parsed.sections["restore-source"]);
}

describe("restoreFrom, checked on the host before anything runs", () => {
  const dir = mkdtempSync(join(tmpdir(), "gh-restore-source-"));
  const backup = join(dir, "gitea-backup-20261207T010203Z-scheduled");
  mkdirSync(backup);
  writeFileSync(join(backup, "manifest"), "format=gitea-homelab-backup-1\ncreated=2026-12-07T01:02:03Z\n");

  it("passes a gitea-homelab backup directory", () => {
    expect(look(backup)).toEqual([]);
  });

  it("refuses what is no backup, naming the key and the path", () => {
    expect(look(join(dir, "gone"))).toEqual([`gitea-homelab:restoreFrom: ${dir}/gone is not a directory on the host; name a gitea-backup-* directory in backupDir, made by gitea-homelab`]);
    expect(look(dir)).toEqual([`gitea-homelab:restoreFrom: ${dir} has no manifest, so it is no backup; name a gitea-backup-* directory in backupDir, made by gitea-homelab`]);
    const other = join(dir, "other");
    mkdirSync(other);
    writeFileSync(join(other, "manifest"), "format=borg\n");
    expect(look(other)).toEqual([`gitea-homelab:restoreFrom: ${other}/manifest is not a gitea-homelab backup manifest (format "borg", expected gitea-homelab-backup-1)`]);
    // A manifest that is a link (to any file) is not read: the tool refuses it too.
    const linked = join(dir, "linked");
    mkdirSync(linked);
    symlinkSync(join(backup, "manifest"), join(linked, "manifest"));
    expect(look(linked)).toEqual([expect.stringContaining("has no manifest")]);
  });

  it("says nothing once a restore ran on this instance (the backup may since have rotated away), or when the look found nothing", () => {
    const { problems } = restoreSourceCheck(USER, "/nowhere");
    expect(problems({ restored: "yes", source: "missing" })).toEqual([]);
    expect(problems({ restored: "no", source: "missing" })).toHaveLength(1);
    expect(problems(undefined)).toEqual([]);
  });
});
