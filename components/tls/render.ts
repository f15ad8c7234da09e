/**
 * HTTPS for Gitea, the pure half. Gitea serves TLS itself (rootless, no proxy, no daemon as
 * root): PROTOCOL=https with the certificate and key in a volume of their own, mounted read-only
 * and handed to the container's user at every start (Podman's U option). The certificate is
 *   - own-ca: issued by a small CA made once on the server and kept beside Gitea's keys (in every
 *     backup, never made again while it exists), renewed by a daily timer well before it ends;
 *   - given: the owner's certificate and key (secret config), installed as given;
 *   - acme: obtained and renewed by Gitea itself (its certmagic) from an ACME CA, Let's Encrypt
 *     by default, by the TLS-ALPN-01 challenge on the same port; kept in the data volume.
 * How the host's own checks reach it (the health wait, the backup tool's rollback) is here too.
 */
import { installContent, renderScript, sh, shq } from "../render/shell";
import { IniEntries, renderIni, unit } from "../render/unitFile";
import { RENEW_BEFORE_DAYS } from "./certificate";

/** `tls` as the stack resolved it (config `auto` decides between own-ca and off). */
export type TlsMode = "off" | "own-ca" | "given" | "acme";

/** tls acme: the account's e-mail, the CA's directory, and the root its own HTTPS chains to (a private CA). */
export interface AcmeSettings {
  email: string;
  directory: string;
  /** PEM; undefined: the container's system roots verify the directory's HTTPS. */
  caRoot?: string;
}

/** `tls` as Gitea's container and the certificate commands need it. */
export interface GiteaTlsSettings {
  mode: TlsMode;
  acme?: AcmeSettings;
}

/** The volume holding the served certificate and key; regenerated, so not part of backups. */
export const TLS_VOLUME = "gitea-tls";
/** Where the container sees it. */
export const TLS_IN_CONTAINER = "/etc/gitea-homelab/tls";
/** The CA, relative to the rootless user's home: beside Gitea's keys, kept with the data. */
export const CA_DIR = ".config/gitea-homelab/tls";
/** A server certificate lasts this long (the longest any browser accepts). */
export const CERTIFICATE_DAYS = 397;
export const CA_DAYS = 3650;

/** The served files inside the volume (relative to the home): the chain and its key. */
export function servedPaths(): { dir: string; cert: string; key: string } {
  const dir = `.local/share/containers/storage/volumes/${TLS_VOLUME}/_data`;
  return { dir, cert: `${dir}/cert.pem`, key: `${dir}/key.pem` };
}

/** The tool that keeps the own-ca certificate valid; root-owned (root runs it, from up and the timer). */
export function tlsToolPath(user: string): string {
  return `/usr/local/libexec/gitea-homelab/gitea-tls-${user}`;
}

/** The renewal schedule: system units on systemd hosts, cron's daily directory on OpenRC ones. */
export function renewalUnits(user: string): { service: string; timer: string; dir: string; periodic: string } {
  const name = `gitea-homelab-tls-${user}`;
  return { service: `${name}.service`, timer: `${name}.timer`, dir: "/etc/systemd/system", periodic: `/etc/periodic/daily/${name}` };
}

/** ACME's store in the container: the data volume, so in every backup and kept by destroy like the data. */
export const ACME_STORE_IN_CONTAINER = "/var/lib/gitea/https";
/** The ACME CA's root (acmeCaRoot) in the certificate volume. */
export const ACME_CA_ROOT_FILE = "acme-ca-root.pem";
/**
 * Gitea with ACME always starts an HTTP-01 challenge listener on PORT_TO_REDIRECT (80 by default,
 * which its unprivileged user cannot bind: Gitea would exit). A high port inside the container,
 * never published: the challenge used is TLS-ALPN-01, on the HTTPS port.
 */
export const ACME_HTTP_CHALLENGE_PORT = 3080;
export const LETS_ENCRYPT_DIRECTORY = "https://acme-v02.api.letsencrypt.org/directory";

