#!/usr/bin/env bash
# Reboot the guest of RUNDIR from inside and wait until SSH answers from the
# new boot. The qemu process (and so every forwarded port) stays the same.
# Usage: reboot-vm.sh RUNDIR   Env: GITEA_HOMELAB_VM_BOOT_TIMEOUT (s, default 300)
set -euo pipefail

if [[ $# -ne 1 ]]; then
	echo "usage: $0 RUNDIR" >&2
	exit 2
fi
rundir=$1
timeout_s=${GITEA_HOMELAB_VM_BOOT_TIMEOUT:-300}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
vssh() { "$here/ssh.sh" "$rundir" "$@"; }
log() { echo "reboot-vm: $*" >&2; }

pid=$(cat "$rundir/qemu.pid" 2>/dev/null || true)
if [[ -z $pid ]] || ! kill -0 "$pid" 2>/dev/null; then
	log "no running VM in $rundir"
	exit 1
fi
# The boot id tells the new boot from the old one still shutting down.
old_boot=$(vssh cat /proc/sys/kernel/random/boot_id)
console_lines=$(wc -l <"$rundir/console.log" 2>/dev/null || echo 0)
start=$SECONDS
extended=false
vssh 'sudo -n systemctl reboot' >/dev/null 2>&1 || true
deadline=$((start + timeout_s))
while :; do
	if ! kill -0 "$pid" 2>/dev/null; then
		log "qemu exited during reboot; console tail:"
		tail -n 40 "$rundir/console.log" >&2 || true
		exit 1
	fi
	new_boot=$(vssh cat /proc/sys/kernel/random/boot_id 2>/dev/null || true)
	if [[ -n $new_boot && $new_boot != "$old_boot" ]]; then
		break
	fi
	# A guest kernel panic (rare under TCG) reboots by itself (panic=10): one more boot's time.
	if [[ $extended == false ]] && tail -n "+$((console_lines + 1))" "$rundir/console.log" 2>/dev/null | grep -q 'Kernel panic'; then
		log "guest kernel panicked during the reboot; waiting for the boot after it"
		extended=true
		deadline=$((SECONDS + timeout_s))
	fi
	if ((SECONDS >= deadline)); then
		log "no SSH from a new boot after $((SECONDS - start))s; console tail:"
		tail -n 40 "$rundir/console.log" >&2 || true
		exit 1
	fi
	sleep 2
done
log "back after $((SECONDS - start))s"
