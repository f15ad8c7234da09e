/**
 * Off-site copies, the settings: which restic repository, how to reach it, what to keep and how
 * often to check it. Pure: the server stack's config reader calls `readOffsite` before any SSH
 * session, and every problem names its key.
 */
import { checkCaCertificate } from "../tls/certificate";
import { CONTROL_CHARACTERS } from "../render/shell";
import { privateKeyProblem } from "../host/privateKey";

/** The repository kinds restic reads that gitea-homelab documents and tests. */
export type OffsiteBackend = "sftp" | "s3" | "rest" | "local";

/** restic forget's --keep-* options, by unit. */
export const KEEP_UNITS = ["last", "hourly", "daily", "weekly", "monthly", "yearly"] as const;
export type KeepUnit = (typeof KEEP_UNITS)[number];
export type KeepPolicy = Partial<Record<KeepUnit, number>>;

export const OFFSITE_DEFAULTS = {
  keep: "7 daily, 4 weekly, 12 monthly",
  check: "weekly",
};

/**
 * The backend credentials restic reads from its environment for the four kinds. Nothing else
 * passes: a variable like LD_PRELOAD or RESTIC_PASSWORD_COMMAND would run code on the host.
 */
export const OFFSITE_ENVIRONMENT_NAMES = [
  "AWS_ACCESS_KEY_ID",
  "AWS_SECRET_ACCESS_KEY",
  "AWS_SESSION_TOKEN",
  "AWS_DEFAULT_REGION",
  "RESTIC_REST_USERNAME",
  "RESTIC_REST_PASSWORD",
] as const;

/** restic refuses nothing shorter; a short password is what makes an encrypted copy readable. */
export const MIN_OFFSITE_PASSWORD_LENGTH = 16;

export interface OffsiteSettings {
  /** The repository as restic reads it (RESTIC_REPOSITORY); never holds a credential. */
  repository: string;
  backend: OffsiteBackend;
  keep: KeepPolicy;
  /** When `restic check` runs: a systemd calendar time, hourly/daily/weekly/monthly (OpenRC), or off. */
  check: string;
  /** PEM of the CA the S3 or REST endpoint's certificate chains to, when it is private. */
  caCertificate?: string;
  /** sftp: the server's host key ("ssh-ed25519 AAAA…"), pinned. */
  hostKey?: string;
}

/** What a key of the config is; `problem(key, message)` records one under gitea-homelab:KEY. */
export interface OffsiteInput {
  repository?: string;
  keep?: string;
  check?: string;
  caCertificate?: string;
  hostKey?: string;
}

/** The values the config reader does not take as one line: the secrets and the CA's PEM. */
export interface OffsiteRawInput {
  password?: string;
  /** JSON text of an object, as Pulumi holds a secret object. */
  environment?: string;
  sshKey?: string;
  caCertificate?: string;
}

type Problem = (key: string, message: string) => void;

const USER = String.raw`[a-z_][a-z0-9_.-]{0,31}`;
const HOST = String.raw`[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\]`;
const PATH_CHARS = String.raw`[A-Za-z0-9._+@~/-]`;
const SFTP_SHORT = new RegExp(String.raw`^sftp:(?:(${USER})@)?(${HOST}):(${PATH_CHARS}+)$`);
const SFTP_URL = new RegExp(String.raw`^sftp://(?:(${USER})@)?(${HOST})(?::(\d{1,5}))?/(${PATH_CHARS}+)$`);
const HTTP_BACKEND = /^(s3|rest):(https?):\/\/(.*)$/;
const HTTP_REST = new RegExp(String.raw`^(${HOST})(?::(\d{1,5}))?(/${PATH_CHARS}*)?$`);
const LOCAL_PATH = /^(\/[A-Za-z0-9._+@-]+)+\/?$/;
const HOST_KEY = /^(ssh-[a-z0-9-]+|ecdsa-sha2-[a-z0-9-]+|sk-[a-z0-9@.-]+) [A-Za-z0-9+/]+={0,3}$/;

const FORMS = "sftp:USER@HOST:/path, sftp://USER@HOST:PORT//path, s3:https://HOST/BUCKET/path, rest:https://HOST/path, or an absolute path on the server (a mounted disk)";