/**
 * Gitea's own settings for the mode. PROTOCOL and ENABLE_ACME are always set: Gitea's image never
 * removes a key from app.ini, and a stale ENABLE_ACME would keep ACME on (or stop an http Gitea).
 */
export function giteaTlsEnvironment(tls: GiteaTlsSettings): Record<string, string> {
  if (tls.mode === "off") return { GITEA__server__PROTOCOL: "http", GITEA__server__ENABLE_ACME: "false" };
  if (tls.mode === "acme") {
    const acme = tls.acme!;
    return {
      GITEA__server__PROTOCOL: "https",
      GITEA__server__ENABLE_ACME: "true",
      // The owner agreed to the CA's terms in config (acmeAcceptTerms), which refuses anything else.
      GITEA__server__ACME_ACCEPTTOS: "true",
      GITEA__server__ACME_URL: acme.directory,
      GITEA__server__ACME_EMAIL: acme.email,
      GITEA__server__ACME_DIRECTORY: ACME_STORE_IN_CONTAINER,
      GITEA__server__ACME_CA_ROOT: acme.caRoot === undefined ? "" : `${TLS_IN_CONTAINER}/${ACME_CA_ROOT_FILE}`,
      GITEA__server__PORT_TO_REDIRECT: String(ACME_HTTP_CHALLENGE_PORT),
    };
  }
  return {
    GITEA__server__PROTOCOL: "https",
    GITEA__server__ENABLE_ACME: "false",
    GITEA__server__CERT_FILE: `${TLS_IN_CONTAINER}/cert.pem`,
    GITEA__server__KEY_FILE: `${TLS_IN_CONTAINER}/key.pem`,
  };
}

/** The container's mount of the certificate volume: read-only, relabelled, owned by Gitea's user inside. */
export function tlsVolumeMount(mode: TlsMode): { name: string; path: string; options: string } | undefined {
  return mode === "off" ? undefined : { name: TLS_VOLUME, path: TLS_IN_CONTAINER, options: "ro,Z,U" };
}

/**
 * How the host reaches Gitea's /api/healthz: over https it is the URL people use, sent to this
 * host's loopback (the published port; a host's connection to its own LAN address does not reach
 * a rootless container) and verified against `caFile` (relative to the rootless user's home): the
 * CA, or the certificate as given; for ACME, the host's own roots. Never unverified.
 */
export interface HealthTarget {
  url: string;
  caFile: string;
}

export function healthTarget(mode: TlsMode, publicHostInUrl: string, httpPort: number): HealthTarget {
  if (mode === "off") return { url: `http://127.0.0.1:${httpPort}/api/healthz`, caFile: "" };
  const caFile = mode === "own-ca" ? `${CA_DIR}/ca.crt` : mode === "given" ? servedPaths().cert : "";
  return { url: `https://${publicHostInUrl}:${httpPort}/api/healthz`, caFile };
}

/** Bash: `healthy` answers whether Gitea says 200 at $health_url (vars health_url, health_ca and health_home). */
export const HEALTHY_FUNCTION = sh`
healthy() {
  local -a tls=()
  if [[ $health_url == https://* ]]; then tls=(--connect-to ::127.0.0.1:); fi
  if [[ -n $health_ca ]]; then tls+=(--cacert "$health_home/$health_ca"); fi
  [[ $(curl --silent --output /dev/null --max-time 5 --write-out '%{http_code}' "\${tls[@]}" "$health_url") == 200 ]]
}`;

export interface TlsSpec {
  init: "systemd" | "openrc";
  user: string;
  /** The service that runs Gitea (restarted when its certificate changes). */
  service: string;
  publicHost: string;
}

