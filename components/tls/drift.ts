/**
 * Gitea's certificate on the host, its probe and comparison: the served certificate (ends within
 * RENEW_BEFORE_DAYS, names the host, is the CA's or the one given, matches its key), the CA, and
 * the own-ca tool and its schedule. Never a key's content: only whether it matches.
 */
import { HostCheck } from "../host/checkedCommand";
import { Facts, ProbeBody } from "../host/probeSession";
import { fileDigest, sh } from "../render/shell";
import { RENEW_BEFORE_DAYS } from "./certificate";
import { ACME_CA_ROOT_FILE, AcmeSpec, CA_DIR, CERTIFICATE_FUNCTIONS, renderRenewalPeriodicScript, renderRenewalServiceUnit, renderRenewalTimerUnit, renderTlsTool, renewalUnits, SERVED_CERTIFICATE_FUNCTIONS, servedPaths, TlsSpec, tlsToolPath } from "./render";

export function renderTlsProbe(s: Pick<TlsSpec, "user" | "publicHost">): ProbeBody {
  const units = renewalUnits(s.user);
  return {
    vars: {
      user: s.user,
      public_host: s.publicHost,
      ca_dir: CA_DIR,
      served_dir: servedPaths().dir,
      renew_seconds: RENEW_BEFORE_DAYS * 86400,
      tool: tlsToolPath(s.user),
      renewal_dir: units.dir,
      renewal_service: units.service,
      renewal_timer: units.timer,
      renewal_periodic: units.periodic,
    },
    functions: CERTIFICATE_FUNCTIONS,
    body: sh`
if ! user_info "$user"; then
  echo tls_user=missing
  return 0
fi
ca=$user_home/$ca_dir
served=$user_home/$served_dir
echo "ca_key=$(stat -c '%a %U' "$ca/ca.key" 2>/dev/null || echo missing)"
echo "ca_cert=$(file_digest "$ca/ca.crt")"
cert=$served/cert.pem
if [[ ! -s $cert ]]; then
  echo cert=missing
else
  echo "cert=$(file_digest "$cert")"
  echo "cert_ends=$(openssl x509 -in "$cert" -noout -enddate 2>/dev/null | cut -d= -f2)"
  if openssl x509 -in "$cert" -noout -checkend "$renew_seconds" >/dev/null 2>&1; then echo cert_ending=no; else echo cert_ending=yes; fi
  if names_host "$cert" "$public_host"; then echo cert_names_host=yes; else echo cert_names_host=no; fi
  if [[ -s $ca/ca.crt ]] && openssl verify -CAfile "$ca/ca.crt" "$cert" >/dev/null 2>&1; then echo cert_from_ca=yes; else echo cert_from_ca=no; fi
  if key_matches "$cert" "$served/key.pem"; then echo key_matches=yes; else echo key_matches=no; fi
  echo "key_mode=$(stat -c %a "$served/key.pem" 2>/dev/null || echo missing)"
fi
echo "tool=$(file_digest "$tool")"
if [[ $host_init == systemd ]]; then
  echo "renewal_service=$(file_digest "$renewal_dir/$renewal_service")"
  echo "renewal_timer=$(file_digest "$renewal_dir/$renewal_timer")"
  echo "renewal_active=$(systemctl is-active "$renewal_timer" 2>/dev/null || true)"
  echo "renewal_enabled=$(systemctl is-enabled "$renewal_timer" 2>/dev/null || true)"
else
  echo "renewal_periodic=$(file_digest "$renewal_periodic")"
fi
`,
  };
}

/** The digest the probe prints for the chain as the given script installs it (it ends in a newline). */
export function givenChainDigest(chain: string): string {
  return fileDigest(chain);
}

