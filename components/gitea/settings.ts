/**
 * Gitea's app.ini settings that are the owner's to choose, the pure half: the defaults this
 * program sets for a forge whose admin it makes, the `gitea` config key (section → KEY → value)
 * read and checked, the GITEA__ variable each setting becomes, and the removal from app.ini of a
 * setting that left the config (Gitea's image writes GITEA__ variables into app.ini at every
 * start and never deletes a key, so a dropped setting would otherwise stay in force).
 */
import { Bash, CONTROL_CHARACTERS, shellVars, sh } from "../render/shell";

/** One app.ini setting; section "" is the default section (APP_NAME, RUN_MODE). */
export interface GiteaSetting {
  section: string;
  key: string;
  value: string;
}

/**
 * What a private forge wants and Gitea does not do by default; each is overridden by the same
 * setting under `gitea` (README: "Gitea settings"). Gitea 1.26+ already calls no Gravatar or CDN
 * (avatars are local by default, the frontend is served by Gitea), so no offline switch is needed.
 */
export const DEFAULT_SETTINGS: readonly GiteaSetting[] = [
  // The admin is made by the program: nobody else should be able to make an account.
  { section: "service", key: "DISABLE_REGISTRATION", value: "true" },
  // Strangers who reach the port see the sign-in page, not the users, organisations and public repositories.
  { section: "service", key: "REQUIRE_SIGNIN_VIEW", value: "true" },
  // New users' e-mail addresses are not shown to other users.
  { section: "service", key: "DEFAULT_KEEP_EMAIL_PRIVATE", value: "true" },
  // The sign-in page does not tell strangers which Gitea release (and which known bugs) it runs.
  { section: "other", key: "SHOW_FOOTER_VERSION", value: "false" },
];

/** The config key holding the settings. */
export const SETTINGS_KEY = "gitea";

/** Settings the program makes itself, and the stack setting to use instead. */
const OWNED: Array<{ section: string; keys: string[]; instead: string }> = [
  { section: "server", keys: ["ROOT_URL"], instead: "set gitea-homelab:rootUrl (or publicHost and httpPort, which make it)" },
  { section: "server", keys: ["DOMAIN", "SSH_DOMAIN"], instead: "set gitea-homelab:publicHost" },
  { section: "server", keys: ["HTTP_PORT", "PROTOCOL"], instead: "Gitea listens on port 3000 inside the container; publish another port with gitea-homelab:httpPort" },
  { section: "server", keys: ["SSH_PORT"], instead: "set gitea-homelab:sshPort, the published SSH port, which the program makes Gitea's SSH_PORT" },
  { section: "server", keys: ["SSH_LISTEN_PORT", "START_SSH_SERVER", "DISABLE_SSH"], instead: "Gitea's own SSH server listens on port 2222 inside the container; publish another port with gitea-homelab:sshPort" },
  { section: "security", keys: ["INSTALL_LOCK"], instead: "the program installs Gitea itself, without the web installer" },
  {
    section: "security",
    keys: ["SECRET_KEY", "SECRET_KEY_URI", "INTERNAL_TOKEN", "INTERNAL_TOKEN_URI"],
    instead: "Gitea's keys are made on the host once and kept with the data (README: Backups, restore and upgrades)",
  },
  { section: "oauth2", keys: ["JWT_SECRET", "JWT_SECRET_URI"], instead: "Gitea's keys are made on the host once and kept with the data (README: Backups, restore and upgrades)" },
  { section: "gitea-homelab", keys: ["MANAGED_SETTINGS"], instead: "it is where the program records which settings it manages, to remove one that leaves the config" },
  {
    section: "database",
    keys: ["DB_TYPE", "PATH", "HOST", "NAME", "USER", "PASSWD", "SCHEMA", "SSL_MODE"],
    instead: "set gitea-homelab:database; the database lives in the gitea-data volume, which backups cover",
  },
];

/** The stack setting to use instead of SECTION.KEY, when the program owns it (names compared case-insensitively). */
export function ownedBy(section: string, key: string): string | undefined {
  return OWNED.find((o) => o.section === section.toLowerCase() && o.keys.includes(key.toUpperCase()))?.instead;
}

/** Gitea's section names: lower-case words joined by . (sub-sections), words of letters and digits joined by _ or -. */
const SECTION = /^[a-z0-9]+([_-][a-z0-9]+)*(\.[a-z0-9]+([_-][a-z0-9]+)*)*$/;
/** Keys: letters, digits, _ . - (lower case and dots in [git.config], a leading dot in [highlight.mapping]). */
const KEY = /^[A-Za-z0-9.]([A-Za-z0-9_.-]*[A-Za-z0-9])?$/;
/** What Gitea's variable decoder reads as an escaped byte: a name holding it would not be itself. */
const ESCAPE_LOOKALIKE = /_0[xX]/;

