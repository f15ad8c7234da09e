/** SSH private keys given in config: what a key must look like for a command to log in with it unattended. */

/** True for an OpenSSH or PEM private key protected by a passphrase (the commands cannot type it). */
export function isEncryptedPrivateKey(key: string): boolean {
  if (/Proc-Type: 4,ENCRYPTED|BEGIN ENCRYPTED PRIVATE KEY/.test(key)) return true;
  const body = /-----BEGIN OPENSSH PRIVATE KEY-----([\s\S]*?)-----END OPENSSH PRIVATE KEY-----/.exec(key)?.[1];
  if (body === undefined) return false;
  // openssh-key-v1\0, then the cipher name as a length-prefixed string: "none" unless encrypted.
  const bytes = Buffer.from(body.replace(/\s+/g, ""), "base64");
  const magic = "openssh-key-v1\0";
  if (bytes.toString("latin1", 0, magic.length) !== magic || bytes.length < magic.length + 4) return false;
  const length = bytes.readUInt32BE(magic.length);
  return bytes.toString("latin1", magic.length + 4, magic.length + 4 + length) !== "none";
}

/** Why KEY (trimmed) cannot log in unattended, or undefined when it can; never repeats the key. */
export function privateKeyProblem(key: string): "malformed" | "passphrase" | undefined {
  if (/[\x00-\x09\x0b\x0c\x0e-\x1f\x7f]/.test(key) || !/^-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----[\s\S]+-----END [A-Z0-9 ]*PRIVATE KEY-----$/.test(key)) return "malformed";
  return isEncryptedPrivateKey(key) ? "passphrase" : undefined;
}
