/**
 * Off-site copies, the pure half. The backup tool (components/backup/render.ts) pushes every
 * backup it makes to a restic repository right after making it, as the rootless user, and
 * records the result on the host; `up` installs restic and the repository's secrets (from
 * stdin, into 0600 files the tool reads), initialises the repository once, pushes what is
 * missing and schedules `restic check`. A backup directory goes in as `.` (restic stores
 * relative paths from there), so every snapshot has the same tree and unchanged data
 * deduplicates.
 *
 * Secrets never reach a command line: restic reads the password from a file
 * (RESTIC_PASSWORD_FILE) and the backend's credentials from its environment, which the tool
 * exports from a 0600 file of allowed names only.
 */
import { Platform } from "../host/platform";
import { Bash, installContent, renderScript, sh, trimBash } from "../render/shell";
import { SCHEDULE_CALENDAR_CHECK, SCHEDULE_REMOVE, scheduleInstall, scheduleRemoveVars, scheduleVars, ToolSchedule } from "../host/schedule";
import { keepArguments, OFFSITE_ENVIRONMENT_NAMES, OffsiteSettings } from "./settings";

/** The repository's secrets and settings, in the rootless user's home (0700; secrets 0600). */
export const OFFSITE_DIR = ".config/gitea-homelab/offsite";
/** The tool's record of the last push and check, in backupDir (the user's, so the timer can write it). */
export const OFFSITE_STATUS_FILE = "offsite-status";
/** Every snapshot the tool makes carries this tag; forget and restore look at no other. */
export const OFFSITE_TAG = "gitea-homelab";
/** The oldest restic whose exit codes tell a missing repository (10) from a wrong password (12). */
export const MIN_RESTIC_VERSION = "0.17.0";
/** How much of the repository's data the scheduled check reads back. */
export const CHECK_READ_SUBSET = "5%";
/** What restic sees as the sftp host: known_hosts pins the key under this name, whatever the address. */
export const SFTP_HOST_ALIAS = "gitea-homelab-offsite";

/** How long restic may take to answer (open the repository, unlock), and to do a push, check or restore. */
export const ANSWER_SECONDS = 60;
export const WORK_SECONDS = 6 * 3600;

/** The tool's settings for off-site copies; repository "" when there are none. */
export interface OffsiteToolSpec {
  repository: string;
  backend: OffsiteSettings["backend"] | "";
  keep: string[];
}

export function offsiteToolSpec(o: OffsiteSettings | undefined): OffsiteToolSpec {
  return o === undefined ? { repository: "", backend: "", keep: [] } : { repository: o.repository, backend: o.backend, keep: keepArguments(o.keep) };
}

export function offsiteToolVars(o: OffsiteToolSpec): Record<string, string> {
  return {
    offsite_repository: o.repository,
    offsite_backend: o.backend,
    offsite_keep: o.keep.join(" "),
    offsite_subdir: OFFSITE_DIR,
    offsite_status_name: OFFSITE_STATUS_FILE,
    offsite_tag: OFFSITE_TAG,
    offsite_env_names: OFFSITE_ENVIRONMENT_NAMES.join(" "),
    offsite_check_subset: CHECK_READ_SUBSET,
    offsite_host_alias: SFTP_HOST_ALIAS,
    offsite_answer_seconds: String(ANSWER_SECONDS),
    offsite_work_seconds: String(WORK_SECONDS),
  };
}

/**
 * The tool's off-site functions (bash). They use the tool's `field`, `die`, `do_restore`,
 * `volume_has_data`, `need_root`, and its variables user, home, backup_dir, state_dir.
 */
