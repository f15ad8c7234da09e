/**
 * The server stack's settings: every config key, its default and its validation, in one place.
 * `validateServerConfig` is pure (tests call it directly); `readServerConfig` feeds it Pulumi config.
 */
import { isIP } from "net";
import * as pulumi from "@pulumi/pulumi";
import {
  CONNECTION_KEYS,
  ConfigError,
  ConfigReader,
  ConnectionSettings,
  EMAIL,
  isLoopbackOrUnspecified,
  shown,
  parseImageReference,
  LINUX_USERNAME,
  PROJECT,
  RawConfig,
  readConnection,
  readRawConfig,
  readRawSecrets,
  readSecret,
  secretProblems,
  urlHost,
} from "./config";
import { STORAGE_DRIVERS, StorageDriver } from "../components/rootlessUser/render";
import { GiteaSetting, readSettings, SETTINGS_KEY } from "../components/gitea/settings";
import { UNIT_STYLES } from "../components/host/platform";
import { checkCaCertificate, checkGivenCertificate } from "../components/tls/certificate";
import { AcmeSettings, LETS_ENCRYPT_DIRECTORY, TlsMode } from "../components/tls/render";
import { OFFSITE_RESTORE_PREFIX } from "../components/backup/giteaBackup";
import { OFFSITE_DEFAULTS, OffsiteRawInput, OffsiteSettings, parseEnvironment, readOffsite } from "../components/offsite/settings";

/** auto: firewalld on Fedora and Debian, none on Alpine (which ships no firewalld). */
export const FIREWALLS = ["auto", "firewalld", "none"] as const;
export const USERNS_MODES = ["", "keep-id"] as const;
/** The Gitea rootless image runs as 1000:1000; keep-id maps the host user to that. */
export const GITEA_IMAGE_UID = 1000;
export const DATABASES = ["sqlite3"] as const;
/** auto: own-ca when Gitea is reached directly, off when rootUrl names a reverse proxy (which does TLS). */
export const TLS_CHOICES = ["auto", "off", "own-ca", "given", "acme"] as const;
/** The settings of tls acme, said once when set under another mode. */
const ACME_KEYS = ["acmeEmail", "acmeAcceptTerms", "acmeDirectory"] as const;

/** Defaults; Pulumi.yaml declares the same ones (a unit test keeps the two equal). */
export const SERVER_DEFAULTS = {
  port: 22,
  user: "root",
  httpPort: 4111,
  sshPort: 3333,
  rootlessUser: "rootless",
  image: "docker.gitea.com/gitea:1.27.3-rootless",
  unitStyle: "quadlet" as (typeof UNIT_STYLES)[number],
  firewall: "auto" as (typeof FIREWALLS)[number],
  userns: "" as (typeof USERNS_MODES)[number],
  storageDriver: "auto" as StorageDriver,
  adminUsername: "gitea-admin",
  database: "sqlite3" as (typeof DATABASES)[number],
  healthTimeoutSeconds: 600,
  destroyData: false,
  removeUserOnDestroy: false,
  backupDir: "/var/backups/gitea-homelab",
  backupKeep: 7,
  backupSchedule: "daily",
  allowDowngrade: false,
  tls: "auto" as (typeof TLS_CHOICES)[number],
  acmeDirectory: LETS_ENCRYPT_DIRECTORY,
  acmeAcceptTerms: false,
  offsiteKeep: OFFSITE_DEFAULTS.keep,
  offsiteCheck: OFFSITE_DEFAULTS.check,
};

/** Names Gitea refuses as user names (a subset of its reserved list that people actually try). */
const GITEA_RESERVED_NAMES = ["admin", "api", "assets", "explore", "user", "org", "repo", "login", "ghost", "gitea-actions"];

