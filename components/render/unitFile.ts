/**
 * The one renderer for INI-style files (systemd units, Quadlet files) and Podman env files.
 * Sections and keys keep the order given; repeated keys are allowed, as systemd allows them.
 *
 * A value reaches a unit only as a `UnitValue`, made by the escaper of the context it goes to,
 * so a plain string (a config value) cannot be written unescaped: the compiler refuses it.
 * What systemd does with each context (systemd.unit, systemd.service "Command lines",
 * systemd.exec Environment=) and what Quadlet passes through to the generated ExecStart=:
 *   - every setting expands %-specifiers: a literal % is %%;
 *   - ExecStart= (and whatever Quadlet puts there: Environment=, Image=) also expands $NAME and
 *     ${NAME}: a literal $ is $$; words are split on spaces and unquoted with C escapes;
 *   - [Service] Environment= unquotes with C escapes but never expands $.
 */
import { CONTROL_CHARACTERS, Literal, MANAGED_HEADER } from "./shell";

declare const unitBrand: unique symbol;
/** A value escaped for the unit-file context it is written to. */
export type UnitValue = string & { readonly [unitBrand]: true };

export type IniEntries = Array<[key: string, value: UnitValue | number]>;
export interface IniSection {
  name: string;
  entries: IniEntries;
}

function assertPrintable(what: string, value: string): void {
  if (CONTROL_CHARACTERS.test(value)) throw new Error(`${what} must be a single line without control characters: ${JSON.stringify(value)}`);
}

/** Inside "…": backslash and double quote escaped (systemd's C unescaping reads them back). */
function quoteContent(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/"/g, '\\"');
}

function noSpecifiers(value: string): string {
  return value.replace(/%/g, "%%");
}

function noVariables(value: string): string {
  return value.replace(/\$/g, "$$$$");
}

export const unit = {
  /**
   * Text written in this program's source, as it is: may use specifiers on purpose
   * (`%h/.config/…`, `%t/%n.ctr-id`). Never a computed string.
   */
  literal<S extends string>(text: Literal<S>): UnitValue {
    assertPrintable("a unit literal", text);
    return text as string as UnitValue;
  },

  /** A plain setting (Description=, WorkingDirectory=, …): specifiers escaped. One token, no quotes. */
  text(value: string): UnitValue {
    assertPrintable("a unit value", value);
    return noSpecifiers(value) as UnitValue;
  },

  /**
   * A value Quadlet copies raw into the generated ExecStart= (Image=, PublishPort=): neither a
   * specifier nor a variable; it cannot be quoted there, so it must be one word.
   */
  execToken(value: string): UnitValue {
    assertPrintable("a unit value", value);
    if (value === "" || /[\s"'\\]/.test(value)) throw new Error(`cannot write ${JSON.stringify(value)} as one unquoted unit word`);
    return noVariables(noSpecifiers(value)) as UnitValue;
  },

  /** One word of an ExecStart= command line: quoted, with specifiers and variables escaped. */
  execWord(value: string): UnitValue {
    assertPrintable("a command line word", value);
    const escaped = noVariables(noSpecifiers(value));
    return (/^[A-Za-z0-9_@+=:,./-]+$/.test(escaped) ? escaped : `"${quoteContent(escaped)}"`) as UnitValue;
  },

  /** An ExecStart= command line: literal words (specifiers meant) and escaped ones. */
  command(words: UnitValue[]): UnitValue {
    return words.join(" ") as UnitValue;
  },

  /** Escaped pieces of one value or word, e.g. a literal `%h/` and an escaped path. */
  concat(...pieces: UnitValue[]): UnitValue {
    return pieces.join("") as UnitValue;
  },

  /** [Service] Environment=: quoted, specifiers escaped; systemd never expands $ here. */
  environment(name: string, value: string): UnitValue {
    assertName(name);
    assertPrintable(name, value);
    return `"${quoteContent(noSpecifiers(`${name}=${value}`))}"` as UnitValue;
  },

  /** Quadlet's [Container] Environment=: Quadlet puts it on ExecStart=, so $ is escaped too. */
  containerEnvironment(name: string, value: string): UnitValue {
    assertName(name);
    assertPrintable(name, value);
    return `"${quoteContent(noVariables(noSpecifiers(`${name}=${value}`)))}"` as UnitValue;
  },
};

function assertName(name: string): void {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new Error(`bad environment variable name: ${name}`);
}

export function renderIni(sections: IniSection[]): string {
  const header = [`# ${MANAGED_HEADER}`];
  const body = sections.map((section) => {
    if (!/^[A-Za-z]+$/.test(section.name)) throw new Error(`bad section name: ${section.name}`);
    const lines = section.entries.map(([key, value]) => {
      if (!/^[A-Za-z][A-Za-z0-9]*$/.test(key)) throw new Error(`bad key: ${key}`);
      assertPrintable(`${section.name}.${key}`, String(value));
      return `${key}=${value}`;
    });
    return [`[${section.name}]`, ...lines].join("\n");
  });
  return `${[header.join("\n"), ...body].join("\n\n")}\n`;
}

/**
 * KEY=VALUE lines in Podman's --env-file format: the value is everything after the first `=`,
 * taken literally (no quotes, escapes or expansion), so any single-line value is safe.
 */
export function renderEnvFile(vars: Record<string, string>): string {
  const lines = Object.entries(vars).map(([key, value]) => {
    assertName(key);
    assertPrintable(key, value);
    return `${key}=${value}`;
  });
  return `# ${MANAGED_HEADER}\n${lines.join("\n")}\n`;
}
