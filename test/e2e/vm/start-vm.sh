#!/usr/bin/env bash
# Boot a fresh test VM: a copy-on-write overlay of the cached image in RUNDIR,
# SSH and every GUEST_PORT forwarded to free 127.0.0.1 ports, then wait until
# `ssh operator@127.0.0.1` works with the pinned host key and write RUNDIR/vm.env.
# Usage: start-vm.sh RUNDIR [GUEST_PORT...]
# A VM already running in RUNDIR is stopped first: "start" always means fresh.
# Env: GITEA_HOMELAB_VM_ACCEL=auto|kvm|tcg (auto: try KVM, fall back to TCG),
#      GITEA_HOMELAB_VM_BOOT_TIMEOUT (s, default 300), GITEA_HOMELAB_VM_IMAGE_DIR
#      (use this built image dir instead of running build-image.sh),
#      GITEA_HOMELAB_VM_HOST_SERVICES (names, [a-z0-9]+, space-separated: for each, a free
#      port P on this machine's 127.0.0.1 that the guest reaches at 10.0.2.100:P, for servers
#      the tests run out here; NAME=P instead of NAME: that port, of a server already running
#      out here that another VM reaches too; vm.env says VM_HOST_ADDR and VM_HOST_PORT_<NAME>=P).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

if [[ $# -lt 1 ]]; then
	echo "usage: $0 RUNDIR [GUEST_PORT...]" >&2
	exit 2
fi
mkdir -p "$1"
rundir=$(cd "$1" && pwd)
shift
# qemu splits option values at commas; a path with one would be misread. A quote would end
# the quoted rundir in the guestfwd command.
if [[ $rundir == *[,\']* ]]; then
	echo "start-vm: RUNDIR must not contain a comma or a single quote: $rundir" >&2
	exit 2
fi
guest_ports=("$@")
read -r -a host_service_specs <<<"${GITEA_HOMELAB_VM_HOST_SERVICES:-}"
# NAME (a free port is chosen) or NAME=PORT (that port: a server out here already listens on it).
host_services=()
declare -A pinned_ports=()
for spec in "${host_service_specs[@]}"; do
	if [[ ! $spec =~ ^([a-z0-9]+)(=([0-9]+))?$ ]]; then
		echo "start-vm: bad host service (want NAME or NAME=PORT, NAME [a-z0-9]+): $spec" >&2
		exit 2
	fi
	name=${BASH_REMATCH[1]}
	if [[ -n ${BASH_REMATCH[3]} ]]; then
		if ((10#${BASH_REMATCH[3]} < 1024 || 10#${BASH_REMATCH[3]} > 65535)); then
			echo "start-vm: bad host service port (want 1024-65535): $spec" >&2
			exit 2
		fi
		pinned_ports[$name]=$((10#${BASH_REMATCH[3]}))
	fi
	host_services+=("$name")
done
for p in "${guest_ports[@]}"; do
	if [[ ! $p =~ ^[0-9]+$ ]] || ((p < 1 || p > 65535)) || ((p == 22)); then
		echo "start-vm: bad guest port: $p" >&2
		exit 2
	fi
done

accel_mode=${GITEA_HOMELAB_VM_ACCEL:-auto}
boot_timeout=${GITEA_HOMELAB_VM_BOOT_TIMEOUT:-300}

log() { echo "start-vm: $*" >&2; }

# Built (or found cached) image; build-image.sh prints its dir last on stdout.
image=${GITEA_HOMELAB_VM_IMAGE_DIR:-}
if [[ -z $image ]]; then
	image=$("$here/build-image.sh" | tail -n1)
fi
for f in disk.qcow2 vmlinuz initrd.img id_ed25519 ssh_host_ed25519_key.pub; do
	[[ -f $image/$f ]] || { log "image incomplete: $image/$f missing"; exit 1; }
done
# The guest's connections to host services are relayed by socat, one process per connection.
if ((${#host_services[@]} > 0)) && ! command -v socat >/dev/null; then
	log "missing socat (GITEA_HOMELAB_VM_HOST_SERVICES relays the guest's connections with it)"
	exit 1
fi

"$here/stop-vm.sh" "$rundir"

# The client key is copied so ssh accepts its mode whoever owns the cache.
install -m 0600 "$image/id_ed25519" "$rundir/id_ed25519"
install -m 0644 "$image/id_ed25519.pub" "$rundir/id_ed25519.pub"
host_key=$(cut -d' ' -f1,2 "$image/ssh_host_ed25519_key.pub")

port_in_use() { ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; }
# A random free port in 20000-59999; qemu binding it may still race, so the
# caller retries the whole start when qemu cannot set up a forward.
declare -A taken=()
for p in "${pinned_ports[@]}"; do taken[$p]=1; done
free_port() {
	local p i
	for ((i = 0; i < 200; i++)); do
		p=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
		if [[ -z ${taken[$p]:-} ]] && ! port_in_use "$p"; then
			taken[$p]=1
			echo "$p"
			return 0
		fi
	done
	log "no free port found"
	return 1
}

qemu_alive() {
	local pid
	pid=$(cat "$rundir/qemu.pid" 2>/dev/null) || return 1
	[[ -n $pid ]] && kill -0 "$pid" 2>/dev/null
}

kill_qemu() {
	local pid
	pid=$(cat "$rundir/qemu.pid" 2>/dev/null) || return 0
	if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
		kill "$pid" 2>/dev/null || true
		for _ in 1 2 3 4 5 6 7 8 9 10; do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.5
		done
		kill -9 "$pid" 2>/dev/null || true
	fi
	rm -f "$rundir/qemu.pid"
}

# Launch qemu in the background, detached from this shell (setsid) so it
# outlives the script; stderr goes to qemu.log where KVM errors show up.
launch() {
	local accel=$1 fwd cpu_accel
	fwd="hostfwd=tcp:127.0.0.1:$ssh_port-:22"
	for p in "${guest_ports[@]}"; do
		fwd+=",hostfwd=tcp:127.0.0.1:${fwd_ports[$p]}-:$p"
	done
	# The way out of restrict=on, port by port: a guest connection to 10.0.2.100:P makes qemu
	# run the command with the connection as its stdin/stdout (and stderr, hence -lf), and
	# socat joins it to 127.0.0.1:P here. The chardev form (…-tcp:127.0.0.1:P) connects once,
	# when qemu starts, and carries one stream: no good for a server that restarts or for
	# several connections. 10.0.2.2 (qemu's own address) is refused as a guestfwd address.
	# qemu parses the command with shell quoting rules: the rundir is quoted (no comma in it).
	for name in "${host_services[@]}"; do
		p=${host_ports[$name]}
		fwd+=",guestfwd=tcp:$host_addr:$p-cmd:socat -lf '$rundir/socat.log' - TCP:127.0.0.1:$p"
	done
	if [[ $accel == kvm ]]; then
		cpu_accel=(-accel kvm -cpu host)
	else
		cpu_accel=(-accel "tcg,thread=multi" -cpu max)
	fi
	rm -f "$rundir/disk.qcow2" "$rundir/console.log" "$rundir/qemu.pid"
	qemu-img create -q -f qcow2 -F qcow2 -b "$image/disk.qcow2" "$rundir/disk.qcow2"
	# restrict=on: the guest reaches nothing outside (no internet traffic)
	# but the guestfwd ports above; host forwards still work. No -no-reboot: a guest reboot keeps qemu and
	# its forwards. panic=10: a guest kernel that panics (seen rarely under TCG,
	# also on a reboot the tests ask for) boots again by itself.
	local qpid
	# In a command substitution qemu is not a job of this shell: nothing to
	# reap or report when it exits, and it is re-parented when we exit.
	qpid=$(setsid qemu-system-x86_64 \
		-name gitea-homelab-e2e -nodefaults -display none \
		"${cpu_accel[@]}" -m 2048 -smp 2 \
		-kernel "$image/vmlinuz" -initrd "$image/initrd.img" \
		-append "root=/dev/vda rw console=ttyS0 net.ifnames=0 panic=10" \
		-drive "file=$rundir/disk.qcow2,if=virtio,format=qcow2,cache=unsafe,discard=unmap" \
		-netdev "user,id=n0,restrict=on,$fwd" -device virtio-net-pci,netdev=n0 \
		-device virtio-rng-pci \
		-serial "file:$rundir/console.log" \
		-pidfile "$rundir/qemu.pid" \
		</dev/null >"$rundir/qemu.log" 2>&1 & echo $!)
	# The pidfile appears once qemu has parsed its options.
	for _ in $(seq 1 50); do
		[[ -s $rundir/qemu.pid ]] && break
		kill -0 "$qpid" 2>/dev/null || break
		sleep 0.2
	done
	sleep 1
	qemu_alive
}

# KVM on this kind of machine stops in the guest's kernel decompressor with
# "emulation failure" and pauses; seeing the kernel's first lines means it works.
kvm_works() {
	local i
	for ((i = 0; i < 60; i++)); do
		qemu_alive || return 1
		grep -qiE 'emulation failure|internal error' "$rundir/qemu.log" 2>/dev/null && return 1
		grep -q 'Linux version' "$rundir/console.log" 2>/dev/null && return 0
		sleep 0.5
	done
	return 1
}

if [[ $accel_mode == auto ]]; then
	if [[ -r /dev/kvm && -w /dev/kvm ]]; then
		accels=(kvm tcg)
	else
		accels=(tcg)
	fi
else
	accels=("$accel_mode")
fi

# The address in the guest's network where the host services answer.
host_addr=10.0.2.100
start=$SECONDS
accel=""
for try in 1 2 3; do
	ssh_port=$(free_port)
	declare -A fwd_ports=()
	for p in "${guest_ports[@]}"; do
		fwd_ports[$p]=$(free_port)
	done
	declare -A host_ports=()
	for name in "${host_services[@]}"; do
		host_ports[$name]=${pinned_ports[$name]:-$(free_port)}
	done
	for a in "${accels[@]}"; do
		if ! launch "$a"; then
			log "qemu ($a) did not start: $(tail -n3 "$rundir/qemu.log" 2>/dev/null | tr '\n' ' ')"
			kill_qemu
			continue
		fi
		if [[ $a == kvm && $accel_mode == auto ]] && ! kvm_works; then
			log "KVM does not boot this guest; falling back to TCG"
			kill_qemu
			continue
		fi
		accel=$a
		break
	done
	[[ -z $accel ]] || break
	# Most likely a forwarded port was taken between the check and the bind.
	if ! grep -q 'host forwarding' "$rundir/qemu.log" 2>/dev/null; then
		break
	fi
	log "retrying with other ports (try $try)"
done
if [[ -z $accel ]]; then
	log "could not start qemu; qemu.log:"
	cat "$rundir/qemu.log" >&2 2>/dev/null || true
	exit 1
fi
log "qemu pid $(cat "$rundir/qemu.pid") accel $accel ssh 127.0.0.1:$ssh_port"

# Pinned host key: the port is part of the known_hosts name.
printf '[127.0.0.1]:%s %s\n' "$ssh_port" "$host_key" >"$rundir/known_hosts"
cat >"$rundir/ssh_config" <<EOF
Host gitea-vm
  HostName 127.0.0.1
  Port $ssh_port
  User operator
  IdentityFile $rundir/id_ed25519
  IdentitiesOnly yes
  UserKnownHostsFile $rundir/known_hosts
  GlobalKnownHostsFile /dev/null
  StrictHostKeyChecking yes
  BatchMode yes
  ConnectTimeout 10
  LogLevel ERROR
EOF

fail_boot() {
	log "$1; console tail:"
	tail -n 40 "$rundir/console.log" >&2 2>/dev/null || true
	kill_qemu
	exit 1
}

# Waits for SSH; returns 1 when qemu exits, 2 when the guest kernel panics, 3 on timeout.
wait_for_ssh() {
	local deadline=$1
	until ssh -F "$rundir/ssh_config" -o ConnectTimeout=5 gitea-vm true 2>/dev/null; do
		qemu_alive || return 1
		grep -q 'Kernel panic' "$rundir/console.log" 2>/dev/null && return 2
		((SECONDS < deadline)) || return 3
		sleep 2
	done
}

# Under TCG the guest kernel has been seen to panic early in boot, rarely ("Fatal exception
# in interrupt"); a fresh overlay booted once more comes up.
for boot in 1 2; do
	status=0
	wait_for_ssh $((SECONDS + boot_timeout)) || status=$?
	((status == 0)) && break
	if ((status == 2 && boot == 1)); then
		log "guest kernel panicked during boot; booting a fresh overlay once more"
		tail -n 5 "$rundir/console.log" >&2 2>/dev/null || true
		kill_qemu
		launch "$accel" || fail_boot "qemu did not start again"
		continue
	fi
	case $status in
		1) fail_boot "qemu exited during boot" ;;
		2) fail_boot "guest kernel panicked during boot, twice" ;;
		*) fail_boot "no SSH after ${boot_timeout}s" ;;
	esac
done
boot_s=$((SECONDS - start))

# Single-quoted values: shell-sourceable and easy to parse from other code.
env_line() { printf "%s='%s'\n" "$1" "${2//\'/\'\\\'\'}"; }
{
	env_line VM_SSH_HOST 127.0.0.1
	env_line VM_SSH_PORT "$ssh_port"
	env_line VM_SSH_USER operator
	env_line VM_SSH_KEY "$rundir/id_ed25519"
	env_line VM_HOST_KEY "$host_key"
	env_line VM_KNOWN_HOSTS "$rundir/known_hosts"
	env_line VM_SSH_CONFIG "$rundir/ssh_config"
	env_line VM_PID "$(cat "$rundir/qemu.pid")"
	env_line VM_ACCEL "$accel"
	env_line VM_RUNDIR "$rundir"
	env_line VM_IMAGE_DIR "$image"
	env_line VM_CONSOLE_LOG "$rundir/console.log"
	env_line VM_BOOT_SECONDS "$boot_s"
	for p in "${guest_ports[@]}"; do
		env_line "VM_FWD_$p" "${fwd_ports[$p]}"
	done
	env_line VM_HOST_ADDR "$host_addr"
	for name in "${host_services[@]}"; do
		env_line "VM_HOST_PORT_${name^^}" "${host_ports[$name]}"
	done
} >"$rundir/vm.env.new"
mv -f "$rundir/vm.env.new" "$rundir/vm.env"
log "SSH up after ${boot_s}s ($accel)"
echo "$rundir/vm.env"
