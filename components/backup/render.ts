/**
 * Backups, restore and upgrades, the pure half. One tool on the host does all three, so what a
 * backup is and how it comes back is written once: `gitea-backup-USER` (root-owned, rendered with
 * this instance's settings), run by a timer, by `pulumi up` before an image change and to restore.
 *
 * A backup is a snapshot taken while Gitea is stopped: `podman volume export` of both volumes and
 * a copy of the keys file, in a directory `gitea-backup-STAMP-REASON/` with a manifest. Chosen over
 * `gitea dump` because it is consistent without a database dump (SQLite and the repositories at the
 * same instant), it comes back byte for byte with `podman volume import` (a dump has no restore
 * command and its SQL needs a sqlite3 client the image lacks), and the same snapshot is what an
 * upgrade rolls back to. The price is Gitea being down for the seconds the export takes.
 */
import { Platform } from "../host/platform";
import { unitPaths } from "../giteaService/render";
import { KEYS_FILE } from "../keys/render";
import { CA_DIR, HEALTHY_FUNCTION, HealthTarget } from "../tls/render";
import { installContent, renderScript, sh, shq, trimBash } from "../render/shell";
import { checkScheduleFor, PERIODIC_SCHEDULES, renderScheduleService, renderSchedulePeriodic, renderScheduleTimer, SCHEDULE_CALENDAR_CHECK, SCHEDULE_REMOVE, scheduleInstall, scheduleRemoveVars, scheduleVars, ToolSchedule } from "../host/schedule";
import { OFFSITE_TOOL_COMMANDS, OFFSITE_TOOL_FUNCTIONS, OffsiteToolSpec, offsiteToolVars } from "../offsite/render";

/** Root-owned per-instance state: the deployed image and version, the restore and upgrade records. */
export const INSTANCE_STATE_DIR = "/var/lib/gitea-homelab/instance";

/** The `format=` line of every backup's manifest. */
export const BACKUP_FORMAT = "gitea-homelab-backup-1";

/** Where the tool keeps an upgrade in progress: its backup's name and the files it replaced (root only). */
export function upgradeStatePath(user: string): string {
  return `${INSTANCE_STATE_DIR}/${user}/pre-upgrade/state`;
}

/** The tool, root-owned: root runs it during `up`, so the rootless user must not be able to edit it. */
export function backupToolPath(user: string): string {
  return `/usr/local/libexec/gitea-homelab/gitea-backup-${user}`;
}

/** The backups' schedule: gitea-backup.timer runs `TOOL backup scheduled` (cron's periodic directory on OpenRC). */
export function backupSchedule(s: { init: Platform["init"]; user: string; schedule: string }): ToolSchedule {
  return { init: s.init, user: s.user, key: "backupSchedule", schedule: s.schedule, name: "gitea-backup", description: "Gitea backup", tool: backupToolPath(s.user), args: ["backup", "scheduled"] };
}

export { checkScheduleFor, PERIODIC_SCHEDULES };

/** Bash: Gitea's version from \`gitea --version\`, and the order of two versions (no sort -V in busybox). */
export const GITEA_VERSION_FUNCTIONS = trimBash(sh`
# The first X.Y.Z in \`gitea --version\`'s answer.
gitea_version_of() { sed -n 's/^[Gg]itea version \([0-9][0-9.]*[0-9]\).*/\1/p' | head -n 1; }
# Is version A older than B? Numerically, field by field (busybox sort has no -V). Usage: older A B
older() {
  local -a a b
  local i
  IFS=. read -ra a <<<"$1"
  IFS=. read -ra b <<<"$2"
  for ((i = 0; i < 4; i++)); do
    ((10#\${a[i]:-0} == 10#\${b[i]:-0})) || return $((10#\${a[i]:-0} < 10#\${b[i]:-0} ? 0 : 1))
  done
  return 1
}
`);

/** Every setting the tool is rendered with. */
export interface BackupSpec {
  init: Platform["init"];
  unitStyle: Platform["unitStyle"];
  user: string;
  containerName: string;
  volumes: string[];
  backupDir: string;
  keep: number;
  /** Where rollback waits for Gitea, and how long. */
  health: HealthTarget;
  healthTimeoutSeconds: number;
  /** Where every backup is copied right after it is made (repository "": nowhere). */
  offsite: OffsiteToolSpec;
}