/** Bash shared by the tool and the probe: does the certificate name the host; is the key its key. */
export const CERTIFICATE_FUNCTIONS = sh`
# Does the PEM certificate FILE name HOST (a DNS name or an IP address)? Usage: names_host FILE HOST
names_host() {
  local how=-checkhost
  if [[ $2 =~ ^[0-9.]+$ || $2 == *:* ]]; then how=-checkip; fi
  openssl x509 -in "$1" -noout "$how" "$2" 2>/dev/null | grep -q ' does match '
}
# Is KEY the private key of the certificate CERT? Usage: key_matches CERT KEY
key_matches() {
  [[ $(openssl x509 -in "$1" -noout -pubkey 2>/dev/null | openssl pkey -pubin -outform DER 2>/dev/null | sha256sum) == \
    $(openssl pkey -in "$2" -pubout -outform DER 2>/dev/null | sha256sum) ]]
}`;

/**
 * Bash both certificate scripts start with: openssl, the user's home and group, the served
 * directory ($served) and a temp directory ($tmp) removed on exit. Vars: user, served_dir.
 */
const CERTIFICATE_SCRIPT_START = sh`
command -v openssl >/dev/null || die "openssl is missing on this host; run pulumi up (its preflight installs it)"
home=$(home_of "$user") || die "user $user does not exist"
group=$(id -gn "$user")
served=$home/$served_dir
[[ -d $served ]] || die "the certificate volume of $user is missing ($served); run pulumi up"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT`;

/** Restarts Gitea when it runs, so that it reads a new certificate (Gitea reads it at start only). */
const RESTART_IF_ACTIVE = sh`
restart_gitea_if_active() {
  if [[ $init == systemd ]]; then
    if userctl "$user" is-active --quiet "$service"; then userctl "$user" restart "$service" && echo "$service restarted (new certificate)"; fi
  elif rc-service "$service" status >/dev/null 2>&1; then
    rc-service "$service" restart >/dev/null && echo "$service restarted (new certificate)"
  fi
}`;

/**
 * The own-ca tool: makes the CA when there is none (never replaces one), and issues the server
 * certificate when it is missing, ends within RENEW_BEFORE_DAYS, does not name the host, is not
 * the CA's or does not match its key; then restarts Gitea. Prints the CA certificate last.
 */
