#!/usr/bin/env bash
# Boots a fresh Debian 13 test VM (building or reusing the cached image), runs the given
# command with GITEA_HOMELAB_VM_RUNDIR pointing at it, and always shuts the VM down, also when
# the command fails. Usage: with-vm.sh COMMAND [ARG...]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
rundir=${GITEA_HOMELAB_E2E_RUNDIR:-$root/.e2e/vm}

trap '"$here/vm/stop-vm.sh" "$rundir" || true' EXIT
mkdir -p "$rundir"
# A fresh VM gets a fresh Pulumi workspace (backend, PULUMI_HOME, stacks): test/e2e/harness/pulumiCli.ts.
rm -rf "$rundir"/pulumi-*
# The Pulumi CLI the suites drive, built while the VM image is built (downloads, mmdebstrap)
# and the VM boots.
"$root/tools/build.sh" pulumi >"$rundir/pulumi-build.log" 2>&1 &
cli_build=$!
# 4111/3333: Gitea's published ports; 4112: the port scenario 3 moves HTTP to.
"$here/vm/start-vm.sh" "$rundir" 4111 3333 4112
if ! wait "$cli_build"; then
	cat "$rundir/pulumi-build.log" >&2
	echo "with-vm: building the Pulumi CLI failed" >&2
	exit 1
fi
export GITEA_HOMELAB_VM_RUNDIR=$rundir
cd "$root"
"$@"
