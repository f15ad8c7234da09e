/**
 * Gitea itself, the pure half: its settings as GITEA__* variables (no web installer), its secret
 * environment file, the image made present in the rootless user's storage, the wait for
 * /api/healthz, and the admin account.
 */
import { Platform } from "../host/platform";
import { renderEnvFile } from "../render/unitFile";
import { renderScript, sh } from "../render/shell";
import { HEALTHY_FUNCTION, HealthTarget } from "../tls/render";

/** Ports inside the rootless image. */
export const GITEA_HTTP_PORT = 3000;

export const GITEA_SSH_PORT = 2222;

export interface GiteaServerSettings {
  publicHost: string;
  rootUrl: string;
  /** The SSH port users clone through: the published one. */
  sshPort: number;
  database: "sqlite3";
}

/** Non-secret Gitea settings; Gitea's image applies GITEA__section__KEY variables at every start. */
export function giteaEnvironment(s: GiteaServerSettings): Record<string, string> {
  return {
    GITEA__security__INSTALL_LOCK: "true",
    GITEA__server__DOMAIN: s.publicHost,
    GITEA__server__SSH_DOMAIN: s.publicHost,
    GITEA__server__ROOT_URL: s.rootUrl,
    GITEA__server__HTTP_PORT: String(GITEA_HTTP_PORT),
    GITEA__server__SSH_PORT: String(s.sshPort),
    GITEA__server__SSH_LISTEN_PORT: String(GITEA_SSH_PORT),
    GITEA__server__START_SSH_SERVER: "true",
    GITEA__database__DB_TYPE: s.database,
  };
}

/**
 * Secrets Pulumi may hold because they are safe to rotate. The keys Gitea encrypts with are not
 * here: they are made on the host and kept with the data (components/keys).
 */
export interface GiteaSecrets {
  runnerRegistrationToken: string;
  /** The owner's settings when they are secret (GITEA__ variables: settings.ts). */
  settings?: Record<string, string>;
}

/** The 0600 environment file's content: the secrets Gitea needs, never put in the unit file. */
export function renderGiteaSecretEnv(s: GiteaSecrets): string {
  return renderEnvFile({ GITEA_RUNNER_REGISTRATION_TOKEN: s.runnerRegistrationToken, ...s.settings });
}

/** Makes the image present in the user's storage before the unit starts: loaded from a local archive, else pulled. */
export function renderImageScript(user: string, image: string, archive?: string): string {
  return renderScript(
    { purpose: "Make the image present in the rootless user's storage: loaded from an archive, else pulled.", vars: { user, image, archive: archive ?? "" } },
    sh`
if as_user "$user" podman image exists "$image"; then
  echo "image $image present"
elif [[ -n $archive ]]; then
  [[ -r $archive ]] || die "image archive $archive does not exist on the host (gitea-homelab:imageArchive)"
  as_user "$user" podman load --quiet --input "$archive"
  as_user "$user" podman image exists "$image" || die "$archive does not contain $image (gitea-homelab:image / gitea-homelab:imageArchive)"
  echo "image $image loaded from $archive"
else
  as_user "$user" podman pull --quiet "$image" >/dev/null || die "cannot pull $image (gitea-homelab:image); on a host without internet set gitea-homelab:imageArchive"
  echo "image $image pulled"
fi
`,
  );
}

export interface HealthSpec {
  init: Platform["init"];
  user: string;
  service: string;
  /** Where OpenRC hosts log the service (systemd hosts: the journal). */
  logFile: string;
  /** Where /api/healthz answers, and the certificate that verifies it over https. */
  health: HealthTarget;
  timeoutSeconds: number;
  /** The image the service now runs, and the backup tool that records it or rolls an upgrade back. */
  image: string;
  backupTool?: string;
  /** Where the backup tool keeps an upgrade in progress (backup/render.ts). */
  upgradeStateFile?: string;
}

/** Restarts since the wait began after which Gitea is taken to be in a restart loop. */
export const HEALTH_MAX_RESTARTS = 3;

/**
 * Waits for GET /api/healthz = 200 on the published port. Healthy: the tool records the image and
 * Gitea's version (the next upgrade compares with it). Not healthy within the timeout, or exiting
 * again and again (a setting Gitea refuses, a broken image: waiting longer cannot help): prints
 * the unit's last journal lines and Gitea's last fatal line and, when an upgrade is in progress,
 * rolls back to the previous image and the data backed up before it, then fails saying so.
 */