export const OFFSITE_TOOL_FUNCTIONS: Bash = trimBash(sh`
offsite_dir=$home/$offsite_subdir
offsite_status=$backup_dir/$offsite_status_name
read -ra offsite_keep_args <<<"$offsite_keep"

# Runs restic in DIR as the rootless user, with the repository's settings in its environment
# (never on its command line), stopped after SECONDS: restic retries an unreachable or refusing
# backend for 15 minutes, which no option shortens. Usage: offsite_restic SECONDS DIR ARGS...
offsite_restic() {
  local seconds=$1 dir=$2 name value line
  shift 2
  (
    cd "$dir"
    export RESTIC_REPOSITORY=$offsite_repository RESTIC_PASSWORD_FILE=$offsite_dir/password
    export RESTIC_CACHE_DIR=$home/.cache/restic HOME=$home
    [[ ! -f $offsite_dir/ca.pem ]] || export RESTIC_CACERT=$offsite_dir/ca.pem
    if [[ -f $offsite_dir/environment ]]; then
      # Split at the first =: read with IFS='=' would drop a value's last = (base64 padding).
      while IFS= read -r line; do
        name=\${line%%=*} value=\${line#*=}
        [[ -n $name ]] || continue
        # Only the backends' credentials: a name like LD_PRELOAD would run code.
        [[ " $offsite_env_names " == *" $name "* ]] || die "$offsite_dir/environment: $name is not a variable gitea-homelab passes to restic"
        export "$name=$value"
      done <"$offsite_dir/environment"
    fi
    local -a options=()
    if [[ $offsite_backend == sftp ]]; then
      options=(-o "sftp.args=-F /dev/null -i $offsite_dir/ssh-key -o UserKnownHostsFile=$offsite_dir/known_hosts -o HostKeyAlias=$offsite_host_alias -o StrictHostKeyChecking=yes -o BatchMode=yes -o IdentitiesOnly=yes -o ConnectTimeout=20")
    fi
    if ((EUID == 0)); then
      exec runuser -u "$user" -- timeout "$seconds" restic "\${options[@]}" "$@"
    else
      exec timeout "$seconds" restic "\${options[@]}" "$@"
    fi
  )
}

# Sets KEY=VALUE pairs in the off-site record, keeping the others. Usage: offsite_record KEY=VALUE...
offsite_record() {
  local -A record=()
  local line pair
  if [[ -f $offsite_status ]]; then
    while IFS= read -r line; do [[ $line != *=* ]] || record[\${line%%=*}]=\${line#*=}; done <"$offsite_status"
  fi
  for pair in "$@"; do record[\${pair%%=*}]=\${pair#*=}; done
  for key in "\${!record[@]}"; do printf '%s=%s\n' "$key" "\${record[$key]}"; done | sort >"$offsite_status.tmp"
  if ((EUID == 0)); then chown "$user:$(id -gn "$user")" "$offsite_status.tmp"; fi
  mv "$offsite_status.tmp" "$offsite_status"
}

# Why restic failed, from what it wrote to FILE, as one line of printable text: the reason of its
# last retry when it was retrying (stopped by the time limit), else its last line.
offsite_error() {
  local line
  line=$(grep 'returned error, retrying after' "$1" | tail -n 1 | sed 's/^.*retrying after [^:]*: //') || true
  [[ -n $line ]] || line=$(tail -n 1 "$1")
  # With --json restic says a fatal error as {"message_type":"exit_error",…,"message":"Fatal: …\n…"}.
  if [[ $line == '{"message_type":"exit_error"'* ]]; then line=$(sed 's/.*"message":"//; s/\\n.*//; s/"}$//' <<<"$line"); fi
  printf '%s' "$line" | tr -cd '[:print:]' | cut -c1-300
}

# Does the repository answer and open, within a minute? Restic's answer goes to FILE; 124: no answer in time.
offsite_opens() { offsite_restic "$offsite_answer_seconds" "$home" cat config >/dev/null 2>"$1"; }

# offsite_error, saying so when restic was stopped for taking too long. Usage: offsite_failure STATUS FILE
offsite_failure() {
  if (($1 == 124)); then printf 'no answer within the time limit: %s' "$(offsite_error "$2")"; else offsite_error "$2"; fi
}

# Removes locks a killed restic left (only stale ones: restic checks their process and age);
# every other run of restic here holds the tool's lock, so none is live.
offsite_unlock() { offsite_restic "$offsite_answer_seconds" "$home" unlock --quiet >/dev/null 2>&1 || true; }

# Pushes the backup NAME; the result goes to the record. Returns 1 when it failed.
offsite_push() {
  local name=$1 err out summary snapshot added total reason version now status=0
  err=$(mktemp)
  reason=$(field "$backup_dir/$name/manifest" reason) version=$(field "$backup_dir/$name/manifest" gitea_version)
  now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  # A repository that does not answer fails in a minute, not after restic's 15 of retries.
  offsite_opens "$err" || status=$?
  if ((status == 0)); then
    offsite_unlock
    out=$(offsite_restic "$offsite_work_seconds" "$backup_dir/$name" backup --json --quiet --tag "$offsite_tag" \
      --tag "reason=\${reason//[^A-Za-z0-9._-]/_}" --tag "gitea=\${version:-unknown}" --tag "backup=$name" . 2>"$err") || status=$?
  fi
  if ((status != 0)); then
    offsite_record push=failed "push_failed_at=$now" "push_error=$(offsite_failure "$status" "$err")" "push_failed_backup=$name"
    echo "gitea-homelab: could not copy $name off-site: $(offsite_failure "$status" "$err")" >&2
    rm -f "$err"
    return 1
  fi
  summary=$(grep '"message_type":"summary"' <<<"$out" | tail -n 1) || summary=
  snapshot=$(sed -n 's/.*"snapshot_id":"\([0-9a-f]*\)".*/\1/p' <<<"$summary")
  added=$(sed -n 's/.*"data_added":\([0-9]*\).*/\1/p' <<<"$summary")
  total=$(sed -n 's/.*"total_bytes_processed":\([0-9]*\).*/\1/p' <<<"$summary")
  offsite_record push=ok "pushed=$name" "snapshot=\${snapshot:0:8}" "pushed_at=$now" "data_added=\${added:-0}" "backup_bytes=\${total:-0}" push_error= push_failed_at= push_failed_backup=
  echo "copied $name off-site: snapshot \${snapshot:0:8}, \${added:-0} of \${total:-0} bytes new" >&2
  # The retention policy over this forge's snapshots, whatever host or path made them.
  offsite_restic "$offsite_work_seconds" "$home" forget --quiet --tag "$offsite_tag" --group-by '' "\${offsite_keep_args[@]}" --prune >/dev/null 2>"$err" || status=$?
  if ((status != 0)); then
    offsite_record forget=failed "forget_error=$(offsite_failure "$status" "$err")"
    echo "gitea-homelab: restic forget failed (the copy itself is made): $(offsite_failure "$status" "$err")" >&2
  else
    offsite_record forget=ok forget_error=
  fi
  rm -f "$err"
}

do_offsite_init() { # the repository opens with the password, or is made when it does not exist
  local err status=0
  need_root offsite-init
  err=$(mktemp)
  offsite_opens "$err" || status=$?
  case $status in
    0) echo "off-site repository $offsite_repository opens" ;;
    10)
      offsite_restic "$offsite_answer_seconds" "$home" init >/dev/null 2>"$err" || die "gitea-homelab:offsiteRepository: restic could not initialise $offsite_repository: $(offsite_error "$err")"
      echo "off-site repository $offsite_repository initialised"
      ;;
    12) die "gitea-homelab:offsitePassword does not open the repository $offsite_repository (restic: wrong password); it was initialised with another one" ;;
    124) die "gitea-homelab:offsiteRepository: no answer from $offsite_repository within $offsite_answer_seconds seconds (check it, gitea-homelab:offsiteEnvironment and the network): $(offsite_error "$err")" ;;
    *) die "gitea-homelab:offsiteRepository: restic cannot open $offsite_repository (check it and gitea-homelab:offsiteEnvironment): $(offsite_error "$err")" ;;
  esac
  rm -f "$err"
}

do_offsite_sync() { # pushes the newest local backup when the repository lacks it (a push that failed)
  local newest
  newest=$(field "$backup_dir/last-backup" name)
  if [[ -z $newest || ! -d $backup_dir/$newest ]]; then
    echo "no local backup yet: nothing to copy off-site"
    return 0
  fi
  if [[ $(field "$offsite_status" pushed) == "$newest" ]]; then
    echo "off-site copy up to date: $newest"
    return 0
  fi
  offsite_push "$newest" || die "gitea-homelab:offsiteRepository: could not copy $newest off-site: $(field "$offsite_status" push_error)"
}

do_offsite_check() { # restic check, reading back a part of the data; the result goes to the record
  local err now status=0
  err=$(mktemp)
  now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  offsite_opens "$err" || status=$?
  if ((status == 0)); then
    offsite_unlock
    offsite_restic "$offsite_work_seconds" "$home" check --quiet --read-data-subset "$offsite_check_subset" >/dev/null 2>"$err" || status=$?
  fi
  if ((status == 0)); then
    offsite_record check=ok "check_at=$now" check_error=
    echo "off-site repository checked: no errors"
  else
    offsite_record check=failed "check_at=$now" "check_error=$(offsite_failure "$status" "$err")"
    die "restic check of $offsite_repository failed: $(offsite_failure "$status" "$err")"
  fi
  rm -f "$err"
}

do_offsite_restore() { # SNAPSHOT: latest or an id; onto empty volumes, like restore
  local snapshot=$1 target=$backup_dir/.offsite-restore volume
  need_root offsite-restore
  if [[ -e $state_dir/restored-from ]]; then
    for volume in "\${volume_names[@]}"; do
      if volume_has_data "$volume"; then
        echo "already restored from $(cat "$state_dir/restored-from"); the volumes hold its data"
        return 0
      fi
    done
  fi
  local -a which=("$snapshot")
  [[ $snapshot != latest ]] || which=(latest --tag "$offsite_tag")
  rm -rf "$target"
  mkdir -m 700 "$target"
  chown "$user:$(id -gn "$user")" "$target"
  offsite_restic "$offsite_work_seconds" "$target" restore "\${which[@]}" --target "$target" --quiet ||
    die "gitea-homelab:restoreFrom: restic could not restore snapshot $snapshot from $offsite_repository"
  do_restore "$target"
  rm -rf "$target"
}
`);

