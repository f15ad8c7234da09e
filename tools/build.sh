#!/usr/bin/env bash
# Builds the programs the end-to-end tests run, from the Go modules pinned in tools/*/go.mod,
# into an ignored directory (GITEA_HOMELAB_TOOLS_BIN, default .tools/bin). Go's module and
# build caches are reused, so a second run only links. Usage: tools/build.sh [NAME...]
# (default: all). The last line on stdout is the output directory.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
out=${GITEA_HOMELAB_TOOLS_BIN:-$root/.tools/bin}
# The machine's own Go, never a toolchain download named by a go.mod.
export GOTOOLCHAIN=local
# The tool modules sit inside this git checkout, which says nothing about what is built.
export GOFLAGS="-mod=mod -buildvcs=false"

log() { echo "tools/build: $*" >&2; }

version_of() { # MODULE: its version as pinned in the current tool module
	go list -m -f '{{.Version}}' "$1"
}

build_gitea() { # NAME: the Gitea pinned in tools/NAME/go.mod, into $out/NAME (+ .moddir, .version)
	local name=$1 version
	cd "$here/$name"
	version=$(version_of code.gitea.io/gitea)
	# Gitea 1.26, like 1.25, reaches SQLite through cgo (mattn/go-sqlite3, tag sqlite); linked
	# statically so the binary runs on any base image. The web assets are read from disk at
	# STATIC_ROOT_PATH (no bindata: the module has no built frontend), so the image puts
	# templates/, options/ and public/ beside the binary in /app/gitea.
	CGO_ENABLED=1 go build -trimpath -o "$out/$name" \
		-tags 'netgo osusergo sqlite sqlite_unlock_notify' \
		-ldflags "-s -w -linkmode external -extldflags -static -X main.Version=${version#v} -X 'main.Tags=sqlite sqlite_unlock_notify' -X code.gitea.io/gitea/modules/setting.StaticRootPath=/app/gitea" \
		code.gitea.io/gitea
	# Where the image builder finds the module's files (docker/rootless, templates, ...).
	local moddir
	moddir=$(go list -m -f '{{.Dir}}' code.gitea.io/gitea)
	# Before 1.26, the environment-to-ini that docker-setup.sh runs is a program of its own,
	# not a script in docker/rootless; Dockerfile.rootless builds it without tags.
	if [[ ! -e $moddir/docker/rootless/usr/local/bin/environment-to-ini ]]; then
		CGO_ENABLED=0 go build -trimpath -o "$out/$name.environment-to-ini" -ldflags '-s -w' \
			code.gitea.io/gitea/contrib/environment-to-ini
	fi
	echo "$moddir" >"$out/$name.moddir"
	echo "${version#v}" >"$out/$name.version"
}

build_gitea_runner() {
	cd "$here/gitea-runner"
	local version
	version=$(version_of gitea.com/gitea/runner)
	CGO_ENABLED=0 go build -trimpath -o "$out/gitea-runner" \
		-ldflags "-s -w -X gitea.com/gitea/runner/internal/pkg/ver.version=$version" \
		gitea.com/gitea/runner
	echo "$version" >"$out/gitea-runner.version"
}

build_pulumi() { # the CLI and, beside it where the CLI looks, its Node.js language host
	local version
	cd "$here/pulumi"
	version=$(version_of github.com/pulumi/pulumi/pkg/v3)
	go build -trimpath -o "$out/pulumi" \
		-ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$version" \
		github.com/pulumi/pulumi/pkg/v3/cmd/pulumi
	# Its own module is refused by the registry; sdk/v3 v3.68.0 still holds the same program.
	cd "$here/pulumi-language-nodejs"
	go build -trimpath -o "$out/pulumi-language-nodejs" -ldflags "-s -w" \
		github.com/pulumi/pulumi/sdk/v3/nodejs/cmd/pulumi-language-nodejs
	echo "$version" >"$out/pulumi.version"
}

build_pebble() { # Let's Encrypt's ACME test server, for the tls acme end-to-end test (not in the default set)
	cd "$here/pebble"
	CGO_ENABLED=0 go build -trimpath -o "$out/pebble" -ldflags "-s -w" github.com/letsencrypt/pebble/v2/cmd/pebble
}

build_rclone() { # rclone serve s3/sftp: the off-site backends of the e2e (built by with-vm.sh, not in the default set)
	local version
	cd "$here/rclone"
	version=$(version_of github.com/rclone/rclone)
	# fs.Version set: it reports the pinned release, not "v1.76.0-DEV" (its Makefile does the same).
	CGO_ENABLED=0 go build -trimpath -o "$out/rclone" \
		-ldflags "-s -w -X github.com/rclone/rclone/fs.Version=$version" \
		github.com/rclone/rclone
	echo "$version" >"$out/rclone.version"
}

names=("$@")
((${#names[@]} > 0)) || names=(gitea gitea-runner gitea-previous pulumi)
mkdir -p "$out"
for name in "${names[@]}"; do
	start=$SECONDS
	case $name in
		# gitea-previous: the release before, for the upgrade test.
		gitea | gitea-previous) build_gitea "$name" ;;
		gitea-runner) build_gitea_runner ;;
		pulumi) build_pulumi ;;
		pebble) build_pebble ;;
		rclone) build_rclone ;;
		*)
			log "unknown tool '$name' (known: gitea gitea-runner gitea-previous pulumi pebble rclone)"
			exit 2
			;;
	esac
	log "$name built in $((SECONDS - start)) s"
done
echo "$out"
