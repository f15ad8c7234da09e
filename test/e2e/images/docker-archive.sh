#!/usr/bin/env bash
# Packs a root filesystem into a docker-archive tarball (what `podman load` reads), without
# podman or docker. Owners and modes are taken from the tree as it is (build it as root).
# Usage: docker-archive.sh ROOTFS CONFIG_JSON TAG OUT.tar
#   CONFIG_JSON: the image's "config" object (User, Env, Entrypoint, ...), one JSON object.
set -euo pipefail

if [[ $# -ne 4 ]]; then
	echo "usage: $0 ROOTFS CONFIG_JSON TAG OUT.tar" >&2
	exit 2
fi
rootfs=$1 image_config=$2 tag=$3 out=$4

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# One layer; fixed order and times, so the same tree gives the same archive.
layer=$work/layer.tar
tar -cf "$layer" --sort=name --mtime=@0 --numeric-owner --format=gnu --xattrs \
	--exclude=./dev/* --exclude=./proc/* --exclude=./sys/* --exclude=./run/* \
	-C "$rootfs" .
layer_sha=$(sha256sum "$layer" | cut -d' ' -f1)

config=$(printf '{"architecture":"amd64","os":"linux","created":"1970-01-01T00:00:00Z","config":%s,"rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"history":[{"created":"1970-01-01T00:00:00Z","created_by":"test/e2e/images"}]}' "$image_config" "$layer_sha")
config_sha=$(printf '%s' "$config" | sha256sum | cut -d' ' -f1)

archive=$work/archive
mkdir -p "$archive/$layer_sha"
mv "$layer" "$archive/$layer_sha/layer.tar"
printf '%s' "$config" >"$archive/$config_sha.json"
printf '[{"Config":"%s.json","RepoTags":["%s"],"Layers":["%s/layer.tar"]}]\n' \
	"$config_sha" "$tag" "$layer_sha" >"$archive/manifest.json"

# Written beside the target and renamed, so a reader never sees half a file.
mkdir -p "$(dirname "$out")"
tar -cf "$out.tmp.$$" --sort=name --mtime=@0 --numeric-owner --owner=0 --group=0 -C "$archive" .
mv -f "$out.tmp.$$" "$out"
chmod 0644 "$out"
