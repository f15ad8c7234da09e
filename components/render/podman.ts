/**
 * Probes of a rootless user's Podman storage, shared by the volume and the image checks. Each
 * podman start costs seconds on a small host, so what Podman's own files already say is read
 * from them (a volume's directory, the image store's images.json under the default graphroot);
 * only an answer they cannot give asks podman, and the volume list once per user and session.
 */
import { Facts, ProbeBody } from "../host/probeSession";
import { Bash, sh } from "./shell";

/** Sets status 0 (present), 1 (missing) or podman's error: one volume listing serves every volume of a user. */
const VOLUME_LOOKUP = sh`status=0
if [[ -d $user_home/.local/share/containers/storage/volumes/$name/_data ]]; then
  echo "$kind=present"
  return 0
fi
# shellcheck disable=SC2016 # a Go template
volumes=$(cached "volumes-$user" as_user "$user" timeout 60 podman volume ls --format '{{.Name}}') || status=$?
if ((status == 0)) && ! grep -qxF -- "$name" <<<"$volumes"; then status=1; fi`;
const IMAGE_LOOKUP = sh`status=0
# Names as Podman stored them (a short name gets its registry): a miss asks podman.
for images in "$user_home"/.local/share/containers/storage/*-images/images.json; do
  listed=
  [[ ! -r $images ]] || IFS= read -r -d '' listed <"$images" || true
  if [[ $listed == *"\"$name\""* ]]; then
    echo "$kind=present"
    return 0
  fi
done
as_user "$user" timeout 60 podman image exists "$name" || status=$?`;

/**
 * Read-only: does a Podman object exist in a user's storage? Prints `KIND=present|missing`, or
 * `KIND=unknown (podman exit N)` when podman could not tell.
 */
export function renderPodmanExistsProbe(kind: "volume" | "image", user: string, name: string): ProbeBody {
  return {
    vars: { user, kind, name },
    body: sh`
if ! user_info "$user"; then
  echo "$kind=missing"
  return 0
fi
# Without its runtime dir (linger off, or an OpenRC service not started yet) rootless podman
# cannot answer without making one; the user's and the unit's probes report that.
if ! user_runtime_ready "$user"; then
  echo "$kind=unchecked"
  return 0
fi
${kind === "volume" ? VOLUME_LOOKUP : IMAGE_LOOKUP}
case $status in
  0) echo "$kind=present" ;;
  1) echo "$kind=missing" ;;
  *) echo "$kind=unknown (podman exit $status)" ;;
esac
`,
  };
}

/**
 * The fact a Podman exists probe printed: present, missing, or why it is unknown. "unchecked"
 * (the user manager is down, which the user's own drift reports) counts as present.
 */
export function podmanPresence(facts: Facts | undefined, kind: "volume" | "image"): "present" | "missing" | { unknown: string } {
  const v = facts?.[kind];
  if (v === "unchecked") return "present";
  if (v === "present" || v === "missing") return v;
  return { unknown: v || "probe output unreadable" };
}
