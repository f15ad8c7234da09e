/**
 * Typed reading and validation of stack config. The validators are pure: they take the raw
 * strings Pulumi holds and return either settings or every problem at once, each naming the
 * config key to fix, so nothing is registered (and nothing on a host changes) on bad input.
 */
import * as pulumi from "@pulumi/pulumi";
import ipaddr from "ipaddr.js";
import { CONTROL_CHARACTERS } from "../components/render/shell";
import { ConfigError, PROJECT } from "../components/host/configError";
import { isEncryptedPrivateKey, privateKeyProblem } from "../components/host/privateKey";
export { ConfigError, PROJECT, isEncryptedPrivateKey };


export type RawConfig = Record<string, string | undefined>;

/**
 * A config value as a problem may show it: quoted, and with any `user:password@` of a URL-like
 * value cut out, since a credential must not reach logs (even in an invalid URL).
 */
export function shown(value: string): string {
  return JSON.stringify(value.replace(/\/\/[^/?#@]*@/g, "//…@"));
}

/** A problem about a value that must not be repeated back (a secret): names the key only. */
export function controlCharacterProblem(value: string | undefined): string | undefined {
  if (value === undefined || !CONTROL_CHARACTERS.test(value)) return undefined;
  return "must not contain control characters (a newline, tab, escape or NUL); remove them";
}

/** Collects problems while reading raw values; every reader falls back to a default when unset. */
export class ConfigReader {
  readonly problems: string[] = [];
  readonly warnings: string[] = [];
  /** Keys whose value was refused outright: read as unset, with no second problem. */
  private readonly refused = new Set<string>();

  constructor(private readonly raw: RawConfig) {
    // Before anything reads them: a value with a control character is refused whole, never trimmed.
    for (const [key, value] of Object.entries(raw)) {
      const problem = controlCharacterProblem(value);
      if (problem) {
        this.problem(key, `${problem}, got ${shown(value ?? "")}`);
        this.refused.add(key);
      }
    }
  }

  /** The raw value, with "" treated as unset (Pulumi.yaml declares optional keys with default ""). */
  optional(key: string): string | undefined {
    if (this.refused.has(key)) return undefined;
    const v = this.raw[key]?.trim();
    return v === undefined || v === "" ? undefined : v;
  }

  /**
   * Whether the stack chose KEY's value. The CLI hands a program every `default:` of Pulumi.yaml
   * as if the stack had set it, so a value equal to the declared default is no choice of the
   * owner's: a warning about a key "being set" must ask this, never `optional`.
   */
  chosen(key: string, declaredDefault: string | number | boolean): boolean {
    const v = this.optional(key);
    return v !== undefined && v !== String(declaredDefault);
  }

  problem(key: string, message: string): void {
    this.problems.push(`${PROJECT}:${key}: ${message}`);
  }

  warn(key: string, message: string): void {
    this.warnings.push(`${PROJECT}:${key}: ${message}`);
  }

  string(key: string, fallback: string): string {
    return this.optional(key) ?? fallback;
  }

  required(key: string, what: string): string {
    const v = this.optional(key);
    if (v === undefined) {
      if (this.refused.has(key)) return "";
      this.problem(key, `is required (${what})`);
      return "";
    }
    return v;
  }

  int(key: string, fallback: number, min: number, max: number): number {
    const v = this.optional(key);
    if (v === undefined) return fallback;
    const n = Number(v);
    if (!/^-?\d+$/.test(v) || n < min || n > max) {
      this.problem(key, `must be a whole number from ${min} to ${max}, got ${shown(v)}`);
      return fallback;
    }
    return n;
  }

  port(key: string, fallback: number): number {
    return this.int(key, fallback, 1, 65535);
  }

  /** A port the rootless container publishes: unprivileged, since rootless Podman cannot bind below 1024. */
  publishedPort(key: string, fallback: number): number {
    const v = this.optional(key);
    const port = this.port(key, fallback);
    if (v !== undefined && /^\d+$/.test(v) && Number(v) >= 1 && Number(v) < 1024) {
      this.problem(
        key,
        `must be 1024 or higher, got ${v}: rootless Podman cannot publish ports below 1024; publish e.g. 4111 and put a reverse proxy on port ${v} in front of it (then set gitea-homelab:rootUrl to the proxy's URL)`,
      );
      return fallback;
    }
    return port;
  }

  bool(key: string, fallback: boolean): boolean {
    const v = this.optional(key);
    if (v === undefined) return fallback;
    if (v === "true") return true;
    if (v === "false") return false;
    this.problem(key, `must be true or false, got ${shown(v)}`);
    return fallback;
  }

  oneOf<T extends string>(key: string, fallback: T, allowed: readonly T[]): T {
    const v = this.optional(key);
    if (v === undefined) return fallback;
    if ((allowed as readonly string[]).includes(v)) return v as T;
    this.problem(key, `must be one of ${allowed.join(", ")}, got ${shown(v)}`);
    return fallback;
  }

  /** A value matching `pattern`, else a problem describing `what` it must be. */
  matching(key: string, value: string, pattern: RegExp, what: string): string {
    if (value !== "" && !pattern.test(value)) this.problem(key, `must be ${what}, got ${shown(value)}`);
    return value;
  }

  /**
   * A host name or IP address, IPv6 without brackets (URLs add them). A name whose last label
   * is all digits must be a dotted-quad IPv4 address (URL parsers read 999 or 1.2.3.256 as
   * numbers); IPv6 zone ids (%eth0) cannot go into a URL.
   */
  host(key: string, value: string): string {
    const bare = value.replace(/^\[(.*)\]$/, "$1");
    const ipv4Like = /(^|\.)\d+\.?$/.test(value);
    const valid = bare.includes(":")
      ? !bare.includes("%") && ipaddr.IPv6.isValid(bare)
      : HOSTNAME.test(value) && (!ipv4Like || ipaddr.IPv4.isValidFourPartDecimal(value));
    if (value !== "" && !valid) {
      this.problem(key, `must be a hostname or IP address, got ${shown(value)}`);
    }
    return bare;
  }

  /** An absolute path of plain characters (no spaces, quotes, `$`, `%`, `..`). */
  absolutePath(key: string, value: string, what: string): string {
    if (!ABSOLUTE_PATH.test(value) || value.split("/").includes("..")) {
      this.problem(key, `must be ${what}: an absolute path of letters, digits and . _ - + @ (no spaces, quotes, $, % or ..), got ${shown(value)}`);
    }
    return value;
  }

  /** `httpUrlProblem` as a reader: the URL normalised, or undefined with the problem recorded. */
  httpUrl(key: string, value: string, opts: HttpUrlOptions): URL | undefined {
    const checked = checkHttpUrl(value, opts);
    if ("problem" in checked) this.problem(key, checked.problem);
    return "url" in checked ? checked.url : undefined;
  }

  /** Whether a problem was recorded for any of these keys. */
  hasProblem(...keys: string[]): boolean {
    return this.problems.some((p) => keys.some((k) => p.startsWith(`${PROJECT}:${k}:`)));
  }
}

export interface HttpUrlOptions {
  /** A base URL (ROOT_URL, a Gitea instance): no ?query or #fragment. */
  base: boolean;
  example: string;
}

/** A % that starts no escape (two hex digits), which Go's net/url refuses. */
const STRAY_PERCENT = /%(?![0-9A-Fa-f]{2})/;

/**
 * An http(s) URL: no control characters, no user name or password in it (they would land in
 * outputs, state and the host's files), and for a base URL no query or fragment. The URL
 * normalised, or the problem (without the key), which never repeats a credential.
 */
export function checkHttpUrl(value: string, opts: HttpUrlOptions): { url: URL } | { problem: string } {
  const control = controlCharacterProblem(value);
  if (control) return { problem: `${control}, got ${shown(value)}` };
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return { problem: `must be an absolute http(s) URL like ${opts.example}, got ${shown(value)}` };
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return { problem: `must use http or https, got ${shown(value)}` };
  if (url.username !== "" || url.password !== "") {
    return { problem: "must not contain a user name or password (user:pass@): they would be stored in plain text and shown in outputs; remove them" };
  }
  if (opts.base && (url.search !== "" || url.hash !== "")) return { problem: `must be a base URL without ?query or #fragment, got ${shown(value)}` };
  // Gitea and the runner parse URLs with Go's net/url, which refuses what WHATWG parsing keeps:
  // a % that does not start an escape, and host names of other characters than DNS names use.
  if (STRAY_PERCENT.test(url.href)) {
    return { problem: `has a % that is not followed by two hex digits, which Gitea refuses as an invalid URL escape (write a literal % as %25), got ${shown(value)}` };
  }
  // Gitea takes a base URL's path decoded, as its sub-path, and parses that again as a URL
  // (STATIC_URL_PREFIX): a %25 followed by other than two hex digits makes it exit at start.
  if (opts.base && STRAY_PERCENT.test(percentDecoded(url.pathname))) {
    return { problem: `has a path that, once decoded, holds a % not followed by two hex digits (from %25); Gitea decodes its path and parses it again, so it would not start; remove the %25, got ${shown(value)}` };
  }
  if (!url.hostname.startsWith("[") && !URL_HOSTNAME.test(url.hostname)) {
    return { problem: `must name its host by a DNS name or an IP address (letters, digits, - _ .), got ${shown(value)}` };
  }
  return { url };
}

/** A path with each %XX made the byte it names (as one character), as Go's PathUnescape does. */
function percentDecoded(path: string): string {
  return path.replace(/%([0-9A-Fa-f]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
}

/** A URL's host as WHATWG parsing leaves it (lower case, IDNs in punycode), IPv6 aside. */
const URL_HOSTNAME = /^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*\.?$/;

export const HOSTNAME = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;
const ABSOLUTE_PATH = /^(\/[A-Za-z0-9._+@-]+)+\/?$/;

/**
 * True for every way of naming the machine itself or no machine: localhost (with or without the
 * trailing dot, and its subdomains), 127.0.0.0/8, 0.0.0.0/8, ::1, ::, and IPv4 loopback or
 * unspecified addresses mapped into or compatible with IPv6. `hostname` as URL gives it.
 */
export function isLoopbackOrUnspecified(hostname: string): boolean {
  const host = hostname.replace(/^\[(.*)\]$/, "$1").toLowerCase().replace(/\.$/, "");
  if (host === "localhost" || host.endsWith(".localhost")) return true;
  if (!ipaddr.isValid(host)) return false;
  const address = ipaddr.parse(host);
  let v4: ipaddr.IPv4;
  if (address.kind() === "ipv4") v4 = address as ipaddr.IPv4;
  else {
    const v6 = address as ipaddr.IPv6;
    if (v6.isIPv4MappedAddress()) v4 = v6.toIPv4Address();
    // ::, ::1 and the IPv4-compatible ::a.b.c.d: the last 32 bits as IPv4 (:: is 0.0.0.0, ::1 is 0.0.0.1).
    else if (v6.parts.slice(0, 6).every((p) => p === 0)) v4 = new ipaddr.IPv4([v6.parts[6] >> 8, v6.parts[6] & 255, v6.parts[7] >> 8, v6.parts[7] & 255]);
    else return v6.range() === "loopback" || v6.range() === "unspecified";
  }
  return v4.octets[0] === 127 || v4.octets[0] === 0;
}

/** A secret config value, undefined when unset or blank (Pulumi.yaml declares it with default ""). */
export function readSecret(config: pulumi.Config, key: string): pulumi.Output<string | undefined> {
  return pulumi.output(config.getSecret(key)).apply((v) => (v === undefined || v.trim() === "" ? undefined : v));
}

/** Reads the given keys of this project's config as raw strings (secrets stay out of it). */
export function readRawConfig(keys: readonly string[], config = new pulumi.Config(PROJECT)): RawConfig {
  const raw: RawConfig = {};
  for (const key of keys) raw[key] = config.get(key);
  return raw;
}

export const LINUX_USERNAME = /^[a-z_][a-z0-9_-]{0,30}$/;
export const SSH_PUBLIC_KEY = /^(ssh-[a-z0-9-]+|ecdsa-sha2-[a-z0-9-]+|sk-[a-z0-9@.-]+) [A-Za-z0-9+/]+={0,3}$/;

/** Hosts as they go into URLs: IPv6 literals in brackets. */
export function urlHost(host: string): string {
  return host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
}

/** How to reach a host over SSH. The private key is secret config, read separately. */
export interface ConnectionSettings {
  host: string;
  port: number;
  user: string;
  /** The host's public key, "ssh-ed25519 AAAA…"; without it the host key is not checked. */
  hostKey?: string;
}

export const CONNECTION_KEYS = ["host", "port", "user", "hostKey"] as const;

export function readConnection(r: ConfigReader): ConnectionSettings {
  const host = r.host("host", r.required("host", "the SSH address of the host, e.g. 192.168.1.10"));
  const port = r.port("port", 22);
  const user = r.matching("user", r.string("user", "root"), LINUX_USERNAME, "a Linux user name");
  const hostKey = r.optional("hostKey");
  if (hostKey !== undefined) {
    r.matching("hostKey", hostKey, SSH_PUBLIC_KEY, 'a public key line like "ssh-ed25519 AAAA…" (ssh-keyscan prints it)');
  } else {
    r.warn("hostKey", "is not set, so the SSH host key is not checked; pin it with the output of `ssh-keyscan -t ed25519 HOST`");
  }
  return { host, port, user, hostKey };
}

/** An e-mail address as Gitea accepts it: RFC 5322 dot-atom characters before the @, a host name after. */
export const EMAIL = /^(?!.*\.\.)(?!.*\.@)[A-Za-z0-9][A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{0,63}@[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/** A release version like 1.0.8, v1.0.8 or 1.0.0-rc.1 (it becomes part of a download URL). */
export const VERSION = /^v?\d+\.\d+\.\d+(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?(\+[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$/;

export interface ImageReference {
  /** The registry host (with port), when the first component names one. */
  registry?: string;
  path: string;
  tag?: string;
  digest?: string;
}

// The grammar of container image references (distribution's reference package), in pieces.
const REGISTRY_HOST = String.raw`(?:(?:localhost|[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+|\[[0-9A-Fa-f:.]+\])(?::[0-9]+)?|[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?:[0-9]+)`;
const PATH_COMPONENT = String.raw`[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*`;
const IMAGE_REFERENCE = new RegExp(
  String.raw`^(?:(${REGISTRY_HOST})/)?(${PATH_COMPONENT}(?:/${PATH_COMPONENT})*)(?::([A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?(?:@(sha256:[a-f0-9]{64}))?$`,
);

/** Splits an image reference, or undefined when it is not one (spaces, quotes, `$`, `%` never are). */
export function parseImageReference(image: string): ImageReference | undefined {
  if (image.length > 255) return undefined;
  const m = IMAGE_REFERENCE.exec(image);
  if (!m) return undefined;
  // A first component without a dot, port or "localhost" is a path, not a registry (docker.io/library style).
  return { registry: m[1], path: m[2], tag: m[3], digest: m[4] };
}

/** Secret config keys and what each must be; problems name the key, never the value. */
export type SecretKey = "privateKey" | "adminPassword" | "registrationToken" | "tlsKey";

/** Gitea's default MIN_PASSWORD_LENGTH. */
export const MIN_ADMIN_PASSWORD_LENGTH = 8;
/** Gitea refuses shorter runner registration tokens. */
export const MIN_RUNNER_TOKEN_LENGTH = 32;

/** Problems with the secret config, each naming its key; the values are never repeated. */
export function secretProblems(secrets: Partial<Record<SecretKey, string | undefined>>): string[] {
  const problems: string[] = [];
  const problem = (key: SecretKey, message: string) => problems.push(`${PROJECT}:${key}: ${message} (set it with: pulumi config set --secret ${PROJECT}:${key})`);
  const privateKey = secrets.privateKey?.trim();
  if (privateKey) {
    const keyProblem = privateKeyProblem(privateKey);
    if (keyProblem === "malformed") {
      problem("privateKey", "must be an OpenSSH or PEM private key (the whole file, -----BEGIN … PRIVATE KEY----- to -----END … -----), or unset to use your ssh-agent");
    } else if (keyProblem === "passphrase") {
      problem("privateKey", "is protected by a passphrase, which nothing can type during pulumi up; use a key without one, or leave privateKey unset and load the key into your ssh-agent");
    }
  }
  const password = secrets.adminPassword;
  if (password !== undefined && password.trim() !== "") {
    if (CONTROL_CHARACTERS.test(password)) problem("adminPassword", "must not contain control characters (a newline, tab, escape or NUL)");
    else if ([...password].length < MIN_ADMIN_PASSWORD_LENGTH) problem("adminPassword", `must be at least ${MIN_ADMIN_PASSWORD_LENGTH} characters (Gitea's minimum), or unset for a random one`);
  }
  const token = secrets.registrationToken;
  if (token !== undefined && token.trim() !== "") {
    if (/[\s\x00-\x1f\x7f-\x9f]/.test(token)) problem("registrationToken", "must not contain spaces or control characters");
    else if (token.length < MIN_RUNNER_TOKEN_LENGTH) problem("registrationToken", `must be at least ${MIN_RUNNER_TOKEN_LENGTH} characters: Gitea refuses shorter runner registration tokens`);
  }
  return problems;
}

/** The plain values of secret config, for validation only (never logged or stored). */
export function readRawSecrets(keys: readonly SecretKey[]): Partial<Record<SecretKey, string | undefined>> {
  return Object.fromEntries(keys.map((k) => [k, pulumi.runtime.getConfig(`${PROJECT}:${k}`)]));
}
