/**
 * The owner's Gitea settings: names and Gitea's escapes (checked against a decoder written from
 * Gitea's documented rules), refused names and owned settings, and the removal of a dropped
 * setting from app.ini, run with the real bash and awk on a copy of an app.ini.
 */
import { spawnSync } from "child_process";
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "fs";
import { tmpdir } from "os";
import { join } from "path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { renderScript, sh } from "../render/shell";
import { expectCleanScript } from "../../test/helpers/scripts";
import {
  DEFAULT_SETTINGS,
  defaultsNotOverridden,
  readSettings,
  RECORD_KEY,
  RECORD_SECTION,
  recordLine,
  recordSetting,
  renderForgetDroppedSettings,
  settingNameProblem,
  settingVariable,
  settingsEnvironment,
} from "./settings";

/**
 * How Gitea's image reads GITEA__SECTION__KEY (its docs: "_0X2E_" is ".", the section and key
 * split at the first "__" outside an escape, the section lower-cased, the key kept).
 */
function giteaDecode(variable: string): { section: string; key: string } | undefined {
  const rest = variable.replace(/^GITEA__/, "");
  let section = "";
  let key = "";
  let inKey = false;
  const add = (text: string) => {
    if (inKey) key += text;
    else {
      const split = text.indexOf("__");
      if (split < 0) section += text;
      else {
        section += text.slice(0, split);
        key += text.slice(split + 2);
        inKey = true;
      }
    }
  };
  let last = 0;
  for (const m of rest.matchAll(/_0[xX]((?:[0-9a-fA-F]{2})+)_/g)) {
    add(rest.slice(last, m.index));
    const decoded = Buffer.from(m[1], "hex").toString("utf8");
    if (inKey) key += decoded;
    else section += decoded;
    last = m.index! + m[0].length;
  }
  add(rest.slice(last));
  return key === "" ? undefined : { section: section.toLowerCase(), key };
}

