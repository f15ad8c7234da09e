/**
 * Gitea's keys, the pure half. What Gitea encrypts with (SECRET_KEY: two-factor secrets, Actions
 * secrets, mirror credentials; INTERNAL_TOKEN; the oauth2 JWT secret) is made on the host once,
 * kept in a 0600 file beside the service's environment file, and never made again while the data
 * it protects exists: Pulumi state may be lost or destroyed, the data and its keys stay together.
 */
import { renderScript, sh } from "../render/shell";

/** The keys file, relative to the rootless user's home; Podman reads it as a second env file. */
export const KEYS_FILE = ".config/gitea-homelab/gitea-keys.env";

/** The variables the keys file holds, as Gitea's image reads them. */
export const KEY_NAMES = ["GITEA__security__SECRET_KEY", "GITEA__security__INTERNAL_TOKEN", "GITEA__oauth2__JWT_SECRET"] as const;

/** Where Gitea's rootless image keeps its SQLite database, inside the data volume. */
export const GITEA_DATABASE_IN_VOLUME = "data/gitea.db";

export interface KeysSpec {
  user: string;
  /** The volume whose database the keys protect. */
  dataVolume: string;
  /** The service's own environment file (relative to the home), where earlier versions kept the keys. */
  legacyEnvFile: string;
}

/** Bash shared by the keys script and its probe: does FILE hold every key (KEY_NAMES)? Usage: keys_complete FILE */
export const KEYS_COMPLETE_FUNCTION = sh`
keys_complete() {
  local name
  for name in GITEA__security__SECRET_KEY GITEA__security__INTERNAL_TOKEN GITEA__oauth2__JWT_SECRET; do
    grep -qE "^$name=.+" "$1" 2>/dev/null || return 1
  done
}`;

/**
 * Makes the keys file when it is missing: adopted from the environment file where earlier
 * versions kept the keys, else generated, but never beside a database that already exists (its
 * keys are elsewhere: a backup holds them).
 */
export function renderKeysScript(s: KeysSpec): string {
  return renderScript(
    {
      purpose: "Gitea's encryption keys: made once on the host, kept with the data, never regenerated under it.",
      vars: { user: s.user, keys_file: KEYS_FILE, legacy_env_file: s.legacyEnvFile, data_volume: s.dataVolume, database: GITEA_DATABASE_IN_VOLUME },
    },
    sh`
${KEYS_COMPLETE_FUNCTION}
home=$(home_of "$user") || die "user $user does not exist"
group=$(id -gn "$user")
keys=$home/$keys_file
if keys_complete "$keys"; then
  chown "$user:$group" "$keys" && chmod 600 "$keys"
  echo "keys kept"
  exit 0
fi
as_user "$user" mkdir -p "$(dirname "$keys")"
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
chmod 600 "$tmp"
if keys_complete "$home/$legacy_env_file"; then
  # Earlier versions of gitea-homelab kept the keys in the service's environment file.
  grep -E '^GITEA__(security__SECRET_KEY|security__INTERNAL_TOKEN|oauth2__JWT_SECRET)=' "$home/$legacy_env_file" >"$tmp"
  how="taken over from the service's environment file"
elif [[ -e $home/.local/share/containers/storage/volumes/$data_volume/_data/$database ]]; then
  die "volume $data_volume holds Gitea's database but its keys file ~$user/$keys_file is missing or incomplete: new keys could not decrypt what Gitea encrypted (two-factor secrets, Actions secrets, mirror credentials). Put the file back, or restore a backup with gitea-homelab:restoreFrom"
else
  random_text() { head -c "$1" /dev/urandom | base64 -w0 | tr '+/' '-_' | tr -d '='; }
  {
    echo "# Managed by gitea-homelab: Gitea's keys, made once; keep this file with the data (backups hold it)."
    echo "GITEA__security__SECRET_KEY=$(random_text 48)"
    echo "GITEA__security__INTERNAL_TOKEN=$(random_text 48)"
    # Gitea wants the oauth2 JWT secret as 32 bytes in unpadded base64url.
    echo "GITEA__oauth2__JWT_SECRET=$(random_text 32)"
  } >"$tmp"
  how="generated"
fi
install -m 600 -o "$user" -g "$group" "$tmp" "$keys"
echo "keys $how"
`,
  );
}

/** Destroy with destroyData: the keys go with the data they protected (backups keep their own copy). */
export function renderKeysDeleteScript(user: string): string {
  return renderScript(
    { purpose: "Remove Gitea's keys file with the data it protected (destroyData is true).", vars: { user, keys_file: KEYS_FILE } },
    sh`
if home=$(home_of "$user"); then rm -f "$home/$keys_file"; fi
echo "keys removed"
`,
  );
}
