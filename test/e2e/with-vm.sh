#!/usr/bin/env bash
# Boots a fresh Debian 13 test VM (building or reusing the cached image), runs the given
# command with GITEA_HOMELAB_VM_RUNDIR pointing at it, and always shuts the VM down, also when
# the command fails. Usage: with-vm.sh COMMAND [ARG...]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
rundir=${GITEA_HOMELAB_E2E_RUNDIR:-$root/.e2e/vm}

# Also any VM a suite booted itself beside this one (RUNDIR-NAME, e.g. offsite.e2e.test.ts's
# second machine), should the suite have been stopped before its own cleanup.
stop_vms() {
	local d
	for d in "$rundir" "$rundir"-*; do
		if [[ -d $d ]]; then "$here/vm/stop-vm.sh" "$d" || true; fi
	done
}
trap stop_vms EXIT
mkdir -p "$rundir"
# A fresh VM gets a fresh Pulumi workspace (backend, PULUMI_HOME, stacks): test/e2e/harness/pulumiCli.ts.
rm -rf "$rundir"/pulumi-*
# The Pulumi CLI the suites drive, and rclone, whose `serve s3` and `serve sftp` stand in for
# the off-site backup's cloud bucket and other homelab machine (test/e2e/harness/offsiteServers.ts),
# built while the VM image is built (downloads, mmdebstrap) and the VM boots.
"$root/tools/build.sh" pulumi rclone >"$rundir/tools-build.log" 2>&1 &
tools_build=$!
# The off-site servers run here, outside the VM, so they outlive it; the guest reaches them at
# 10.0.2.100:PORT, and nothing else out here (start-vm.sh, GITEA_HOMELAB_VM_HOST_SERVICES).
export GITEA_HOMELAB_VM_HOST_SERVICES=${GITEA_HOMELAB_VM_HOST_SERVICES-s3 sftp}
# 4111/3333: Gitea's published ports; 4112: the port scenario 3 moves HTTP to.
"$here/vm/start-vm.sh" "$rundir" 4111 3333 4112
if ! wait "$tools_build"; then
	cat "$rundir/tools-build.log" >&2
	echo "with-vm: building the Pulumi CLI or rclone failed" >&2
	exit 1
fi
export GITEA_HOMELAB_VM_RUNDIR=$rundir
cd "$root"
"$@"