/** The tool itself: `backup REASON`, `restore DIR [--force]`, `prepare-upgrade IMAGE ALLOW_DOWNGRADE`, `rollback`, `deployed IMAGE`. */
export function renderBackupTool(s: BackupSpec): string {
  const paths = unitPaths(s.unitStyle, s.containerName);
  return renderScript(
    {
      purpose: "Gitea's backups (volume snapshots taken while it is stopped, with its keys), restore, and upgrade rollback.",
      vars: {
        init: s.init,
        user: s.user,
        service: paths.service,
        unit_file: paths.unitFile,
        conf_file: paths.confFile ?? "",
        env_file: paths.envFile,
        container: s.containerName,
        volumes: s.volumes.join(" "),
        backup_dir: s.backupDir,
        keep: s.keep,
        keys_file: KEYS_FILE,
        instance_dir: INSTANCE_STATE_DIR,
        health_url: s.health.url,
        health_ca: s.health.caFile,
        ca_dir: CA_DIR,
        health_timeout: s.healthTimeoutSeconds,
        ...offsiteToolVars(s.offsite),
      },
    },
    sh`
state_dir=$instance_dir/$user
read -ra volume_names <<<"$volumes"

# Runs podman and systemctl --user as the rootless user, from root or as that user (the timer).
owner() {
  if ((EUID == 0)); then as_user "$user" "$@"; else "$@"; fi
}
service_ctl() { # VERB
  if [[ $init == systemd ]]; then
    owner systemctl --user "$1" "$service"
  else
    rc-service "$service" "$1" >/dev/null
  fi
}
service_active() {
  if [[ $init == systemd ]]; then owner systemctl --user is-active --quiet "$service"; else rc-service "$service" status >/dev/null 2>&1; fi
}
need_root() { ((EUID == 0)) || die "$1 needs root"; }
home=$(home_of "$user") || die "user $user does not exist"
keys=$home/$keys_file

# KEY's value in a key=value file; nothing when the file or the key is missing. Usage: field FILE KEY
field() {
  local line
  [[ -r $1 ]] || return 0
  # Split at the first =: read with IFS='=' would drop a value's last = (bash strips one).
  while IFS= read -r line; do
    if [[ $line == "$2="* ]]; then
      printf '%s\n' "\${line#*=}"
      return 0
    fi
  done <"$1"
}
# Backup files are read by root: a symbolic link planted in one must not make it read another file.
plain_file() { [[ -f $1 && ! -L $1 ]] || die "$1 is missing or not a plain file"; }
${GITEA_VERSION_FUNCTIONS}

do_backup() { # REASON: prints the new backup's name
  local reason=$1 stamp name part was_active=false volume
  stamp=$(date -u +%Y%m%dT%H%M%SZ)
  name=gitea-backup-$stamp-$reason
  part=$backup_dir/.partial-$name
  # What a backup that failed half-way left (the lock keeps every other run out).
  rm -rf "$backup_dir"/.partial-*
  (umask 077 && mkdir "$part")
  # Podman writes the exports as the rootless user.
  if ((EUID == 0)); then chown "$user:$(id -gn "$user")" "$part"; fi
  if service_active; then was_active=true; fi
  # A snapshot of a stopped Gitea is consistent: the database and the repositories at one instant.
  if [[ $was_active == true ]]; then
    # Whatever stops this script from here on, Gitea is started again.
    trap 'service_ctl start || true' EXIT
    service_ctl stop
  fi
  for volume in "\${volume_names[@]}"; do
    owner podman volume export "$volume" --output "$part/$volume.tar" || die "podman volume export $volume failed; Gitea is started again"
  done
  if [[ $was_active == true ]]; then
    trap - EXIT
    service_ctl start
  fi
  if [[ -f $keys ]]; then cp "$keys" "$part/keys.env"; fi
  # The server's own CA (tls own-ca), kept with the data like the keys.
  if [[ -f $home/$ca_dir/ca.key && -f $home/$ca_dir/ca.crt ]]; then
    cp "$home/$ca_dir/ca.key" "$part/tls-ca.key"
    cp "$home/$ca_dir/ca.crt" "$part/tls-ca.crt"
  fi
  {
    echo "format=gitea-homelab-backup-1"
    echo "created=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "reason=$reason"
    echo "image=$(field "$state_dir/deployed" image)"
    echo "gitea_version=$(field "$state_dir/deployed" version)"
    echo "volumes=$volumes"
  } >"$part/manifest"
  chmod 600 "$part"/*
  if ((EUID == 0)); then chown -R "$user:$(id -gn "$user")" "$part"; fi
  mv "$part" "$backup_dir/$name"
  printf 'name=%s\ncreated=%s\n' "$name" "$(field "$backup_dir/$name/manifest" created)" >"$backup_dir/.last-backup.tmp"
  mv "$backup_dir/.last-backup.tmp" "$backup_dir/last-backup"
  # Keep the newest $keep; names sort by time.
  local -a all
  shopt -s nullglob
  all=("$backup_dir"/gitea-backup-*/)
  shopt -u nullglob
  local excess=$((\${#all[@]} - keep)) i
  for ((i = 0; i < excess; i++)); do rm -rf "\${all[i]:?}"; done
  # Off the machine right away; a failed push keeps the backup and is retried by the next up.
  if [[ -n $offsite_repository ]]; then offsite_push "$name" || true; fi
  echo "$name"
}

volume_has_data() { # VOLUME
  local mountpoint
  # shellcheck disable=SC2016 # a Go template
  mountpoint=$(owner podman volume inspect "$1" --format '{{.Mountpoint}}' 2>/dev/null) || return 1
  [[ -n $(find "$mountpoint" -mindepth 1 -maxdepth 1 -print -quit 2>/dev/null) ]]
}

write_deployed() { # IMAGE VERSION
  mkdir -p "$state_dir"
  printf 'image=%s\nversion=%s\n' "$1" "$2" >"$state_dir/deployed.tmp"
  mv "$state_dir/deployed.tmp" "$state_dir/deployed"
}

do_restore() { # DIR [--force]: volumes, keys and the deployed version from a backup
  local from=$1 force=\${2:-} id volume was_active=false group
  need_root restore
  plain_file "$from/manifest"
  [[ $(field "$from/manifest" format) == gitea-homelab-backup-1 ]] || die "$from/manifest is not a gitea-homelab backup manifest (gitea-homelab:restoreFrom)"
  for volume in "\${volume_names[@]}"; do plain_file "$from/$volume.tar"; done
  plain_file "$from/keys.env"
  id="$(field "$from/manifest" created) $(field "$from/manifest" reason)"
  if [[ $force != --force ]]; then
    for volume in "\${volume_names[@]}"; do
      volume_has_data "$volume" || continue
      if [[ $(cat "$state_dir/restored-from" 2>/dev/null) == "$id" ]]; then
        echo "already restored from the backup made $id; the volumes hold its data"
        return 0
      fi
      die "volume $volume already holds data: a restore goes onto empty volumes only (destroy with gitea-homelab:destroyData true first, or unset gitea-homelab:restoreFrom)"
    done
  fi
  if service_active; then was_active=true; service_ctl stop; fi
  for volume in "\${volume_names[@]}"; do
    if [[ $force == --force ]] && owner podman volume exists "$volume"; then owner podman volume rm --force "$volume" >/dev/null; fi
    owner podman volume exists "$volume" || owner podman volume create "$volume" >/dev/null
    owner podman volume import "$volume" - <"$from/$volume.tar"
  done
  group=$(id -gn "$user")
  as_user "$user" mkdir -p "$(dirname "$keys")"
  install -m 600 -o "$user" -g "$group" "$from/keys.env" "$keys"
  if [[ -e $from/tls-ca.key || -e $from/tls-ca.crt ]]; then
    plain_file "$from/tls-ca.key"
    plain_file "$from/tls-ca.crt"
    as_user "$user" mkdir -p "$home/$ca_dir"
    chmod 700 "$home/$ca_dir"
    install -m 600 -o "$user" -g "$group" "$from/tls-ca.key" "$home/$ca_dir/ca.key"
    install -m 644 -o "$user" -g "$group" "$from/tls-ca.crt" "$home/$ca_dir/ca.crt"
  fi
  write_deployed "$(field "$from/manifest" image)" "$(field "$from/manifest" gitea_version)"
  printf '%s\n' "$id" >"$state_dir/restored-from"
  if [[ $was_active == true ]]; then service_ctl start; fi
  echo "restored $volumes, the keys and the CA (when it had one) from the backup made $id"
}

${OFFSITE_TOOL_FUNCTIONS}

# The files an upgrade replaces, put back on rollback.
service_files() {
  if [[ $init == systemd ]]; then echo "$home/$unit_file"; else echo "$unit_file"; echo "$conf_file"; fi
  echo "$home/$env_file"
}

do_prepare_upgrade() { # IMAGE ALLOW_DOWNGRADE
  local image=$1 allow=$2 previous_image previous_version new_version name file
  need_root prepare-upgrade
  previous_image=$(field "$state_dir/deployed" image)
  if [[ -z $previous_image ]]; then
    echo "no earlier deployment recorded: nothing to back up before starting $image"
    return 0
  fi
  [[ $previous_image != "$image" ]] || return 0
  previous_version=$(field "$state_dir/deployed" version)
  new_version=$(owner podman run --rm --entrypoint /app/gitea/gitea "$image" --version 2>/dev/null | gitea_version_of) || true
  if [[ -n $previous_version && -n $new_version ]] && older "$new_version" "$previous_version"; then
    if [[ $allow != true ]]; then
      die "refusing to downgrade Gitea from $previous_version ($previous_image) to $new_version ($image): Gitea cannot run an older binary on a database a newer one migrated. Set gitea-homelab:image back, or restore a backup made by $new_version and set gitea-homelab:allowDowngrade true"
    fi
    echo "downgrading Gitea from $previous_version to $new_version (gitea-homelab:allowDowngrade is true)"
  fi
  name=$(do_backup pre-upgrade | tail -n 1)
  rm -rf "$state_dir/pre-upgrade"
  (umask 077 && mkdir -p "$state_dir/pre-upgrade")
  local -a files=()
  while IFS= read -r file; do
    [[ ! -e $file ]] || files+=("\${file#/}")
  done < <(service_files)
  tar -C / -cpf "$state_dir/pre-upgrade/files.tar" "\${files[@]}"
  printf 'backup=%s\nimage=%s\nversion=%s\n' "$name" "$previous_image" "$previous_version" >"$state_dir/pre-upgrade/state"
  echo "backed up to $backup_dir/$name before switching from $previous_image to $image"
}

health_home=$home
${HEALTHY_FUNCTION}

do_rollback() { # puts back the service's files and the data of the pre-upgrade backup
  local pre=$state_dir/pre-upgrade backup image
  need_root rollback
  [[ -f $pre/state ]] || die "no upgrade to roll back"
  backup=$(field "$pre/state" backup) image=$(field "$pre/state" image)
  service_ctl stop || true
  tar -C / -xpf "$pre/files.tar"
  [[ $init != systemd ]] || owner systemctl --user daemon-reload
  do_restore "$backup_dir/$backup" --force >/dev/null
  write_deployed "$image" "$(field "$pre/state" version)"
  service_ctl start
  # The old release starts on data it knows; a short healthTimeoutSeconds must not fail it.
  wait_for $((health_timeout > 300 ? health_timeout : 300)) "$health_url to answer 200 after the rollback" healthy || die "rolled back to $image and the backup $backup, but Gitea is not healthy either"
  rm -rf "$pre"
  echo "rolled back to $image and the data of $backup_dir/$backup"
}

do_deployed() { # IMAGE: Gitea is healthy on IMAGE: record its version, end an upgrade
  local image=$1 version
  need_root deployed
  version=$(owner podman exec "$container" /app/gitea/gitea --version 2>/dev/null | gitea_version_of) || true
  write_deployed "$image" "$version"
  rm -rf "$state_dir/pre-upgrade"
  echo "Gitea \${version:-(version unknown)} healthy on $image"
}

# One at a time: the timer, an upgrade and a restore all stop Gitea.
if ((EUID == 0)); then
  mkdir -p "$state_dir" "$backup_dir"
  # The timer runs this as the rootless user: what root makes here stays the user's.
  : >>"$backup_dir/.lock"
  chown "$user:$(id -gn "$user")" "$backup_dir" "$backup_dir/.lock"
  chmod 700 "$backup_dir"
fi
exec 9>>"$backup_dir/.lock" || die "cannot open the lock $backup_dir/.lock"
flock 9
case \${1:-} in
  backup) do_backup "\${2:-manual}" ;;
  restore) do_restore "\${2:?usage: restore DIR [--force]}" "\${3:-}" ;;
  prepare-upgrade) do_prepare_upgrade "\${2:?usage: prepare-upgrade IMAGE ALLOW_DOWNGRADE}" "\${3:-false}" ;;
  rollback) do_rollback ;;
  deployed) do_deployed "\${2:?usage: deployed IMAGE}" ;;
${OFFSITE_TOOL_COMMANDS}
  *) die "usage: $0 backup [REASON] | restore DIR [--force] | prepare-upgrade IMAGE ALLOW_DOWNGRADE | rollback | deployed IMAGE | offsite-init | offsite-sync | offsite-check | offsite-restore SNAPSHOT" ;;
esac
`,
  );
}