export function renderTlsTool(s: TlsSpec): string {
  return renderScript(
    {
      purpose: "Gitea's certificate from the server's own CA: the CA made once, the certificate issued and renewed before it ends.",
      vars: {
        init: s.init,
        user: s.user,
        service: s.service,
        public_host: s.publicHost,
        ca_dir: CA_DIR,
        served_dir: servedPaths().dir,
        renew_seconds: RENEW_BEFORE_DAYS * 86400,
        certificate_days: CERTIFICATE_DAYS,
        ca_days: CA_DAYS,
      },
    },
    sh`
${CERTIFICATE_FUNCTIONS}
${RESTART_IF_ACTIVE}
${CERTIFICATE_SCRIPT_START}
ca=$home/$ca_dir

if [[ ! -s $ca/ca.key && ! -s $ca/ca.crt ]]; then
  as_user "$user" mkdir -p "$ca"
  chmod 700 "$ca"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days "$ca_days" \
    -subj "/O=gitea-homelab/CN=Gitea CA $(hostname -s 2>/dev/null || echo server) $(date -u +%Y%m%d)" \
    -addext basicConstraints=critical,CA:TRUE,pathlen:0 -addext keyUsage=critical,keyCertSign,cRLSign \
    -keyout "$tmp/ca.key" -out "$tmp/ca.crt" 2>/dev/null || die "openssl could not make the CA"
  install -m 600 -o "$user" -g "$group" "$tmp/ca.key" "$ca/ca.key"
  install -m 644 -o "$user" -g "$group" "$tmp/ca.crt" "$ca/ca.crt"
  echo "CA made in ~$user/$ca_dir (kept with the data; every backup holds it)"
elif [[ ! -s $ca/ca.key || ! -s $ca/ca.crt ]]; then
  die "half of the CA is missing in ~$user/$ca_dir (ca.key and ca.crt go together): put the file back or restore a backup (gitea-homelab:restoreFrom); a new CA would not be trusted where the old one is"
fi
# The CA for the caCertificate output; before the status lines, as the CLI's progress line shows
# a command's last line of output.
echo "CA certificate (trust it in browsers, git and runners):"
cat "$ca/ca.crt"

reason=
if [[ ! -s $served/cert.pem || ! -s $served/key.pem ]]; then
  reason="no certificate yet"
elif ! openssl x509 -in "$served/cert.pem" -noout -checkend "$renew_seconds" >/dev/null 2>&1; then
  reason="the certificate ends $(openssl x509 -in "$served/cert.pem" -noout -enddate | cut -d= -f2), within $((renew_seconds / 86400)) days"
elif ! names_host "$served/cert.pem" "$public_host"; then
  reason="the certificate does not name $public_host"
elif ! openssl verify -CAfile "$ca/ca.crt" "$served/cert.pem" >/dev/null 2>&1; then
  reason="the certificate is not the CA's"
elif ! key_matches "$served/cert.pem" "$served/key.pem"; then
  reason="the key is not the certificate's"
fi

if [[ -n $reason ]]; then
  if [[ $public_host =~ ^[0-9.]+$ || $public_host == *:* ]]; then san="IP:$public_host"; else san="DNS:$public_host"; fi
  printf '%s\n' "subjectAltName=$san" "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth" >"$tmp/extensions"
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/O=gitea-homelab" \
    -keyout "$tmp/key.pem" -out "$tmp/request.csr" 2>/dev/null || die "openssl could not make the certificate's key"
  openssl x509 -req -in "$tmp/request.csr" -CA "$ca/ca.crt" -CAkey "$ca/ca.key" -set_serial "0x$(openssl rand -hex 16)" \
    -days "$certificate_days" -extfile "$tmp/extensions" -out "$tmp/leaf.pem" 2>/dev/null || die "openssl could not issue the certificate"
  cat "$tmp/leaf.pem" "$ca/ca.crt" >"$tmp/cert.pem"
  # Owned by the rootless user (root inside its user namespace), so that Podman can hand them to
  # Gitea's user at the next start (U): a file owned by the host's root is not Podman's to chown.
  install -m 600 -o "$user" -g "$group" "$tmp/key.pem" "$served/key.pem"
  install -m 644 -o "$user" -g "$group" "$tmp/cert.pem" "$served/cert.pem"
  echo "certificate issued for $public_host ($reason), valid $certificate_days days"
  restart_gitea_if_active
else
  echo "certificate for $public_host valid until $(openssl x509 -in "$served/cert.pem" -noout -enddate | cut -d= -f2)"
fi
`,
  );
}

export function renderRenewalServiceUnit(user: string): string {
  return renderIni([
    { name: "Unit", entries: [["Description", unit.literal("Renew Gitea's certificate from the server's CA (gitea-homelab)")]] },
    { name: "Service", entries: [["Type", unit.literal("oneshot")], ["ExecStart", unit.command([unit.execWord(tlsToolPath(user))])]] },
  ]);
}

export function renderRenewalTimerUnit(): string {
  const timer: IniEntries = [
    ["OnCalendar", unit.literal("daily")],
    ["RandomizedDelaySec", unit.literal("1h")],
    // A check missed while the host was off runs at the next boot.
    ["Persistent", unit.literal("true")],
  ];
  return renderIni([
    { name: "Unit", entries: [["Description", unit.literal("Daily check of Gitea's certificate (gitea-homelab)")]] },
    { name: "Timer", entries: timer },
    { name: "Install", entries: [["WantedBy", unit.literal("timers.target")]] },
  ]);
}

/** busybox crond runs /etc/periodic/daily/* (run-parts: the name has no dot). */
export function renderRenewalPeriodicScript(user: string): string {
  return `#!/bin/sh\n# Managed by gitea-homelab: edits are overwritten by \`pulumi up\`.\nexec ${shq(tlsToolPath(user))}\n`;
}