describe("setting names", () => {
  it("become the GITEA__ variables Gitea's image maps back to the same section and key", () => {
    const cases: Array<[string, string, string]> = [
      ["mailer", "SMTP_ADDR", "GITEA__MAILER__SMTP_ADDR"],
      ["", "APP_NAME", "GITEA____APP_NAME"],
      ["repository.signing", "DEFAULT_TRUST_MODEL", "GITEA__REPOSITORY_0X2E_SIGNING__DEFAULT_TRUST_MODEL"],
      ["repository.pull-request", "WORK_IN_PROGRESS_PREFIXES", "GITEA__REPOSITORY_0X2E_PULL_0X2D_REQUEST__WORK_IN_PROGRESS_PREFIXES"],
      ["cron.update_checker", "ENABLED", "GITEA__CRON_0X2E_UPDATE_CHECKER__ENABLED"],
      ["git.config", "diff.algorithm", "GITEA__GIT_0X2E_CONFIG__diff_0X2E_algorithm"],
      ["highlight.mapping", ".toml", "GITEA__HIGHLIGHT_0X2E_MAPPING___0X2E_toml"],
    ];
    for (const [section, key, variable] of cases) {
      expect(settingNameProblem(section, key), `${section} ${key}`).toBeUndefined();
      expect(settingVariable(section, key)).toBe(variable);
      expect(giteaDecode(variable)).toEqual({ section, key });
    }
  });

  it("round-trip through Gitea's decoding for every name the checks accept", () => {
    const word = fc.stringMatching(/^[a-z0-9]{1,6}([_-][a-z0-9]{1,4}){0,2}$/);
    const section = fc.oneof(fc.constant(""), fc.array(word, { minLength: 1, maxLength: 3 }).map((w) => w.join(".")));
    const key = fc.stringMatching(/^[A-Za-z0-9.][A-Za-z0-9_.-]{0,12}[A-Za-z0-9]$/);
    fc.assert(
      fc.property(section, key, (s, k) => {
        fc.pre(settingNameProblem(s, k) === undefined);
        expect(giteaDecode(settingVariable(s, k))).toEqual({ section: s, key: k });
        expect(settingVariable(s, k)).toMatch(/^[A-Za-z_][A-Za-z0-9_]*$/);
      }),
      { numRuns: 300, seed: 26 },
    );
  });

  it("refuses names Gitea would read as something else", () => {
    expect(settingNameProblem("Mailer", "FROM")).toMatch(/must be lower case, as Gitea's sections are \(mailer\)/);
    expect(settingNameProblem("mailer..x", "FROM")).toMatch(/not a Gitea section name/);
    expect(settingNameProblem("a__b", "X")).toMatch(/not a Gitea section name/);
    expect(settingNameProblem("default", "APP_NAME")).toMatch(/directly under gitea \(gitea\.APP_NAME\)/);
    expect(settingNameProblem("mailer", "SMTP ADDR")).toMatch(/not a Gitea key name/);
    expect(settingNameProblem("mailer", "X_")).toMatch(/not a Gitea key name/);
    expect(settingNameProblem("mailer", "A_0X2E_B")).toMatch(/_0x/);
    expect(settingNameProblem("mailer", "PASSWD__FILE")).toMatch(/__FILE/);
  });
});

describe("readSettings", () => {
  it("reads sections, sub-sections (nested or dotted), default-section keys, numbers and booleans", () => {
    const { settings, problems, warnings } = readSettings(
      { APP_NAME: "Home forge", mailer: { ENABLED: true, SMTP_PORT: 587 }, repository: { signing: { DEFAULT_TRUST_MODEL: "committer" } }, "repository.pull-request": { WORK_IN_PROGRESS_PREFIXES: "WIP:,[WIP]" } },
      false,
    );
    expect(problems).toEqual([]);
    expect(warnings).toEqual([]);
    expect(settings).toEqual([
      { section: "", key: "APP_NAME", value: "Home forge" },
      { section: "mailer", key: "ENABLED", value: "true" },
      { section: "mailer", key: "SMTP_PORT", value: "587" },
      { section: "repository.signing", key: "DEFAULT_TRUST_MODEL", value: "committer" },
      { section: "repository.pull-request", key: "WORK_IN_PROGRESS_PREFIXES", value: "WIP:,[WIP]" },
    ]);
  });

  it("keeps a value byte for byte, spaces, quotes, $ and % included", () => {
    const value = ` $(touch /tmp/x); \`id\` "q" 'q' %h $HOME \${X} # ; `;
    expect(readSettings({ "": {}, ui: { META_DESCRIPTION: value } }, false).settings).toEqual([{ section: "ui", key: "META_DESCRIPTION", value }]);
  });

  it("refuses what the program sets itself, naming the setting to use instead", () => {
    const { problems } = readSettings(
      { server: { ROOT_URL: "https://x/", root_url: "https://y/", SSH_PORT: 22, HTTP_PORT: 80 }, security: { INSTALL_LOCK: false, SECRET_KEY: "k" }, oauth2: { JWT_SECRET: "j" }, database: { DB_TYPE: "postgres", PATH: "/x" } },
      false,
    );
    const byPath = Object.fromEntries(problems.map((p) => [p.path, p.message]));
    expect(Object.keys(byPath)).toEqual([
      "gitea.server.ROOT_URL",
      "gitea.server.root_url",
      "gitea.server.SSH_PORT",
      "gitea.server.HTTP_PORT",
      "gitea.security.INSTALL_LOCK",
      "gitea.security.SECRET_KEY",
      "gitea.oauth2.JWT_SECRET",
      "gitea.database.DB_TYPE",
      "gitea.database.PATH",
    ]);
    expect(byPath["gitea.server.ROOT_URL"]).toMatch(/^is set by gitea-homelab itself: set gitea-homelab:rootUrl/);
    expect(byPath["gitea.server.SSH_PORT"]).toMatch(/gitea-homelab:sshPort/);
    expect(byPath["gitea.server.HTTP_PORT"]).toMatch(/gitea-homelab:httpPort/);
    expect(byPath["gitea.security.SECRET_KEY"]).toMatch(/made on the host once and kept with the data/);
    expect(byPath["gitea.database.DB_TYPE"]).toMatch(/gitea-homelab:database/);
    // Other database settings are the owner's.
    expect(readSettings({ database: { SQLITE_JOURNAL_MODE: "WAL", LOG_SQL: false } }, false).problems).toEqual([]);
  });

  it("refuses control characters, lists, nulls and the same setting twice; a secret value is never repeated", () => {
    const { problems } = readSettings({ mailer: { PASSWD: "line1\nline2", FROM: ["a"], USER: null }, repository: { signing: { X: "1" } }, "repository.signing": { X: "2" } }, true);
    expect(problems).toEqual([
      { path: "gitea.mailer.PASSWD", message: "must be one line without control characters (a newline, tab, escape or NUL)" },
      { path: "gitea.mailer.FROM", message: "must be a text, number or true/false, got a list" },
      { path: "gitea.mailer.USER", message: "must be a text, number or true/false, got null" },
      { path: "gitea.repository.signing.X", message: "names the same setting as gitea.repository.signing.X; keep one" },
    ]);
    expect(readSettings({ ui: { X: "a\tb" } }, false).problems[0].message).toContain('"a\\tb"');
    expect(JSON.stringify(readSettings({ mailer: { PASSWD: "s3cret\u0007" } }, true))).not.toContain("s3cret");
  });

  it("refuses anything but an object, and warns of a lower-case key Gitea would ignore", () => {
    expect(readSettings("APP_NAME=x", false).problems).toEqual([{ path: "gitea", message: expect.stringMatching(/^must be an object of sections and keys/) }]);
    expect(readSettings(["x"], false).problems).toHaveLength(1);
    expect(readSettings({ mailer: { smtp_addr: "x" } }, false).warnings).toEqual([{ path: "gitea.mailer.smtp_addr", message: expect.stringMatching(/upper case \(SMTP_ADDR\)/) }]);
    expect(readSettings({ "git.config": { "diff.algorithm": "histogram" } }, false).warnings).toEqual([]);
    expect(readSettings(undefined, false)).toEqual({ settings: [], problems: [], warnings: [] });
  });
});

describe("defaults", () => {
  it("close the forge to strangers: no self-registration, sign-in to view", () => {
    const env = settingsEnvironment(DEFAULT_SETTINGS);
    expect(env.GITEA__SERVICE__DISABLE_REGISTRATION).toBe("true");
    expect(env.GITEA__SERVICE__REQUIRE_SIGNIN_VIEW).toBe("true");
    for (const d of DEFAULT_SETTINGS) expect(settingNameProblem(d.section, d.key)).toBeUndefined();
  });

  it("give way to the owner's own value of the same setting", () => {
    const left = defaultsNotOverridden([{ section: "service", key: "REQUIRE_SIGNIN_VIEW" }]);
    expect(left.map(recordLine)).not.toContain("[service]REQUIRE_SIGNIN_VIEW");
    expect(left.map(recordLine)).toContain("[service]DISABLE_REGISTRATION");
  });
});

describe("a setting dropped from config", () => {
  const record = (managed: Array<{ section: string; key: string }>) => `[${RECORD_SECTION}]\n${RECORD_KEY} = ${recordSetting(managed).value}\n`;
  const BEFORE = [...DEFAULT_SETTINGS, { section: "", key: "APP_NAME" }, { section: "mailer", key: "ENABLED" }, { section: "mailer", key: "PASSWD" }];
  /** An app.ini as Gitea's image leaves it after a start with BEFORE (and a key set by hand). */
  const APP_INI = [
    "APP_NAME = Home forge",
    "RUN_MODE = prod",
    "",
    "[server]",
    "ROOT_URL = http://gitea.test:4111/",
    "",
    "[mailer]",
    "ENABLED = true",
    "PASSWD = `s3cret;#`",
    "HAND_SET = kept",
    "",
    "[service]",
    "DISABLE_REGISTRATION = true",
    "",
    record(BEFORE),
  ].join("\n");

  /** Runs the snippet as the unit install script would, with the volume in a temp dir. */
  function run(dir: string, managed: Array<{ section: string; key: string }>) {
    const script = renderScript(
      { purpose: "test: forget dropped settings" },
      sh`
as_user() { echo "$GH_VOLUME"; }
user=rootless
tmp=$(mktemp)
${renderForgetDroppedSettings("gitea-config", managed)}
echo "changed=$changed"
`,
    );
    const r = spawnSync("bash", ["-c", script], { encoding: "utf8", env: { ...process.env, GH_VOLUME: dir } });
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    return r.stdout;
  }

  function volume(appIni?: string): string {
    const dir = mkdtempSync(join(tmpdir(), "gh-settings-"));
    if (appIni !== undefined) writeFileSync(join(dir, "app.ini"), appIni);
    return dir;
  }

  it("removes what the program set at Gitea's last start and no longer sets, keeping everything else", () => {
    const dir = volume(APP_INI);
    // Nothing left the config: nothing changes.
    expect(run(dir, BEFORE)).toBe("changed=0\n");
    expect(readFileSync(join(dir, "app.ini"), "utf8")).toBe(APP_INI);
    // `pulumi config rm` of the password and the site name.
    const after = BEFORE.filter((s) => !["PASSWD", "APP_NAME"].includes(s.key));
    const out = run(dir, after);
    expect(out).toBe("removed from app.ini, no longer set in gitea-homelab:gitea: []APP_NAME [mailer]PASSWD \nchanged=1\n");
    expect(readFileSync(join(dir, "app.ini"), "utf8")).toBe(APP_INI.replace("APP_NAME = Home forge\n", "").replace("PASSWD = `s3cret;#`\n", ""));
    // Gitea's next start writes the new record; then nothing is left to remove.
    writeFileSync(join(dir, "app.ini"), readFileSync(join(dir, "app.ini"), "utf8").replace(record(BEFORE), record(after)));
    expect(run(dir, after)).toBe("changed=0\n");
  });

  it("removes nothing without a record (Gitea never started with one) and touches no volume before Gitea's first start", () => {
    const noRecord = APP_INI.replace(record(BEFORE), "");
    const dir = volume(`[DEFAULT]\n${noRecord}`);
    expect(run(dir, [])).toBe("changed=0\n");
    expect(readFileSync(join(dir, "app.ini"), "utf8")).toBe(`[DEFAULT]\n${noRecord}`);
    // Podman gives an empty volume to the container's user only while it is empty.
    const empty = volume();
    expect(run(empty, BEFORE)).toBe("changed=0\n");
    expect(readdirSync(empty)).toEqual([]);
  });

  it("reads [DEFAULT] as the default section and a record written first in the file", () => {
    const dir = volume(`${record([{ section: "", key: "APP_NAME" }])}\n[DEFAULT]\nAPP_NAME = x\n`);
    expect(run(dir, [])).toMatch(/^removed from app.ini.*\[\]APP_NAME/);
    expect(readFileSync(join(dir, "app.ini"), "utf8")).not.toContain("APP_NAME = x");
  });

  it("is clean bash inside the unit's install script", () => {
    expectCleanScript(renderScript({ purpose: "test" }, sh`tmp=$(mktemp)
user=rootless
${renderForgetDroppedSettings("gitea-config", DEFAULT_SETTINGS)}
echo "$changed"`));
  });
});