export const renderBackupServiceUnit = (user: string) => renderScheduleService(backupSchedule({ init: "systemd", user, schedule: "off" }));
export const renderBackupTimerUnit = (schedule: string) => renderScheduleTimer(backupSchedule({ init: "systemd", user: "", schedule }));
export const renderPeriodicScript = (user: string) => renderSchedulePeriodic(backupSchedule({ init: "openrc", user, schedule: "off" }));

export interface BackupInstallSpec extends BackupSpec {
  /** An OnCalendar expression (systemd), one of PERIODIC_SCHEDULES (OpenRC), or "off". */
  schedule: string;
}

/** Installs the tool, the backup directory (0700, the rootless user's) and the schedule. */
export function renderBackupInstallScript(s: BackupInstallSpec): string {
  const schedule = backupSchedule(s);
  return renderScript(
    {
      purpose: "Gitea's backup tool, its backup directory and its schedule.",
      vars: { user: s.user, tool: backupToolPath(s.user), backup_dir: s.backupDir, ...scheduleVars(schedule, "daily, 03:00, Sun *-*-* 04:00") },
    },
    sh`
${SCHEDULE_CALENDAR_CHECK}
home=$(home_of "$user") || die "user $user does not exist"
group=$(id -gn "$user")
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
mkdir -p "$(dirname "$tool")"
${installContent(renderBackupTool(s), sh`"$tool"`, sh`755`, sh`root`, sh`root`)}
mkdir -p "$backup_dir"
chown "$user:$group" "$backup_dir"
# Backups hold the database and the keys.
chmod 700 "$backup_dir"
${scheduleInstall(schedule)}
echo "backups of Gitea go to $backup_dir"
`,
  );
}