/** The repository: its kind, or a problem naming offsiteRepository. Credentials never go in it. */
export function parseRepository(value: string, problem: Problem): OffsiteBackend | undefined {
  const key = "offsiteRepository";
  if (CONTROL_CHARACTERS.test(value)) return problem(key, "must not contain control characters"), undefined;
  if (value.startsWith("sftp:")) {
    const m = SFTP_URL.exec(value) ?? SFTP_SHORT.exec(value);
    if (!m || value.split("/").includes("..")) return problem(key, `must be sftp:USER@HOST:/path or sftp://USER@HOST:PORT//path (plain letters, digits and . _ - + @ ~ / in the path), got ${JSON.stringify(value)}`), undefined;
    return "sftp";
  }
  const http = HTTP_BACKEND.exec(value);
  if (http) {
    const [, kind, , rest] = http;
    if (/@/.test(rest.split("/")[0])) {
      return problem(key, `must not hold a user name or password (USER:PASS@HOST): they would be kept in plain text; give them in gitea-homelab:offsiteEnvironment (${kind === "s3" ? "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY" : "RESTIC_REST_USERNAME, RESTIC_REST_PASSWORD"})`), undefined;
    }
    const m = HTTP_REST.exec(rest);
    if (!m || rest.split("/").includes("..") || (m[2] !== undefined && (Number(m[2]) < 1 || Number(m[2]) > 65535))) {
      return problem(key, `must be ${kind}:https://HOST[:PORT]/${kind === "s3" ? "BUCKET/path" : "path"} (plain letters, digits and . _ - + @ ~ / in the path), got ${JSON.stringify(value)}`), undefined;
    }
    if (kind === "s3" && (m[3] ?? "/").replace(/^\/+/, "") === "") return problem(key, `must name a bucket: s3:https://HOST/BUCKET/path, got ${JSON.stringify(value)}`), undefined;
    return kind as "s3" | "rest";
  }
  if (value.startsWith("/")) {
    if (!LOCAL_PATH.test(value) || value.split("/").includes("..")) return problem(key, `must be an absolute path of letters, digits and . _ - + @ (no spaces, quotes, $, % or ..), got ${JSON.stringify(value)}`), undefined;
    return "local";
  }
  return problem(key, `must be a restic repository: ${FORMS}; got ${JSON.stringify(value)}`), undefined;
}

/** "7 daily, 4 weekly, 12 monthly" → { daily: 7, weekly: 4, monthly: 12 }. */
export function parseKeep(value: string, problem: Problem): KeepPolicy {
  const policy: KeepPolicy = {};
  const what = `a list like "${OFFSITE_DEFAULTS.keep}" (units: ${KEEP_UNITS.join(", ")}; each a whole number from 1 to 10000)`;
  for (const part of value.split(",")) {
    const m = /^\s*(\d{1,5})\s+([a-z]+)\s*$/.exec(part);
    const unit = m?.[2] as KeepUnit | undefined;
    if (!m || !KEEP_UNITS.includes(unit!) || Number(m[1]) < 1 || Number(m[1]) > 10000 || policy[unit!] !== undefined) {
      problem("offsiteKeep", `must be ${what}, got ${JSON.stringify(value)}`);
      return {};
    }
    policy[unit!] = Number(m[1]);
  }
  return policy;
}

/** restic forget's options for a policy, in the order of KEEP_UNITS. */
export function keepArguments(policy: KeepPolicy): string[] {
  return KEEP_UNITS.filter((u) => policy[u] !== undefined).flatMap((u) => [`--keep-${u}`, String(policy[u])]);
}

/**
 * The off-site settings, or undefined when no repository is set (then none of the other keys
 * may be: a password or credentials without a repository are a mistake worth saying).
 */