export function renderHealthScript(s: HealthSpec): string {
  return renderScript(
    {
      purpose: "Wait until Gitea answers /api/healthz on its published port (https when it serves TLS); roll a failed upgrade back.",
      vars: {
        init: s.init,
        user: s.user,
        service: s.service,
        log_file: s.logFile,
        health_url: s.health.url,
        health_ca: s.health.caFile,
        timeout: s.timeoutSeconds,
        max_restarts: HEALTH_MAX_RESTARTS,
        image: s.image,
        tool: s.backupTool ?? "",
        upgrade_state: s.upgradeStateFile ?? "",
      },
    },
    sh`
health_home=$(home_of "$user") || die "user $user does not exist"
${HEALTHY_FUNCTION}
# Gitea whose web server failed to start (with ACME: no certificate) goes on running without
# it, so nothing starts it again: this wait restarts it, and counts those failures as restarts.
web_failures() { new_log_lines | grep -c 'Failed to start server' || true; }
# How often the service was started again after it exited. systemd counts it; on OpenRC,
# supervise-daemon does not say, so Gitea's fatal lines in the service's log count instead.
restarts() {
  local count
  if [[ $init == systemd ]]; then
    count=$(userctl "$user" show --property=NRestarts --value "$service" 2>/dev/null) || count=0
    [[ $count =~ ^[0-9]+$ ]] || count=0
    echo "$((count + $(web_failures)))"
  else
    new_log_lines | grep -c -e '\[F\]' -e 'level=fatal' -e 'Failed to start server' || true
  fi
}
restart_after_web_failure() {
  local seen
  seen=$(web_failures)
  ((seen > web_failures_seen)) || return 0
  web_failures_seen=$seen
  echo "Gitea's web server did not start; restarting Gitea" >&2
  if [[ $init == systemd ]]; then userctl "$user" restart "$service" || true; else rc-service "$service" restart >/dev/null 2>&1 || true; fi
}
log_size() { if [[ -f $log_file ]]; then stat -c %s "$log_file"; else echo 0; fi; }
# What the service logged since the wait began.
new_log_lines() {
  if [[ $init == systemd ]]; then
    journalctl --no-pager --output=cat --since="@$wait_started" _UID="$(id -u "$user")" _SYSTEMD_USER_UNIT="$service" 2>/dev/null || true
  elif [[ -f $log_file ]]; then
    tail -c "+$((log_offset + 1))" "$log_file" || true
  fi
}
# systemd gives up on a unit that failed to start too often in a row: it stays failed.
gave_up() { [[ $init == systemd ]] && userctl "$user" is-failed --quiet "$service"; }

wait_started=$(date +%s)
log_offset=$(log_size)
web_failures_seen=0
restarts_before=$(restarts)
outcome=timeout
deadline=$((SECONDS + timeout)) waited_from=$SECONDS
while :; do
  if healthy; then
    outcome=healthy
    break
  fi
  if gave_up || (($(restarts) - restarts_before >= max_restarts)); then
    outcome=exiting
    break
  fi
  restart_after_web_failure
  ((SECONDS < deadline)) || break
  sleep 2
done

if [[ $outcome != healthy ]]; then
  if [[ $outcome == exiting ]]; then
    # Gitea's fatal lines; with ACME, a certificate it could not obtain ends its web server with an [E] line.
    fatal=$(new_log_lines | grep -e '\[F\]' -e 'level=fatal' -e '^Error:' -e 'Failed to start server' | tail -n 1) || true
    reason="Gitea keeps exiting and being started again, so it will not become healthy (stopped waiting after $((SECONDS - waited_from)) seconds): \${fatal:-see the journal lines below}"
  else
    reason="Gitea did not become healthy within $timeout seconds (gitea-homelab:healthTimeoutSeconds)"
  fi
  # What went wrong first, right under the command line the provider quotes; the detail after.
  echo "gitea-homelab: $reason" >&2
  echo "last journal lines of $service:" >&2
  if [[ $init == systemd ]]; then
    journalctl --no-pager --lines=40 _UID="$(id -u "$user")" _SYSTEMD_USER_UNIT="$service" >&2 || true
  else
    tail -n 40 "$log_file" >&2 || true
  fi
  if [[ -n $tool && -f $upgrade_state ]]; then
    echo "rolling back the upgrade to $image:" >&2
    "$tool" rollback >&2 ||
      die "$reason; on $image, and the rollback failed too (see above); the backup made before the upgrade is in the backup directory"
    die "$reason; on $image: ROLLED BACK to the previous image and the data backed up before the upgrade; the journal lines above say why. Fix gitea-homelab:image, or set it back"
  fi
  exit 1
fi
echo "Gitea healthy at $health_url"
if [[ -n $tool ]]; then "$tool" deployed "$image"; fi
`,
  );
}

export interface AdminSpec {
  user: string;
  containerName: string;
  username: string;
  email: string;
}

/**
 * Creates the admin account, or sets the password of the existing one. The password arrives on
 * stdin; `gitea admin user create/change-password` accept it only as an argument, so it is in
 * that one process's argv inside the container for the second it runs (the README says so).
 */
export function renderAdminScript(s: AdminSpec): string {
  return renderScript(
    { purpose: "Gitea admin account: created, or its password set to the stack's adminPassword.", vars: { user: s.user, container: s.containerName, admin: s.username, email: s.email } },
    sh`
gitea_cli() { as_user "$user" podman exec --interactive "$container" gitea "$@"; }
list_names() { gitea_cli admin user list "$@" </dev/null | awk 'NR > 1 { print $2 }'; }
# The password goes from stdin into the container's shell, never onto the SSH command line.
with_password() {
  # shellcheck disable=SC2016 # expanded by the container's shell
  as_user "$user" podman exec --interactive "$container" sh -c 'exec gitea admin user "$@" --password "$(cat)"' gitea-homelab "$@" >/dev/null
}
if list_names --admin | grep -qxF -- "$admin"; then
  # Runs only when the account is (re)made or its settings change, e.g. an up after destroy
  # that finds the old data: the adminPassword output must stay true.
  # Gitea's change-password marks the account "must change password" unless told otherwise,
  # and such an account is refused by the API (403) until it changes it in the web UI.
  with_password change-password --username "$admin" --must-change-password=false
  echo "admin $admin exists; password set to the stack's adminPassword"
  exit 0
fi
if list_names | grep -qxF -- "$admin"; then
  die "Gitea user $admin exists but is not an admin; make it one in Gitea or pick another gitea-homelab:adminUsername"
fi
with_password create --admin --username "$admin" --email "$email" --must-change-password=false
echo "admin $admin created"
`,
  );
}