export interface ServerSettings {
  connection: ConnectionSettings;
  /** The name users reach Gitea by: DOMAIN, SSH_DOMAIN and the default ROOT_URL host. */
  publicHost: string;
  httpPort: number;
  sshPort: number;
  rootUrl: string;
  /** Set when ROOT_URL was given and differs from the published host and port (a reverse proxy). */
  rootUrlNote?: string;
  rootlessUser: string;
  image: string;
  imageArchive?: string;
  unitStyle: (typeof UNIT_STYLES)[number];
  firewall: (typeof FIREWALLS)[number];
  firewallZone?: string;
  /** Podman --userns for the container, e.g. keep-id:uid=1000,gid=1000; undefined: Podman's default. */
  userns?: string;
  storageDriver: StorageDriver;
  adminUsername: string;
  adminEmail: string;
  database: (typeof DATABASES)[number];
  healthTimeoutSeconds: number;
  destroyData: boolean;
  removeUserOnDestroy: boolean;
  backupDir: string;
  backupKeep: number;
  /** An OnCalendar expression, or "off". */
  backupSchedule: string;
  /** A backup directory on the host, or offsite:latest / offsite:SNAPSHOT, to restore onto empty volumes. */
  restoreFrom?: string;
  /** Off-site copies of every backup to a restic repository; undefined: none. */
  offsite?: OffsiteSettings;
  allowDowngrade: boolean;
  /** The owner's app.ini settings (config `gitea`); `secret` when Pulumi holds that key as a secret. */
  gitea: { settings: GiteaSetting[]; secret: boolean };
  /** HTTPS as resolved from `tls`; given: the owner's chain (checked; its key is secret config); acme: its settings. */
  tls: { mode: TlsMode; givenChain?: string; acme?: AcmeSettings };
}

/** The owner's certificate and key, and an ACME CA's root, as Pulumi holds them (checked before any SSH session). */
export interface RawTls {
  certificate?: string;
  key?: string;
  acmeCaRoot?: string;
}

/** The `gitea` config value as Pulumi holds it: JSON text, and whether any part of it was set with --secret. */
export interface RawGiteaSettings {
  json?: string;
  secret: boolean;
}

export const SERVER_KEYS = [
  ...CONNECTION_KEYS,
  "publicHost",
  "httpPort",
  "sshPort",
  "rootUrl",
  "rootlessUser",
  "image",
  "imageArchive",
  "unitStyle",
  "firewall",
  "firewallZone",
  "userns",
  "storageDriver",
  "adminUsername",
  "adminEmail",
  "database",
  "healthTimeoutSeconds",
  "destroyData",
  "removeUserOnDestroy",
  "backupDir",
  "backupKeep",
  "backupSchedule",
  "restoreFrom",
  "offsiteRepository",
  "offsiteKeep",
  "offsiteCheck",
  "offsiteHostKey",
  "allowDowngrade",
  "tls",
  ...ACME_KEYS,
] as const;

/** The ROOT_URL Gitea gets when none is configured: the public host and published HTTP port. */
export function defaultRootUrl(publicHost: string, httpPort: number, https = false): string {
  return `${https ? "https" : "http"}://${urlHost(publicHost)}:${httpPort}/`;
}

/** The host name of URL as URL parsers read it; undefined when it is no URL (a bad publicHost, said under its key). */
function hostnameOf(url: string): string | undefined {
  try {
    return new URL(url).hostname;
  } catch {
    return undefined;
  }
}

/** Does URL name Gitea's own published address (whatever its scheme), rather than a reverse proxy? */
function isPublishedAddress(url: URL, publicHost: string, httpPort: number): boolean {
  let published: URL;
  try {
    published = new URL(defaultRootUrl(publicHost, httpPort));
  } catch {
    return false; // publicHost's own problem is said under its key
  }
  return url.hostname === published.hostname && (url.port === String(httpPort) || (url.port === "" && ((url.protocol === "https:" && httpPort === 443) || (url.protocol === "http:" && httpPort === 80))));
}

