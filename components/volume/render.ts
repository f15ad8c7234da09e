/**
 * The Podman volume, the pure half: a named volume in the rootless user's storage, and its
 * removal (only when the stack sets destroyData).
 */
import { renderScript, sh } from "../render/shell";

export function renderVolumeCreateScript(owner: string, volume: string): string {
  return renderScript(
    { purpose: "Podman volume of the rootless user.", vars: { owner, volume } },
    sh`
if as_user "$owner" podman volume exists "$volume"; then
  echo "volume $volume exists"
else
  as_user "$owner" podman volume create "$volume" >/dev/null
  echo "created volume $volume"
fi
`,
  );
}

export function renderVolumeDeleteScript(owner: string, volume: string): string {
  return renderScript(
    { purpose: "Remove a Podman volume of the rootless user and its data (destroyData is true).", vars: { owner, volume } },
    sh`
if ! id -u "$owner" >/dev/null 2>&1; then
  echo "user $owner is gone, and its volumes with it"
  exit 0
fi
if as_user "$owner" podman volume exists "$volume"; then
  as_user "$owner" podman volume rm --force "$volume" >/dev/null
  echo "removed volume $volume"
fi
`,
  );
}
