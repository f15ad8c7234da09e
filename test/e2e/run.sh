#!/usr/bin/env bash
# Boots a fresh Debian 13 test VM (building or reusing the cached image), runs the end-to-end
# suite against it and always shuts it down, also when a test fails.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
rundir=${GITEA_HOMELAB_E2E_RUNDIR:-$root/.e2e/vm}

trap '"$here/vm/stop-vm.sh" "$rundir" || true' EXIT
"$here/vm/start-vm.sh" "$rundir" 4111 3333 4112
export GITEA_HOMELAB_VM_RUNDIR=$rundir
cd "$root"
npx vitest run --config vitest.e2e.config.ts "$@"
