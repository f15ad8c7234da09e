/** Gitea's keys file, its probe and comparison (never its content: only whether it is whole). */
import { HostCheck } from "../host/checkedCommand";
import { Facts, ProbeBody } from "../host/probeSession";
import { sh } from "../render/shell";
import { KEYS_COMPLETE_FUNCTION, KEYS_FILE } from "./render";

export function renderKeysProbe(user: string): ProbeBody {
  return {
    vars: { user, keys_file: KEYS_FILE },
    functions: KEYS_COMPLETE_FUNCTION,
    body: sh`
if ! user_info "$user"; then
  echo keys=missing
  return 0
fi
keys=$user_home/$keys_file
if [[ ! -e $keys ]]; then
  echo keys=missing
elif keys_complete "$keys"; then
  echo keys=complete
else
  echo keys=incomplete
fi
echo "keys_mode=$(stat -c '%a %U' "$keys" 2>/dev/null || echo missing)"
`,
  };
}

export function keysDrift(user: string, facts: Facts | undefined): string[] {
  const what = `keys file ~${user}/${KEYS_FILE}`;
  switch (facts?.keys) {
    case "complete":
      return facts.keys_mode === `600 ${user}` ? [] : [`${what}: mode and owner ${facts.keys_mode}, expected 600 ${user}`];
    case "missing":
      return [`${what}: MISSING; without it Gitea cannot decrypt what it encrypted; put it back or restore a backup (gitea-homelab:restoreFrom)`];
    case "incomplete":
      return [`${what}: a key is missing from it; put the file back or restore a backup (gitea-homelab:restoreFrom)`];
    default:
      return [`${what}: state unknown (probe output unreadable)`];
  }
}

export function keysCheck(user: string): HostCheck {
  return { probe: renderKeysProbe(user), compare: (facts) => keysDrift(user, facts) };
}