/**
 * `tls` and `rootUrl` together: auto serves HTTPS with the server's own CA unless rootUrl names a
 * reverse proxy (which does TLS) or the published address as plain http:// (the owner's choice).
 */
function resolveTls(
  r: ConfigReader,
  raw: RawTls,
  publicHost: string,
  httpPort: number,
): { mode: TlsMode; rootUrl: string; note?: string; givenChain?: string; acme?: AcmeSettings } {
  const choice = r.oneOf("tls", SERVER_DEFAULTS.tls, TLS_CHOICES);
  const explicit = r.optional("rootUrl");
  const url = explicit === undefined ? undefined : r.httpUrl("rootUrl", explicit, { base: true, example: "https://git.example.com/" });
  const direct = url !== undefined && publicHost !== "" && isPublishedAddress(url, publicHost, httpPort);
  let mode: TlsMode;
  if (choice !== "auto") mode = choice;
  else if (url === undefined) mode = "own-ca";
  else mode = direct && url.protocol === "https:" ? "own-ca" : "off";
  if (mode === "off" && (url === undefined || direct) && choice !== "off") {
    r.warn("rootUrl", "is plain http:// to Gitea itself: passwords and tokens cross the network in clear; unset it (tls auto then serves https) or set gitea-homelab:tls");
  }
  if (mode !== "off" && direct && url!.protocol === "http:") {
    r.problem("rootUrl", `is http:// but gitea-homelab:tls is ${mode}: Gitea serves https on that address; make it ${defaultRootUrl(publicHost, httpPort, true)} or unset it`);
  }
  const derived = defaultRootUrl(publicHost, httpPort, mode !== "off");
  // Gitea compares ROOT_URL with what browsers use; a trailing slash keeps links consistent.
  const rootUrl = url === undefined ? derived : url.href.endsWith("/") ? url.href : `${url.href}/`;
  // acme: the certificate names publicHost, so people use it, often on 443 forwarded to httpPort.
  const forwarded = mode === "acme" && url !== undefined && !direct && url.protocol === "https:" && url.hostname === hostnameOf(derived);
  const note =
    url === undefined || direct
      ? undefined
      : forwarded
        ? `ROOT_URL ${rootUrl}: the router or firewall is expected to forward its port to ${httpPort} on this host`
        : `ROOT_URL ${rootUrl} differs from the published address ${derived}: Gitea is expected behind a reverse proxy that forwards ${rootUrl} to ${derived}`;
  if (mode === "acme" && url !== undefined && !direct && !forwarded) {
    r.problem("rootUrl", `names ${url.host} over ${url.protocol.slice(0, -1)}, but tls acme gets Gitea a certificate for ${publicHost} (gitea-homelab:publicHost): make it https://${urlHost(publicHost)}/ (port 443 forwarded to ${httpPort}) or ${defaultRootUrl(publicHost, httpPort, true)}`);
  }
  const acme = mode === "acme" ? readAcme(r, raw, publicHost) : undefined;
  if (mode !== "acme") {
    const declared: Record<(typeof ACME_KEYS)[number], string | boolean> = { acmeEmail: "", acmeAcceptTerms: SERVER_DEFAULTS.acmeAcceptTerms, acmeDirectory: SERVER_DEFAULTS.acmeDirectory };
    const set = ACME_KEYS.filter((k) => r.chosen(k, declared[k]));
    const named = [...set, ...((raw.acmeCaRoot ?? "").trim() !== "" ? ["acmeCaRoot"] : [])];
    if (named.length > 0) r.warn("tls", `is ${mode}: gitea-homelab:${named.join(", ")} ${named.length === 1 ? "is" : "are"} used only when tls is acme`);
  }

  let givenChain: string | undefined;
  if (mode === "given") {
    const report = checkGivenCertificate(raw.certificate, raw.key, publicHost);
    for (const p of report.problems) r.problem(p.key, p.message);
    for (const w of report.warnings) r.warn(w.key, w.message);
    givenChain = report.chain;
  } else if ((raw.certificate ?? "").trim() !== "" || (raw.key ?? "").trim() !== "") {
    r.warn("tls", `is ${mode}: gitea-homelab:tlsCertificate and tlsKey are used only when tls is given`);
  }
  return { mode, rootUrl, note, givenChain, acme };
}

