/**
 * A certificate the owner gives (tls: given), checked on this machine before any SSH session:
 * PEM, a private key without a passphrase that matches the certificate, not expired, and naming
 * the host people use. Pure (node's own X.509 parser); the messages never quote the key.
 */
import { createPrivateKey, KeyObject, X509Certificate } from "crypto";
import { isIP } from "net";

/** A made or ACME certificate is renewed, and any certificate shows as drift, this close to its end. */
export const RENEW_BEFORE_DAYS = 30;

const DAY_MS = 24 * 60 * 60 * 1000;
const CERTIFICATE_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** The certificates of a PEM text, in order (the server's own first, then its chain). */
export function certificateBlocks(pem: string): string[] {
  return pem.match(CERTIFICATE_BLOCK) ?? [];
}

export interface GivenCertificateReport {
  problems: Array<{ key: "tlsCertificate" | "tlsKey"; message: string }>;
  warnings: Array<{ key: "tlsCertificate"; message: string }>;
  /** The certificate chain as it will be served: the PEM blocks only, one newline after each. */
  chain?: string;
  notAfter?: Date;
}

function nameOf(host: string): string {
  return isIP(host) ? `the IP address ${host}` : host;
}

/** Whether the certificate is valid for HOST (a DNS name, wildcards as TLS clients apply them, or an IP address). */
export function certificateNames(cert: X509Certificate, host: string): boolean {
  return isIP(host) ? cert.checkIP(host) !== undefined : cert.checkHost(host, { wildcards: true, partialWildcards: false }) !== undefined;
}

export function checkGivenCertificate(certificatePem: string | undefined, keyPem: string | undefined, publicHost: string, now: Date = new Date()): GivenCertificateReport {
  const report: GivenCertificateReport = { problems: [], warnings: [] };
  const problem = (key: "tlsCertificate" | "tlsKey", message: string) => report.problems.push({ key, message });
  if (certificatePem === undefined || certificatePem.trim() === "") problem("tlsCertificate", "is required when tls is given: the server's certificate and its chain, PEM (pulumi config set gitea-homelab:tlsCertificate < fullchain.pem)");
  if (keyPem === undefined || keyPem.trim() === "") problem("tlsKey", "is required when tls is given: the certificate's private key, PEM (pulumi config set --secret gitea-homelab:tlsKey < privkey.pem)");
  if (report.problems.length > 0) return report;

  const blocks = certificateBlocks(certificatePem!);
  let certs: X509Certificate[] = [];
  try {
    certs = blocks.map((b) => new X509Certificate(b));
  } catch {
    certs = [];
  }
  if (certs.length === 0) {
    problem("tlsCertificate", "must be a PEM certificate (-----BEGIN CERTIFICATE----- …), the server's own first, then its chain; got something else");
    return report;
  }
  const leaf = certs[0];
  // A lone self-signed certificate may say CA:TRUE (openssl req -x509 does); a chain must start with the server's.
  if (leaf.ca && certs.length > 1) problem("tlsCertificate", `its first certificate is a CA (${leaf.subject.replace(/\n/g, ", ")}); put the server's own certificate first, then its chain`);

  let key: KeyObject | undefined;
  const keyText = keyPem!.trim();
  if (!/^-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----[\s\S]+-----END [A-Z0-9 ]*PRIVATE KEY-----$/.test(keyText)) {
    problem("tlsKey", "must be a PEM private key (-----BEGIN PRIVATE KEY----- …)");
  } else if (/ENCRYPTED/.test(keyText)) {
    problem("tlsKey", "is protected by a passphrase, which Gitea cannot type; give the key without one (openssl pkey -in KEY -out plain.pem)");
  } else {
    try {
      key = createPrivateKey(keyText);
    } catch {
      problem("tlsKey", "is not a private key this machine can read (PEM, RSA, EC or Ed25519)");
    }
  }
  if (key !== undefined && !leaf.checkPrivateKey(key)) {
    problem("tlsKey", "does not match the certificate in gitea-homelab:tlsCertificate (a key of another certificate?)");
  }

  const notAfter = new Date(leaf.validTo);
  report.notAfter = notAfter;
  if (notAfter.getTime() <= now.getTime()) {
    problem("tlsCertificate", `expired on ${notAfter.toISOString().slice(0, 10)}; give a renewed one`);
  } else if (notAfter.getTime() - now.getTime() < RENEW_BEFORE_DAYS * DAY_MS) {
    const days = Math.floor((notAfter.getTime() - now.getTime()) / DAY_MS);
    report.warnings.push({ key: "tlsCertificate", message: `expires in ${days} days (${notAfter.toISOString().slice(0, 10)}); give a renewed one before then: nothing renews a certificate you give` });
  }
  if (new Date(leaf.validFrom).getTime() > now.getTime()) {
    problem("tlsCertificate", `is not valid before ${new Date(leaf.validFrom).toISOString()}; check the clock, or give a certificate valid now`);
  }
  if (publicHost !== "" && !certificateNames(leaf, publicHost)) {
    problem("tlsCertificate", `does not name ${nameOf(publicHost)} (gitea-homelab:publicHost), the host people use; it names ${leaf.subjectAltName ?? leaf.subject.replace(/\n/g, ", ")}`);
  }
  if (report.problems.length === 0) report.chain = blocks.map((b) => `${b}\n`).join("");
  return report;
}

/** The first PEM certificate in a command's output (the CA the TLS tool prints), or undefined. */
export function firstCertificate(text: string): string | undefined {
  const block = certificateBlocks(text)[0];
  return block === undefined ? undefined : `${block}\n`;
}

/**
 * A CA certificate the runner side is told to trust (config `caCertificate`, or a server stack's
 * output): the PEM blocks only, or the problem with it.
 */
export function checkCaCertificate(pem: string): { certificate: string } | { problem: string } {
  const blocks = certificateBlocks(pem);
  try {
    for (const b of blocks) new X509Certificate(b);
  } catch {
    return { problem: "must be a PEM certificate (-----BEGIN CERTIFICATE----- …): the CA that signed Gitea's certificate" };
  }
  if (blocks.length === 0) return { problem: "must be a PEM certificate (-----BEGIN CERTIFICATE----- …): the CA that signed Gitea's certificate" };
  return { certificate: blocks.map((b) => `${b}\n`).join("") };
}