function certificateDrift(s: TlsSpec, f: Facts): string[] {
  const what = "certificate";
  if (f.cert === "missing") return [`${what}: missing`];
  const drift: string[] = [];
  if (f.cert_names_host !== "yes") drift.push(`${what}: does not name ${s.publicHost} (gitea-homelab:publicHost)`);
  if (f.key_matches !== "yes") drift.push(`${what}: its key is missing or is not its key`);
  else if (f.key_mode !== "600") drift.push(`${what}: key mode ${f.key_mode}, expected 600`);
  return drift;
}

/** own-ca: the CA, a valid certificate from it, the tool and its schedule. */
export function ownCaDrift(s: TlsSpec, facts: Facts | undefined): string[] {
  if (facts === undefined || (facts.tls_user === undefined && facts.tool === undefined)) return ["certificate: state unknown (probe output unreadable)"];
  if (facts.tls_user === "missing") return [`certificate: user ${s.user} missing`];
  const drift: string[] = [];
  if (facts.ca_key === "missing" || facts.ca_cert === "missing") {
    drift.push(`CA ~${s.user}/${CA_DIR}: MISSING; up makes a new one, which browsers, git and runners that trusted the old one do not trust: put it back or restore a backup (gitea-homelab:restoreFrom) first`);
  } else if (facts.ca_key !== `600 ${s.user}`) {
    drift.push(`CA key ~${s.user}/${CA_DIR}/ca.key: mode and owner ${facts.ca_key}, expected 600 ${s.user}`);
  }
  drift.push(...certificateDrift(s, facts));
  if (facts.cert !== "missing") {
    if (facts.cert_ending === "yes") drift.push(`certificate: ends ${facts.cert_ends}, within ${RENEW_BEFORE_DAYS} days; up renews it`);
    if (facts.cert_from_ca === "no" && facts.ca_cert !== "missing") drift.push("certificate: not issued by the stack's CA");
  }
  const tool = tlsToolPath(s.user);
  if (facts.tool === "missing") drift.push(`certificate tool ${tool}: deleted`);
  else if (facts.tool !== fileDigest(renderTlsTool(s))) drift.push(`certificate tool ${tool}: edited (differs from the rendered one)`);
  const units = renewalUnits(s.user);
  if (s.init === "systemd") {
    if (facts.renewal_service !== fileDigest(renderRenewalServiceUnit(s.user))) drift.push(`unit ${units.service}: ${facts.renewal_service === "missing" ? "deleted" : "edited"}`);
    if (facts.renewal_timer !== fileDigest(renderRenewalTimerUnit())) drift.push(`unit ${units.timer}: ${facts.renewal_timer === "missing" ? "deleted" : "edited"}`);
    if (facts.renewal_active !== "active") drift.push(`timer ${units.timer}: ${facts.renewal_active || "not loaded"}, expected active`);
    if (facts.renewal_enabled !== "enabled") drift.push(`timer ${units.timer}: ${facts.renewal_enabled || "not loaded"} at boot, expected enabled`);
  } else if (facts.renewal_periodic !== fileDigest(renderRenewalPeriodicScript(s.user))) {
    drift.push(`${units.periodic}: ${facts.renewal_periodic === "missing" ? "deleted" : "edited"}`);
  }
  return drift;
}

/** given: the served chain is the configured one (by digest), with its key. Its end is config's warning, not drift: up cannot renew it. */
export function givenDrift(s: TlsSpec, chainDigest: string, facts: Facts | undefined): string[] {
  if (facts === undefined || (facts.tls_user === undefined && facts.tool === undefined)) return ["certificate: state unknown (probe output unreadable)"];
  if (facts.tls_user === "missing") return [`certificate: user ${s.user} missing`];
  const drift = certificateDrift(s, facts);
  if (facts.cert !== "missing" && facts.cert !== chainDigest) drift.push("certificate: differs from gitea-homelab:tlsCertificate");
  if (facts.tool !== "missing") drift.push(`certificate tool ${tlsToolPath(s.user)}: present, expected none (tls is given)`);
  return drift;
}

export function ownCaCheck(s: TlsSpec): HostCheck {
  return { probe: renderTlsProbe(s), compare: (facts) => ownCaDrift(s, facts) };
}

