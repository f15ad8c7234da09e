/**
 * The one renderer for INI-style files (systemd units, Quadlet files, env files). Sections and
 * keys keep the order given; repeated keys are allowed, as systemd allows them.
 */
import { MANAGED_HEADER } from "./shell";

export type IniValue = string | number | boolean;
export type IniEntries = Array<[key: string, value: IniValue]>;
export interface IniSection {
  name: string;
  entries: IniEntries;
}

function assertSingleLine(what: string, value: string): void {
  if (/[\r\n]/.test(value)) throw new Error(`${what} must be a single line: ${JSON.stringify(value)}`);
}

/** systemd expands %-specifiers in most settings; a literal % must be doubled. */
export function escapeSpecifiers(value: string): string {
  return value.replace(/%/g, "%%");
}

/** Quotes one word for a systemd command line or Environment= setting when it needs it. */
export function systemdQuote(word: string): string {
  if (word !== "" && /^[A-Za-z0-9_@%+=:,./-]+$/.test(word)) return word;
  return `"${word.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
}

export function renderIni(sections: IniSection[], opts: { header?: string[] } = {}): string {
  const header = [MANAGED_HEADER, ...(opts.header ?? [])].map((line) => `# ${line}`);
  const body = sections.map((section) => {
    assertSingleLine("section name", section.name);
    const lines = section.entries.map(([key, value]) => {
      assertSingleLine(`${section.name}.${key}`, String(value));
      return `${key}=${value}`;
    });
    return [`[${section.name}]`, ...lines].join("\n");
  });
  return `${[header.join("\n"), ...body].join("\n\n")}\n`;
}

/** KEY=VALUE lines (Podman --env-file format: no quoting, `#` starts a comment). */
export function renderEnvFile(vars: Record<string, string>): string {
  const lines = Object.entries(vars).map(([key, value]) => {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) throw new Error(`bad environment variable name: ${key}`);
    assertSingleLine(key, value);
    return `${key}=${value}`;
  });
  return `# ${MANAGED_HEADER}\n${lines.join("\n")}\n`;
}
