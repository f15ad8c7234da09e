/**
 * RootlessUser: the account Gitea runs as, with subordinate id ranges that overlap no one
 * else's, and linger so its systemd manager (and so the container) runs without a login.
 */
import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import { Host } from "./host";
import { Facts, ProbeSection } from "./render/probe";
import { heredoc, MANAGED_HEADER, renderScript, sh } from "./render/shell";

export interface RootlessUserArgs {
  host: Host;
  username: pulumi.Input<string>;
  /** Delete the account and its home on destroy (default: keep them, only disable linger). */
  removeOnDestroy?: pulumi.Input<boolean>;
  /** How long to wait for the user's systemd manager after enabling linger. */
  readyTimeoutSeconds?: pulumi.Input<number>;
  /** Podman storage driver; "auto": overlay, vfs inside a container, btrfs on btrfs. */
  storageDriver?: pulumi.Input<StorageDriver>;
}

/** Size of the subordinate uid/gid range, as useradd gives by default. */
export const SUBID_COUNT = 65536;

export const STORAGE_DRIVERS = ["auto", "overlay", "vfs", "btrfs"] as const;
export type StorageDriver = (typeof STORAGE_DRIVERS)[number];

export function renderRootlessUserScript(username: string, readyTimeoutSeconds: number, storageDriver: StorageDriver = "auto"): string {
  // ~/.config/containers/storage.conf (TOML), written only for a driver other than Podman's default.
  const storageConfHead = heredoc(`# ${MANAGED_HEADER}\n[storage]`);
  return renderScript(
    {
      purpose: "Rootless user: account, subuid/subgid, Podman storage driver, linger and a running user manager (systemd) or its runtime dir (OpenRC).",
      vars: { user: username, subid_count: SUBID_COUNT, ready_timeout: readyTimeoutSeconds, storage_driver: storageDriver },
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

home=$(getent passwd "$user" | cut -d: -f6)
group=$(id -gn "$user")
uid=$(id -u "$user")

# Podman's storage driver: overlay, unless Podman runs inside a container (vfs) or, on Alpine
# as its wiki says, the home is on btrfs (btrfs). Podman keeps the driver its storage was made
# with, so an existing storage is never switched.
# shellcheck source=/dev/null
os_id=$(. /etc/os-release && echo "\${ID:-}")
driver=$storage_driver
if [[ $driver == auto ]]; then
  if [[ -f /run/.containerenv || -f /.dockerenv ]] || grep -qa 'container=' /proc/1/environ 2>/dev/null; then
    driver=vfs
  elif [[ $os_id == alpine && $(stat -f -c %T "$home") == btrfs ]]; then
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

if [[ -d /run/systemd/system ]]; then
  loginctl enable-linger "$user"
  user_manager_running() {
    local state
    state=$(systemctl --user -M "$user@" is-system-running 2>/dev/null) || true
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

export function renderRootlessUserDeleteScript(username: string, removeUser: boolean): string {
  return renderScript(
    { purpose: "Rootless user on destroy: disable linger; remove the account and its home only when removeUserOnDestroy is true.", vars: { user: username, remove_user: removeUser } },
    sh`
if ! id -u "$user" >/dev/null 2>&1; then
  echo "user $user is already gone"
  exit 0
fi
if [[ -d /run/systemd/system ]]; then loginctl disable-linger "$user"; fi
if [[ $remove_user == true ]]; then
  [[ ! -d /run/systemd/system ]] || loginctl terminate-user "$user" 2>/dev/null || true
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

/** Read-only: the account, its subordinate ranges and linger. */
export function renderRootlessUserProbe(key: string, username: string): ProbeSection {
  return {
    key,
    vars: { user: username },
    body: sh`
if ! id -u "$user" >/dev/null 2>&1; then
  echo account=missing
  return 0
fi
echo account=present
if [[ ! -d /run/systemd/system ]]; then
  echo linger=n/a
elif [[ -f /var/lib/systemd/linger/$user ]]; then
  echo linger=on
else
  echo linger=off
fi
for file in subuid subgid; do
  if awk -F: -v u="$user" '$1 == u { found = 1 } END { exit !found }' "/etc/$file" 2>/dev/null; then
    echo "$file=present"
  else
    echo "$file=missing"
  fi
done
`,
  };
}

export function rootlessUserDrift(username: string, facts: Facts | undefined): string[] {
  const what = `user ${username}`;
  if (facts === undefined || !["present", "missing"].includes(facts.account)) return [`${what}: state unknown (probe output unreadable)`];
  if (facts.account === "missing") return [`${what}: account missing, expected present`];
  const drift: string[] = [];
  // OpenRC hosts have no linger ("n/a"): the service starts the container at boot.
  if (facts.linger !== "on" && facts.linger !== "n/a") drift.push(`${what}: linger ${facts.linger ?? "unknown"}, expected on (without it Gitea stops at logout and does not start at boot)`);
  for (const file of ["subuid", "subgid"]) {
    if (facts[file] !== "present") drift.push(`${what}: no /etc/${file} range, expected one`);
  }
  return drift;
}

export class RootlessUser extends pulumi.ComponentResource {
  readonly username: pulumi.Output<string>;
  readonly ready: command.remote.Command;

  constructor(name: string, args: RootlessUserArgs, opts?: pulumi.ComponentResourceOptions) {
    super("gitea-homelab:components:RootlessUser", name, {}, opts);
    this.username = pulumi.output(args.username);
    const timeout = pulumi.output(args.readyTimeoutSeconds ?? 120);
    this.ready = args.host.run(
      `${name}-account`,
      {
        create: pulumi.all([this.username, timeout, args.storageDriver ?? "auto"]).apply(([u, t, d]) => renderRootlessUserScript(u, t, d)),
        delete: pulumi.all([this.username, pulumi.output(args.removeOnDestroy ?? false)]).apply(([u, r]) => renderRootlessUserDeleteScript(u, r)),
        drift: pulumi
          .all([this.username, args.host.probe(this.username.apply((u) => renderRootlessUserProbe(`user:${name}`, u)))])
          .apply(([u, facts]) => rootlessUserDrift(u, facts)),
        // Another user is another account: replace, so the old one's linger is disabled.
        triggers: [this.username],
      },
      { parent: this, dependsOn: opts?.dependsOn },
    );
    this.registerOutputs({ username: this.username });
  }
}