/** tls acme: an account e-mail, the CA's terms agreed to, its directory over https, its root if private. */
function readAcme(r: ConfigReader, raw: RawTls, publicHost: string): AcmeSettings {
  if (publicHost !== "" && isIP(publicHost)) {
    r.problem("publicHost", `is the IP address ${publicHost}, but tls acme needs a DNS name the ACME CA can check and certify (e.g. git.example.com); or use tls own-ca`);
  }
  const email = r.matching("acmeEmail", r.required("acmeEmail", "the e-mail address of the ACME account (tls acme): the CA writes there about expiring certificates and problems"), EMAIL, "an e-mail address like admin@example.com");
  if (!r.bool("acmeAcceptTerms", SERVER_DEFAULTS.acmeAcceptTerms) && !r.hasProblem("acmeAcceptTerms")) {
    r.problem("acmeAcceptTerms", "must be true for tls acme: the ACME CA issues certificates only to those who agree to its terms (Let's Encrypt: https://letsencrypt.org/repository/); read them, then pulumi config set gitea-homelab:acmeAcceptTerms true");
  }
  const directoryUrl = r.httpUrl("acmeDirectory", r.string("acmeDirectory", SERVER_DEFAULTS.acmeDirectory), { base: false, example: LETS_ENCRYPT_DIRECTORY });
  if (directoryUrl !== undefined && directoryUrl.protocol !== "https:") r.problem("acmeDirectory", `must be an https:// URL (ACME runs over HTTPS), got ${directoryUrl.href}`);
  let caRoot: string | undefined;
  if ((raw.acmeCaRoot ?? "").trim() !== "") {
    const checked = checkCaCertificate(raw.acmeCaRoot!);
    if ("problem" in checked) r.problem("acmeCaRoot", checked.problem.replace("the CA that signed Gitea's certificate", "the root the ACME CA's own HTTPS certificate chains to"));
    else caRoot = checked.certificate;
  }
  return { email, directory: directoryUrl?.href ?? SERVER_DEFAULTS.acmeDirectory, caRoot };
}

/**
 * The `gitea` key. Pulumi marks a whole object secret when any value in it was set with
 * --secret (a program cannot tell which): then every setting in it is treated as secret.
 */
function readGiteaSettings(r: ConfigReader, raw: RawGiteaSettings): { settings: GiteaSetting[]; secret: boolean } {
  let value: unknown;
  if (raw.json !== undefined && raw.json.trim() !== "") {
    try {
      value = JSON.parse(raw.json);
    } catch {
      value = raw.json;
    }
  }
  const { settings, problems, warnings } = readSettings(value, raw.secret);
  for (const p of problems) r.problem(p.path, p.message);
  for (const w of warnings) r.warn(w.path, w.message);
  return { settings, secret: raw.secret };
}

