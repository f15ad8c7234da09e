#!/usr/bin/env bash
# Builds a Gitea rootless image for the end-to-end tests, the way Gitea's own
# Dockerfile.rootless builds docker.gitea.com/gitea:VERSION-rootless, but on a Debian rootfs
# from mmdebstrap instead of Alpine (nothing can be pulled here) and with the Gitea binary
# built from its Go module by tools/build.sh. The files of Gitea's docker/rootless/ (entrypoint,
# the gitea wrapper, environment-to-ini, the app.ini template) are taken from that module at
# build time, never committed. Run as root. Usage: build.sh TOOLS_BIN OUT.tar [NAME]
# NAME is the build in TOOLS_BIN to use (default gitea; gitea-previous for the upgrade test).
# The image is tagged localhost/gitea:VERSION-rootless.
set -euo pipefail

if [[ $# -lt 2 || $# -gt 3 ]]; then
	echo "usage: $0 TOOLS_BIN OUT.tar [NAME]" >&2
	exit 2
fi
bin=$1 out=$2 name=${3:-gitea}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
mirror=${GITEA_HOMELAB_VM_MIRROR:-http://deb.debian.org/debian}
version=$(cat "$bin/$name.version")
moddir=$(cat "$bin/$name.moddir")
[[ -x $bin/$name && -d $moddir/docker/rootless ]] || {
	echo "no Gitea build in $bin: run tools/build.sh $name" >&2
	exit 1
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# apt in the chroot downloads as _apt, which must be able to enter the tree.
chmod 0755 "$work"
rootfs=$work/rootfs
# The packages Dockerfile.rootless adds (Debian names); gnupg is left out: it only signs
# commits, which the tests do not do.
mmdebstrap --variant=minbase --components=main \
	--include=bash,ca-certificates,dumb-init,gettext-base,git,curl,openssh-client \
	--dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
	--dpkgopt='path-exclude=/usr/share/locale/*' \
	trixie "$rootfs" "deb $mirror trixie main" >&2

# The git user, uid/gid 1000, home inside the data volume.
chroot "$rootfs" groupadd -g 1000 git
chroot "$rootfs" useradd -M -d /var/lib/gitea/git -s /bin/bash -u 1000 -g git git
install -d -o 1000 -g 1000 -m 0755 "$rootfs/var/lib/gitea" "$rootfs/etc/gitea"

# Gitea's rootless files, then the binary and the assets it reads from STATIC_ROOT_PATH.
cp -r "$moddir/docker/rootless/." "$rootfs/"
# Before 1.26, environment-to-ini is a program, built by tools/build.sh beside the binary.
[[ -e $rootfs/usr/local/bin/environment-to-ini ]] ||
	install -m 0755 "$bin/$name.environment-to-ini" "$rootfs/usr/local/bin/environment-to-ini"
chmod -R u+w,go-w "$rootfs/usr/local/bin" "$rootfs/etc/templates"
chmod 0755 "$rootfs"/usr/local/bin/*
install -d -m 0755 "$rootfs/app/gitea"
install -m 0755 "$bin/$name" "$rootfs/app/gitea/gitea"
for dir in templates options public; do
	cp -r "$moddir/$dir" "$rootfs/app/gitea/$dir"
done
chmod -R u+w,go-w,a+rX "$rootfs/app/gitea"

config='{"User":"1000:1000","ExposedPorts":{"2222/tcp":{},"3000/tcp":{}},"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin","GITEA_WORK_DIR=/var/lib/gitea","GITEA_CUSTOM=/var/lib/gitea/custom","GITEA_TEMP=/tmp/gitea","TMPDIR=/tmp/gitea","GITEA_APP_INI=/etc/gitea/app.ini","HOME=/var/lib/gitea/git"],"Entrypoint":["/usr/bin/dumb-init","--","/usr/local/bin/docker-entrypoint.sh"],"WorkingDir":"/var/lib/gitea","Volumes":{"/etc/gitea":{},"/var/lib/gitea":{}},"Labels":{"org.opencontainers.image.title":"gitea","org.opencontainers.image.version":"'"$version"'","org.opencontainers.image.description":"Gitea built from its Go module for the gitea-homelab tests"}}'
bash "$here/../docker-archive.sh" "$rootfs" "$config" "localhost/gitea:$version-rootless" "$out"
echo "$out"
