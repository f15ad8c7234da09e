/**
 * Typed reading and validation of stack config. The validators are pure: they take the raw
 * strings Pulumi holds and return either settings or every problem at once, each naming the
 * config key to fix, so nothing is registered (and nothing on a host changes) on bad input.
 */
import * as pulumi from "@pulumi/pulumi";

export const PROJECT = "gitea-homelab";

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(
      `invalid stack config (${problems.length} problem${problems.length === 1 ? "" : "s"}):\n` +
        problems.map((p) => `  - ${p}`).join("\n"),
    );
    this.name = "ConfigError";
  }
}

export type RawConfig = Record<string, string | undefined>;

/** Collects problems while reading raw values; every reader falls back to a default when unset. */
export class ConfigReader {
  readonly problems: string[] = [];
  readonly warnings: string[] = [];

  constructor(private readonly raw: RawConfig) {}

  /** The raw value, with "" treated as unset (Pulumi.yaml declares optional keys with default ""). */
  optional(key: string): string | undefined {
    const v = this.raw[key]?.trim();
    return v === undefined || v === "" ? undefined : v;
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
      this.problem(key, `must be a whole number from ${min} to ${max}, got ${JSON.stringify(v)}`);
      return fallback;
    }
    return n;
  }

  port(key: string, fallback: number): number {
    return this.int(key, fallback, 1, 65535);
  }

  bool(key: string, fallback: boolean): boolean {
    const v = this.optional(key);
    if (v === undefined) return fallback;
    if (v === "true") return true;
    if (v === "false") return false;
    this.problem(key, `must be true or false, got ${JSON.stringify(v)}`);
    return fallback;
  }

  oneOf<T extends string>(key: string, fallback: T, allowed: readonly T[]): T {
    const v = this.optional(key);
    if (v === undefined) return fallback;
    if ((allowed as readonly string[]).includes(v)) return v as T;
    this.problem(key, `must be one of ${allowed.join(", ")}, got ${JSON.stringify(v)}`);
    return fallback;
  }

  /** A value matching `pattern`, else a problem describing `what` it must be. */
  matching(key: string, value: string, pattern: RegExp, what: string): string {
    if (value !== "" && !pattern.test(value)) this.problem(key, `must be ${what}, got ${JSON.stringify(value)}`);
    return value;
  }
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

export const HOSTNAME_OR_IP = /^(\[[0-9A-Fa-f:.]+\]|[0-9A-Fa-f:]*:[0-9A-Fa-f:.]+|[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*)$/;
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
  const host = r.matching("host", r.required("host", "the SSH address of the host, e.g. 192.168.1.10"), HOSTNAME_OR_IP, "a hostname or IP address");
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
