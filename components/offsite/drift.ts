/**
 * Off-site copies, their probe and comparison. A preview makes no call to the repository: it
 * reads what the backup tool recorded on the host after its last push and check, so a push
 * that failed, a failed check or a repository that no longer opens shows as drift, and `up`
 * pushes what is missing.
 */
import { HostCheck } from "../host/checkedCommand";
import { Facts, ProbeBody } from "../host/probeSession";
import { fileDigest, sh } from "../render/shell";
import { SCHEDULE_PROBE, scheduleDrift, scheduleProbeVars } from "../host/schedule";
import { OFFSITE_DIR, OFFSITE_STATUS_FILE, offsiteCheckSchedule, OffsiteInstallSpec } from "./render";

/** Which secret files the host must hold (their content is secret: only presence and mode are compared). */
export interface OffsiteSecretFiles {
  environment: boolean;
  sshKey: boolean;
}

export function renderOffsiteProbe(user: string, backupDir: string): ProbeBody {
  return {
    vars: {
      subdir: OFFSITE_DIR,
      status_file: `${backupDir}/${OFFSITE_STATUS_FILE}`,
      last_backup: `${backupDir}/last-backup`,
      ...scheduleProbeVars(offsiteCheckSchedule({ init: "systemd", user, tool: "", check: "off" })),
    },
    body: sh`
if command -v restic >/dev/null; then echo restic=installed; else echo restic=missing; fi
if [[ -r $last_backup ]]; then echo "newest_local=$(sed -n 's/^name=//p' "$last_backup" | head -n 1)"; fi
if [[ -r $status_file ]]; then
  while IFS= read -r line; do
    case \${line%%=*} in push | pushed | snapshot | pushed_at | push_error | push_failed_at | check | check_at | check_error) echo "status_$line" ;; esac
  done <"$status_file"
fi
if ! user_info "$sched_user"; then
  echo account=missing
  return 0
fi
dir=$user_home/$subdir
for name in password environment ssh-key; do
  echo "file.$name=$(stat -c '%a %U' "$dir/$name" 2>/dev/null || echo missing)"
done
echo "known_hosts=$(file_digest "$dir/known_hosts")"
echo "ca=$(file_digest "$dir/ca.pem")"
${SCHEDULE_PROBE}
`,
  };
}

/** How the host's off-site setup and its last push and check differ from what up makes. */
export function offsiteDrift(s: OffsiteInstallSpec, files: OffsiteSecretFiles, facts: Facts | undefined): string[] {
  if (facts === undefined || facts.restic === undefined) return ["off-site backups: state unknown (probe output unreadable)"];
  const drift: string[] = [];
  if (facts.restic === "missing") drift.push("restic: not installed (off-site backups need it)");
  // What the tool recorded: the repository lacks the newest backup, or its last check failed.
  const newest = facts.newest_local;
  if (newest && facts.status_pushed !== newest) {
    const why = facts.status_push === "failed" ? `; the last push failed at ${facts.status_push_failed_at ?? "?"}: ${facts.status_push_error || "(no message)"}` : "";
    drift.push(`off-site copy: the newest backup ${newest} is not in the repository (last copied: ${facts.status_pushed || "none"})${why}; pulumi up copies it`);
  }
  if (facts.status_check === "failed") drift.push(`off-site check: restic check failed at ${facts.status_check_at ?? "?"}: ${facts.status_check_error || "(no message)"}`);
  if (facts.account === "missing") return [...drift, `off-site backups: user ${s.user} missing`];
  const expectedFiles: Array<[string, boolean]> = [["password", true], ["environment", files.environment], ["ssh-key", files.sshKey]];
  for (const [name, wanted] of expectedFiles) {
    const found = facts[`file.${name}`] ?? "missing";
    if (wanted && found !== `600 ${s.user}`) drift.push(`off-site ${name} file: ${found === "missing" ? "missing" : `mode and owner ${found}`}, expected 600 ${s.user}`);
    if (!wanted && found !== "missing") drift.push(`off-site ${name} file: present, expected none`);
  }
  // As the install writes them: trimmed, with one final newline.
  const expectedDigest = (content: string) => (content.trim() === "" ? "missing" : fileDigest(content.trim()));
  if (facts.known_hosts !== expectedDigest(s.knownHosts)) drift.push(`off-site known_hosts: ${facts.known_hosts === "missing" ? "missing" : "edited"} (gitea-homelab:offsiteHostKey)`);
  if (facts.ca !== expectedDigest(s.caCertificate)) drift.push(`off-site CA certificate: ${facts.ca === "missing" ? "missing" : "differs"} (gitea-homelab:offsiteCaCertificate)`);
  return [...drift, ...scheduleDrift(offsiteCheckSchedule(s), facts, "the off-site check")];
}

/** The last push the host recorded: "SNAPSHOT (BACKUP) at TIME", or that there is none yet. */
export function lastOffsiteBackupOf(facts: Facts | undefined): string {
  if (!facts?.status_snapshot || !facts.status_pushed) return "none yet";
  return `${facts.status_snapshot} (${facts.status_pushed}) at ${facts.status_pushed_at ?? "an unknown time"}`;
}

export function offsiteCheck(user: string, backupDir: string, files: OffsiteSecretFiles, expected: (init: OffsiteInstallSpec["init"], packageManager: OffsiteInstallSpec["packageManager"]) => OffsiteInstallSpec): HostCheck {
  return { probe: renderOffsiteProbe(user, backupDir), compare: (facts, platform) => offsiteDrift(expected(platform.init, platform.packageManager), files, facts) };
}