/** Bash: removes the own-ca tool and its schedule (the CA itself stays). Vars: init, tool, renewal_*. */
const REMOVE_RENEWAL = sh`
remove_renewal() {
  if [[ $init == systemd ]]; then
    if [[ -e $renewal_dir/$renewal_timer || -e $renewal_dir/$renewal_service ]]; then
      systemctl disable --now "$renewal_timer" >/dev/null 2>&1 || true
      rm -f "$renewal_dir/$renewal_timer" "$renewal_dir/$renewal_service"
      systemctl daemon-reload
    fi
  else
    rm -f "$renewal_periodic"
  fi
  rm -f "$tool"
}`;

function renewalVars(s: Pick<TlsSpec, "init" | "user">) {
  const units = renewalUnits(s.user);
  return { init: s.init, tool: tlsToolPath(s.user), renewal_dir: units.dir, renewal_service: units.service, renewal_timer: units.timer, renewal_periodic: units.periodic };
}

/** own-ca, the command `up` runs: installs the tool and its daily schedule, then runs it once. */
export function renderOwnCaInstallScript(s: TlsSpec): string {
  return renderScript(
    { purpose: "Install the certificate tool and its daily schedule, then run it: the CA made once, the certificate valid.", vars: renewalVars(s) },
    sh`
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
mkdir -p "$(dirname "$tool")"
${installContent(renderTlsTool(s), sh`"$tool"`, sh`755`, sh`root`, sh`root`)}
if [[ $init == systemd ]]; then
  ${installContent(renderRenewalServiceUnit(s.user), sh`"$renewal_dir/$renewal_service"`, sh`644`, sh`root`, sh`root`)}
  ${installContent(renderRenewalTimerUnit(), sh`"$renewal_dir/$renewal_timer"`, sh`644`, sh`root`, sh`root`)}
  if ((changed)); then systemctl daemon-reload; fi
  systemctl enable --now --quiet "$renewal_timer"
else
  mkdir -p "$(dirname "$renewal_periodic")"
  ${installContent(renderRenewalPeriodicScript(s.user), sh`"$renewal_periodic"`, sh`755`, sh`root`, sh`root`)}
  rc-update add crond default >/dev/null
  rc-service crond status >/dev/null 2>&1 || rc-service crond start >/dev/null
fi
"$tool"
`,
  );
}

/**
 * given, the command `up` runs: the key and the certificate chain arrive on stdin (secret), are
 * checked on the host too, and are installed when they differ; Gitea restarts to read them.
 */
export function renderGivenCertificateScript(s: TlsSpec): string {
  return renderScript(
    {
      purpose: "Install the certificate and key the owner gave (stdin) for Gitea, and restart Gitea when they changed.",
      vars: { ...renewalVars(s), user: s.user, service: s.service, served_dir: servedPaths().dir },
    },
    sh`
${CERTIFICATE_FUNCTIONS}
${RESTART_IF_ACTIVE}
${REMOVE_RENEWAL}
${CERTIFICATE_SCRIPT_START}
cat >"$tmp/given"
sed -n '/^-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----$/,/^-----END [A-Z0-9 ]*PRIVATE KEY-----$/p' "$tmp/given" >"$tmp/key.pem"
sed -n '/^-----BEGIN CERTIFICATE-----$/,/^-----END CERTIFICATE-----$/p' "$tmp/given" >"$tmp/cert.pem"
[[ -s $tmp/key.pem && -s $tmp/cert.pem ]] || die "no certificate or no key arrived (gitea-homelab:tlsCertificate, gitea-homelab:tlsKey)"
key_matches "$tmp/cert.pem" "$tmp/key.pem" || die "gitea-homelab:tlsKey does not match gitea-homelab:tlsCertificate (checked on the host)"
if cmp -s "$tmp/key.pem" "$served/key.pem" && cmp -s "$tmp/cert.pem" "$served/cert.pem"; then
  echo "certificate unchanged"
else
  # The rootless user's, for Podman to hand to Gitea's user at the next start (U).
  install -m 600 -o "$user" -g "$group" "$tmp/key.pem" "$served/key.pem"
  install -m 644 -o "$user" -g "$group" "$tmp/cert.pem" "$served/cert.pem"
  echo "certificate installed, valid until $(openssl x509 -in "$served/cert.pem" -noout -enddate | cut -d= -f2)"
  restart_gitea_if_active
fi
# A stack that made its own CA before: its renewal would replace the given certificate.
remove_renewal
`,
  );
}