/** Why Gitea would not map this section and key from a GITEA__ variable, or undefined. */
export function settingNameProblem(section: string, key: string): string | undefined {
  if (section !== "" && !SECTION.test(section)) {
    if (SECTION.test(section.toLowerCase())) return `section ${JSON.stringify(section)} must be lower case, as Gitea's sections are (${section.toLowerCase()})`;
    return `section ${JSON.stringify(section)} is not a Gitea section name (lower-case letters and digits, words joined by _ or -, sub-sections by .)`;
  }
  if (section.toLowerCase() === "default") return `put default-section keys directly under gitea (gitea.${key}), not in a section named ${section}`;
  if (!KEY.test(key)) return `key ${JSON.stringify(key)} is not a Gitea key name (letters, digits, _ . -, starting and ending with a letter or digit)`;
  if (ESCAPE_LOOKALIKE.test(section) || ESCAPE_LOOKALIKE.test(key)) return "must not contain _0x, which Gitea reads as an escaped character in a GITEA__ variable";
  if (key.endsWith("__FILE")) return "must not end in __FILE, which makes Gitea read the value from a file in the container; set the value itself (with --secret when it is secret)";
  return undefined;
}

/**
 * The GITEA__SECTION__KEY variable Gitea's image turns into this setting: `.` and `-` become
 * Gitea's escapes (_0X2E_, _0X2D_); the section is upper case (Gitea lower-cases it back), the
 * key keeps its case. Names are checked first (`settingNameProblem`).
 */
export function settingVariable(section: string, key: string): string {
  const escape = (s: string) => s.replace(/[.-]/g, (c) => `_0X${c.charCodeAt(0).toString(16).toUpperCase()}_`);
  return `GITEA__${escape(section.toUpperCase())}__${escape(key)}`;
}

export interface SettingProblem {
  /** The config path to fix, e.g. gitea.mailer.PASSWD. */
  path: string;
  message: string;
}

/**
 * The settings in the `gitea` config value, or the problems with it, each naming its path.
 * Strings under an object are keys of the section its path names (nested objects are
 * sub-sections, so gitea.repository.signing.X is [repository.signing] X); strings directly
 * under `gitea` are default-section keys. Numbers and booleans are written as YAML gives them.
 * When `secret`, no problem repeats a value.
 */
export function readSettings(value: unknown, secret: boolean): { settings: GiteaSetting[]; problems: SettingProblem[]; warnings: SettingProblem[] } {
  const settings: GiteaSetting[] = [];
  const problems: SettingProblem[] = [];
  const warnings: SettingProblem[] = [];
  if (value === undefined || value === null || value === "") return { settings, problems, warnings };
  if (typeof value !== "object" || Array.isArray(value)) {
    problems.push({ path: SETTINGS_KEY, message: "must be an object of sections and keys, e.g. pulumi config set --path 'gitea-homelab:gitea.mailer.SMTP_ADDR' smtp.example.com" });
    return { settings, problems, warnings };
  }
  const seen = new Map<string, string>();
  const walk = (node: Record<string, unknown>, section: string[]) => {
    for (const [name, v] of Object.entries(node)) {
      const path = [SETTINGS_KEY, ...section, name].join(".");
      if (v !== null && typeof v === "object" && !Array.isArray(v)) {
        walk(v as Record<string, unknown>, [...section, name]);
        continue;
      }
      const sectionName = section.join(".");
      const nameProblem = settingNameProblem(sectionName, name);
      if (nameProblem) {
        problems.push({ path, message: nameProblem });
        continue;
      }
      const owner = ownedBy(sectionName, name);
      if (owner) {
        problems.push({ path, message: `is set by gitea-homelab itself: ${owner}` });
        continue;
      }
      if (typeof v !== "string" && typeof v !== "number" && typeof v !== "boolean") {
        problems.push({ path, message: `must be a text, number or true/false, got ${v === null ? "null" : "a list"}` });
        continue;
      }
      const text = String(v);
      if (CONTROL_CHARACTERS.test(text)) {
        problems.push({ path, message: `must be one line without control characters (a newline, tab, escape or NUL)${secret ? "" : `, got ${JSON.stringify(text)}`}` });
        continue;
      }
      // Two paths naming one variable: a.b.C and "a.b".C; or "Mailer" beside "mailer".
      const variable = settingVariable(sectionName, name);
      const earlier = seen.get(variable);
      if (earlier !== undefined) {
        problems.push({ path, message: `names the same setting as ${earlier}; keep one` });
        continue;
      }
      seen.set(variable, path);
      if (/[a-z]/.test(name) && !["git.config", "highlight.mapping"].includes(sectionName)) {
        warnings.push({ path, message: `Gitea's keys are upper case (${name.toUpperCase()}) outside [git.config] and [highlight.mapping]; Gitea ignores ${name} unless it knows it so` });
      }
      settings.push({ section: sectionName, key: name, value: text });
    }
  };
  walk(value as Record<string, unknown>, []);
  return { settings, problems, warnings };
}