export function validateServerConfig(raw: RawConfig, rawGitea: RawGiteaSettings = { secret: false }, rawTls: RawTls = {}, rawOffsite: OffsiteRawInput = {}): { settings: ServerSettings; problems: string[]; warnings: string[] } {
  const r = new ConfigReader(raw);
  const d = SERVER_DEFAULTS;
  const connection = readConnection(r);
  // Unset, it is host (whose own problems are said once, under host).
  const explicitPublicHost = r.optional("publicHost");
  const publicHost = explicitPublicHost === undefined ? connection.host : r.host("publicHost", explicitPublicHost);
  if (publicHost !== "" && isLoopbackOrUnspecified(publicHost)) {
    r.warn("publicHost", `${publicHost} is this machine's own address: ROOT_URL and clone URLs will only work on the host itself, and runners elsewhere cannot reach Gitea; set the address people and runners use`);
  }
  const httpPort = r.publishedPort("httpPort", d.httpPort);
  const sshPort = r.publishedPort("sshPort", d.sshPort);
  if (httpPort === sshPort) r.problem("sshPort", `must differ from httpPort (both are ${httpPort})`);
  for (const [key, published] of [["httpPort", httpPort], ["sshPort", sshPort]] as const) {
    if (published === connection.port) {
      r.problem(key, `must differ from gitea-homelab:port (${connection.port}), the port the host's own sshd listens on; pick another, e.g. ${key === "httpPort" ? d.httpPort : d.sshPort}`);
    }
  }

  // The address must make a valid URL too; httpUrl names publicHost when it does not.
  if (publicHost !== "" && !r.hasProblem("host", "publicHost")) {
    r.httpUrl("publicHost", defaultRootUrl(publicHost, httpPort), { base: true, example: "http://192.168.1.10:4111/" });
  }
  const tls = resolveTls(r, rawTls, publicHost, httpPort);
  const { rootUrl, note } = tls;

  const rootlessUser = r.matching("rootlessUser", r.string("rootlessUser", d.rootlessUser), LINUX_USERNAME, "a Linux user name (lower case, up to 31 characters)");
  if (rootlessUser === "root") r.problem("rootlessUser", "must not be root: Gitea runs rootless");

  const image = r.string("image", d.image);
  const reference = parseImageReference(image);
  if (reference === undefined || (reference.tag === undefined && reference.digest === undefined)) {
    r.problem("image", `must be an image reference with a tag or digest (REGISTRY/PATH:TAG, lower-case path), e.g. ${d.image}, got ${shown(image)}`);
  } else if (/\.(image|build)$/.test(reference.tag ?? "")) {
    // Quadlet reads Image=NAME.image / NAME.build as another Quadlet unit, not as an image.
    r.problem("image", `must not have a tag ending in .image or .build (Quadlet reads that as a unit name), got ${shown(image)}`);
  } else if (reference.registry === undefined) {
    // Podman resolves short names per host (registries.conf), and drift compares names.
    r.problem("image", `must name its registry, e.g. ${d.image} or docker.io/gitea/gitea:1.22-rootless, got ${shown(image)}`);
  } else if (/^(nightly|latest|main|dev)/.test(reference.tag ?? "") && reference.digest === undefined) {
    r.warn("image", `${image} is a moving tag; pin a release such as ${d.image} so every up runs the same Gitea`);
  }
  const imageArchive = r.optional("imageArchive");
  if (imageArchive !== undefined) r.absolutePath("imageArchive", imageArchive, "the image archive's path on the host");

  const unitStyle = r.oneOf("unitStyle", d.unitStyle, UNIT_STYLES);
  const firewall = r.oneOf("firewall", d.firewall, FIREWALLS);
  const userns = r.oneOf("userns", d.userns, USERNS_MODES);
  const storageDriver = r.oneOf("storageDriver", d.storageDriver, STORAGE_DRIVERS);
  const firewallZone = r.optional("firewallZone");
  if (firewallZone !== undefined) r.matching("firewallZone", firewallZone, /^[A-Za-z0-9_-]{1,17}$/, "a firewalld zone name");

  const adminUsername = r.string("adminUsername", d.adminUsername);
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,38}$/.test(adminUsername) || /[._-]{2}|[._-]$/.test(adminUsername)) {
    r.problem("adminUsername", `must be a Gitea user name (letters, digits, single . _ - between them, up to 39 characters), got ${shown(adminUsername)}`);
  } else if (GITEA_RESERVED_NAMES.includes(adminUsername.toLowerCase())) {
    r.problem("adminUsername", `${shown(adminUsername)} is reserved by Gitea; pick another, e.g. ${d.adminUsername}`);
  }
  const adminEmail = r.matching("adminEmail", r.required("adminEmail", "the Gitea admin's e-mail address"), EMAIL, "an e-mail address like admin@example.com");
  const database = r.oneOf("database", d.database, DATABASES);
  const healthTimeoutSeconds = r.int("healthTimeoutSeconds", d.healthTimeoutSeconds, 10, 3600);
  const destroyData = r.bool("destroyData", d.destroyData);
  const removeUserOnDestroy = r.bool("removeUserOnDestroy", d.removeUserOnDestroy);
  const backupDir = r.absolutePath("backupDir", r.string("backupDir", d.backupDir), "the backup directory on the host").replace(/(.)\/+$/, "$1");
  if (!r.hasProblem("backupDir") && /^\/(bin|boot|dev|etc|home|lib|lib64|proc|root|run|sbin|sys|tmp|usr|var)?$/.test(backupDir)) {
    r.problem("backupDir", `must be a directory of its own (it is made 0700 and owned by ${rootlessUser}), not ${shown(backupDir)}; e.g. ${d.backupDir}`);
  }
  const backupKeep = r.int("backupKeep", d.backupKeep, 1, 1000);
  const backupSchedule = r.matching(
    "backupSchedule",
    r.string("backupSchedule", d.backupSchedule),
    /^(off|[A-Za-z0-9*:.,/~ -]{1,100})$/,
    "off, or a systemd calendar time such as daily, weekly, 03:00 or Sun *-*-* 04:00 (on Alpine: hourly, daily, weekly or monthly)",
  );
  const offsite = readOffsite(
    // The CA is PEM, lines and all: read raw, as tlsCertificate is, and checked as a certificate.
    { repository: raw.offsiteRepository, keep: raw.offsiteKeep, check: raw.offsiteCheck, hostKey: raw.offsiteHostKey, caCertificate: rawOffsite.caCertificate },
    rawOffsite,
    (key, message) => r.problem(key, message),
  );
  const restoreFromValue = r.optional("restoreFrom");
  let restoreFrom: string | undefined;
  if (restoreFromValue?.startsWith(OFFSITE_RESTORE_PREFIX)) {
    restoreFrom = r.matching("restoreFrom", restoreFromValue, /^offsite:(latest|[0-9a-f]{8,64})$/, "offsite:latest or offsite:SNAPSHOT (a restic snapshot id, 8 to 64 hex digits)");
    if (raw.offsiteRepository?.trim() ? false : true) r.problem("restoreFrom", `${shown(restoreFromValue)} restores from the off-site repository, but gitea-homelab:offsiteRepository is not set: set it, offsitePassword and the backend's credentials as the lost server had them`);
  } else if (restoreFromValue !== undefined) {
    restoreFrom = r.absolutePath("restoreFrom", restoreFromValue, "a backup directory on the host (gitea-backup-*), or offsite:latest").replace(/(.)\/+$/, "$1");
  }
  const allowDowngrade = r.bool("allowDowngrade", d.allowDowngrade);
  const gitea = readGiteaSettings(r, rawGitea);

  const settings: ServerSettings = {
    connection,
    publicHost,
    httpPort,
    sshPort,
    rootUrl,
    rootUrlNote: note,
    rootlessUser,
    image,
    imageArchive,
    unitStyle,
    firewall,
    firewallZone,
    userns: userns === "keep-id" ? `keep-id:uid=${GITEA_IMAGE_UID},gid=${GITEA_IMAGE_UID}` : undefined,
    storageDriver,
    adminUsername,
    adminEmail,
    database,
    healthTimeoutSeconds,
    destroyData,
    removeUserOnDestroy,
    backupDir,
    backupKeep,
    backupSchedule,
    restoreFrom,
    offsite,
    allowDowngrade,
    gitea,
    tls: { mode: tls.mode, givenChain: tls.givenChain, acme: tls.acme },
  };
  return { settings, problems: r.problems, warnings: r.warnings };
}