/** Destroy (or tls turned off): the tool and its schedule go; the CA goes only with the data (destroyData). */
export function renderTlsDeleteScript(s: Pick<TlsSpec, "init" | "user">, removeCa: boolean): string {
  return renderScript(
    { purpose: "Remove the certificate tool and its schedule; the CA too when the data goes (destroyData).", vars: { ...renewalVars(s), user: s.user, ca_dir: CA_DIR, remove_ca: removeCa } },
    sh`
${REMOVE_RENEWAL}
remove_renewal
if [[ $remove_ca == true ]] && home=$(home_of "$user"); then
  rm -rf "\${home:?}/$ca_dir"
  echo "CA removed with the data"
fi
echo "certificate tool removed"
`,
  );
}

/** Bash for tls acme: the certificate Gitea serves, and whether Gitea should have renewed it by now. */
export const SERVED_CERTIFICATE_FUNCTIONS = sh`
# The certificate Gitea serves for HOST on this host's PORT (PEM; nothing when none). Usage: served_certificate PORT HOST
served_certificate() {
  timeout 15 openssl s_client -connect "127.0.0.1:$1" -servername "$2" </dev/null 2>/dev/null | openssl x509 2>/dev/null || true
}
# Is the PEM certificate FILE past the point where Gitea renews it (a third of its lifetime left,
# as certmagic does), and within RENEW seconds of its end? Usage: renewal_overdue FILE RENEW
renewal_overdue() {
  local from to now window
  from=$(openssl x509 -in "$1" -noout -startdate -dateopt iso_8601 | cut -d= -f2)
  to=$(openssl x509 -in "$1" -noout -enddate -dateopt iso_8601 | cut -d= -f2)
  from=$(date -u -d "\${from%Z}" +%s) && to=$(date -u -d "\${to%Z}" +%s) || return 0
  now=$(date -u +%s)
  window=$(((to - from) / 3))
  if ((window > $2)); then window=$2; fi
  ((to - now < window))
}
# Why the served certificate FILE needs Gitea to renew it (nothing when it is fine). Usage: served_problem FILE HOST RENEW
served_problem() {
  if [[ ! -s $1 ]]; then
    echo "Gitea serves no certificate"
  elif ! names_host "$1" "$2"; then
    echo "the certificate Gitea serves does not name $2"
  elif renewal_overdue "$1" "$3"; then
    echo "the certificate Gitea serves ends $(openssl x509 -in "$1" -noout -enddate | cut -d= -f2) and was not renewed"
  fi
}`;

export interface AcmeSpec extends TlsSpec {
  httpPort: number;
  /** OpenRC: the service's log (Gitea's ACME lines are there). */
  logFile: string;
  timeoutSeconds: number;
}

/**
 * acme, before Gitea starts: the ACME CA's root (stdin, may be empty) in the certificate volume,
 * no certificate or key of an earlier mode left there, no own-ca tool. Restarts Gitea when the
 * root changed (Gitea reads it at start).
 */
