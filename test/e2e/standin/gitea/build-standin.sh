#!/usr/bin/env bash
# Build the Gitea STAND-IN image as a docker-archive tarball (what `podman load`
# reads) without podman or docker: the real Gitea image cannot be pulled in the
# test environment. Usage: build-standin.sh OUT.tar
set -euo pipefail

if [[ $# -ne 1 ]]; then
	echo "usage: $0 OUT.tar" >&2
	exit 2
fi
out=$1
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
tag=localhost/gitea-standin:1.27.3-rootless
busybox=${BUSYBOX:-/bin/busybox}

# A static busybox is the whole userland; a dynamic one would miss its libc.
if [[ ! -x $busybox ]] || ldd "$busybox" >/dev/null 2>&1; then
	echo "need a static busybox (apt-get install busybox-static): $busybox" >&2
	exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/rootfs
mkdir -p "$root"/{bin,etc,tmp,usr/local/bin,usr/share,var/lib/gitea/git,etc/gitea}
cp "$busybox" "$root/bin/busybox"
chmod 0755 "$root/bin/busybox"
# One symlink per applet, so sh, httpd, nc, awk, sha256sum... are on PATH.
while read -r applet; do
	[[ -n $applet && $applet != busybox ]] || continue
	ln -sf busybox "$root/bin/$applet"
done < <("$busybox" --list)
cp -a "$here/rootfs/usr/local/bin/." "$root/usr/local/bin/"
cp -a "$here/rootfs/usr/share/gitea-standin" "$root/usr/share/"
chmod -R a+rX,go-w "$root/usr"
chmod 0755 "$root"/usr/local/bin/*
# Same user as the real rootless image: git, uid/gid 1000.
cat >"$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
git:x:1000:1000:Gitea stand-in:/var/lib/gitea/git:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
cat >"$root/etc/group" <<'EOF'
root:x:0:
git:x:1000:
nogroup:x:65534:
EOF
chmod 1777 "$root/tmp"
chmod 0755 "$root/var/lib/gitea" "$root/var/lib/gitea/git" "$root/etc/gitea"

# Layer: numeric owners set by tar, not by chown, so no root is needed.
# Everything is root-owned except /var/lib/gitea and /etc/gitea (1000:1000),
# which a named volume copies up so the container user owns its data.
layer=$work/layer.tar
common=(--sort=name --mtime=@0 --numeric-owner --format=gnu -C "$root")
tar -cf "$layer" "${common[@]}" --owner=0 --group=0 \
	--exclude=./var/lib/gitea --exclude=./etc/gitea .
tar -rf "$layer" "${common[@]}" --owner=1000 --group=1000 \
	./var/lib/gitea ./etc/gitea
layer_sha=$(sha256sum "$layer" | cut -d' ' -f1)

config=$(
	cat <<EOF
{"architecture":"amd64","os":"linux","created":"1970-01-01T00:00:00Z","config":{"User":"1000:1000","ExposedPorts":{"2222/tcp":{},"3000/tcp":{}},"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin","GITEA_APP_INI=/etc/gitea/app.ini","GITEA_WORK_DIR=/var/lib/gitea","GITEA_CUSTOM=/var/lib/gitea/custom","HOME=/var/lib/gitea/git","TMPDIR=/tmp"],"Entrypoint":["/usr/local/bin/docker-entrypoint.sh"],"WorkingDir":"/var/lib/gitea","Volumes":{"/etc/gitea":{},"/var/lib/gitea":{}},"Labels":{"org.opencontainers.image.title":"gitea-standin","org.opencontainers.image.description":"STAND-IN for docker.gitea.com/gitea:1.27.3-rootless, for tests only"},"StopSignal":"SIGTERM"},"rootfs":{"type":"layers","diff_ids":["sha256:${layer_sha}"]},"history":[{"created":"1970-01-01T00:00:00Z","created_by":"test/e2e/standin/gitea/build-standin.sh","comment":"Gitea stand-in, not real Gitea"}]}
EOF
)
config_sha=$(printf '%s' "$config" | sha256sum | cut -d' ' -f1)

archive=$work/archive
mkdir -p "$archive/$layer_sha"
mv "$layer" "$archive/$layer_sha/layer.tar"
printf '%s' "$config" >"$archive/$config_sha.json"
printf '[{"Config":"%s.json","RepoTags":["%s"],"Layers":["%s/layer.tar"]}]\n' \
	"$config_sha" "$tag" "$layer_sha" >"$archive/manifest.json"

# Write next to the target and rename, so a reader never sees half a file.
mkdir -p "$(dirname "$out")"
tar -cf "$out.tmp.$$" --sort=name --mtime=@0 --numeric-owner --owner=0 --group=0 -C "$archive" .
mv -f "$out.tmp.$$" "$out"
chmod 0644 "$out"
echo "$out"
