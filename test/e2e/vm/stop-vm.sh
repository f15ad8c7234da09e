#!/usr/bin/env bash
# Shut down the test VM of RUNDIR: a clean poweroff from inside first (so the
# guest is not cut mid-write), then kill qemu after a bound. Succeeds when
# nothing is running. Usage: stop-vm.sh RUNDIR
set -euo pipefail

if [[ $# -ne 1 ]]; then
	echo "usage: $0 RUNDIR" >&2
	exit 2
fi
rundir=$1
[[ -d $rundir ]] || exit 0
pidfile=$rundir/qemu.pid
grace=${GITEA_HOMELAB_VM_STOP_TIMEOUT:-60}

log() { echo "stop-vm: $*" >&2; }

pid=$(cat "$pidfile" 2>/dev/null || true)
# Only ever signal our own qemu: the pid must still be a qemu using RUNDIR.
is_our_qemu() {
	[[ -n $pid ]] && kill -0 "$pid" 2>/dev/null &&
		tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$rundir/disk.qcow2"
}
if ! is_our_qemu; then
	rm -f "$pidfile" "$rundir/vm.env"
	exit 0
fi

wait_gone() {
	local deadline=$((SECONDS + $1))
	while is_our_qemu; do
		((SECONDS < deadline)) || return 1
		sleep 1
	done
}

if [[ -f $rundir/ssh_config ]]; then
	# The connection drops as the guest goes down: its status says nothing.
	timeout 20 ssh -F "$rundir/ssh_config" gitea-vm 'sudo -n systemctl poweroff' >/dev/null 2>&1 || true
fi
if ! wait_gone "$grace"; then
	log "no clean poweroff within ${grace}s; killing qemu $pid"
	kill "$pid" 2>/dev/null || true
	if ! wait_gone 10; then
		kill -9 "$pid" 2>/dev/null || true
		wait_gone 5 || true
	fi
fi
rm -f "$pidfile" "$rundir/vm.env"
log "stopped"