export const OFFSITE_TOOL_COMMANDS = trimBash(sh`
  offsite-init) do_offsite_init ;;
  offsite-sync) do_offsite_sync ;;
  offsite-check) do_offsite_check ;;
  offsite-restore) do_offsite_restore "\${2:?usage: offsite-restore SNAPSHOT}" ;;
`);

/** The check's schedule: gitea-offsite-check.timer runs `TOOL offsite-check` (cron's periodic directory on OpenRC). */
export function offsiteCheckSchedule(s: { init: Platform["init"]; user: string; tool: string; check: string }): ToolSchedule {
  return { init: s.init, user: s.user, key: "offsiteCheck", schedule: s.check, name: "gitea-offsite-check", description: "Gitea off-site backup check", tool: s.tool, args: ["offsite-check"], randomizedDelay: "1h" };
}

/** The packages restic needs on each OS (sftp needs ssh). */
export const OFFSITE_PACKAGES: Record<Platform["packageManager"], { restic: string; ssh: string }> = {
  dnf: { restic: "restic", ssh: "openssh-clients" },
  apt: { restic: "restic", ssh: "openssh-client" },
  apk: { restic: "restic", ssh: "openssh-client" },
};

export interface OffsiteInstallSpec {
  init: Platform["init"];
  packageManager: Platform["packageManager"];
  user: string;
  tool: string;
  backend: OffsiteSettings["backend"];
  /** When restic check runs: a systemd calendar time, a periodic name (OpenRC), or off. */
  check: string;
  /** The known_hosts line (sftp) and the CA (https), neither of them secret. */
  knownHosts: string;
  caCertificate: string;
}

