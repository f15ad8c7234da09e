/** The backup tool and its schedule, their probe and comparison; the probe also reads when the last backup was made. */
import { HostCheck } from "../host/checkedCommand";
import { PROJECT } from "../host/configError";
import type { HostVerification } from "../host/host";
import { Platform } from "../host/platform";
import { Facts, ProbeBody } from "../host/probeSession";
import { fileDigest, sh } from "../render/shell";
import { SCHEDULE_PROBE, scheduleDrift, scheduleProbeVars } from "../host/schedule";
import { BACKUP_FORMAT, backupSchedule, backupToolPath, BackupInstallSpec, INSTANCE_STATE_DIR, renderBackupTool, upgradeStatePath } from "./render";

export function renderBackupProbe(user: string, backupDir: string): ProbeBody {
  return {
    vars: { user, tool: backupToolPath(user), backup_dir: backupDir, ...scheduleProbeVars(backupSchedule({ init: "systemd", user, schedule: "off" })) },
    body: sh`
echo "tool=$(file_digest "$tool")"
echo "backup_dir=$(stat -c '%a %U' "$backup_dir" 2>/dev/null || echo missing)"
if [[ -r $backup_dir/last-backup ]]; then
  while IFS= read -r line; do
    case \${line%%=*} in name | created) echo "last_backup_$line" ;; esac
  done <"$backup_dir/last-backup"
fi
if ! user_info "$user"; then
  echo account=missing
  return 0
fi
${SCHEDULE_PROBE}
`,
  };
}

/** How the tool and schedule on the host differ from the rendered ones. */
export function backupDrift(s: BackupInstallSpec, facts: Facts | undefined): string[] {
  if (facts === undefined || facts.tool === undefined) return ["backups: state unknown (probe output unreadable)"];
  const drift: string[] = [];
  const tool = backupToolPath(s.user);
  if (facts.tool === "missing") drift.push(`backup tool ${tool}: deleted`);
  else if (facts.tool !== fileDigest(renderBackupTool(s))) drift.push(`backup tool ${tool}: edited (differs from the rendered one)`);
  if (facts.backup_dir !== `700 ${s.user}`) drift.push(`backup directory ${s.backupDir}: ${facts.backup_dir === "missing" ? "missing" : `mode and owner ${facts.backup_dir}`}, expected 700 ${s.user}`);
  if (facts.account === "missing") return [...drift, `backups: user ${s.user} missing`];
  return [...drift, ...scheduleDrift(backupSchedule(s), facts, "the backups")];
}

/** The last backup the host has, as the probe read it: "NAME at TIME", or that there is none yet. */
export function lastBackupOf(facts: Facts | undefined): string {
  if (!facts?.last_backup_name) return "none yet";
  return `${facts.last_backup_name} at ${facts.last_backup_created ?? "an unknown time"}`;
}

export function backupCheck(user: string, backupDir: string, expected: (platform: Platform) => BackupInstallSpec): HostCheck {
  return { probe: renderBackupProbe(user, backupDir), compare: (facts, platform) => backupDrift(expected(platform), facts) };
}

/** Read-only: the image Gitea last ran healthy on (the tool's record), and whether an upgrade is pending. */
export function renderDeployedProbe(user: string): ProbeBody {
  return {
    vars: { deployed: `${INSTANCE_STATE_DIR}/${user}/deployed`, pending: upgradeStatePath(user) },
    body: sh`
image=
[[ ! -r $deployed ]] || image=$(sed -n 's/^image=//p' "$deployed")
echo "deployed_image=\${image:-none}"
if [[ -e $pending ]]; then echo upgrade=pending; else echo upgrade=none; fi
`,
  };
}

/** Gitea runs another image than the stack's: an upgrade that rolled back, or one never finished. */
export function deployedDrift(image: string, facts: Facts | undefined): string[] {
  const deployed = facts?.deployed_image;
  if (deployed === undefined) return ["Gitea's image: state unknown (probe output unreadable)"];
  // Nothing deployed yet: a fresh host, or one whose Gitea predates the record.
  if (deployed === "none" || deployed === image) return [];
  return [`Gitea last ran healthy on ${deployed}, expected ${image} (an upgrade that rolled back or did not finish); pulumi up tries it again, backing up first`];
}

export function deployedCheck(user: string, image: string): HostCheck {
  return { probe: renderDeployedProbe(user), compare: (facts) => deployedDrift(image, facts) };
}

/**
 * restoreFrom, checked in the preview's look at the host: a directory holding a gitea-homelab
 * backup manifest, unless a restore already ran on this instance (the tool's record), when
 * nothing more is restored and the directory may have gone with the backups' rotation.
 */
export function restoreSourceCheck(user: string, from: string): HostVerification {
  return {
    probe: {
      vars: { from, restored_record: `${INSTANCE_STATE_DIR}/${user}/restored-from` },
      body: sh`
if [[ -e $restored_record ]]; then echo restored=yes; else echo restored=no; fi
if [[ ! -d $from ]]; then
  echo source=missing
elif [[ ! -f $from/manifest || -L $from/manifest ]]; then
  echo source=no-manifest
else
  echo "source_format=$(sed -n 's/^format=//p' "$from/manifest" | head -n 1)"
fi
`,
    },
    problems: (facts) => {
      if (facts === undefined || facts.restored !== "no") return [];
      const key = `${PROJECT}:restoreFrom`;
      const what = "a gitea-backup-* directory in backupDir, made by gitea-homelab";
      if (facts.source === "missing") return [`${key}: ${from} is not a directory on the host; name ${what}`];
      if (facts.source === "no-manifest") return [`${key}: ${from} has no manifest, so it is no backup; name ${what}`];
      if (facts.source_format !== BACKUP_FORMAT) return [`${key}: ${from}/manifest is not a gitea-homelab backup manifest (format ${JSON.stringify(facts.source_format ?? "")}, expected ${BACKUP_FORMAT})`];
      return [];
    },
  };
}
