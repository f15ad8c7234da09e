/** The rootless user, its probe and comparison: the account, its subordinate ranges, linger. */
import { HostCheck } from "../host/checkedCommand";
import { Platform } from "../host/platform";
import { Facts } from "../host/probeSession";
import { sh } from "../render/shell";

/** Read-only: the account, its subordinate ranges and linger. */
export function renderRootlessUserProbe(username: string): HostCheck["probe"] {
  return {
    vars: { user: username },
    body: sh`
if ! user_info "$user"; then
  echo account=missing
  return 0
fi
echo account=present
if [[ $host_init != systemd ]]; then
  echo linger=n/a
elif [[ -f /var/lib/systemd/linger/$user ]]; then
  echo linger=on
else
  echo linger=off
fi
for file in subuid subgid; do
  if has_subid_range "/etc/$file" "$user"; then
    echo "$file=present"
  else
    echo "$file=missing"
  fi
done
`,
  };
}

export function rootlessUserDrift(username: string, facts: Facts | undefined, platform: Pick<Platform, "init">): string[] {
  const what = `user ${username}`;
  if (facts === undefined || !["present", "missing"].includes(facts.account)) return [`${what}: state unknown (probe output unreadable)`];
  if (facts.account === "missing") return [`${what}: account missing, expected present`];
  const drift: string[] = [];
  // OpenRC hosts have no linger: the service starts the container at boot.
  if (platform.init === "systemd" && facts.linger !== "on") drift.push(`${what}: linger ${facts.linger ?? "unknown"}, expected on (without it Gitea stops at logout and does not start at boot)`);
  for (const file of ["subuid", "subgid"]) {
    if (facts[file] !== "present") drift.push(`${what}: no /etc/${file} range, expected one`);
  }
  return drift;
}

export function rootlessUserCheck(username: string): HostCheck {
  return { probe: renderRootlessUserProbe(username), compare: (facts, platform) => rootlessUserDrift(username, facts, platform) };
}
