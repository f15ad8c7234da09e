import { mkdirSync, writeFileSync } from "fs";
import { join } from "path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ScriptSandbox } from "../../test/helpers/scriptSandbox";
import { keysDrift } from "./drift";
import { KEY_NAMES, KEYS_COMPLETE_FUNCTION, renderKeysScript } from "./render";

describe("Gitea's keys on the host", () => {
  it("checks for exactly the keys Gitea is given", () => {
    for (const name of KEY_NAMES) expect(KEYS_COMPLETE_FUNCTION).toContain(name);
    const script = renderKeysScript({ user: "rootless", dataVolume: "gitea-data", legacyEnvFile: ".config/gitea-homelab/gitea.env" });
    for (const name of KEY_NAMES) expect(script).toContain(`echo "${name}=`);
  });

  describe("run in the script sandbox (system commands stubbed, the rootless user's home a scratch directory)", () => {
    let sandbox: ScriptSandbox;
    let home: string;
    const script = renderKeysScript({ user: "rootless", dataVolume: "gitea-data", legacyEnvFile: ".config/gitea-homelab/gitea.env" });
    const keysInstalled = () => Object.entries(sandbox.takeInstalled()).find(([path]) => path.endsWith("/gitea-keys.env"))?.[1];
    const value = (file: string, name: string) => new RegExp(`^${name}=(.*)$`, "m").exec(file)?.[1];

    beforeEach(() => {
      sandbox = new ScriptSandbox();
      home = join(sandbox.dir, "home");
    });
    afterEach(() => sandbox.dispose());

    it("generates random keys, long enough, when there is no data yet (two runs differ)", () => {
      const run = sandbox.runBash(script, "", "present");
      expect(run.status, run.stderr).toBe(0);
      expect(run.stdout).toContain("keys generated");
      const file = keysInstalled()!;
      for (const name of KEY_NAMES) expect(value(file, name)!.length, name).toBeGreaterThanOrEqual(43);
      expect(value(file, "GITEA__oauth2__JWT_SECRET")).toMatch(/^[A-Za-z0-9_-]{43}$/);
      const again = sandbox.runBash(script, "", "present");
      expect(value(keysInstalled()!, "GITEA__security__SECRET_KEY")).not.toBe(value(file, "GITEA__security__SECRET_KEY"));
      expect(again.status).toBe(0);
    });

    it("keeps a complete keys file as it is", () => {
      const keys = KEY_NAMES.map((n) => `${n}=kept-${n}`).join("\n");
      mkdirSync(join(home, ".config/gitea-homelab"), { recursive: true });
      writeFileSync(join(home, ".config/gitea-homelab/gitea-keys.env"), `${keys}\n`);
      const run = sandbox.runBash(script, "", "present");
      expect(run.stdout).toContain("keys kept");
      expect(keysInstalled()).toBeUndefined();
    });

    it("adopts the keys earlier versions kept in the service's environment file", () => {
      mkdirSync(join(home, ".config/gitea-homelab"), { recursive: true });
      writeFileSync(join(home, ".config/gitea-homelab/gitea.env"), `${KEY_NAMES.map((n) => `${n}=old-${n}`).join("\n")}\nGITEA_RUNNER_REGISTRATION_TOKEN=not-a-key\n`);
      const run = sandbox.runBash(script, "", "present");
      expect(run.stdout).toContain("keys taken over from the service's environment file");
      expect(keysInstalled()).toBe(`${KEY_NAMES.map((n) => `${n}=old-${n}`).join("\n")}\n`);
    });

    it("refuses to make new keys beside an existing database, naming restoreFrom", () => {
      mkdirSync(join(home, ".local/share/containers/storage/volumes/gitea-data/_data/data"), { recursive: true });
      writeFileSync(join(home, ".local/share/containers/storage/volumes/gitea-data/_data/data/gitea.db"), "SQLite format 3");
      const run = sandbox.runBash(script, "", "present");
      expect(run.status).toBe(1);
      expect(run.stderr).toMatch(/volume gitea-data holds Gitea's database but its keys file .* is missing or incomplete: .*gitea-homelab:restoreFrom/);
      expect(keysInstalled()).toBeUndefined();
    });
  });

  it("is drift when the file is missing, incomplete or readable by others; never shows a value", () => {
    expect(keysDrift("rootless", { keys: "complete", keys_mode: "600 rootless" })).toEqual([]);
    expect(keysDrift("rootless", { keys: "complete", keys_mode: "644 rootless" })).toEqual(["keys file ~rootless/.config/gitea-homelab/gitea-keys.env: mode and owner 644 rootless, expected 600 rootless"]);
    expect(keysDrift("rootless", { keys: "missing", keys_mode: "missing" })[0]).toMatch(/MISSING; without it Gitea cannot decrypt what it encrypted; put it back or restore a backup \(gitea-homelab:restoreFrom\)$/);
    expect(keysDrift("rootless", { keys: "incomplete", keys_mode: "600 rootless" })[0]).toMatch(/a key is missing from it/);
    expect(keysDrift("rootless", undefined)[0]).toMatch(/state unknown/);
  });
});