/**
 * Destroy: the tool and the schedule go; the backups stay, whatever destroyData says. With
 * destroyData the record of the data (the image and version it last ran on) goes with it, so a
 * later up on new, empty volumes is not an upgrade of data that no longer exists.
 */
export function renderBackupRemoveScript(s: { init: Platform["init"]; user: string; destroyData: boolean }): string {
  return renderScript(
    {
      purpose: "Remove Gitea's backup tool and schedule; the backups themselves are kept.",
      vars: { tool: backupToolPath(s.user), data_record: s.destroyData ? `${INSTANCE_STATE_DIR}/${s.user}` : "", ...scheduleRemoveVars(backupSchedule({ ...s, schedule: "off" })) },
    },
    sh`
[[ -z $data_record ]] || rm -rf "$data_record"
${SCHEDULE_REMOVE}
rm -f "$tool"
echo "backup schedule removed; the backups are kept"
`,
  );
}

/** Restores a backup onto empty volumes (gitea-homelab:restoreFrom), before Gitea first starts. */
export function renderRestoreScript(user: string, from: string): string {
  return renderScript(
    { purpose: "Restore Gitea's volumes and keys from a backup (restoreFrom), onto empty volumes only.", vars: { tool: backupToolPath(user), from } },
    sh`
[[ -d $from ]] || die "gitea-homelab:restoreFrom: $from is not a directory on the host (a gitea-backup-* directory made by gitea-homelab)"
"$tool" restore "$from"
`,
  );
}

/** Before a new image replaces the one Gitea last ran healthy on: refuse a downgrade, back up. */
export interface UpgradeSpec {
  tool: string;
  image: string;
  allowDowngrade: boolean;
}

/**
 * Runs before the service's unit switches images (and again whenever the host runs another image
 * than the stack's, e.g. after a rollback): the tool compares versions, backs up, and keeps the
 * files an upgrade replaces, so that the health wait can roll back.
 */
export function renderUpgradeScript(s: UpgradeSpec): string {
  return renderScript(
    { purpose: "Before Gitea switches images: refuse a downgrade, back up the data, keep the files to roll back to.", vars: { tool: s.tool, image: s.image, allow_downgrade: String(s.allowDowngrade) } },
    sh`
"$tool" prepare-upgrade "$image" "$allow_downgrade"
`,
  );
}
