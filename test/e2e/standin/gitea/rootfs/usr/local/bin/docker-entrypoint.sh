#!/bin/sh
# STAND-IN for the Gitea rootless image's entrypoint (the real image cannot be
# pulled in the test environment). It records what the container was started
# with, so end-to-end tests can check what the program passed, and serves the
# two ports the real Gitea serves.
set -eu

STATE=/var/lib/gitea/standin
WWW=/usr/share/gitea-standin/www
mkdir -p "$STATE"

# Every GITEA__* variable and the runner token, one KEY=VALUE a line, 0600:
# the token and SECRET_KEY are secrets, as they would be in the real app.ini.
umask 077
env | grep -E '^(GITEA__[A-Za-z0-9_]+|GITEA_RUNNER_REGISTRATION_TOKEN)=' | sort > "$STATE/env.txt.new" || true
chmod 0600 "$STATE/env.txt.new"
mv -f "$STATE/env.txt.new" "$STATE/env.txt"

# Like the real image, apply GITEA__section__KEY to app.ini at every start.
if [ -n "${GITEA_APP_INI:-}" ]; then
	mkdir -p "$(dirname "$GITEA_APP_INI")"
	env | grep -E '^GITEA__[A-Za-z0-9_]+__[A-Za-z0-9_]+=' | sort | awk '
		{
			eq = index($0, "="); name = substr($0, 8, eq - 8); val = substr($0, eq + 1)
			sep = index(name, "__"); sec = tolower(substr(name, 1, sep - 1)); key = substr(name, sep + 2)
			if (sec != cur) { printf "%s[%s]\n", (NR > 1 ? "\n" : ""), sec; cur = sec }
			printf "%s = %s\n", key, val
		}' > "$GITEA_APP_INI.new" || true
	chmod 0600 "$GITEA_APP_INI.new"
	mv -f "$GITEA_APP_INI.new" "$GITEA_APP_INI"
fi

umask 022
echo "start $(date -u +%Y-%m-%dT%H:%M:%SZ) pid=$$" >> "$STATE/starts.log"

# HTTP on 3000 (GET /api/healthz -> 200 JSON, GET / -> page), an SSH-like
# banner on 2222 so the port is open and answers like an SSH server.
httpd -f -p 0.0.0.0:3000 -h "$WWW" &
http_pid=$!
nc -ll -p 2222 -e /usr/local/bin/standin-ssh-banner &
ssh_pid=$!

# sh as PID 1 ignores SIGTERM unless trapped: trap it so `podman stop` ends
# the container at once with status 0 instead of waiting for SIGKILL.
# shellcheck disable=SC2317 # called by the trap
stop() {
	kill "$http_pid" "$ssh_pid" 2>/dev/null || true
	echo "stop $(date -u +%Y-%m-%dT%H:%M:%SZ) pid=$$" >> "$STATE/starts.log"
	exit 0
}
trap stop TERM INT

# If either server dies, exit non-zero so a restart policy can act.
while kill -0 "$http_pid" 2>/dev/null && kill -0 "$ssh_pid" 2>/dev/null; do
	wait "$http_pid" || true
done
kill "$http_pid" "$ssh_pid" 2>/dev/null || true
exit 1
