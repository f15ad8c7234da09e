/**
 * A scratch host for the certificate scripts, which run for real with openssl: only the commands
 * that need root or a running host (id, getent, runuser, systemctl, install's owner) are
 * stand-ins, each logging `NAME ARGS` to DIR/log. The user `rootless` lives in HOME.
 */
import { chmodSync, mkdirSync, writeFileSync } from "fs";
import { join } from "path";

/** Makes DIR/bin with the stubs (and EXTRA, name to bash body) and returns it. */
export function rootStubs(dir: string, home: string, extra: Record<string, string> = {}): string {
  const bin = join(dir, "bin");
  mkdirSync(bin, { recursive: true });
  const stubs: Record<string, string> = {
    id: `case $1 in -gn) echo rootless ;; *) echo 1000 ;; esac`,
    getent: `echo "rootless:x:1000:1000::${home}:/bin/bash"`,
    runuser: `while [[ $1 != -- ]]; do shift; done; shift; exec "$@"`,
    systemctl: `exit 0`,
    // install without -o/-g (no root needed): the rest is the real one.
    install: `args=(); while (($#)); do case $1 in -o|-g) shift 2 ;; *) args+=("$1"); shift ;; esac; done; exec /usr/bin/install "\${args[@]}"`,
    ...extra,
  };
  for (const [name, body] of Object.entries(stubs)) {
    writeFileSync(join(bin, name), `#!/bin/bash\necho "${name} $*" >>"${dir}/log"\n${body}\n`);
    chmodSync(join(bin, name), 0o755);
  }
  return bin;
}