export function readOffsite(input: OffsiteInput, secrets: OffsiteRawInput, problem: Problem): OffsiteSettings | undefined {
  const repository = input.repository?.trim() || undefined;
  if (repository === undefined) {
    const stray = (
      [
        ["offsitePassword", secrets.password],
        ["offsiteEnvironment", secrets.environment],
        ["offsiteSshKey", secrets.sshKey],
        ["offsiteHostKey", input.hostKey],
        ["offsiteCaCertificate", input.caCertificate],
      ] as const
    ).filter(([, v]) => (v ?? "").trim() !== "" && (v ?? "").trim() !== "{}");
    for (const [key] of stray) problem(key, "is set but gitea-homelab:offsiteRepository is not: set the repository too, or unset this");
    return undefined;
  }
  const backend = parseRepository(repository, problem);
  const keep = parseKeep(input.keep?.trim() || OFFSITE_DEFAULTS.keep, problem);
  const check = input.check?.trim() || OFFSITE_DEFAULTS.check;
  if (!/^(off|[A-Za-z0-9*:.,/~ -]{1,100})$/.test(check)) {
    problem("offsiteCheck", `must be off, or a systemd calendar time such as weekly or Sun *-*-* 05:00 (on Alpine: hourly, daily, weekly or monthly), got ${JSON.stringify(check)}`);
  }

  const secretHint = (key: string) => `(set it with: pulumi config set --secret gitea-homelab:${key})`;
  const password = secrets.password ?? "";
  if (password.trim() === "") {
    problem("offsitePassword", `is required with gitea-homelab:offsiteRepository: the repository's encryption password, at least ${MIN_OFFSITE_PASSWORD_LENGTH} characters; keep a copy outside the server and outside Pulumi (a password manager): without it no off-site backup can be read ${secretHint("offsitePassword")}`);
  } else if (CONTROL_CHARACTERS.test(password)) {
    problem("offsitePassword", `must not contain control characters (a newline, tab, escape or NUL) ${secretHint("offsitePassword")}`);
  } else if ([...password].length < MIN_OFFSITE_PASSWORD_LENGTH) {
    problem("offsitePassword", `must be at least ${MIN_OFFSITE_PASSWORD_LENGTH} characters: it is all that protects the copy on someone else's machine ${secretHint("offsitePassword")}`);
  }
  parseEnvironment(secrets.environment, problem);

  let hostKey: string | undefined;
  if (backend === "sftp") {
    hostKey = input.hostKey?.trim() || undefined;
    if (hostKey === undefined) problem("offsiteHostKey", "is required with an sftp: repository: the SSH host key of the machine that holds it, a line like \"ssh-ed25519 AAAA…\" (ssh-keyscan -t ed25519 HOST prints it), so the copy goes to that machine and no other");
    else if (!HOST_KEY.test(hostKey)) problem("offsiteHostKey", `must be a public key line like "ssh-ed25519 AAAA…" (ssh-keyscan prints it), got ${JSON.stringify(hostKey)}`);
    const key = secrets.sshKey?.trim() ?? "";
    if (key === "") problem("offsiteSshKey", `is required with an sftp: repository: the private key the server logs in with (the whole file, without a passphrase) ${secretHint("offsiteSshKey")}`);
    else if (privateKeyProblem(key) === "malformed") {
      problem("offsiteSshKey", `must be an OpenSSH or PEM private key (the whole file, -----BEGIN … PRIVATE KEY----- to -----END … -----) ${secretHint("offsiteSshKey")}`);
    } else if (privateKeyProblem(key) === "passphrase") {
      problem("offsiteSshKey", `is protected by a passphrase, which nothing can type during a scheduled backup; use a key without one ${secretHint("offsiteSshKey")}`);
    }
  } else {
    for (const [key, value] of [["offsiteHostKey", input.hostKey], ["offsiteSshKey", secrets.sshKey]] as const) {
      if ((value ?? "").trim() !== "") problem(key, `is used only with an sftp: repository, and offsiteRepository is ${backend === undefined ? "not one" : `a ${backend} one`}; unset it`);
    }
  }

  let caCertificate: string | undefined;
  if ((input.caCertificate ?? "").trim() !== "") {
    if (backend !== "s3" && backend !== "rest") problem("offsiteCaCertificate", "is used only with an s3: or rest: https repository; unset it");
    else {
      const checked = checkCaCertificate(input.caCertificate!);
      if ("problem" in checked) problem("offsiteCaCertificate", checked.problem.replace("the CA that signed Gitea's certificate", "the CA the repository's HTTPS certificate chains to"));
      else caCertificate = checked.certificate;
    }
  }
  return backend === undefined ? undefined : { repository, backend, keep, check, caCertificate, hostKey };
}

/** The credentials object, checked: names restic reads for the four kinds, values of one line. */
export function parseEnvironment(json: string | undefined, problem: Problem): Record<string, string> {
  const key = "offsiteEnvironment";
  const hint = "(set it with: pulumi config set --secret --path 'gitea-homelab:offsiteEnvironment.AWS_ACCESS_KEY_ID' VALUE)";
  if (json === undefined || json.trim() === "") return {};
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    problem(key, `must be an object of variable names and values, e.g. {"AWS_ACCESS_KEY_ID": "…", "AWS_SECRET_ACCESS_KEY": "…"} ${hint}`);
    return {};
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    problem(key, `must be an object of variable names and values ${hint}`);
    return {};
  }
  const environment: Record<string, string> = {};
  for (const [name, v] of Object.entries(value)) {
    if (!(OFFSITE_ENVIRONMENT_NAMES as readonly string[]).includes(name)) {
      // A name is not secret; its value is never repeated.
      problem(key, `${JSON.stringify(name.slice(0, 64))} is not a variable restic reads for these repositories; use ${OFFSITE_ENVIRONMENT_NAMES.join(", ")}`);
    } else if (typeof v !== "string" || v === "" || CONTROL_CHARACTERS.test(v) || v.length > 4096) {
      problem(key, `${name} must be a non-empty string of one line (no control characters), up to 4096 characters ${hint}`);
    } else environment[name] = v;
  }
  return environment;
}