/** The defaults the owner did not set themselves. */
export function defaultsNotOverridden(owned: ReadonlyArray<Pick<GiteaSetting, "section" | "key">>): GiteaSetting[] {
  const set = new Set(owned.map((s) => settingVariable(s.section, s.key)));
  return DEFAULT_SETTINGS.filter((d) => !set.has(settingVariable(d.section, d.key)));
}

/** Settings as GITEA__ variables. */
export function settingsEnvironment(settings: readonly GiteaSetting[]): Record<string, string> {
  return Object.fromEntries(settings.map((s) => [settingVariable(s.section, s.key), s.value]));
}

/**
 * The record of what the program manages lives in app.ini itself, as a setting of a section of
 * its own that Gitea ignores: Gitea's image writes it at every start with the others, backups and
 * restores carry it, and nothing is ever written into the volume before Gitea's first start
 * (Podman gives an empty volume to the container's user only while it is empty).
 */
export const RECORD_SECTION = "gitea-homelab";
export const RECORD_KEY = "MANAGED_SETTINGS";

/** A setting as the record lists it: `[section]KEY` (names hold no comma, space or bracket). */
export function recordLine(s: Pick<GiteaSetting, "section" | "key">): string {
  return `[${s.section}]${s.key}`;
}

/** The record setting of these managed settings, sorted and without repeats. */
export function recordSetting(managed: ReadonlyArray<Pick<GiteaSetting, "section" | "key">>): GiteaSetting {
  return { section: RECORD_SECTION, key: RECORD_KEY, value: [...new Set(managed.map(recordLine))].sort().join(",") };
}

/**
 * Bash for the service's install script, run after its files are installed and before it is
 * (re)started: removes from app.ini (in the config volume) every setting the record there lists
 * (what the program set at Gitea's last start) and `managed` no longer does. Keys the program
 * never managed are left alone; Gitea's next start records `managed`. Sets changed=1 when
 * app.ini changed, so Gitea restarts and reads it. Reads $user and $tmp of its script.
 */
export function renderForgetDroppedSettings(configVolume: string, managed: ReadonlyArray<Pick<GiteaSetting, "section" | "key">>): Bash {
  return sh`
# Gitea's image writes GITEA__ variables into app.ini at every start and never removes one: a
# setting dropped from gitea-homelab:gitea is removed from app.ini here, or it stays in force.
forget_dropped_settings() {
${shellVars({ config_volume: configVolume, record_section: RECORD_SECTION, record_key: RECORD_KEY, managed: recordSetting(managed).value }, { local: true })}
  local config_dir app_ini dropped
  # shellcheck disable=SC2016 # a Go template
  if ! config_dir=$(as_user "$user" podman volume inspect --format '{{.Mountpoint}}' "$config_volume") || [[ ! -d $config_dir ]]; then
    die "volume $config_volume of $user is missing"
  fi
  app_ini=$config_dir/app.ini
  # Before Gitea's first start there is nothing to remove (and the volume must stay untouched).
  [[ -f $app_ini ]] || return 0
  # Two passes: the record's list, then app.ini without the "KEY = value" lines of what left it,
  # section by section ("" before the first header, or under [DEFAULT]). Prints what it dropped.
  dropped=$(awk -v managed="$managed" -v record_section="$record_section" -v record_key="$record_key" -v out="$tmp" '
    FNR == 1 && NR > 1 {
      n = split(managed, now, ",")
      for (i = 1; i <= n; i++) kept[now[i]] = 1
      for (entry in previous) if (!(entry in kept)) drop[entry] = 1
      section = ""
    }
    /^[ \t]*\[.*\][ \t]*$/ {
      section = $0; sub(/^[ \t]*\[/, "", section); sub(/\][ \t]*$/, "", section)
      if (section == "DEFAULT") section = ""
    }
    {
      key = ""
      if ($0 ~ /^[ \t]*[^=;#[ \t][^=]*=/) {
        key = $0; sub(/=.*/, "", key); gsub(/^[ \t]+|[ \t]+$/, "", key)
      }
    }
    FNR == NR {
      if (section == record_section && key == record_key) {
        value = $0; sub(/^[^=]*=/, "", value); gsub(/^[ \t]+|[ \t]+$/, "", value)
        n = split(value, recorded, ",")
        for (i = 1; i <= n; i++) if (recorded[i] != "") previous[recorded[i]] = 1
      }
      next
    }
    key != "" && (("[" section "]" key) in drop) { print "[" section "]" key; next }
    { print > out }
  ' "$app_ini" "$app_ini")
  if [[ -n $dropped ]] && ! cmp -s "$tmp" "$app_ini"; then
    # Rewritten in place: app.ini keeps its owner (the container's user), mode and label.
    cat "$tmp" >"$app_ini"
    echo "removed from app.ini, no longer set in gitea-homelab:gitea: $(LC_ALL=C sort <<<"$dropped" | tr '\n' ' ')"
    changed=1
  fi
}
forget_dropped_settings`;
}