export function renderAcmeSetupScript(s: TlsSpec): string {
  return renderScript(
    {
      purpose: "Prepare Gitea's certificate volume for ACME: the ACME CA's root when one is configured, nothing of an earlier mode.",
      vars: { ...renewalVars(s), user: s.user, service: s.service, served_dir: servedPaths().dir, ca_root_file: ACME_CA_ROOT_FILE },
    },
    sh`
${RESTART_IF_ACTIVE}
${REMOVE_RENEWAL}
${CERTIFICATE_SCRIPT_START}
cat >"$tmp/ca-root"
if [[ -s $tmp/ca-root ]]; then
  if ! cmp -s "$tmp/ca-root" "$served/$ca_root_file"; then
    install -m 644 -o "$user" -g "$group" "$tmp/ca-root" "$served/$ca_root_file"
    echo "ACME CA root installed (gitea-homelab:acmeCaRoot)"
    restart_gitea_if_active
  fi
elif [[ -e $served/$ca_root_file ]]; then
  rm -f "$served/$ca_root_file"
  echo "ACME CA root removed (gitea-homelab:acmeCaRoot is unset)"
fi
# Gitea keeps ACME's certificates in its data volume; a key of an earlier mode is not left here.
rm -f "$served/cert.pem" "$served/key.pem"
remove_renewal
echo "certificate volume ready for ACME"
`,
  );
}

/**
 * acme, after the health wait: Gitea serves a certificate that names the host and is not past its
 * renewal. Otherwise (a renewal that failed while the host was off, say) Gitea restarts, which
 * renews it as it starts, and this waits for the new one; it fails with Gitea's ACME lines.
 */
export function renderAcmeCheckScript(s: AcmeSpec): string {
  return renderScript(
    {
      purpose: "Check the certificate Gitea got by ACME; restart Gitea to renew one it did not renew in time.",
      vars: {
        init: s.init,
        user: s.user,
        service: s.service,
        log_file: s.logFile,
        public_host: s.publicHost,
        http_port: s.httpPort,
        renew_seconds: RENEW_BEFORE_DAYS * 86400,
        timeout: s.timeoutSeconds,
      },
    },
    sh`
${CERTIFICATE_FUNCTIONS}
${SERVED_CERTIFICATE_FUNCTIONS}
command -v openssl >/dev/null || die "openssl is missing on this host; run pulumi up (its preflight installs it)"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
check() {
  served_certificate "$http_port" "$public_host" >"$tmp/served.pem"
  reason=$(served_problem "$tmp/served.pem" "$public_host" "$renew_seconds")
  [[ -z $reason ]]
}
if check; then
  echo "certificate for $public_host from $(openssl x509 -in "$tmp/served.pem" -noout -issuer | cut -d= -f2-), valid until $(openssl x509 -in "$tmp/served.pem" -noout -enddate | cut -d= -f2)"
  exit 0
fi
echo "$reason: restarting Gitea, which renews it from the ACME CA as it starts"
started=$(date +%s)
if [[ $init == systemd ]]; then userctl "$user" restart "$service"; else rc-service "$service" restart >/dev/null; fi
# Counted in tries of 3 seconds (each try waits at most 15 s for a TLS answer).
tries=$(((timeout + 2) / 3))
until check; do
  if (((tries -= 1) <= 0)); then
    if [[ $init == systemd ]]; then
      journalctl --no-pager --output=cat --since="@$started" _UID="$(id -u "$user")" _SYSTEMD_USER_UNIT="$service" 2>/dev/null | grep -i -e acme -e certificate -e challenge | tail -n 8 >&2 || true
    else
      grep -i -e acme -e certificate -e challenge "$log_file" 2>/dev/null | tail -n 8 >&2 || true
    fi
    die "$reason, and Gitea did not get a new certificate within $timeout seconds (gitea-homelab:healthTimeoutSeconds); its ACME lines are above: check that the ACME CA reaches $public_host on port 443 (forwarded to $http_port here) and gitea-homelab:acmeDirectory"
  fi
  sleep 3
done
echo "certificate for $public_host renewed, valid until $(openssl x509 -in "$tmp/served.pem" -noout -enddate | cut -d= -f2)"
`,
  );
}