export function givenCheck(s: TlsSpec, chainDigest: string): HostCheck {
  return { probe: renderTlsProbe(s), compare: (facts) => givenDrift(s, chainDigest, facts) };
}

/** acme, before Gitea starts: the ACME CA's root in the volume, and no own-ca tool. */
export function renderAcmeSetupProbe(s: Pick<TlsSpec, "user">): ProbeBody {
  return {
    vars: { user: s.user, served_dir: servedPaths().dir, ca_root_file: ACME_CA_ROOT_FILE, tool: tlsToolPath(s.user) },
    body: sh`
if ! user_info "$user"; then
  echo tls_user=missing
  return 0
fi
echo "acme_ca_root=$(file_digest "$user_home/$served_dir/$ca_root_file")"
echo "tool=$(file_digest "$tool")"
`,
  };
}

/** The digest the setup probe prints for the ACME CA's root as configured ("missing" when unset). */
export function acmeCaRootDigest(caRoot: string | undefined): string {
  return caRoot === undefined ? "missing" : fileDigest(caRoot);
}

export function acmeSetupDrift(s: Pick<TlsSpec, "user">, caRootDigest: string, facts: Facts | undefined): string[] {
  if (facts === undefined || (facts.tls_user === undefined && facts.tool === undefined)) return ["certificate volume: state unknown (probe output unreadable)"];
  if (facts.tls_user === "missing") return [`certificate volume: user ${s.user} missing`];
  const drift: string[] = [];
  if (facts.acme_ca_root !== caRootDigest) {
    drift.push(caRootDigest === "missing" ? `ACME CA root ${ACME_CA_ROOT_FILE}: present, expected none` : `ACME CA root ${ACME_CA_ROOT_FILE}: ${facts.acme_ca_root === "missing" ? "missing" : "differs from gitea-homelab:acmeCaRoot"}`);
  }
  if (facts.tool !== "missing") drift.push(`certificate tool ${tlsToolPath(s.user)}: present, expected none (tls is acme)`);
  return drift;
}

export function acmeSetupCheck(s: Pick<TlsSpec, "user">, caRootDigest: string): HostCheck {
  return { probe: renderAcmeSetupProbe(s), compare: (facts) => acmeSetupDrift(s, caRootDigest, facts) };
}

/** acme, after Gitea started: the certificate it serves (read over TLS on the published port). */
export function renderAcmeServedProbe(s: Pick<AcmeSpec, "publicHost" | "httpPort">): ProbeBody {
  return {
    vars: { public_host: s.publicHost, http_port: s.httpPort, renew_seconds: RENEW_BEFORE_DAYS * 86400 },
    functions: sh`${CERTIFICATE_FUNCTIONS}
${SERVED_CERTIFICATE_FUNCTIONS}`,
    body: sh`
if ! command -v openssl >/dev/null; then
  echo served=unknown
  return 0
fi
served=$(mktemp)
served_certificate "$http_port" "$public_host" >"$served"
if [[ ! -s $served ]]; then
  echo served=missing
else
  echo served=yes
  echo "served_problem=$(served_problem "$served" "$public_host" "$renew_seconds")"
fi
rm -f "$served"
`,
  };
}

/** What preview says of the certificate Gitea got by ACME; up restarts Gitea to renew it. */
export function acmeServedDrift(facts: Facts | undefined): string[] {
  if (facts === undefined || facts.served === "unknown") return ["served certificate: state unknown (no openssl on the host, or probe output unreadable)"];
  if (facts.served === "missing") return ["served certificate: Gitea serves none (not running, or ACME failed); up restarts it"];
  if (facts.served_problem) return [`served certificate: ${facts.served_problem}; up restarts Gitea to renew it`];
  return [];
}

export function acmeServedCheck(s: Pick<AcmeSpec, "publicHost" | "httpPort">): HostCheck {
  return { probe: renderAcmeServedProbe(s), compare: acmeServedDrift };
}