/** known_hosts for the pinned key, under the alias restic's ssh is told to look it up by. */
export function knownHostsLine(hostKey: string | undefined): string {
  return hostKey === undefined ? "" : `${SFTP_HOST_ALIAS} ${hostKey}`;
}

/**
 * The payload on stdin: the secrets, each base64 on one line (`password=…`, `environment=…`,
 * `ssh_key=…`), so no value can end a line early. `environment` is NAME=VALUE lines.
 */
export function renderOffsitePayload(secrets: { password: string; environment: Record<string, string>; sshKey?: string }): string {
  const b64 = (s: string) => Buffer.from(s, "utf8").toString("base64");
  const environment = Object.entries(secrets.environment)
    .map(([k, v]) => `${k}=${v}\n`)
    .join("");
  return `password=${b64(secrets.password)}\nenvironment=${b64(environment)}\nssh_key=${b64(secrets.sshKey === undefined ? "" : `${secrets.sshKey.trim()}\n`)}\n`;
}

/**
 * Installs restic (checking its version), the repository's secrets from stdin, the check's
 * schedule; opens the repository (making it the first time) and pushes the newest backup when
 * the repository lacks it.
 */
export function renderOffsiteInstallScript(s: OffsiteInstallSpec): string {
  const packages = OFFSITE_PACKAGES[s.packageManager];
  const schedule = offsiteCheckSchedule(s);
  return renderScript(
    {
      purpose: "Off-site backups: restic, the repository's secrets from stdin, its check schedule; open the repository, push what it lacks.",
      vars: {
        user: s.user,
        tool: s.tool,
        package_manager: s.packageManager,
        restic_package: packages.restic,
        ssh_package: s.backend === "sftp" ? packages.ssh : "",
        min_version: MIN_RESTIC_VERSION,
        subdir: OFFSITE_DIR,
        ...scheduleVars(schedule, "weekly, Sun *-*-* 05:00"),
        // Written with one final newline (printf '%s\n'), as drift.ts's digest expects.
        known_hosts: s.knownHosts.trim(),
        ca_certificate: s.caCertificate.trim(),
      },
    },
    sh`
${SCHEDULE_CALENDAR_CHECK}
missing=()
command -v restic >/dev/null || missing+=("$restic_package")
[[ -z $ssh_package ]] || command -v ssh >/dev/null || missing+=("$ssh_package")
if ((\${#missing[@]} > 0)); then
  echo "installing: \${missing[*]}"
  install_packages "$package_manager" "\${missing[@]}" >/dev/null
fi
version=$(restic version | awk '{print $2; exit}')
[[ $(printf '%s\n' "$min_version" "$version" | sort -V | head -n 1) == "$min_version" ]] ||
  die "restic $version is older than $min_version, which gitea-homelab needs (its exit codes tell a wrong password from a missing repository); install a newer restic, or unset gitea-homelab:offsiteRepository"

home=$(home_of "$user") || die "user $user does not exist"
group=$(id -gn "$user")
dir=$home/$subdir
as_user "$user" mkdir -p "$dir"
chmod 700 "$dir"
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
# The secrets, one base64 line each, from stdin (the payload after this script).
declare -A secret=()
# Split at the first =: read with IFS='=' would drop a last = of base64's padding.
while IFS= read -r line; do
  case \${line%%=*} in password | environment | ssh_key) secret[\${line%%=*}]=\${line#*=} ;; esac
done
[[ -n \${secret[password]:-} ]] || die "no off-site password on stdin"
# The environment file is always there (empty without credentials, as for sftp): drift expects it.
for name in password environment ssh_key; do
  file=$dir/\${name//_/-}
  if [[ -z \${secret[$name]:-} && $name != environment ]]; then
    rm -f "$file"
    continue
  fi
  if [[ -n \${secret[$name]:-} ]]; then
    (umask 077 && base64 -d <<<"\${secret[$name]}" >"$tmp")
  else
    : >"$tmp"
  fi
  install_file "$tmp" "$file" 600 "$user" "$group"
done
for pair in known_hosts:"$known_hosts" ca.pem:"$ca_certificate"; do
  file=$dir/\${pair%%:*} content=\${pair#*:}
  if [[ -z $content ]]; then
    rm -f "$file"
    continue
  fi
  printf '%s\n' "$content" >"$tmp"
  install_file "$tmp" "$file" 644 "$user" "$group"
done

${scheduleInstall(schedule)}

"$tool" offsite-init
"$tool" offsite-sync
`,
  );
}

/** Destroy: the schedule and the secrets go; the repository and everything in it stay. */
export function renderOffsiteRemoveScript(s: { init: Platform["init"]; user: string; tool: string }): string {
  return renderScript(
    {
      purpose: "Remove the off-site check schedule and the repository's secrets from the server; the repository itself is kept.",
      vars: { subdir: OFFSITE_DIR, ...scheduleRemoveVars(offsiteCheckSchedule({ ...s, check: "off" })) },
    },
    sh`
${SCHEDULE_REMOVE}
if home=$(home_of "$sched_user"); then rm -rf "\${home:?}/$subdir"; fi
echo "off-site check schedule and secrets removed; the repository and its snapshots are kept"
`,
  );
}

/** Fetches a snapshot from the repository and restores it onto empty volumes (restoreFrom offsite:…). */
export function renderOffsiteRestoreScript(tool: string, snapshot: string): string {
  return renderScript(
    { purpose: "Restore Gitea's volumes and keys from an off-site snapshot (restoreFrom offsite:), onto empty volumes only.", vars: { tool, snapshot } },
    sh`
"$tool" offsite-restore "$snapshot"
`,
  );
}