/** The server stack's secret config; each is undefined when unset. */
export interface ServerSecrets {
  privateKey: pulumi.Output<string | undefined>;
  adminPassword: pulumi.Output<string | undefined>;
  /** The key of the owner's certificate (tls: given). */
  tlsKey: pulumi.Output<string | undefined>;
  /** The off-site repository's password, the backend's credentials and (sftp) the login key. */
  offsitePassword?: pulumi.Output<string>;
  offsiteEnvironment?: pulumi.Output<Record<string, string>>;
  offsiteSshKey?: pulumi.Output<string | undefined>;
}

// @internal in the SDK (absent from its typings): whether the CLI passed a key as secret.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const runtimeConfig: { isConfigSecret(key: string): boolean } = require("@pulumi/pulumi/runtime/config");

/** The `gitea` key, read without Config.get (which warns when the value is secret). */
export function readRawGiteaSettings(): RawGiteaSettings {
  const key = `${PROJECT}:${SETTINGS_KEY}`;
  return { json: pulumi.runtime.getConfig(key), secret: runtimeConfig.isConfigSecret(key) };
}

export function readServerConfig(config = new pulumi.Config(PROJECT)): { settings: ServerSettings; secrets: ServerSecrets } {
  // Read raw: a certificate may have been set with --secret or not, and Config.get warns on a secret.
  const rawTls = {
    certificate: pulumi.runtime.getConfig(`${PROJECT}:tlsCertificate`),
    key: readRawSecrets(["tlsKey"]).tlsKey,
    acmeCaRoot: pulumi.runtime.getConfig(`${PROJECT}:acmeCaRoot`),
  };
  const rawOffsite: OffsiteRawInput = {
    password: pulumi.runtime.getConfig(`${PROJECT}:offsitePassword`),
    environment: pulumi.runtime.getConfig(`${PROJECT}:offsiteEnvironment`),
    sshKey: pulumi.runtime.getConfig(`${PROJECT}:offsiteSshKey`),
    caCertificate: pulumi.runtime.getConfig(`${PROJECT}:offsiteCaCertificate`),
  };
  const { settings, problems, warnings } = validateServerConfig(readRawConfig(SERVER_KEYS, config), readRawGiteaSettings(), rawTls, rawOffsite);
  // Kept in the stack's file in plain text unless set with --secret: refused, like a leak.
  for (const [key, value] of Object.entries({ offsitePassword: rawOffsite.password, offsiteEnvironment: rawOffsite.environment, offsiteSshKey: rawOffsite.sshKey })) {
    const set = value !== undefined && value.trim() !== "" && value.trim() !== "{}";
    if (set && !runtimeConfig.isConfigSecret(`${PROJECT}:${key}`)) {
      problems.push(`${PROJECT}:${key}: is stored in plain text in the stack's file; set it again with --secret (pulumi config set --secret${key === "offsiteEnvironment" ? " --path 'gitea-homelab:offsiteEnvironment.NAME' VALUE" : ` gitea-homelab:${key}`})`);
    }
  }
  for (const w of warnings) pulumi.log.warn(w);
  problems.push(...secretProblems(readRawSecrets(["privateKey", "adminPassword"])));
  if (problems.length > 0) throw new ConfigError(problems);
  const offsiteEnvironment = pulumi.secret(pulumi.output(config.getSecret("offsiteEnvironment")).apply((json) => parseEnvironment(json, () => undefined)));
  return {
    settings,
    secrets: {
      privateKey: readSecret(config, "privateKey"),
      adminPassword: readSecret(config, "adminPassword"),
      tlsKey: readSecret(config, "tlsKey"),
      offsitePassword: readSecret(config, "offsitePassword").apply((p) => p ?? ""),
      offsiteEnvironment,
      offsiteSshKey: readSecret(config, "offsiteSshKey"),
    },
  };
}
