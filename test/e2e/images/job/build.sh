#!/usr/bin/env bash
# Builds the image the test workflows' jobs run in (runner label -> docker://THIS): a plain
# Debian minbase rootfs with bash, coreutils, git and the CA roots, enough for `run:` steps
# (one clones over https). Nothing can be
# pulled here, so the runner must find it already loaded. Run as root. Usage: build.sh OUT.tar
# The image is tagged localhost/gitea-homelab-job:trixie.
set -euo pipefail

if [[ $# -ne 1 ]]; then
	echo "usage: $0 OUT.tar" >&2
	exit 2
fi
out=$1
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
mirror=${GITEA_HOMELAB_VM_MIRROR:-http://deb.debian.org/debian}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# apt in the chroot downloads as _apt, which must be able to enter the tree.
chmod 0755 "$work"
mmdebstrap --variant=minbase --components=main --include=git,ca-certificates \
	--dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
	--dpkgopt='path-exclude=/usr/share/locale/*' \
	trixie "$work/rootfs" "deb $mirror trixie main" >&2
config='{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["bash"],"Labels":{"org.opencontainers.image.description":"job image for the gitea-homelab test workflows"}}'
bash "$here/../docker-archive.sh" "$work/rootfs" "$config" localhost/gitea-homelab-job:trixie "$out"
echo "$out"
