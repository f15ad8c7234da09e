#!/usr/bin/env bash
# Build (once) the Debian 13 (trixie) VM image the end-to-end tests run the
# program against: no Fedora image can be fetched here, and trixie has what the
# server role needs (systemd, Podman with Quadlet, firewalld, OpenSSH).
# The image is cached under a hash of its inputs; a second run with the same
# inputs only prints the cache dir. The cache dir is the last line on stdout;
# progress goes to stderr.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../../.." && pwd)
images_dir=$(cd "$here/../images" && pwd)
tools_bin=${GITEA_HOMELAB_TOOLS_BIN:-$root/.tools/bin}
cache_root=${GITEA_HOMELAB_VM_CACHE:-/var/cache/gitea-homelab-vm}
suite=trixie
mirror=${GITEA_HOMELAB_VM_MIRROR:-http://deb.debian.org/debian}
disk_size=8G

packages=(
	linux-image-amd64 systemd-sysv udev openssh-server podman crun netavark
	aardvark-dns catatonit firewalld uidmap passt dbus dbus-user-session
	libpam-systemd systemd-container sudo curl ca-certificates iproute2
	procps less zstd
	# git: the wsl suite pushes over SSH from inside the VM, where gitea.test resolves.
	git
	# nftables: netavark runs `nft` for the network act makes per job (a Recommends of
	# netavark, which mmdebstrap leaves out; Fedora has it).
	nftables
	# restic: the off-site backups push with the restic of the server's own OS packages, as a
	# real server gets it (the VM has no network to fetch it from).
	restic
)

log() { echo "build-image: $*" >&2; }

# The key of the cache: this script, the image builders, the pinned tool modules of Gitea and
# the runner (built from them) with their build script, the Go that builds them and the package list.
inputs_hash() {
	{
		# Content only: the checkout's path must not change the key (CI clones elsewhere each run).
		sha256sum <"$here/build-image.sh"
		# Only what goes into the image: the Pulumi CLI's modules do not.
		for dir in "$images_dir" "$root/tools/gitea" "$root/tools/gitea-previous" "$root/tools/gitea-runner"; do
			(cd "$dir" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
		done
		sha256sum <"$root/tools/build.sh"
		go version
		printf '%s\n' "$suite" "$mirror" "$disk_size" "${packages[@]}"
	} | sha256sum | cut -d' ' -f1
}

hash=$(inputs_hash)
out=$cache_root/$hash
if [[ -f $out/.complete ]]; then
	log "cached"
	echo "$out"
	exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
	log "must run as root (mmdebstrap root mode, chroot, file owners)"
	exit 1
fi
for tool in mmdebstrap mkfs.ext4 qemu-img ssh-keygen go gcc; do
	command -v "$tool" >/dev/null || { log "missing $tool"; exit 1; }
done

mkdir -p "$cache_root"
# One build per input hash at a time; a waiter then finds it cached.
exec 9>"$cache_root/.lock-$hash"
flock 9
if [[ -f $out/.complete ]]; then
	log "cached (built by a concurrent run)"
	echo "$out"
	exit 0
fi
work=$(mktemp -d "$cache_root/.build-$hash.XXXXXX")
# Unmount anything left mounted in the chroot before deleting it.
cleanup() {
	if [[ -d $work/rootfs ]]; then
		findmnt -rn -o TARGET | grep -F "$work/rootfs" | sort -r | xargs -r umount -l || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT
# apt in the chroot downloads as _apt, which must be able to enter the tree.
chmod 0755 "$work"
rootfs=$work/rootfs
stage=$work/out
mkdir -p "$stage"
start=$SECONDS

log "keys"
ssh-keygen -q -t ed25519 -N '' -C gitea-homelab-e2e -f "$stage/id_ed25519"
ssh-keygen -q -t ed25519 -N '' -C root@gitea-vm -f "$work/ssh_host_ed25519_key"
cp "$work/ssh_host_ed25519_key.pub" "$stage/ssh_host_ed25519_key.pub"

log "Gitea and its runner from their Go modules (tools/build.sh)"
GITEA_HOMELAB_TOOLS_BIN=$tools_bin bash "$root/tools/build.sh" gitea gitea-previous gitea-runner >/dev/null
gitea_version=$(cat "$tools_bin/gitea.version")
log "Gitea $gitea_version rootless image"
bash "$images_dir/gitea/build.sh" "$tools_bin" "$work/gitea.tar" >/dev/null
# The release before it, for the upgrade across a real schema migration.
gitea_previous_version=$(cat "$tools_bin/gitea-previous.version")
log "Gitea $gitea_previous_version rootless image"
bash "$images_dir/gitea/build.sh" "$tools_bin" "$work/gitea-previous.tar" gitea-previous >/dev/null
log "job image"
bash "$images_dir/job/build.sh" "$work/job.tar" >/dev/null

log "mmdebstrap $suite (${#packages[@]} packages)"
include=$(
	IFS=,
	echo "${packages[*]}"
)
# Recommends are not installed (mmdebstrap default): keeps the image small;
# what Podman needs at run time is listed explicitly above.
mmdebstrap --variant=apt --components=main --include="$include" \
	--dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
	--dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
	"$suite" "$rootfs" "deb $mirror $suite main" >&2

log "configure"
in_root() { chroot "$rootfs" "$@"; }
echo gitea-vm >"$rootfs/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tgitea-vm\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$rootfs/etc/hosts"
# Root is the whole virtio disk; no fsck pass (the disk is a throwaway overlay).
echo '/dev/vda / ext4 rw,errors=remount-ro 0 0' >"$rootfs/etc/fstab"
# A fixed machine-id: every boot of a fresh overlay is not a "first boot".
od -An -tx1 -N16 /dev/urandom | tr -d ' \n' >"$rootfs/etc/machine-id"
echo >>"$rootfs/etc/machine-id"

# DHCP on the (only) NIC, whatever it is named.
mkdir -p "$rootfs/etc/systemd/network"
cat >"$rootfs/etc/systemd/network/20-wired.network" <<'EOF'
[Match]
Name=en* eth*

[Network]
DHCP=yes
EOF
# No resolver: the VM has no network beyond the host's forwarded ports.
rm -f "$rootfs/etc/resolv.conf"
echo '# no DNS in the test VM' >"$rootfs/etc/resolv.conf"

# Pinned SSH host key, so tests can use StrictHostKeyChecking=yes.
rm -f "$rootfs"/etc/ssh/ssh_host_*
install -m 0600 "$work/ssh_host_ed25519_key" "$rootfs/etc/ssh/ssh_host_ed25519_key"
install -m 0644 "$work/ssh_host_ed25519_key.pub" "$rootfs/etc/ssh/ssh_host_ed25519_key.pub"
cat >"$rootfs/etc/ssh/sshd_config.d/10-gitea-homelab-test.conf" <<'EOF'
# Test VM: key login only, with the pinned ed25519 host key.
HostKey /etc/ssh/ssh_host_ed25519_key
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
EOF

# operator: the SSH user the program uses, passwordless sudo.
# nosudo: same key, no sudo, for bad-input tests.
for user in operator nosudo; do
	# Debian already has a system group "operator" (gid 37): join it then.
	if in_root getent group "$user" >/dev/null; then
		in_root useradd -m -s /bin/bash -g "$user" "$user"
	else
		in_root useradd -m -s /bin/bash "$user"
	fi
	home=$rootfs/home/$user
	install -d -m 0700 "$home/.ssh"
	install -m 0600 "$stage/id_ed25519.pub" "$home/.ssh/authorized_keys"
	in_root chown -R "$user:$user" "/home/$user/.ssh"
done
echo 'operator ALL=(ALL) NOPASSWD:ALL' >"$rootfs/etc/sudoers.d/operator"
chmod 0440 "$rootfs/etc/sudoers.d/operator"

in_root systemctl enable systemd-networkd.service ssh.service firewalld.service >&2
# Nothing in the VM may reach out (apt timers, NTP); the VM has no internet.
in_root systemctl mask apt-daily.timer apt-daily-upgrade.timer systemd-timesyncd.service >&2

# What the tests deploy, as a host without internet would have it: image archives for
# `podman load` and the runner binary for runnerSourcePath.
test_dir=$rootfs/opt/gitea-homelab-test
install -d -m 0755 "$test_dir"
install -m 0644 "$work/gitea.tar" "$test_dir/gitea.tar"
install -m 0644 "$work/gitea-previous.tar" "$test_dir/gitea-previous.tar"
install -m 0644 "$work/job.tar" "$test_dir/job.tar"
install -m 0755 "$tools_bin/gitea-runner" "$test_dir/gitea-runner"
# Names the tests read (VM_IMAGE_DIR/test-images.env).
{
	echo "GITEA_IMAGE=localhost/gitea:$gitea_version-rootless"
	echo "GITEA_IMAGE_ARCHIVE=/opt/gitea-homelab-test/gitea.tar"
	echo "GITEA_VERSION=$gitea_version"
	echo "GITEA_PREVIOUS_IMAGE=localhost/gitea:$gitea_previous_version-rootless"
	echo "GITEA_PREVIOUS_IMAGE_ARCHIVE=/opt/gitea-homelab-test/gitea-previous.tar"
	echo "GITEA_PREVIOUS_VERSION=$gitea_previous_version"
	echo "JOB_IMAGE=localhost/gitea-homelab-job:trixie"
	echo "JOB_IMAGE_ARCHIVE=/opt/gitea-homelab-test/job.tar"
	echo "RUNNER_BINARY=/opt/gitea-homelab-test/gitea-runner"
	echo "RUNNER_VERSION=$(cat "$tools_bin/gitea-runner.version")"
} >"$stage/test-images.env"

# Kernel and initrd boot with qemu -kernel/-initrd; no bootloader needed.
kernel=$(find "$rootfs/boot" -maxdepth 1 -name 'vmlinuz-*' | sort -V | tail -n1)
initrd=$(find "$rootfs/boot" -maxdepth 1 -name 'initrd.img-*' | sort -V | tail -n1)
[[ -n $kernel && -n $initrd ]] || { log "no kernel/initrd in $rootfs/boot"; exit 1; }
install -m 0644 "$kernel" "$stage/vmlinuz"
install -m 0644 "$initrd" "$stage/initrd.img"

log "disk ($disk_size ext4 from the tree, no mount needed)"
truncate -s "$disk_size" "$work/disk.raw"
mkfs.ext4 -q -F -L gitea-vm -d "$rootfs" "$work/disk.raw" >&2
qemu-img convert -O qcow2 "$work/disk.raw" "$stage/disk.qcow2"
rm -f "$work/disk.raw"
chmod 0444 "$stage/disk.qcow2"

printf '%s\n' "${packages[@]}" >"$stage/packages.txt"
# shellcheck disable=SC2016 # dpkg-query format, not shell
in_root dpkg-query -W -f '${Package} ${Version}\n' >"$stage/versions.txt"
touch "$stage/.complete"
# A finished dir appears under its final name at once (rename), never half-built.
rm -rf "$out"
mv "$stage" "$out"
log "built in $((SECONDS - start)) s"
echo "$out"
