/**
 * The rootless user, the pure half: the account Gitea runs as, with subordinate id ranges that
 * overlap no one else's, its Podman storage driver, and linger so its systemd manager (and so
 * the container) runs without a login; on OpenRC its runtime dir.
 */
import { Platform } from "../host/platform";
import { heredoc, MANAGED_HEADER, renderScript, sh } from "../render/shell";

/** Size of the subordinate uid/gid range, as useradd gives by default. */
export const SUBID_COUNT = 65536;

export const STORAGE_DRIVERS = ["auto", "overlay", "vfs", "btrfs"] as const;

export type StorageDriver = (typeof STORAGE_DRIVERS)[number];

export function renderRootlessUserScript(platform: Pick<Platform, "family" | "init">, username: string, readyTimeoutSeconds: number, storageDriver: StorageDriver = "auto"): string {
  // ~/.config/containers/storage.conf (TOML), written only for a driver other than Podman's default.
  const storageConfHead = heredoc(`# ${MANAGED_HEADER}\n[storage]`);
  return renderScript(
    {
      purpose: "Rootless user: account, subuid/subgid, Podman storage driver, linger and a running user manager (systemd) or its runtime dir (OpenRC).",
      vars: { init: platform.init, os_family: platform.family, user: username, subid_count: SUBID_COUNT, ready_timeout: readyTimeoutSeconds, storage_driver: storageDriver },
    },
    sh`
if ! id -u "$user" >/dev/null 2>&1; then
  useradd --create-home --shell /bin/bash "$user"
  echo "created user $user"
fi

# Gives the user a subordinate range in FILE unless it has one, starting after every existing
# range so no two users share ids.
ensure_subids() {
  local file=$1 flag=$2
  touch "$file"
  if awk -F: -v u="$user" '$1 == u { found = 1 } END { exit !found }' "$file"; then
    return 0
  fi
  local start
  start=$(awk -F: 'NF == 3 && $2 ~ /^[0-9]+$/ && $3 ~ /^[0-9]+$/ { end = $2 + $3; if (end > max) max = end } END { if (max < 100000) max = 100000; print max }' "$file")
  usermod "$flag" "$start-$((start + subid_count - 1))" "$user"
  echo "allocated $file range $start-$((start + subid_count - 1)) to $user"
}
ensure_subids /etc/subuid --add-subuids
ensure_subids /etc/subgid --add-subgids

home=$(home_of "$user")
group=$(id -gn "$user")
uid=$(id -u "$user")

# Podman's storage driver: overlay, unless Podman runs inside a container (vfs) or, on Alpine
# as its wiki says, the home is on btrfs (btrfs). Podman keeps the driver its storage was made
# with, so an existing storage is never switched.
driver=$storage_driver
if [[ $driver == auto ]]; then
  if [[ -f /run/.containerenv || -f /.dockerenv ]] || grep -qa 'container=' /proc/1/environ 2>/dev/null; then
    driver=vfs
  elif [[ $os_family == alpine && $(stat -f -c %T "$home") == btrfs ]]; then
    driver=btrfs
  else
    driver=overlay
  fi
fi
storage_conf=$home/.config/containers/storage.conf
if [[ $storage_driver != auto || $driver != overlay ]]; then
  tmp=$(mktemp)
  {
    cat ${storageConfHead.open}
${storageConfHead.body}
    printf 'driver = "%s"\n' "$driver"
  } >"$tmp"
  if [[ -d $home/.local/share/containers/storage ]] && ! cmp -s "$tmp" "$storage_conf"; then
    echo "gitea-homelab: $user's Podman storage exists, so its driver stays; to use $driver, remove it or set gitea-homelab:storageDriver to the one it has" >&2
  else
    as_user "$user" mkdir -p "$(dirname "$storage_conf")"
    install_file "$tmp" "$storage_conf" 644 "$user" "$group"
    echo "Podman storage driver for $user: $driver"
  fi
  rm -f "$tmp"
fi

if [[ $init == systemd ]]; then
  loginctl enable-linger "$user"
  user_manager_running() {
    local state
    state=$(userctl "$user" is-system-running 2>/dev/null) || true
    [[ $state == running || $state == degraded ]]
  }
  wait_for "$ready_timeout" "the systemd user manager of $user (user@$uid.service)" user_manager_running
  echo "user $user (uid $uid) ready, linger on"
else
  # OpenRC has no user manager: make the runtime dir Podman needs (the service makes it at boot).
  install -d -m 700 -o "$user" -g "$group" "/run/user/$uid"
  echo "user $user (uid $uid) ready, runtime dir /run/user/$uid"
fi
`,
  );
}

export function renderRootlessUserDeleteScript(platform: Pick<Platform, "init">, username: string, removeUser: boolean): string {
  return renderScript(
    { purpose: "Rootless user on destroy: disable linger; remove the account and its home only when removeUserOnDestroy is true.", vars: { init: platform.init, user: username, remove_user: removeUser } },
    sh`
if ! id -u "$user" >/dev/null 2>&1; then
  echo "user $user is already gone"
  exit 0
fi
if [[ $init == systemd ]]; then loginctl disable-linger "$user"; fi
if [[ $remove_user == true ]]; then
  [[ $init != systemd ]] || loginctl terminate-user "$user" 2>/dev/null || true
  no_processes() { ! pgrep -u "$user" >/dev/null; }
  wait_for 60 "the processes of $user to end" no_processes || pkill -KILL -u "$user" || true
  userdel --remove "$user"
  echo "removed user $user and its home"
else
  echo "linger disabled; user $user and its home are kept"
fi
`,
  );
}
